package entratest

import (
	"net/http"
	"strings"
)

// defaultAccessRoleID is the app-role id that grants "default access" on a resource that
// defines no app roles.
const defaultAccessRoleID = "00000000-0000-0000-0000-000000000000"

func appRoleJSON(r graphRole) object {
	members := []string{"Application"}
	if r.userOnly {
		members = []string{"User"}
	}
	return object{
		{"allowedMemberTypes", members},
		{"description", "Allows the app to " + strings.ToLower(r.displayName[:1]) + r.displayName[1:] + " without a signed-in user."},
		{"displayName", r.displayName},
		{"id", r.id},
		{"isEnabled", !r.disabled},
		{"origin", "Application"},
		{"value", r.value},
	}
}

// servicePrincipalJSON renders a service principal with its app roles.
func servicePrincipalJSON(t *tenant, sp *servicePrincipal) object {
	roles := []object{}
	for _, r := range sp.appRoles {
		roles = append(roles, appRoleJSON(r))
	}
	audience := "AzureADMultipleOrgs"
	if a := t.appByAppID(sp.appID); a != nil {
		audience = a.signInAudience
	}
	return object{
		{"id", sp.id},
		{"deletedDateTime", nil},
		{"accountEnabled", true},
		{"appDisplayName", sp.displayName},
		{"appId", sp.appID},
		{"appOwnerOrganizationId", sp.appOwnerOrganizationID},
		{"createdDateTime", graphTime(sp.createdAt)},
		{"displayName", sp.displayName},
		{"servicePrincipalNames", append([]string{}, sp.servicePrincipalNames...)},
		{"servicePrincipalType", "Application"},
		{"signInAudience", audience},
		{"tags", []string{}},
		{"appRoles", roles},
		{"info", spInfo(sp)},
		{"keyCredentials", []object{}},
		{"passwordCredentials", []object{}},
		{"oauth2PermissionScopes", spScopes(sp)},
		{"resourceSpecificApplicationPermissions", spRSCPermissions(sp)},
	}
}

func assignmentJSON(t *tenant, a *appRoleAssignment) object {
	principalName, resourceName := "", ""
	if sp := t.spByObjectID(a.principalID); sp != nil {
		principalName = sp.displayName
	}
	if sp := t.spByObjectID(a.resourceID); sp != nil {
		resourceName = sp.displayName
	}
	return object{
		{"id", a.id},
		{"deletedDateTime", nil},
		{"appRoleId", a.appRoleID},
		{"createdDateTime", graphTime(a.createdAt)},
		{"principalDisplayName", principalName},
		{"principalId", a.principalID},
		{"principalType", "ServicePrincipal"},
		{"resourceDisplayName", resourceName},
		{"resourceId", a.resourceID},
	}
}

// lookupServicePrincipal resolves the service principal a path names, honouring
// replication lag.
func (c *graphCall) lookupServicePrincipal() (*servicePrincipal, *graphError) {
	var sp *servicePrincipal
	if c.path.byAppID {
		sp = c.t.spByAppID(c.path.appID)
	} else {
		sp = c.t.spByObjectID(c.path.id)
	}
	if sp == nil || !visible(sp.visibleAt, c.now) {
		return nil, notFound(c.path.key())
	}
	return sp, nil
}

// listServicePrincipals serves GET /servicePrincipals with $filter on appId or displayName.
func (s *Server) listServicePrincipals(c *graphCall) graphResult {
	f, e := parseFilter(c.query.Get("$filter"), "ServicePrincipal", "appId", "displayName")
	if e != nil {
		return failed(e)
	}
	sel, e := parseSelect(c.query.Get("$select"), servicePrincipalJSON(c.t, &servicePrincipal{}), "servicePrincipal")
	if e != nil {
		return failed(e)
	}
	items := []object{}
	for _, sp := range c.t.sps {
		if visible(sp.visibleAt, c.now) && f.matches(map[string]string{"appId": sp.appID, "displayName": sp.displayName}) {
			items = append(items, selected(servicePrincipalJSON(c.t, sp), sel))
		}
	}
	return s.page(c, s.metadata("servicePrincipals"), items)
}

// getServicePrincipal serves GET /servicePrincipals/{id} and /servicePrincipals(appId='x').
func (s *Server) getServicePrincipal(c *graphCall) graphResult {
	sp, e := c.lookupServicePrincipal()
	if e != nil {
		return failed(e)
	}
	sel, e := parseSelect(c.query.Get("$select"), servicePrincipalJSON(c.t, sp), "servicePrincipal")
	if e != nil {
		return failed(e)
	}
	body := object{{"@odata.context", s.metadata("servicePrincipals/$entity")}}
	body = append(body, selected(servicePrincipalJSON(c.t, sp), sel)...)
	return graphResult{status: http.StatusOK, body: body}
}

// createServicePrincipal serves POST /servicePrincipals {"appId"}: 201, 409 when the
// application already has one, 400 NoBackingApplicationObject when the application is not
// (yet) visible.
func (s *Server) createServicePrincipal(c *graphCall) graphResult {
	props, e := decodeObject(c.body)
	if e != nil {
		return failed(e)
	}
	appID := ""
	for name, raw := range props {
		switch {
		case strings.HasPrefix(name, "@odata."), name == "accountEnabled", name == "tags":
		case name == "appId":
			v, ok, e := decodeString(raw, name, "ServicePrincipal")
			if e != nil || !ok || v == "" {
				return failed(invalidProperty(name, "ServicePrincipal"))
			}
			appID = v
		default:
			return failed(badRequest("Request_BadRequest", "Property '%s' on type 'microsoft.graph.servicePrincipal' is not supported by this fake.", name))
		}
	}
	if appID == "" {
		return failed(invalidProperty("appId", "ServicePrincipal"))
	}
	if c.t.spByAppID(appID) != nil {
		return failed(&graphError{status: http.StatusConflict, code: "Request_MultipleObjectsWithSameKeyValue",
			message: "The service principal cannot be created, updated, or restored because the service principal name " + appID + " is already in use."})
	}
	a := c.t.appByAppID(appID)
	if a != nil && !visible(a.visibleAt, c.now) && c.knobs.backingAppForbidden {
		return failed(&graphError{status: http.StatusForbidden, code: "Authorization_RequestDenied",
			message: "When using this permission, the backing application of the service principal being created must in the local tenant"})
	}
	if a == nil || !visible(a.visibleAt, c.now) {
		message := "The appId '" + appID + "' of the service principal does not reference a valid application object."
		e := badRequest("Request_BadRequest", "%s", message)
		e.details = []object{{{"code", "NoBackingApplicationObject"}, {"message", message}, {"target", "appId"}}}
		return failed(e)
	}
	sp := c.t.addServicePrincipal(a, c.now, c.now.Add(c.knobs.replicationLag))
	body := object{{"@odata.context", s.metadata("servicePrincipals/$entity")}}
	body = append(body, servicePrincipalJSON(c.t, sp)...)
	return graphResult{status: http.StatusCreated, body: body}
}

// grantAppRole serves POST /servicePrincipals/{resource}/appRoleAssignedTo
// {"principalId","resourceId","appRoleId"}: 201 with the assignment; a duplicate is 400
// "Permission being assigned already exists on the object.".
func (s *Server) grantAppRole(c *graphCall) graphResult {
	resource, e := c.lookupServicePrincipal()
	if e != nil {
		return failed(e)
	}
	props, e := decodeObject(c.body)
	if e != nil {
		return failed(e)
	}
	ids := map[string]string{}
	for _, name := range []string{"principalId", "resourceId", "appRoleId"} {
		v, ok, e := decodeString(props[name], name, "AppRoleAssignment")
		if e != nil || !ok || !isGUID(v) {
			return failed(invalidProperty(name, "AppRoleAssignment"))
		}
		ids[name] = strings.ToLower(v)
	}
	if ids["resourceId"] != resource.id {
		return failed(badRequest("Request_BadRequest", "The resourceId '%s' does not match the service principal '%s' in the request URL.", ids["resourceId"], resource.id))
	}
	principal := c.t.spByObjectID(ids["principalId"])
	if principal == nil || !visible(principal.visibleAt, c.now) {
		// What Graph answers for a principal its replica does not see yet (terraform
		// azuread's app_role_assignment_resource retries exactly this message).
		return failed(badRequest("Request_BadRequest", "Not a valid reference update."))
	}
	if !resourceHasRole(resource, ids["appRoleId"]) {
		return failed(badRequest("Request_BadRequest", "Permission being assigned was not found on application '%s'.", resource.appID))
	}
	if c.t.findAssignment(principal.id, resource.id, ids["appRoleId"]) != nil {
		return failed(badRequest("Request_BadRequest", "Permission being assigned already exists on the object."))
	}
	a := c.t.addAssignment(principal.id, resource.id, ids["appRoleId"], c.now,
		c.now.Add(c.knobs.replicationLag), c.now.Add(c.knobs.propagationDelay))
	body := object{{"@odata.context", s.metadata("servicePrincipals('" + resource.id + "')/appRoleAssignedTo/$entity")}}
	body = append(body, assignmentJSON(c.t, a)...)
	return graphResult{status: http.StatusCreated, body: body}
}

func resourceHasRole(sp *servicePrincipal, roleID string) bool {
	if len(sp.appRoles) == 0 {
		return roleID == defaultAccessRoleID
	}
	for _, r := range sp.appRoles {
		if strings.EqualFold(r.id, roleID) {
			return true
		}
	}
	return false
}

// listAppRoleAssignedTo serves GET /servicePrincipals/{resource}/appRoleAssignedTo: every
// grant on the resource.
func (s *Server) listAppRoleAssignedTo(c *graphCall) graphResult {
	return s.listAssignments(c, "appRoleAssignedTo", func(a *appRoleAssignment, sp *servicePrincipal) bool {
		return a.resourceID == sp.id
	})
}

// listAppRoleAssignments serves GET /servicePrincipals/{principal}/appRoleAssignments:
// every grant the principal holds.
func (s *Server) listAppRoleAssignments(c *graphCall) graphResult {
	return s.listAssignments(c, "appRoleAssignments", func(a *appRoleAssignment, sp *servicePrincipal) bool {
		return a.principalID == sp.id
	})
}

func (s *Server) listAssignments(c *graphCall, nav string, belongs func(*appRoleAssignment, *servicePrincipal) bool) graphResult {
	sp, e := c.lookupServicePrincipal()
	if e != nil {
		return failed(e)
	}
	f, e := parseFilter(c.query.Get("$filter"), "AppRoleAssignment", "resourceId", "principalId", "appRoleId")
	if e != nil {
		return failed(e)
	}
	sel, e := parseSelect(c.query.Get("$select"), assignmentJSON(c.t, &appRoleAssignment{}), "appRoleAssignment")
	if e != nil {
		return failed(e)
	}
	items := []object{}
	for _, a := range c.t.assignments {
		if !belongs(a, sp) || !visible(a.visibleAt, c.now) {
			continue
		}
		if f.matches(map[string]string{"resourceId": a.resourceID, "principalId": a.principalID, "appRoleId": a.appRoleID}) {
			items = append(items, selected(assignmentJSON(c.t, a), sel))
		}
	}
	return s.page(c, s.metadata("servicePrincipals('"+sp.id+"')/"+nav), items)
}
