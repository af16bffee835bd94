package entratest

import (
	"encoding/json"
	"strings"
	"sync"
)

// The real Microsoft Graph service principal is large: hundreds of application
// permissions (appRoles), about a thousand delegated scopes (oauth2PermissionScopes) and
// resource-specific permissions — roughly a megabyte of JSON when read without $select.
// The fake serves a catalogue of that size so that a client reading it whole is seen to
// (RouteListSPs and RouteGetSP byte counts in tests); $select narrows it as on Graph.
// Microsoft's permissions reference reads it with
// servicePrincipals(appId='00000003-…')?$select=id,appId,displayName,appRoles,…

// graphResources and the action lists generate realistic permission names.
var graphResources = []string{
	"AccessReview", "AdministrativeUnit", "Agreement", "APIConnectors", "AppCatalog", "AuditLog",
	"Bookings", "BrowserSiteLists", "Calendars", "CallRecords", "Channel", "ChannelMember",
	"ChannelMessage", "ChannelSettings", "Chat", "ChatMember", "ChatMessage", "CloudPC", "Contacts",
	"CustomSecAttributeAssignment", "CustomSecAttributeDefinition", "DeviceManagementApps",
	"DeviceManagementConfiguration", "DeviceManagementManagedDevices", "DeviceManagementRBAC",
	"DeviceManagementServiceConfig", "Device", "Domain", "EduAdministration", "EduAssignments",
	"EduRoster", "EntitlementManagement", "EventListener", "ExternalConnection", "ExternalItem",
	"Files", "GroupMember", "IdentityProvider", "IdentityRiskEvent", "IdentityRiskyServicePrincipal",
	"IdentityRiskyUser", "IdentityUserFlow", "InformationProtectionPolicy", "LearningContent",
	"LifecycleWorkflows", "MailboxSettings", "Member", "Notes", "OnlineMeetings",
	"OnlineMeetingArtifact", "OnPremisesPublishingProfiles", "OrgContact", "People", "Place",
	"Policy", "Presence", "PrintJob", "Printer", "PrivilegedAccess", "PrivilegedAssignmentSchedule",
	"ProgramControl", "RecordsManagement", "Reports", "RoleManagement", "Schedule", "SecurityActions",
	"SecurityAlert", "SecurityEvents", "SecurityIncident", "ServiceHealth", "ServiceMessage",
	"SharePointTenantSettings", "Synchronization", "Team", "TeamMember", "TeamSettings",
	"TeamsActivity", "TeamsAppInstallation", "TeamsTab", "TeamTemplates", "TermStore",
	"ThreatAssessment", "ThreatHunting", "ThreatIndicators", "TrustFrameworkKeySet",
	"UserAuthenticationMethod", "UserNotification", "VirtualEvent", "WorkforceIntegration",
	"BitlockerKey", "Tasks", "Bookmark", "Acronym", "Community", "Sites", "Mail", "Group",
}

var (
	roleActions  = []string{"Read.All", "ReadWrite.All", "ReadBasic.All", "Manage.All", "Create"}
	scopeActions = []string{"Read", "ReadWrite", "Read.All", "ReadWrite.All", "ReadBasic", "ReadBasic.All",
		"Read.Shared", "ReadWrite.Shared", "Manage.All", "Send", "Create", "Delete.All"}
)

var (
	largeOnce   sync.Once
	fillers     []graphRole
	scopesJSON  json.RawMessage
	rscJSON     json.RawMessage
	infoJSON    json.RawMessage
	emptyArray  = json.RawMessage("[]")
	emptyObject = json.RawMessage(`{"logoUrl":null,"marketingUrl":null,"privacyStatementUrl":null,"supportUrl":null,"termsOfServiceUrl":null}`)
)

// buildLarge builds the filler roles and the marshalled scope catalogue once.
func buildLarge() {
	largeOnce.Do(func() {
		builtin := map[string]bool{}
		for _, r := range graphRoles {
			builtin[r.value] = true
		}
		for _, res := range graphResources {
			for _, act := range roleActions {
				v := res + "." + act
				if !builtin[v] {
					fillers = append(fillers, graphRole{id: roleID(v), value: v,
						displayName: strings.ReplaceAll(act, ".", " ") + " " + res + " data"})
				}
			}
		}
		var scopes []object
		for _, res := range graphResources {
			for _, act := range scopeActions {
				v := res + "." + act
				name := strings.ReplaceAll(act, ".", " ") + " " + res
				scopes = append(scopes, object{
					{"adminConsentDescription", "Allows the app to " + strings.ToLower(name) + " on behalf of the signed-in user, including the properties and relationships an administrator would expect for this kind of data, across the whole organization where the permission allows it."},
					{"adminConsentDisplayName", name + " (admin consent)"},
					{"id", roleID("scope/" + v)},
					{"isEnabled", true},
					{"type", "User"},
					{"userConsentDescription", "Allows the app to " + strings.ToLower(name) + " on your behalf, for as long as you keep the app signed in, unless an administrator has restricted user consent in your organization."},
					{"userConsentDisplayName", name},
					{"value", v},
				})
			}
		}
		scopesJSON, _ = json.Marshal(scopes)
		var rsc []object
		for _, res := range graphResources[:60] {
			for _, act := range []string{"Read.Group", "ReadWrite.Group", "Read.Chat"} {
				v := res + "." + act
				rsc = append(rsc, object{
					{"description", "Allows the app to " + strings.ToLower(res) + " " + strings.ToLower(act) + " for the team or chat the app is installed in, without a signed-in user."},
					{"displayName", res + " " + act},
					{"id", roleID("rsc/" + v)},
					{"isEnabled", true},
					{"value", v},
				})
			}
		}
		rscJSON, _ = json.Marshal(rsc)
		infoJSON = emptyObject
	})
}

// fillerRoles are the application permissions the real Graph service principal carries
// besides the ones this project cares about (hundreds of them).
func fillerRoles() []graphRole {
	buildLarge()
	return fillers
}

// graphSPRoles is the app-role list of a tenant's Graph service principal: the built-in
// roles, the filler and the published roles.
func graphSPRoles(published []graphRole) []graphRole {
	roles := append([]graphRole(nil), graphRoles...)
	roles = append(roles, fillerRoles()...)
	return append(roles, published...)
}

// spScopes is the oauth2PermissionScopes of a service principal: Graph's catalogue, or [].
func spScopes(sp *servicePrincipal) json.RawMessage {
	if !sp.isGraph {
		return emptyArray
	}
	buildLarge()
	return scopesJSON
}

// spRSCPermissions is resourceSpecificApplicationPermissions: Graph's catalogue, or [].
func spRSCPermissions(sp *servicePrincipal) json.RawMessage {
	if !sp.isGraph {
		return emptyArray
	}
	buildLarge()
	return rscJSON
}

// spInfo is the info property (informational URLs).
func spInfo(*servicePrincipal) json.RawMessage {
	buildLarge()
	return infoJSON
}
