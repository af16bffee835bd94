package entra

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ListApplicationsByDisplayName returns every application with exactly this
// display name (display names are not unique).
func (g *Graph) ListApplicationsByDisplayName(ctx context.Context, name string) ([]Application, error) {
	return list[Application](ctx, g, call{method: http.MethodGet, path: "/applications", query: filterEq("displayName", name)})
}

// FindApplicationByAppID returns the application with this appId (client id),
// or nil, nil when there is none.
func (g *Graph) FindApplicationByAppID(ctx context.Context, appID string) (*Application, error) {
	apps, err := list[Application](ctx, g, call{method: http.MethodGet, path: "/applications", query: filterEq("appId", appID)})
	if err != nil || len(apps) == 0 {
		return nil, err
	}
	return &apps[0], nil
}

// applicationSelect names every property Application models; naming keyCredentials in a
// single-object $select is what makes Graph return the certificate bodies (key).
const applicationSelect = "id,appId,displayName,signInAudience,keyCredentials,passwordCredentials,requiredResourceAccess"

// GetApplication reads an application by object id in one request, certificates with their
// key (certificate body) included. Entries read this way are still resent with key null.
func (g *Graph) GetApplication(ctx context.Context, objectID string) (*Application, error) {
	var app Application
	err := g.do(ctx, call{
		method: http.MethodGet, path: objectPath("applications", objectID),
		query: url.Values{"$select": {applicationSelect}}, out: &app, lagIDs: []string{objectID},
	})
	if err != nil {
		return nil, err
	}
	return &app, nil
}

// GetApplicationByAppID reads an application by its appId (client id) through Graph's
// alternate key, /applications(appId='…'), in one request and with certificate bodies;
// nil, nil when there is none.
func (g *Graph) GetApplicationByAppID(ctx context.Context, appID string) (*Application, error) {
	var app Application
	err := g.do(ctx, call{
		method: http.MethodGet, path: "/applications(appId='" + url.PathEscape(strings.ReplaceAll(appID, "'", "''")) + "')",
		query: url.Values{"$select": {applicationSelect}}, out: &app,
	})
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &app, nil
}

// CreateApplication registers a single-tenant (AzureADMyOrg) application. POST is not
// idempotent: a 500/502/504, timeout or reset is not retried (the app may have been
// created), so prefer UpsertApplication, which is safe to retry.
func (g *Graph) CreateApplication(ctx context.Context, displayName string) (*Application, error) {
	var app Application
	body := map[string]string{"displayName": displayName, "signInAudience": SignInAudienceMyOrg}
	if err := g.do(ctx, call{method: http.MethodPost, path: "/applications", body: body, out: &app, notIdempotent: true}); err != nil {
		return nil, err
	}
	if app.ID == "" || app.AppID == "" {
		return nil, errors.New("graph: POST /applications: the response has no id or appId")
	}
	g.markCreated(app.ID, app.AppID)
	return &app, nil
}

// SetKeyCredentials replaces the application's certificates with creds (PATCH
// replaces the whole collection: include every credential to keep, as read).
func (g *Graph) SetKeyCredentials(ctx context.Context, objectID string, creds []KeyCredential) error {
	if creds == nil {
		creds = []KeyCredential{}
	}
	return g.do(ctx, call{
		method: http.MethodPatch, path: objectPath("applications", objectID),
		body: map[string]any{"keyCredentials": creds}, lagIDs: []string{objectID},
	})
}

// SetRequiredResourceAccess replaces the application's declared permissions.
func (g *Graph) SetRequiredResourceAccess(ctx context.Context, objectID string, rra []RequiredResourceAccess) error {
	if rra == nil {
		rra = []RequiredResourceAccess{}
	}
	return g.do(ctx, call{
		method: http.MethodPatch, path: objectPath("applications", objectID),
		body: map[string]any{"requiredResourceAccess": rra}, lagIDs: []string{objectID},
	})
}

// AddPassword adds a client secret that expires at end (Graph's default when
// end is zero). The answer's SecretText holds the only copy of the secret. It is not
// retried after a 500/502/504, timeout or reset (a second secret could be left behind):
// on such an error the caller lists the app's passwords and removes an unknown one
// named displayName, or reports it.
func (g *Graph) AddPassword(ctx context.Context, objectID, displayName string, end time.Time) (*PasswordCredential, error) {
	cred := map[string]string{}
	if displayName != "" {
		cred["displayName"] = displayName
	}
	if !end.IsZero() {
		cred["endDateTime"] = end.UTC().Format(graphTimeLayout)
	}
	var pc PasswordCredential
	err := g.do(ctx, call{
		method: http.MethodPost, path: objectPath("applications", objectID, "addPassword"),
		body: map[string]any{"passwordCredential": cred}, out: &pc, lagIDs: []string{objectID},
		notIdempotent: true,
	})
	if err != nil {
		return nil, err
	}
	if pc.SecretText.IsZero() {
		return nil, errors.New("graph: POST " + objectPath("applications", objectID, "addPassword") + ": the response has no secretText")
	}
	return &pc, nil
}

// RemovePassword deletes the client secret with this keyId.
func (g *Graph) RemovePassword(ctx context.Context, objectID, keyID string) error {
	return g.do(ctx, call{
		method: http.MethodPost, path: objectPath("applications", objectID, "removePassword"),
		body: map[string]string{"keyId": keyID}, lagIDs: []string{objectID},
	})
}

// servicePrincipalSelect names what ServicePrincipal models. Without it Graph's own
// service principal is about a megabyte (hundreds of app roles, a thousand delegated
// scopes, resource-specific permissions); Microsoft's permissions reference selects too.
const servicePrincipalSelect = "id,appId,displayName,appRoles"

// FindServicePrincipal returns the service principal of appID with its app
// roles, or nil, nil when the tenant has none. It reads only the properties
// ServicePrincipal models ($select).
func (g *Graph) FindServicePrincipal(ctx context.Context, appID string) (*ServicePrincipal, error) {
	q := filterEq("appId", appID)
	q.Set("$select", servicePrincipalSelect)
	sps, err := list[ServicePrincipal](ctx, g, call{method: http.MethodGet, path: "/servicePrincipals", query: q})
	if err != nil || len(sps) == 0 {
		return nil, err
	}
	return &sps[0], nil
}

// CreateServicePrincipal creates the service principal of appID. When it
// already exists (409) the existing one is returned. "does not reference a
// valid application object" right after the app was created is replication
// lag and is retried with backoff; so is the 403 "backing application ... must
// in the local tenant", but only when this client created the app (appID) in the
// last RecentWindow — otherwise a 403 is a missing role.
func (g *Graph) CreateServicePrincipal(ctx context.Context, appID string) (*ServicePrincipal, error) {
	c := call{method: http.MethodPost, path: "/servicePrincipals", body: map[string]string{"appId": appID}}
	for attempt := 0; ; attempt++ {
		var sp ServicePrincipal
		c.out = &sp
		err := g.send(ctx, c, g.base+c.path)
		switch {
		case err == nil:
			if sp.ID == "" {
				return nil, errors.New("graph: POST /servicePrincipals: the response has no id")
			}
			g.markCreated(sp.ID)
			return &sp, nil
		case hasStatus(err, http.StatusConflict):
			existing, ferr := g.FindServicePrincipal(ctx, appID)
			if ferr != nil {
				return nil, ferr
			}
			if existing == nil {
				return nil, err
			}
			return existing, nil
		case attempt < g.opts.NotFoundRetries && (hasStatus(err, http.StatusBadRequest) && strings.Contains(graphMessage(err), "does not reference") ||
			isBackingAppNotReplicated(err) && g.recentlyCreated(appID)):
			if werr := g.waitForReplication(ctx, c, attempt); werr != nil {
				return nil, err
			}
		default:
			return nil, err
		}
	}
}

// ListAppRoleAssignments lists the app roles granted to a service principal.
func (g *Graph) ListAppRoleAssignments(ctx context.Context, clientSpID string) ([]AppRoleAssignment, error) {
	return list[AppRoleAssignment](ctx, g, call{
		method: http.MethodGet, path: objectPath("servicePrincipals", clientSpID, "appRoleAssignments"),
		lagIDs: []string{clientSpID},
	})
}

// GrantAppRole grants the app role appRoleID of the resource service principal
// to the principal service principal (admin consent for one application
// permission). created is false when the grant already existed.
func (g *Graph) GrantAppRole(ctx context.Context, resourceSpID, principalSpID, appRoleID string) (created bool, err error) {
	err = g.do(ctx, call{
		method: http.MethodPost, path: objectPath("servicePrincipals", resourceSpID, "appRoleAssignedTo"),
		body:   map[string]string{"principalId": principalSpID, "resourceId": resourceSpID, "appRoleId": appRoleID},
		lagIDs: []string{resourceSpID, principalSpID},
	})
	if err == nil {
		return true, nil
	}
	if (hasStatus(err, http.StatusBadRequest) || hasStatus(err, http.StatusConflict)) && strings.Contains(graphMessage(err), "already exists") {
		return false, nil
	}
	return false, err
}

// graphMessage is the message of a GraphError in err, or "".
func graphMessage(err error) string {
	var ge *GraphError
	if errors.As(err, &ge) {
		return ge.Message
	}
	return ""
}
