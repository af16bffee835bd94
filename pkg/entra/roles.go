package entra

import (
	"slices"
	"strings"
)

// BaseProvisionerRoles are the Graph application permissions the provisioner needs besides
// the Agent ID roles (blueprint section 6, step 3).
var BaseProvisionerRoles = []string{
	"Application.ReadWrite.All",
	"DelegatedPermissionGrant.ReadWrite.All",
	"LicenseAssignment.ReadWrite.All",
	"Organization.Read.All",
	"User.ReadWrite.All",
}

// IsAgentIDRole reports whether a Graph app role value is one of the Agent ID roles the
// provisioner needs: every value containing AgentIdentity or AgentIdUser. The set is read
// from the tenant's Graph service principal, never hard-coded.
func IsAgentIDRole(value string) bool {
	return strings.Contains(value, "AgentIdentity") || strings.Contains(value, "AgentIdUser")
}

// IsGrantableAppRole reports whether an app role can be granted to an application: it
// is enabled and its allowedMemberTypes name Application (an empty list counts as
// allowed). Graph keeps disabled and user-only roles on its service principal; neither
// may be declared or required.
func IsGrantableAppRole(r AppRole) bool {
	if !r.IsEnabled {
		return false
	}
	if len(r.AllowedMemberTypes) == 0 {
		return true
	}
	for _, m := range r.AllowedMemberTypes {
		if strings.EqualFold(m, "Application") {
			return true
		}
	}
	return false
}

// ProvisionerRoles is the one rule for the Graph application permissions the provisioner
// needs, read from the tenant's Graph service principal: the base roles, then every
// grantable Agent ID role in the order Graph lists them, each once. Migrate grants them;
// verify requires them in the token (of the Agent ID roles, those the app declares).
// missing names the base roles sp does not publish (nil sp: all of them).
func ProvisionerRoles(sp *ServicePrincipal) (roles []AppRole, missing []string) {
	var published []AppRole
	if sp != nil {
		published = sp.AppRoles
	}
	seen := map[string]bool{}
	add := func(r AppRole) {
		if !seen[r.ID] {
			seen[r.ID] = true
			roles = append(roles, r)
		}
	}
	for _, v := range BaseProvisionerRoles {
		i := slices.IndexFunc(published, func(r AppRole) bool { return r.Value == v })
		if i < 0 {
			missing = append(missing, v)
			continue
		}
		add(published[i])
	}
	for _, r := range published {
		if IsAgentIDRole(r.Value) && IsGrantableAppRole(r) {
			add(r)
		}
	}
	return roles, missing
}
