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
