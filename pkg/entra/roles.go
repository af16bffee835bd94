package entra

import "strings"

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
