package entratest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fidelity holds the knobs that reproduce what real Entra ID and Graph do after the first
// minute (docs/fake-fidelity.md lists each with its source).
type fidelity struct {
	// readLag: for this long after a PATCH of an application, Graph reads of it return the
	// value it had before the PATCH (eventual consistency of property updates).
	readLag time.Duration
	// backingAppForbidden: while a new application is hidden by replication lag, POST
	// /servicePrincipals answers the real 403 "...backing application ... must in the local
	// tenant" instead of 400 "does not reference a valid application object".
	backingAppForbidden bool
	// tokenLoopLimit and tokenLoopWindow: a client asking the token endpoint more than
	// limit times within window is refused with AADSTS50196 (loop detection). 0 is off.
	tokenLoopLimit  int
	tokenLoopWindow time.Duration
	// publishedRoles are Graph app roles published on top of the built-in set.
	publishedRoles []graphRole
	// certLifetimeCap: a tenant app-management policy (asymmetricKeyLifetime) refusing
	// certificates whose endDateTime - startDateTime exceeds it. 0 is off.
	certLifetimeCap time.Duration
	// passwordAdditionBlocked: a tenant app-management policy (passwordAddition) refusing
	// addPassword.
	passwordAdditionBlocked bool
	// deviceCodeBlocked: a Conditional Access policy blocking the device-code flow
	// (AADSTS53003 when the token is redeemed).
	deviceCodeBlocked bool
	// maxKeyCredentials: a write (PATCH, create, addKey) leaving more key credentials than
	// this on an application is refused with Directory_ResourceSizeExceeded. 0 is off.
	maxKeyCredentials int
}

// WithReadLag makes Graph reads (GET, filtered lists) of an application return the value
// it had before a PATCH for d after that PATCH, as a read replica that has not caught up
// does. Writes and the STS always see the current value. Default 0 (off).
func WithReadLag(d time.Duration) Option { return func(k *knobs) { k.readLag = d } }

// WithBackingAppForbidden makes POST /servicePrincipals for an application that is still
// hidden by replication lag answer the real service's 403 Authorization_RequestDenied
// "When using this permission, the backing application of the service principal being
// created must in the local tenant" (terraform-provider-azuread treats it as replication
// lag) instead of 400 "does not reference a valid application object". Default off.
func WithBackingAppForbidden(on bool) Option {
	return func(k *knobs) { k.backingAppForbidden = on }
}

// WithTokenLoopLimit makes the token endpoint refuse a client (tenant + client_id) that
// asks more than n times within window with 400 invalid_request AADSTS50196 ("client
// request loop"), as Entra does to clients requesting tokens in a tight loop. n 0 is off
// (the default); a refused request still counts, so a client must back off for window.
func WithTokenLoopLimit(n int, window time.Duration) Option {
	return func(k *knobs) { k.tokenLoopLimit, k.tokenLoopWindow = n, window }
}

// WithPublishedRoles publishes extra application permissions on the Microsoft Graph
// service principal of every tenant, as Microsoft keeps doing (e.g.
// "AgentIdentityBlueprint.UpdateBranding.All"). A spec is "Value", optionally followed by
// ":disabled" (isEnabled false) and/or ":user" (allowedMemberTypes ["User"] only).
func WithPublishedRoles(specs ...string) Option {
	return func(k *knobs) {
		for _, spec := range specs {
			if r, err := parseRoleSpec(spec); err == nil {
				k.publishedRoles = append(k.publishedRoles, r)
			}
		}
	}
}

// WithCertLifetimeCap models a tenant app-management policy (keyCredentials restriction
// asymmetricKeyLifetime): a certificate whose endDateTime - startDateTime exceeds max is
// refused with 400. 0 is off (the default).
func WithCertLifetimeCap(max time.Duration) Option {
	return func(k *knobs) { k.certLifetimeCap = max }
}

// WithPasswordAdditionBlocked models a tenant app-management policy (passwordCredentials
// restriction passwordAddition): addPassword is refused with 400. Default off.
func WithPasswordAdditionBlocked(on bool) Option {
	return func(k *knobs) { k.passwordAdditionBlocked = on }
}

// WithDeviceCodeBlocked models a Conditional Access policy blocking the device-code flow:
// redeeming a device code answers AADSTS53003. Default off.
func WithDeviceCodeBlocked(on bool) Option {
	return func(k *knobs) { k.deviceCodeBlocked = on }
}

// WithMaxKeyCredentials models the size limit of a real application object: a PATCH,
// create or addKey that would leave more than n key credentials on an application is
// refused with 400 Directory_ResourceSizeExceeded. Graph's real limit is the object's
// total size (the number of keys it allows is unverified). 0 is off (the default).
func WithMaxKeyCredentials(n int) Option {
	return func(k *knobs) { k.maxKeyCredentials = n }
}

// SetMaxKeyCredentials changes the key-count limit of WithMaxKeyCredentials (0 is off).
func (s *Server) SetMaxKeyCredentials(n int) {
	s.setKnob(func(k *knobs) { k.maxKeyCredentials = n })
}

// SetReadLag changes the read lag for PATCHes made from now on.
func (s *Server) SetReadLag(d time.Duration) { s.setKnob(func(k *knobs) { k.readLag = d }) }

// SetTokenLoopLimit changes the loop-detection limit of the token endpoint (0 is off).
func (s *Server) SetTokenLoopLimit(n int, window time.Duration) {
	s.setKnob(func(k *knobs) { k.tokenLoopLimit, k.tokenLoopWindow = n, window })
}

// SetCertLifetimeCap changes the certificate lifetime policy (0 is off).
func (s *Server) SetCertLifetimeCap(max time.Duration) {
	s.setKnob(func(k *knobs) { k.certLifetimeCap = max })
}

// SetPasswordAdditionBlocked turns the passwordAddition policy on or off.
func (s *Server) SetPasswordAdditionBlocked(on bool) {
	s.setKnob(func(k *knobs) { k.passwordAdditionBlocked = on })
}

// SetDeviceCodeBlocked turns the Conditional Access block of device code on or off.
func (s *Server) SetDeviceCodeBlocked(on bool) {
	s.setKnob(func(k *knobs) { k.deviceCodeBlocked = on })
}

// SetBackingAppForbidden turns the replication 403 of POST /servicePrincipals on or off.
func (s *Server) SetBackingAppForbidden(on bool) {
	s.setKnob(func(k *knobs) { k.backingAppForbidden = on })
}

// PublishRole publishes one more application permission on the Microsoft Graph service
// principal of every tenant, existing and future (spec as in WithPublishedRoles). It
// returns the new role's id.
func (s *Server) PublishRole(spec string) (string, error) {
	r, err := parseRoleSpec(spec)
	if err != nil {
		return "", err
	}
	for _, p := range s.currentKnobs().publishedRoles {
		if p.value == r.value {
			return "", fmt.Errorf("entratest: role %q is already published", r.value)
		}
	}
	s.setKnob(func(k *knobs) { k.publishedRoles = append(k.publishedRoles, r) })
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	for _, t := range s.dir.order {
		t.graphSP.appRoles = append(t.graphSP.appRoles, r)
	}
	return r.id, nil
}

// parseRoleSpec reads "Value[:disabled][:user]".
func parseRoleSpec(spec string) (graphRole, error) {
	parts := strings.Split(strings.TrimSpace(spec), ":")
	value := parts[0]
	if value == "" || strings.ContainsAny(value, " \t") {
		return graphRole{}, fmt.Errorf("entratest: invalid role %q: want Value[:disabled][:user]", spec)
	}
	r := graphRole{id: roleID(value), value: value, displayName: value + " (published)"}
	for _, p := range parts[1:] {
		switch p {
		case "disabled":
			r.disabled = true
		case "user":
			r.userOnly = true
		default:
			return graphRole{}, fmt.Errorf("entratest: invalid role %q: unknown flag %q (want disabled or user)", spec, p)
		}
	}
	if _, ok := GraphRoleID(value); ok {
		return graphRole{}, fmt.Errorf("entratest: role %q is already published", value)
	}
	return r, nil
}

// ---- one-shot faults after the write ----------------------------------------------------

// FailAfterNext makes the next request to the Graph route run normally — a write is
// applied — and then answers f instead of the real response, as a gateway timeout or a
// connection reset after the directory committed the write does. It panics on an unknown
// or non-Graph route name.
func (s *Server) FailAfterNext(route string, f Failure) {
	if !knownRoute(route) || !strings.Contains(route, " /v1.0/") {
		panic(fmt.Sprintf("entratest: FailAfterNext: unknown route %q (see entratest.Routes)", route))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failuresAfter[route] = append(s.failuresAfter[route], &pendingFailure{failure: f, left: 1})
}

// takeFaultAfter consumes the after-the-write fault, if any, for this request.
func (s *Server) takeFaultAfter(req request) (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	queue := s.failuresAfter[req.name]
	if len(queue) == 0 {
		return Failure{}, false
	}
	f := queue[0].failure
	if queue = queue[1:]; len(queue) == 0 {
		delete(s.failuresAfter, req.name)
	} else {
		s.failuresAfter[req.name] = queue
	}
	return f, true
}

// discardWriter swallows a response that is never delivered.
type discardWriter struct{ header http.Header }

func (d discardWriter) Header() http.Header         { return d.header }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}

// ---- token loop detection ---------------------------------------------------------------

// checkTokenLoop records a token request of client in tenant and refuses it with
// AADSTS50196 when the client asked more than the limit within the window.
func (s *Server) checkTokenLoop(tenantID, clientID string, now time.Time) *stsError {
	k := s.currentKnobs()
	if k.tokenLoopLimit <= 0 || clientID == "" {
		return nil
	}
	key := strings.ToLower(tenantID + "/" + clientID)
	s.mu.Lock()
	defer s.mu.Unlock()
	recent := s.tokenCalls[key][:0]
	for _, t := range s.tokenCalls[key] {
		if now.Sub(t) < k.tokenLoopWindow {
			recent = append(recent, t)
		}
	}
	recent = append(recent, now)
	s.tokenCalls[key] = recent
	if len(recent) > k.tokenLoopLimit {
		return &stsError{http.StatusBadRequest, "invalid_request", 50196,
			"The server terminated an operation because it encountered a client request loop. Please contact your app vendor."}
	}
	return nil
}

// ---- read lag ---------------------------------------------------------------------------

// readView is the application as a Graph read sees it: the value before the last PATCH
// while that PATCH is inside the read lag.
func (c *graphCall) readView(a *application) *application {
	if a.stale != nil && c.now.Before(a.staleUntil) {
		return a.stale
	}
	return a
}

// beforePatch remembers a's current value for reads during the read lag.
func (c *graphCall) beforePatch(a *application) {
	if c.knobs.readLag <= 0 {
		return
	}
	snap := *a
	snap.stale = nil
	a.stale = &snap
	a.staleUntil = c.now.Add(c.knobs.readLag)
}

// nullable is nil for "", else s.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ---- realistic token size ---------------------------------------------------------------

// directoryReadersAppWid is the wids value real app-only Graph tokens carry.
const directoryReadersAppWid = "0997a1d0-0d1d-4acb-b408-d5ca73121e90"

// addRealisticAppClaims adds the claims a real app-only Graph token carries besides the
// ones the client looks at (aio, rh, wids, xms_*), so the fake's tokens have the real size:
// about 3.1 KB with the provisioner's 25 roles (real-tenant-findings §7). With CAE asked
// for, xms_cc ["CP1"] is added as Entra does.
func addRealisticAppClaims(claims map[string]any, tid string, cae bool) {
	claims["aio"] = "k2Bg" + randomString(52)
	claims["rh"] = "1.A" + base64URL(tid) + randomString(30) + "."
	claims["tenant_region_scope"] = "EU"
	claims["wids"] = []string{directoryReadersAppWid}
	claims["xms_acd"] = 1700000000
	claims["xms_act_fct"] = "3 9"
	claims["xms_ftd"] = randomString(44)
	claims["xms_idrel"] = "7 24"
	claims["xms_rd"] = "0.42Lj" + randomString(94)
	claims["xms_sub_fct"] = "9 3"
	claims["xms_tcdt"] = 1600000000
	claims["xms_tnt_fct"] = "3 6"
	if cae {
		claims["xms_cc"] = []string{"CP1"}
	}
}

func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// signWithNonce signs like sign and adds the nonce header real Graph tokens carry.
func (s *Server) signWithNonce(claims jwt.MapClaims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["nonce"] = randomString(43)
	tok.Header["x5t"] = s.signer.x5t
	tok.Header["kid"] = s.signer.x5t
	return tok.SignedString(s.signer.key)
}

// ---- fake az ad app show ----------------------------------------------------------------

// serveAzAppShow backs the fake az's `az ad app show --id ID [--query PROP]`: the
// application (by appId or object id) in the caller's tenant as Graph returns it, or the
// one top-level property the query names, printed as az -o json does (2-space indent).
func (s *Server) serveAzAppShow(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	c, ge := s.authenticate(r, now)
	if ge != nil {
		http.Error(w, "ERROR: "+ge.message, http.StatusUnauthorized)
		return
	}
	id, query := r.URL.Query().Get("id"), r.URL.Query().Get("query")
	s.dir.mu.Lock()
	var body any
	if t := s.dir.tenant(c.tenantID); t != nil {
		a := t.appByAppID(id)
		if a == nil {
			a = t.appByObjectID(id)
		}
		if a != nil && visible(a.visibleAt, now) {
			body = applicationJSON(t, a, false)
		}
	}
	s.dir.mu.Unlock()
	if body == nil {
		http.Error(w, fmt.Sprintf("ERROR: Resource '%s' does not exist or one of its queried reference-property objects are not present.", id), http.StatusNotFound)
		return
	}
	if query != "" {
		var found any
		for _, f := range body.(object) {
			if f.name == query {
				found = f.value
			}
		}
		body = found
	}
	raw, err := json.Marshal(body)
	var out bytes.Buffer
	if err == nil {
		err = json.Indent(&out, raw, "", "  ")
	}
	if err != nil {
		http.Error(w, "ERROR: "+err.Error(), http.StatusInternalServerError)
		return
	}
	out.WriteByte('\n')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out.Bytes())
}
