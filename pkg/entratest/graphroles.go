package entratest

import (
	"crypto/sha1"
	"fmt"
	"strings"
)

// GraphAppID is the appId of Microsoft Graph; its service principal exists in every tenant.
const GraphAppID = "00000003-0000-0000-c000-000000000000"

// microsoftServicesTenantID owns Microsoft's first-party applications such as Graph.
const microsoftServicesTenantID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"

// graphRole is one application permission (app role) of the Graph service principal.
type graphRole struct {
	id          string
	value       string
	displayName string
	disabled    bool // isEnabled false
	userOnly    bool // allowedMemberTypes ["User"]: not an application permission
}

// Role ids: the five the design notes confirm are real Graph ids; every other id is a
// name-derived GUID chosen by this fake (see roleID). Clients must resolve ids from the
// Graph service principal at run time, as they must against the real service.
var graphRoles = []graphRole{
	// The five base permissions the provisioner needs.
	{"1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9", "Application.ReadWrite.All", "Read and write all applications", false, false},
	{roleID("DelegatedPermissionGrant.ReadWrite.All"), "DelegatedPermissionGrant.ReadWrite.All", "Manage all delegated permission grants", false, false},
	{roleID("LicenseAssignment.ReadWrite.All"), "LicenseAssignment.ReadWrite.All", "Manage all license assignments", false, false},
	{roleID("Organization.Read.All"), "Organization.Read.All", "Read organization information", false, false},
	{roleID("User.ReadWrite.All"), "User.ReadWrite.All", "Read and write all users' full profiles", false, false},

	// Agent ID permissions.
	{roleID("AgentIdentity.ReadWrite.All"), "AgentIdentity.ReadWrite.All", "Read and write all agent identities", false, false},
	{roleID("AgentIdentity.Create.All"), "AgentIdentity.Create.All", "Create agent identities", false, false},
	{roleID("AgentIdentity.CreateAsManager"), "AgentIdentity.CreateAsManager", "Create agent identities as manager", false, false},
	{roleID("AgentIdentity.Read.All"), "AgentIdentity.Read.All", "Read all agent identities", false, false},
	{roleID("AgentIdentity.DeleteRestore.All"), "AgentIdentity.DeleteRestore.All", "Delete and restore agent identities", false, false},
	{roleID("AgentIdentity.EnableDisable.All"), "AgentIdentity.EnableDisable.All", "Enable and disable agent identities", false, false},
	{roleID("AgentIdentityBlueprint.Create"), "AgentIdentityBlueprint.Create", "Create agent identity blueprints", false, false},
	{roleID("AgentIdentityBlueprint.ReadWrite.All"), "AgentIdentityBlueprint.ReadWrite.All", "Read and write all agent identity blueprints", false, false},
	{roleID("AgentIdentityBlueprint.Read.All"), "AgentIdentityBlueprint.Read.All", "Read all agent identity blueprints", false, false},
	{roleID("AgentIdentityBlueprint.AddRemoveCreds.All"), "AgentIdentityBlueprint.AddRemoveCreds.All", "Add and remove credentials of agent identity blueprints", false, false},
	{roleID("AgentIdentityBlueprint.UpdateAuthProperties.All"), "AgentIdentityBlueprint.UpdateAuthProperties.All", "Update authentication properties of agent identity blueprints", false, false},
	{roleID("AgentIdentityBlueprint.DeleteRestore.All"), "AgentIdentityBlueprint.DeleteRestore.All", "Delete and restore agent identity blueprints", false, false},
	{roleID("AgentIdentityBlueprintPrincipal.Create"), "AgentIdentityBlueprintPrincipal.Create", "Create agent identity blueprint principals", false, false},
	{roleID("AgentIdentityBlueprintPrincipal.ReadWrite.All"), "AgentIdentityBlueprintPrincipal.ReadWrite.All", "Read and write all agent identity blueprint principals", false, false},
	{roleID("AgentIdentityBlueprintPrincipal.Read.All"), "AgentIdentityBlueprintPrincipal.Read.All", "Read all agent identity blueprint principals", false, false},
	{roleID("AgentIdentityBlueprintPrincipal.DeleteRestore.All"), "AgentIdentityBlueprintPrincipal.DeleteRestore.All", "Delete and restore agent identity blueprint principals", false, false},
	{roleID("AgentIdUser.ReadWrite.All"), "AgentIdUser.ReadWrite.All", "Read and write all agent users", false, false},
	{roleID("AgentIdUser.ReadWrite.IdentityParentedBy"), "AgentIdUser.ReadWrite.IdentityParentedBy", "Read and write agent users parented by an agent identity", false, false},
	{roleID("AgentIdUser.Read.All"), "AgentIdUser.Read.All", "Read all agent users", false, false},
	{roleID("AgentIdentity.Create"), "AgentIdentity.Create", "Create agent identities (legacy)", false, false},

	// Unrelated permissions, so that clients must pick the right ones.
	{roleID("Mail.Read"), "Mail.Read", "Read mail in all mailboxes", false, false},
	{roleID("Sites.Read.All"), "Sites.Read.All", "Read items in all site collections", false, false},
	{"06b708a9-e830-4db3-a914-8e69da51d44f", "AppRoleAssignment.ReadWrite.All", "Manage app permission grants and app role assignments", false, false},
	{"9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", "Application.Read.All", "Read all applications", false, false},
	{"7ab1d382-f21e-4acd-a863-ba3e13f7da61", "Directory.Read.All", "Read directory data", false, false},
	{"18a4783c-866b-4cc7-a460-3d5e5662c884", "Application.ReadWrite.OwnedBy", "Manage apps that this app creates or owns", false, false},
	{roleID("Group.Read.All"), "Group.Read.All", "Read all groups", false, false},
	{roleID("Calendars.Read"), "Calendars.Read", "Read calendars in all mailboxes", false, false},
	{roleID("Files.Read.All"), "Files.Read.All", "Read files in all site collections", false, false},
	{roleID("User.Read.All"), "User.Read.All", "Read all users' full profiles", false, false},
	{roleID("Directory.ReadWrite.All"), "Directory.ReadWrite.All", "Read and write directory data", false, false},
	{roleID("Mail.Send"), "Mail.Send", "Send mail as any user", false, false},
}

// baseRoleValues are the five non-Agent-ID permissions the provisioner requires.
var baseRoleValues = []string{
	"Application.ReadWrite.All",
	"DelegatedPermissionGrant.ReadWrite.All",
	"LicenseAssignment.ReadWrite.All",
	"Organization.Read.All",
	"User.ReadWrite.All",
}

// RequiredRoleValues returns the Graph app-role values the provisioner must hold: the five
// base permissions followed by every role whose value contains "AgentIdentity" or
// "AgentIdUser" (25 values), in the order the Graph service principal lists them.
func RequiredRoleValues() []string {
	values := append([]string(nil), baseRoleValues...)
	for _, r := range graphRoles {
		if strings.Contains(r.value, "AgentIdentity") || strings.Contains(r.value, "AgentIdUser") {
			values = append(values, r.value)
		}
	}
	return values
}

// GraphRoleID returns the id of the Graph app role with the given value, as the fake's
// Graph service principal lists it (built-in and filler roles; a role published later
// has the id PublishRole returned).
func GraphRoleID(value string) (string, bool) {
	for _, r := range graphRoles {
		if r.value == value {
			return r.id, true
		}
	}
	for _, r := range fillerRoles() {
		if r.value == value {
			return r.id, true
		}
	}
	return "", false
}

// roleID derives a fixed, version-5-shaped GUID from a role value, for roles whose real
// id is not known to this fake.
func roleID(value string) string {
	sum := sha1.Sum([]byte("entratest/graph-app-role/" + value))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return formatGUID(b)
}

func formatGUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
