package entratest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The device-code flow (RFC 8628 as Entra ID serves it): POST
// /{tenant}/oauth2/v2.0/devicecode returns a user code; the client polls the token endpoint
// with grant_type device_code and gets 400 authorization_pending (AADSTS70016) until the
// user signs in — here, until a test calls CompleteDeviceCode. The token answer carries a
// delegated access token, an id_token, client_info and a refresh token, as MSAL expects.
// {tenant} may be a tenant id, a verified domain, or "organizations"/"common".

// deviceCodeLifetime is how long a device code may be redeemed (Entra: 15 minutes).
const deviceCodeLifetime = 15 * time.Minute

// deviceCode is one device-code sign-in.
type deviceCode struct {
	deviceCode string
	userCode   string
	clientID   string
	scope      string
	tenant     string // the tenant id the request named; "" for organizations/common
	expires    time.Time
	// Set by CompleteDeviceCode: who signed in.
	done     bool
	userTid  string
	kind     string
	redeemed bool
}

// orgTenant reports whether a tenant path segment is one of the multi-tenant aliases.
func orgTenant(raw string) bool {
	return strings.EqualFold(raw, "organizations") || strings.EqualFold(raw, "common")
}

// serveDeviceCode answers POST /{tenant}/oauth2/v2.0/devicecode.
func (s *Server) serveDeviceCode(w http.ResponseWriter, r *http.Request, rawTenant string) {
	tid := ""
	if !orgTenant(rawTenant) {
		id, e := s.checkTenant(rawTenant)
		if e != nil {
			s.writeSTSError(w, r, *e)
			return
		}
		tid = id
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") == "" {
		s.writeSTSError(w, r, *missingParameter("client_id"))
		return
	}
	if r.PostForm.Get("scope") == "" {
		s.writeSTSError(w, r, *missingParameter("scope"))
		return
	}
	now := s.now()
	dc := &deviceCode{
		deviceCode: randomString(80),
		userCode:   strings.ToUpper(strings.NewReplacer("~", "A", ".", "B", "_", "C", "-", "D").Replace(randomString(9))),
		clientID:   r.PostForm.Get("client_id"),
		scope:      r.PostForm.Get("scope"),
		tenant:     tid,
		expires:    now.Add(deviceCodeLifetime),
	}
	s.mu.Lock()
	s.deviceCodes[dc.deviceCode] = dc
	s.mu.Unlock()
	const uri = "https://microsoft.com/devicelogin"
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", object{
		{"user_code", dc.userCode},
		{"device_code", dc.deviceCode},
		{"verification_uri", uri},
		{"expires_in", int(deviceCodeLifetime / time.Second)},
		{"interval", 5},
		{"message", fmt.Sprintf("To sign in, use a web browser to open the page %s and enter the code %s to authenticate.", uri, dc.userCode)},
	})
}

// CompleteDeviceCode signs the user in for the pending device code userCode, as the
// operator kind (see OperatorToken) of tenantID — which may differ from the tenant the
// client asked for, as a person can pick another account in the browser. It fails for an
// unknown or expired code.
func (s *Server) CompleteDeviceCode(userCode, tenantID, kind string) error {
	if _, ok := operatorKinds[kind]; !ok {
		return fmt.Errorf("entratest: unknown operator kind %q", kind)
	}
	s.dir.mu.Lock()
	t := s.dir.tenantByName(tenantID)
	s.dir.mu.Unlock()
	if t == nil {
		return fmt.Errorf("entratest: tenant %s: %w", tenantID, errNotFound)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, dc := range s.deviceCodes {
		if strings.EqualFold(dc.userCode, strings.TrimSpace(userCode)) && now.Before(dc.expires) && !dc.done {
			dc.done, dc.userTid, dc.kind = true, t.id, kind
			return nil
		}
	}
	return fmt.Errorf("entratest: device code %q: %w", userCode, errNotFound)
}

// DeviceCodePrompts is how many device codes were requested (each is one prompt shown to
// the user) since the start or the last ResetCounts.
func (s *Server) DeviceCodePrompts() int { return s.Counts()[RouteDeviceCode] }

// grantDeviceCode redeems a device code (grant_type device_code).
func (s *Server) grantDeviceCode(w http.ResponseWriter, r *http.Request, k knobs) {
	code := r.PostForm.Get("device_code")
	if code == "" {
		s.writeSTSError(w, r, *missingParameter("device_code"))
		return
	}
	now := k.clock()
	s.mu.Lock()
	dc := s.deviceCodes[code]
	var pending, expired, used bool
	if dc != nil {
		pending, expired, used = !dc.done, !now.Before(dc.expires), dc.redeemed
		if !pending && !expired && !used {
			dc.redeemed = true
		}
	}
	s.mu.Unlock()
	switch {
	case dc == nil || used:
		s.writeSTSError(w, r, stsError{http.StatusBadRequest, "invalid_grant", 70000,
			"The provided value for the 'device_code' is not valid. It may have been redeemed already or be malformed."})
		return
	case expired:
		s.writeSTSError(w, r, stsError{http.StatusBadRequest, "expired_token", 70019,
			"Verification code expired."})
		return
	case pending:
		s.writeSTSError(w, r, stsError{http.StatusBadRequest, "authorization_pending", 70016,
			"OAuth 2.0 device flow error. Authorization is pending. Continue polling."})
		return
	case k.deviceCodeBlocked:
		s.writeSTSError(w, r, stsError{http.StatusBadRequest, "invalid_grant", 53003,
			"Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."})
		return
	}
	s.issueUserTokens(w, r, dc, now)
}

// grantRefreshToken redeems a refresh token issued with a device-code sign-in.
func (s *Server) grantRefreshToken(w http.ResponseWriter, r *http.Request, k knobs) {
	s.mu.Lock()
	dc := s.refreshTokens[r.PostForm.Get("refresh_token")]
	s.mu.Unlock()
	if dc == nil {
		s.writeSTSError(w, r, stsError{http.StatusBadRequest, "invalid_grant", 9002313,
			"Invalid request. Request is malformed or invalid."})
		return
	}
	if scope := r.PostForm.Get("scope"); scope != "" {
		d := *dc
		d.scope = scope
		dc = &d
	}
	s.issueUserTokens(w, r, dc, k.clock())
}

// issueUserTokens answers a delegated sign-in: access token for the requested resource,
// id_token, client_info and a refresh token.
func (s *Server) issueUserTokens(w http.ResponseWriter, r *http.Request, dc *deviceCode, now time.Time) {
	if dc.tenant != "" && !strings.EqualFold(dc.tenant, dc.userTid) {
		s.writeSTSError(w, r, stsError{http.StatusBadRequest, "invalid_grant", 50020,
			fmt.Sprintf("User account from identity provider 'https://sts.windows.net/%s/' does not exist in tenant '%s' and cannot access the application '%s' in that tenant.", dc.userTid, dc.tenant, dc.clientID)})
		return
	}
	resource := GraphEndpointResource
	for _, f := range strings.Fields(dc.scope) {
		if strings.HasSuffix(f, "/.default") {
			resource = strings.TrimSuffix(f, "/.default")
		}
	}
	if !s.isGraphResource(resource) {
		s.writeSTSError(w, r, stsError{http.StatusBadRequest, "invalid_resource", 500011,
			fmt.Sprintf("The resource principal named %s was not found in the tenant named %s.", resource, dc.userTid)})
		return
	}
	access, oid, upn, err := s.userToken(dc.userTid, dc.kind, dc.clientID, resource, now)
	if err != nil {
		s.writeSTSError(w, r, stsError{http.StatusInternalServerError, "server_error", 50000, "There was an error issuing a token."})
		return
	}
	idClaims := jwt.MapClaims{
		"aud": dc.clientID, "iss": s.stsBase() + "/" + dc.userTid + "/v2.0", "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "name": "Fake " + dc.kind, "oid": oid, "preferred_username": upn,
		"sub": oid, "tid": dc.userTid, "ver": "2.0",
	}
	idToken, err := s.sign(idClaims)
	if err != nil {
		s.writeSTSError(w, r, stsError{http.StatusInternalServerError, "server_error", 50000, "There was an error issuing a token."})
		return
	}
	info, _ := json.Marshal(map[string]string{"uid": oid, "utid": dc.userTid})
	refresh := randomString(120)
	s.mu.Lock()
	s.refreshTokens[refresh] = dc
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store, no-cache")
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", object{
		{"token_type", "Bearer"},
		{"scope", strings.TrimSpace(resource + "/.default openid profile offline_access")},
		{"expires_in", 3599},
		{"ext_expires_in", 3599},
		{"access_token", access},
		{"refresh_token", refresh},
		{"id_token", idToken},
		{"client_info", base64.RawURLEncoding.EncodeToString(info)},
	})
}

// GraphEndpointResource is the public Graph resource, accepted by the fake as itself.
const GraphEndpointResource = "https://graph.microsoft.com"

// userToken mints a delegated Graph token for the operator kind in tenant tid, issued to
// clientID.
func (s *Server) userToken(tid, kind, clientID, resource string, now time.Time) (tok, oid, upn string, err error) {
	s.dir.mu.Lock()
	t := s.dir.tenant(tid)
	if t == nil {
		s.dir.mu.Unlock()
		return "", "", "", errNotFound
	}
	oid, ok := t.operators[kind]
	if !ok {
		oid = newGUID()
		t.operators[kind] = oid
	}
	upn = kind + "@" + t.domain
	s.dir.mu.Unlock()
	sub := sha256.Sum256([]byte(oid + clientID))
	claims := jwt.MapClaims{
		"aud": resource, "iss": stsIssuer(tid), "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "acr": "1", "amr": []string{"pwd", "mfa"},
		"app_displayname": "Microsoft Azure CLI", "appid": clientID, "appidacr": "0",
		"idtyp": "user", "name": "Fake " + kind, "oid": oid,
		"scp": "Application.ReadWrite.All AppRoleAssignment.ReadWrite.All Directory.AccessAsUser.All User.Read.All",
		"sub": base64.RawURLEncoding.EncodeToString(sub[:]),
		"tid": tid, "unique_name": upn, "upn": upn, "uti": randomString(22), "ver": "1.0",
		"wids": operatorKinds[kind],
	}
	tok, err = s.sign(claims)
	return tok, oid, upn, err
}
