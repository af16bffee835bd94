package entra

import (
	"context"
	"net/http"
	"net/url"
)

// Template ids of the directory roles that matter to the provisioner app, as a
// delegated token lists them in its wids claim.
const (
	RoleGlobalAdministrator           = "62e90394-69f5-4237-9190-012177145e10"
	RoleApplicationAdministrator      = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
	RoleCloudApplicationAdministrator = "158c047a-c907-4556-b7ef-446551a6b5f7"
	RolePrivilegedRoleAdministrator   = "e8611ab8-c189-46e8-94e1-60213ab1f814"
)

// OperatorRights is what an operator's Graph token says the operator may do: a
// delegated token lists the user's active directory roles (wids), an application
// token its granted Graph application permissions (roles).
type OperatorRights struct {
	// Known is false when the token lists neither: the rights cannot be told in advance.
	Known bool
	// App is true for an application token (the provisioner's own certificate).
	App bool
	// Roles are the wids of a delegated token or the roles of an application token.
	Roles map[string]bool
	// ObjectID is the operator's object id (oid), Name what people call it (upn, else name).
	ObjectID, Name string
}

// RightsFromClaims reads OperatorRights from the claims of an operator's Graph token.
func RightsFromClaims(claims map[string]any) OperatorRights {
	r := OperatorRights{Roles: map[string]bool{}}
	r.ObjectID, _ = claims["oid"].(string)
	for _, k := range []string{"upn", "unique_name", "name", "app_displayname"} {
		if v, _ := claims[k].(string); v != "" && r.Name == "" {
			r.Name = v
		}
	}
	idtyp, _ := claims["idtyp"].(string)
	_, scp := claims["scp"]
	r.App = idtyp == "app" || (idtyp == "" && !scp)
	key := "wids"
	if r.App {
		key = "roles"
	}
	list, ok := claims[key].([]any)
	r.Known = ok
	for _, v := range list {
		if s, ok := v.(string); ok {
			r.Roles[s] = true
		}
	}
	return r
}

// MayChangeApps reports whether the operator may change any application: Global,
// Application or Cloud Application Administrator, or an application holding
// Application.ReadWrite.All. An app's owners may change it too (see OwnerIDs).
func (r OperatorRights) MayChangeApps() bool {
	if r.App {
		return r.Roles["Application.ReadWrite.All"]
	}
	return r.Roles[RoleGlobalAdministrator] || r.Roles[RoleApplicationAdministrator] || r.Roles[RoleCloudApplicationAdministrator]
}

// MayGrantAppRoles reports whether the operator may grant Microsoft Graph application
// permissions (admin consent): Global or Privileged Role Administrator, or an
// application holding AppRoleAssignment.ReadWrite.All.
func (r OperatorRights) MayGrantAppRoles() bool {
	if r.App {
		return r.Roles["AppRoleAssignment.ReadWrite.All"]
	}
	return r.Roles[RoleGlobalAdministrator] || r.Roles[RolePrivilegedRoleAdministrator]
}

// OwnerIDs lists the object ids of an application's owners.
func (g *Graph) OwnerIDs(ctx context.Context, objectID string) ([]string, error) {
	type owner struct {
		ID string `json:"id"`
	}
	owners, err := list[owner](ctx, g, call{
		method: http.MethodGet, path: objectPath("applications", objectID, "owners"),
		query: url.Values{"$select": {"id"}}, lagIDs: []string{objectID},
	})
	ids := make([]string, len(owners))
	for i, o := range owners {
		ids[i] = o.ID
	}
	return ids, err
}
