package entratest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// odataContentType is the Content-Type Graph answers JSON with.
const odataContentType = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

// tokenSkew is the clock skew Graph tolerates on access tokens' nbf and exp.
const tokenSkew = 5 * time.Minute

// maxPageSize is the largest $top Graph accepts.
const maxPageSize = 999

// graphPath is a parsed Graph v1.0 path such as applications(appId='x')/addPassword.
type graphPath struct {
	collection string // "applications" or "servicePrincipals"
	single     bool   // addresses one object
	id         string // object id, when addressed by id
	byAppID    bool   // addressed by the alternate key (appId='...')
	appID      string // the alternate key's value
	uniqueName string // addressed by the alternate key (uniqueName='...')
	action     string // "", "addPassword", "removePassword", "addKey", "removeKey", "owners", "federatedIdentityCredentials", "appRoleAssignedTo", "appRoleAssignments"
	ficKey     string // one federated identity credential: its id or name ("" for the collection)
}

// pattern is the path part of the route name, e.g. /v1.0/applications/{id}/addPassword.
func (p graphPath) pattern() string {
	s := "/v1.0/" + p.collection
	if p.single {
		s += "/{id}"
	}
	if p.action != "" {
		s += "/" + p.action
	}
	if p.ficKey != "" {
		s += "/{ficId}"
	}
	return s
}

// key is how the request named the object, for 404 messages.
func (p graphPath) key() string {
	if p.byAppID {
		return p.appID
	}
	if p.uniqueName != "" {
		return p.uniqueName
	}
	return p.id
}

var graphActions = map[string][]string{
	"applications":      {"addPassword", "removePassword", "addKey", "removeKey", "owners", ficAction},
	"servicePrincipals": {"appRoleAssignedTo", "appRoleAssignments"},
}

// parseGraphPath parses the part of a path after /v1.0/. Segment names are matched
// case-insensitively, as Graph does. The error is the message of a 400 BadRequest.
func parseGraphPath(rest string) (graphPath, string) {
	var p graphPath
	head := rest
	if i := strings.IndexAny(rest, "/("); i >= 0 {
		head = rest[:i]
	}
	switch strings.ToLower(head) {
	case "applications":
		p.collection = "applications"
	case "serviceprincipals":
		p.collection = "servicePrincipals"
	case "organization":
		p.collection = "organization"
		if rest != head {
			return p, fmt.Sprintf("Resource not found for the segment '%s'.", rest[len(head):])
		}
		return p, ""
	default:
		return p, fmt.Sprintf("Resource not found for the segment '%s'.", head)
	}
	rest = rest[len(head):]
	if strings.HasPrefix(rest, "(") {
		value, after, ok := parseAlternateKey(rest, "appid")
		switch {
		case ok:
			p.single, p.byAppID, p.appID = true, true, value
		case p.collection == "applications":
			if value, after, ok = parseAlternateKey(rest, "uniquename"); ok {
				p.single, p.uniqueName = true, value
			}
		}
		if !ok {
			return p, fmt.Sprintf("Bad Request - Error in query syntax: invalid key segment '%s'.", rest)
		}
		rest = after
	}
	var segs []string
	if rest != "" {
		if !strings.HasPrefix(rest, "/") {
			return p, fmt.Sprintf("Resource not found for the segment '%s'.", rest)
		}
		segs = strings.Split(rest[1:], "/")
	}
	if !p.single && len(segs) > 0 {
		if segs[0] == "" {
			return p, "Resource not found for the segment ''."
		}
		p.single, p.id = true, segs[0]
		segs = segs[1:]
	}
	if len(segs) > 0 {
		var msg string
		if segs, msg = p.parseAction(segs); msg != "" {
			return p, msg
		}
	}
	if len(segs) > 0 {
		return p, fmt.Sprintf("Resource not found for the segment '%s'.", segs[0])
	}
	return p, ""
}

// parseAction reads the action segment (with, for federatedIdentityCredentials, the
// credential's key: "(name='x')" or a following /{id or name} segment) and returns the
// segments left, or the message of a 400.
func (p *graphPath) parseAction(segs []string) ([]string, string) {
	head, key := segs[0], ""
	if i := strings.Index(head, "("); i >= 0 {
		head, key = head[:i], head[i:]
	}
	for _, a := range graphActions[p.collection] {
		if strings.EqualFold(a, head) {
			p.action = a
		}
	}
	if p.action == "" || (key != "" && p.action != ficAction) {
		return segs, fmt.Sprintf("Resource not found for the segment '%s'.", segs[0])
	}
	segs = segs[1:]
	if key != "" {
		name, after, ok := parseAlternateKey(key, "name")
		if !ok || after != "" || name == "" {
			return segs, fmt.Sprintf("Bad Request - Error in query syntax: invalid key segment '%s'.", key)
		}
		p.ficKey = name
	} else if p.action == ficAction && len(segs) > 0 && segs[0] != "" {
		p.ficKey, segs = segs[0], segs[1:]
	}
	return segs, ""
}

// parseAlternateKey parses "(<name>='value')" at the start of s (name in lowercase,
// matched case-insensitively) and returns the value (with doubled quotes undone) and the
// rest of s.
func parseAlternateKey(s, name string) (string, string, bool) {
	prefix := "(" + name + "='"
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", "", false
	}
	value, after, ok := parseQuoted(s[len(prefix)-1:])
	if !ok || !strings.HasPrefix(after, ")") {
		return "", "", false
	}
	return value, after[1:], true
}

// parseQuoted reads an OData string literal at the start of s: single-quoted, with a
// doubled single quote standing for one.
func parseQuoted(s string) (value, rest string, ok bool) {
	if !strings.HasPrefix(s, "'") {
		return "", s, false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '\'' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		return b.String(), s[i+1:], true
	}
	return "", s, false
}

// graphError is a Graph error response.
type graphError struct {
	status  int
	code    string
	message string
	details []object
	// challenge is added to a 401's WWW-Authenticate, e.g. a CAE claims challenge.
	challenge string
}

func badRequest(code, format string, args ...any) *graphError {
	return &graphError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

func notFound(key string) *graphError {
	return &graphError{status: http.StatusNotFound, code: "Request_ResourceNotFound",
		message: fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", key)}
}

func invalidProperty(property, resource string) *graphError {
	return badRequest("Request_BadRequest", "Invalid value specified for property '%s' of resource '%s'.", property, resource)
}

var errInsufficientPrivileges = &graphError{status: http.StatusForbidden, code: "Authorization_RequestDenied",
	message: "Insufficient privileges to complete the operation."}

func unauthenticated(message string) *graphError {
	return &graphError{status: http.StatusUnauthorized, code: "InvalidAuthenticationToken", message: message}
}

// setGraphHeaders sets the headers every Graph response carries.
func setGraphHeaders(w http.ResponseWriter, r *http.Request) {
	requestID := newGUID()
	clientRequestID := r.Header.Get("client-request-id")
	if clientRequestID == "" {
		clientRequestID = requestID
	}
	h := w.Header()
	h.Set("request-id", requestID)
	h.Set("client-request-id", clientRequestID)
	h.Set("x-ms-resource-unit", "1")
}

// writeGraphError writes the Graph error envelope with its innerError.
func (s *Server) writeGraphError(w http.ResponseWriter, r *http.Request, e *graphError) {
	body := object{{"code", e.code}, {"message", e.message}}
	if len(e.details) > 0 {
		body = append(body, field{"details", e.details})
	}
	body = append(body, field{"innerError", object{
		{"date", s.now().UTC().Format("2006-01-02T15:04:05")},
		{"request-id", w.Header().Get("request-id")},
		{"client-request-id", w.Header().Get("client-request-id")},
	}})
	if e.status == http.StatusUnauthorized {
		challenge := fmt.Sprintf(`Bearer realm="", authorization_uri="%s/common/oauth2/authorize", client_id="%s"`, s.stsBase(), GraphAppID)
		if e.challenge != "" {
			challenge += ", " + e.challenge
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	writeJSON(w, e.status, odataContentType, object{{"error", body}})
}

// caller is the authenticated principal behind a Graph request.
type caller struct {
	tenantID string
	oid      string
	appID    string // the client application (appid claim): for an app token, the app itself
	isApp    bool
	roles    map[string]bool // app tokens
	wids     map[string]bool // delegated tokens
}

// access is what a route needs from its caller.
type access int

const (
	accessRead    access = iota // read applications, service principals, assignments
	accessWrite                 // create or change applications and service principals
	accessGrant                 // grant an app role (appRoleAssignedTo)
	accessOrg                   // read the organization
	accessOwnKeys               // roll an application's keys: the app itself, or whoever may write it
)

// may reports whether the caller is allowed the access. App tokens are judged by their
// roles; delegated tokens by their directory roles (wids).
func (c caller) may(a access) bool {
	if a == accessOwnKeys {
		a = accessWrite // the app itself is let in by selfMay
	}
	if c.isApp {
		read := c.roles["Application.Read.All"] || c.roles["Application.ReadWrite.All"] ||
			c.roles["Directory.Read.All"] || c.roles["Directory.ReadWrite.All"]
		switch a {
		case accessRead:
			return read
		case accessOrg:
			return c.roles["Organization.Read.All"] || c.roles["Organization.ReadWrite.All"] ||
				c.roles["Directory.Read.All"] || c.roles["Directory.ReadWrite.All"]
		case accessWrite:
			return c.roles["Application.ReadWrite.All"]
		default:
			return read && c.roles["AppRoleAssignment.ReadWrite.All"]
		}
	}
	admin := c.wids[roleGlobalAdministrator]
	switch a {
	case accessRead, accessOrg:
		return true
	case accessWrite:
		return admin || c.wids[roleApplicationAdministrator] || c.wids[roleCloudAppAdministrator]
	default:
		return admin || c.wids[rolePrivilegedRoleAdministrator]
	}
}

// authenticate checks the bearer token: signed by this fake, within its lifetime (5 min
// skew), audience Graph, issuer matching its tid.
func (s *Server) authenticate(r *http.Request, now time.Time) (caller, *graphError) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return caller{}, unauthenticated("Access token is empty.")
	}
	claims, err := s.parseOwnToken(tok, now)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenMalformed):
		return caller{}, unauthenticated("CompactToken parsing failed with error code: 80049217")
	case errors.Is(err, jwt.ErrTokenExpired):
		return caller{}, unauthenticated("Lifetime validation failed, the token is expired.")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return caller{}, unauthenticated("Lifetime validation failed, the token is not yet valid.")
	default:
		return caller{}, unauthenticated("Access token validation failure. Invalid signature.")
	}
	aud, _ := claims.GetAudience()
	audOK := false
	for _, a := range aud {
		audOK = audOK || s.isGraphResource(a)
	}
	if !audOK {
		return caller{}, unauthenticated("Access token validation failure. Invalid audience.")
	}
	tid, _ := claims["tid"].(string)
	if iss, _ := claims.GetIssuer(); tid == "" || iss != stsIssuer(tid) {
		return caller{}, unauthenticated("Access token validation failure. Invalid issuer.")
	}
	oid, _ := claims["oid"].(string)
	appID, _ := claims["appid"].(string)
	if appID == "" {
		appID, _ = claims["azp"].(string) // v2.0 tokens
	}
	c := caller{tenantID: tid, oid: oid, appID: appID, roles: map[string]bool{}, wids: map[string]bool{}}
	idtyp, _ := claims["idtyp"].(string)
	_, hasScp := claims["scp"]
	c.isApp = idtyp == "app" || (idtyp == "" && !hasScp)
	for _, v := range stringList(claims["roles"]) {
		c.roles[v] = true
	}
	for _, v := range stringList(claims["wids"]) {
		c.wids[v] = true
	}
	if c.isApp {
		if e := s.checkCAE(tid, appID, tokenIsCAE(claims)); e != nil {
			return caller{}, e
		}
	}
	return c, nil
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// graphCall is one authenticated Graph request being served under the directory lock.
type graphCall struct {
	r      *http.Request
	path   graphPath
	query  url.Values
	body   []byte
	t      *tenant
	now    time.Time
	knobs  knobs
	caller caller
}

// graphResult is what a handler answers: an error, or a status with an optional body.
type graphResult struct {
	status int
	body   any
	err    *graphError
}

func failed(e *graphError) graphResult { return graphResult{err: e} }

// graphHandler is a Graph route: the access it needs, the query options it understands
// and the function serving it.
type graphHandler struct {
	access  access
	options []string
	serve   func(*Server, *graphCall) graphResult
}

var (
	listOptions   = []string{"$filter", "$select", "$top", "$skiptoken"}
	singleOptions = []string{"$select"}
)

var graphHandlers = map[string]graphHandler{
	RouteListApplications:  {accessRead, listOptions, (*Server).listApplications},
	RouteCreateApplication: {accessWrite, nil, (*Server).createApplication},
	RouteGetApplication:    {accessRead, singleOptions, (*Server).getApplication},
	RoutePatchApplication:  {accessWrite, nil, (*Server).patchApplication},
	RouteAddPassword:       {accessWrite, nil, (*Server).addPassword},
	RouteRemovePassword:    {accessWrite, nil, (*Server).removePassword},
	RouteAddKey:            {accessOwnKeys, nil, (*Server).addKey},
	RouteRemoveKey:         {accessOwnKeys, nil, (*Server).removeKey},
	RouteListOwners:        {accessRead, listOptions, (*Server).listOwners},
	RouteListFICs:          {accessRead, listOptions, (*Server).listFICs},
	RouteCreateFIC:         {accessWrite, nil, (*Server).createFIC},
	RouteGetFIC:            {accessRead, singleOptions, (*Server).getFIC},
	RoutePatchFIC:          {accessWrite, nil, (*Server).patchFIC},
	RouteDeleteFIC:         {accessWrite, nil, (*Server).deleteFIC},
	RouteListSPs:           {accessRead, listOptions, (*Server).listServicePrincipals},
	RouteCreateSP:          {accessWrite, nil, (*Server).createServicePrincipal},
	RouteGetSP:             {accessRead, singleOptions, (*Server).getServicePrincipal},
	RouteListAssignedTo:    {accessRead, listOptions, (*Server).listAppRoleAssignedTo},
	RouteGrant:             {accessGrant, nil, (*Server).grantAppRole},
	RouteListAssignments:   {accessRead, listOptions, (*Server).listAppRoleAssignments},
	RouteOrganization:      {accessOrg, singleOptions, (*Server).listOrganization},
}

// ownerMay reports whether a delegated caller without an admin role may still write
// because it owns the application the request changes (or whose service principal it
// creates): Graph lets an app's owners update it.
func (c *graphCall) ownerMay(a access) bool {
	if (a != accessWrite && a != accessOwnKeys) || c.caller.isApp || c.caller.oid == "" {
		return false
	}
	app := c.pathApplication()
	if c.path.collection == "servicePrincipals" && !c.path.single {
		var body struct {
			AppID string `json:"appId"`
		}
		if json.Unmarshal(c.body, &body) == nil {
			app = c.t.appByAppID(body.AppID)
		}
	}
	return app != nil && containsString(app.owners, c.caller.oid)
}

// selfMay reports whether an app-only caller rolls its own application's keys, which
// needs no Graph permission ("An application does not need any specific permission to
// roll its own keys": application-addkey).
func (c *graphCall) selfMay(a access) bool {
	if a != accessOwnKeys || !c.caller.isApp || c.caller.appID == "" {
		return false
	}
	app := c.pathApplication()
	return app != nil && strings.EqualFold(app.appID, c.caller.appID)
}

// pathApplication is the application a single-object /applications path names,
// regardless of replication lag; nil for any other path.
func (c *graphCall) pathApplication() *application {
	switch {
	case c.path.collection != "applications" || !c.path.single:
		return nil
	case c.path.byAppID:
		return c.t.appByAppID(c.path.appID)
	case c.path.uniqueName != "":
		return c.t.appByUniqueName(c.path.uniqueName)
	default:
		return c.t.appByObjectID(c.path.id)
	}
}

// listOrganization serves GET /organization: the caller's tenant.
func (s *Server) listOrganization(c *graphCall) graphResult {
	org := object{
		{"id", c.t.id},
		{"deletedDateTime", nil},
		{"countryLetterCode", "NL"},
		{"displayName", "EntraClaw fake tenant"},
		{"tenantType", "AAD"},
		{"verifiedDomains", []object{{
			{"capabilities", "Email, OfficeCommunicationsOnline"},
			{"isDefault", true}, {"isInitial", true}, {"name", c.t.domain}, {"type", "Managed"},
		}}},
	}
	sel, e := parseSelect(c.query.Get("$select"), org, "organization")
	if e != nil {
		return failed(e)
	}
	return graphResult{status: http.StatusOK, body: object{
		{"@odata.context", s.metadata("organization")},
		{"value", []object{selected(org, sel)}},
	}}
}

// serveGraph authenticates, authorises and serves a Graph request.
func (s *Server) serveGraph(w http.ResponseWriter, r *http.Request, req request) {
	if req.err != "" {
		s.writeGraphError(w, r, badRequest("BadRequest", "%s", req.err))
		return
	}
	h, ok := graphHandlers[req.name]
	if !ok {
		s.writeGraphError(w, r, &graphError{status: http.StatusMethodNotAllowed, code: "Request_BadRequest",
			message: "Specified HTTP method is not allowed for the request uri."})
		return
	}
	k := s.currentKnobs()
	now := k.clock()
	c, e := s.authenticate(r, now)
	if e != nil {
		s.writeGraphError(w, r, e)
		return
	}
	query := r.URL.Query()
	if e := checkQueryOptions(query, h.options); e != nil {
		s.writeGraphError(w, r, e)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.writeGraphError(w, r, badRequest("BadRequest", "Unable to read the request body."))
		return
	}
	res := s.serveLocked(&graphCall{r: r, path: req.graph, query: query, body: body, now: now, knobs: k, caller: c}, h)
	switch {
	case res.err != nil:
		s.writeGraphError(w, r, res.err)
	case res.body == nil:
		w.WriteHeader(res.status)
	default:
		writeJSON(w, res.status, odataContentType, res.body)
	}
}

// serveLocked runs the handler under the directory lock.
func (s *Server) serveLocked(c *graphCall, h graphHandler) graphResult {
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	c.t = s.dir.tenant(c.caller.tenantID)
	if c.t == nil {
		return failed(unauthenticated("Access token validation failure. Invalid tenant."))
	}
	if !c.caller.may(h.access) && !c.ownerMay(h.access) && !c.selfMay(h.access) {
		return failed(errInsufficientPrivileges)
	}
	return h.serve(s, c)
}

// checkQueryOptions rejects OData system query options the route does not support.
func checkQueryOptions(query url.Values, allowed []string) *graphError {
	for name := range query {
		if !strings.HasPrefix(name, "$") {
			continue
		}
		if !containsString(allowed, name) {
			return badRequest("BadRequest", "Query option '%s' is not supported on this request.", name)
		}
	}
	return nil
}

// decodeObject parses a JSON object request body.
func decodeObject(body []byte) (map[string]json.RawMessage, *graphError) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, badRequest("BadRequest", "Empty Payload. JSON content expected.")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, badRequest("BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
	}
	return m, nil
}

// decodeString decodes a JSON string property; null counts as absent.
func decodeString(raw json.RawMessage, property, resource string) (string, bool, *graphError) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false, invalidProperty(property, resource)
	}
	return v, true, nil
}

// ---- $filter -----------------------------------------------------------------------------

// filter is a parsed "property eq 'value'" clause.
type filter struct {
	property string
	value    string
}

// parseFilter parses $filter. Only "<property> eq '<value>'" on the listed properties is
// supported; other well-formed clauses are 400 Request_UnsupportedQuery, malformed ones
// 400 BadRequest "Invalid filter clause". Returns nil when there is no filter.
func parseFilter(raw, resource string, properties ...string) (*filter, *graphError) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, nil
	}
	invalid := badRequest("BadRequest", "Invalid filter clause")
	unsupported := func(p string) *graphError {
		return badRequest("Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property '%s' of resource '%s'.", p, resource)
	}
	prop, rest := leadingIdentifier(s)
	if prop == "" {
		return nil, invalid
	}
	if strings.HasPrefix(rest, "(") { // a function such as startswith(displayName,'x')
		return nil, unsupported(prop)
	}
	op, rest := leadingIdentifier(strings.TrimLeft(rest, " "))
	rest = strings.TrimLeft(rest, " ")
	value, rest, ok := parseQuoted(rest)
	if op == "" || !ok {
		return nil, invalid
	}
	rest = strings.TrimSpace(rest)
	if rest != "" {
		if next, _ := leadingIdentifier(rest); next == "and" || next == "or" {
			return nil, unsupported(prop)
		}
		return nil, invalid
	}
	switch op {
	case "eq":
	case "ne", "gt", "ge", "lt", "le", "has", "in":
		return nil, unsupported(prop)
	default:
		return nil, invalid
	}
	for _, p := range properties {
		if strings.EqualFold(p, prop) {
			return &filter{property: p, value: value}, nil
		}
	}
	return nil, unsupported(prop)
}

// leadingIdentifier splits an OData identifier off the start of s.
func leadingIdentifier(s string) (string, string) {
	i := 0
	for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || i > 0 && s[i] >= '0' && s[i] <= '9') {
		i++
	}
	return s[:i], s[i:]
}

// matches compares case-insensitively, as directory string comparisons are.
func (f *filter) matches(values map[string]string) bool {
	return f == nil || strings.EqualFold(values[f.property], f.value)
}

// ---- $select -----------------------------------------------------------------------------

// parseSelect parses $select against the properties of a type; nil means all properties.
func parseSelect(raw string, o object, typeName string) ([]string, *graphError) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var names []string
	for _, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		found := ""
		for _, f := range o {
			if strings.EqualFold(f.name, part) {
				found = f.name
			}
		}
		if found == "" {
			return nil, badRequest("Request_BadRequest", "Could not find a property named '%s' on type 'microsoft.graph.%s'.", part, typeName)
		}
		names = append(names, found)
	}
	return names, nil
}

// selected keeps the fields named in sel, in the object's order; nil sel keeps all.
func selected(o object, sel []string) object {
	if sel == nil {
		return o
	}
	out := object{}
	for _, f := range o {
		if containsString(sel, f.name) {
			out = append(out, f)
		}
	}
	return out
}

// ---- paging ------------------------------------------------------------------------------

// page answers a collection request with one page of items and, when more remain, an
// absolute @odata.nextLink carrying an opaque $skiptoken.
func (s *Server) page(c *graphCall, contextURL string, items []object) graphResult {
	size := c.knobs.pageSize
	if size <= 0 {
		size = 100
	}
	if raw := c.query.Get("$top"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxPageSize {
			return failed(badRequest("Request_BadRequest", "Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", raw, maxPageSize))
		}
		size = n
	}
	offset := 0
	if raw := c.query.Get("$skiptoken"); raw != "" {
		n, ok := decodeSkipToken(raw)
		if !ok {
			return failed(badRequest("Request_BadRequest", "'$skiptoken' is malformed."))
		}
		offset = n
	}
	if offset > len(items) {
		offset = len(items)
	}
	end := offset + size
	if end > len(items) {
		end = len(items)
	}
	body := object{{"@odata.context", contextURL}}
	if end < len(items) {
		q := url.Values{}
		for k, v := range c.query {
			q[k] = v
		}
		q.Set("$skiptoken", encodeSkipToken(end))
		// url.Values encodes spaces as '+'; Graph clients expect %20 (a literal '+' is %2B).
		link := s.graphBase() + c.r.URL.Path + "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
		body = append(body, field{"@odata.nextLink", link})
	}
	body = append(body, field{"value", append([]object{}, items[offset:end]...)})
	return graphResult{status: http.StatusOK, body: body}
}

func encodeSkipToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("entratest-offset:" + strconv.Itoa(offset)))
}

func decodeSkipToken(tok string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), "entratest-offset:"))
	if err != nil || n < 0 || !strings.HasPrefix(string(b), "entratest-offset:") {
		return 0, false
	}
	return n, true
}

// graphTime formats a time the way Graph does (UTC, RFC 3339).
func graphTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// parseGraphTime parses a DateTimeOffset property.
func parseGraphTime(raw json.RawMessage, property, resource string) (time.Time, bool, *graphError) {
	v, ok, e := decodeString(raw, property, resource)
	if e != nil || !ok {
		return time.Time{}, false, e
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, false, invalidProperty(property, resource)
	}
	return t, true, nil
}

// metadata is the @odata.context prefix.
func (s *Server) metadata(suffix string) string { return s.graphBase() + "/v1.0/$metadata#" + suffix }

// parseOwnToken verifies an access token this fake issued (RS256 by its signing key,
// within its lifetime give or take tokenSkew) and returns its claims.
func (s *Server) parseOwnToken(tok string, now time.Time) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(strings.TrimSpace(tok), claims,
		func(*jwt.Token) (any, error) { return &s.signer.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(tokenSkew),
		jwt.WithExpirationRequired())
	return claims, err
}
