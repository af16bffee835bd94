package entratest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

func TestCertificateCredentialGetsGraphToken(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	tok := mustToken(t, srv, certCredential(t, srv, sc.TenantID, sc.ClientID, sc.Bundle))

	claims, header := claimsOf(t, srv, tok)
	want := map[string]string{
		"aud": srv.GraphEndpoint(), "iss": "https://sts.windows.net/" + sc.TenantID + "/",
		"idp": "https://sts.windows.net/" + sc.TenantID + "/", "appid": sc.ClientID, "appidacr": "2",
		"idtyp": "app", "tid": sc.TenantID, "oid": sc.ServicePrincipalID, "sub": sc.ServicePrincipalID,
		"ver": "1.0", "app_displayname": AppDisplayName,
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %s", k, claims[k], v)
		}
	}
	if got := rolesOf(claims); !sameSet(got, RequiredRoleValues()) {
		t.Errorf("roles = %v, want the 25 required roles", got)
	}
	if header["typ"] != "JWT" || header["x5t"] == nil || header["kid"] != header["x5t"] {
		t.Errorf("header = %v, want typ JWT and x5t = kid", header)
	}
	if c := srv.Counts(); c[RouteOpenIDConfiguration] != 1 || c[RouteToken] != 1 || srv.TokenRequests() != 1 {
		t.Errorf("counts = %v, TokenRequests = %d; want one metadata GET and one token POST", c, srv.TokenRequests())
	}
}

func TestClientSecretCredential(t *testing.T) {
	clock := &testClock{}
	srv := newServer(t, WithClock(clock.Now))
	sc := seed(t, srv, ScenarioLegacy)

	claims, _ := claimsOf(t, srv, mustToken(t, srv, secretCredential(t, srv, sc.TenantID, sc.ClientID, sc.ClientSecret)))
	if claims["appidacr"] != "1" || claims["appid"] != sc.ClientID || claims["tid"] != sc.TenantID {
		t.Errorf("claims = %v, want appidacr 1 for the legacy app", claims)
	}

	_, err := getToken(srv, secretCredential(t, srv, sc.TenantID, sc.ClientID, sc.ClientSecret+"x"))
	wantSTSCode(t, err, 7000215)

	_, short, err := srv.AddPassword(sc.TenantID, sc.ClientID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	_, err = getToken(srv, secretCredential(t, srv, sc.TenantID, sc.ClientID, short))
	wantSTSCode(t, err, 7000222)
}

// assertion signs a client assertion by hand.
func assertion(t *testing.T, key any, method jwt.SigningMethod, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func postForm(t *testing.T, srv *Server, tenantID string, form url.Values) response {
	t.Helper()
	res, err := srv.Client().PostForm(srv.URL+"/"+tenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

func assertionForm(clientID, assertion string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {clientID},
		"client_assertion_type": {clientAssertionType},
		"client_assertion":      {assertion},
		"scope":                 {"https://graph.microsoft.com/.default openid offline_access profile"},
	}
}

func TestHandMadeAssertions(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	other := generateBundle(t)
	der := sc.Bundle.Cert.Raw
	s1, s256 := sha1.Sum(der), sha256.Sum256(der)
	otherS256 := sha256.Sum256(other.Cert.Raw)
	now := time.Now()
	aud := srv.URL + "/" + sc.TenantID + "/oauth2/v2.0/token"
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"aud": aud, "iss": sc.ClientID, "sub": sc.ClientID, "jti": newGUID(),
			"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	rsUnpadded := map[string]any{"x5t": base64.RawURLEncoding.EncodeToString(s1[:])}
	psStd := map[string]any{"x5t#S256": base64.StdEncoding.EncodeToString(s256[:])}
	key := sc.Bundle.Key

	cases := []struct {
		name     string
		clientID string
		tok      string
		form     func(url.Values)
		status   int
		code     int
	}{
		{"RS256 x5t base64url unpadded", sc.ClientID, assertion(t, key, jwt.SigningMethodRS256, rsUnpadded, claims(nil)), nil, 200, 0},
		{"RS256 x5t std padded", sc.ClientID, assertion(t, key, jwt.SigningMethodRS256, map[string]any{"x5t": base64.StdEncoding.EncodeToString(s1[:])}, claims(nil)), nil, 200, 0},
		{"PS256 x5t#S256 base64url", sc.ClientID, assertion(t, key, jwt.SigningMethodPS256, map[string]any{"x5t#S256": base64.RawURLEncoding.EncodeToString(s256[:])}, claims(nil)), nil, 200, 0},
		{"PS256 x5t#S256 std padded", sc.ClientID, assertion(t, key, jwt.SigningMethodPS256, psStd, claims(nil)), nil, 200, 0},
		{"unregistered certificate", sc.ClientID, assertion(t, other.Key, jwt.SigningMethodPS256, map[string]any{"x5t#S256": base64.StdEncoding.EncodeToString(otherS256[:])}, claims(nil)), nil, 401, 700027},
		{"signed by another key", sc.ClientID, assertion(t, other.Key, jwt.SigningMethodPS256, psStd, claims(nil)), nil, 401, 700027},
		{"no thumbprint", sc.ClientID, assertion(t, key, jwt.SigningMethodPS256, nil, claims(nil)), nil, 401, 700027},
		{"wrong audience", sc.ClientID, assertion(t, key, jwt.SigningMethodPS256, psStd, claims(func(c jwt.MapClaims) { c["aud"] = "https://login.microsoftonline.com/x/oauth2/v2.0/token" })), nil, 400, 50027},
		{"issuer is not the client", sc.ClientID, assertion(t, key, jwt.SigningMethodPS256, psStd, claims(func(c jwt.MapClaims) { c["iss"] = newGUID() })), nil, 401, 700021},
		{"subject is not the client", sc.ClientID, assertion(t, key, jwt.SigningMethodPS256, psStd, claims(func(c jwt.MapClaims) { c["sub"] = newGUID() })), nil, 401, 700021},
		{"expired", sc.ClientID, assertion(t, key, jwt.SigningMethodPS256, psStd, claims(func(c jwt.MapClaims) {
			c["nbf"], c["exp"] = now.Add(-30*time.Minute).Unix(), now.Add(-20*time.Minute).Unix()
		})), nil, 401, 700024},
		{"not yet valid", sc.ClientID, assertion(t, key, jwt.SigningMethodPS256, psStd, claims(func(c jwt.MapClaims) {
			c["nbf"], c["exp"] = now.Add(20*time.Minute).Unix(), now.Add(30*time.Minute).Unix()
		})), nil, 401, 700024},
		{"within clock skew", sc.ClientID, assertion(t, key, jwt.SigningMethodPS256, psStd, claims(func(c jwt.MapClaims) {
			c["nbf"], c["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-2*time.Minute).Unix()
		})), nil, 200, 0},
		{"no exp", sc.ClientID, assertion(t, key, jwt.SigningMethodPS256, psStd, claims(func(c jwt.MapClaims) { delete(c, "exp") })), nil, 401, 700024},
		{"HS256", sc.ClientID, assertion(t, []byte("shared"), jwt.SigningMethodHS256, psStd, claims(nil)), nil, 400, 5002738},
		{"malformed", sc.ClientID, "not-a-jwt", nil, 400, 50027},
		{"wrong assertion type", sc.ClientID, assertion(t, key, jwt.SigningMethodPS256, psStd, claims(nil)),
			func(f url.Values) { f.Set("client_assertion_type", "jwt-bearer") }, 400, 50027},
		{"unknown client", "11111111-2222-4333-8444-555555555555", assertion(t, key, jwt.SigningMethodPS256, psStd, claims(nil)), nil, 400, 700016},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := assertionForm(tc.clientID, tc.tok)
			if tc.form != nil {
				tc.form(form)
			}
			r := postForm(t, srv, sc.TenantID, form)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d; body %s", r.status, tc.status, r.body)
			}
			body := r.json(t)
			if tc.code == 0 {
				claims, _ := claimsOf(t, srv, body["access_token"].(string))
				if claims["appidacr"] != "2" || claims["aud"] != "https://graph.microsoft.com" {
					t.Errorf("claims = %v, want appidacr 2 and the requested audience", claims)
				}
				return
			}
			codes, _ := body["error_codes"].([]any)
			if len(codes) != 1 || codes[0] != float64(tc.code) {
				t.Fatalf("error_codes = %v, want [%d]; body %s", codes, tc.code, r.body)
			}
		})
	}
}

var stsDescription = regexp.MustCompile(`^AADSTS(\d+): [^\r\n]+\r\nTrace ID: ([0-9a-f-]{36})\r\nCorrelation ID: ([0-9a-f-]{36})\r\nTimestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`)

func TestSTSErrorShape(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioLegacy)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sc.ClientID},
		"client_secret": {"wrong"}, "scope": {srv.GraphEndpoint() + "/.default"}}
	r := postForm(t, srv, sc.TenantID, form)
	if r.status != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", r.status)
	}
	body := r.json(t)
	var keys []string
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"correlation_id", "error", "error_codes", "error_description", "error_uri", "timestamp", "trace_id"}; !slices.Equal(keys, want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
	m := stsDescription.FindStringSubmatch(body["error_description"].(string))
	if m == nil {
		t.Fatalf("error_description %q does not have the documented shape", body["error_description"])
	}
	if m[1] != "7000215" || m[2] != body["trace_id"] || m[3] != body["correlation_id"] || body["error"] != "invalid_client" {
		t.Errorf("body = %v, inconsistent with its description", body)
	}
	if !strings.HasSuffix(body["error_uri"].(string), "?code=7000215") {
		t.Errorf("error_uri = %v", body["error_uri"])
	}
	if strings.Contains(string(r.body), "wrong") {
		t.Errorf("error body echoes the secret: %s", r.body)
	}
}

func TestTenantErrorsAndMetadata(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)

	r := call(t, srv, "GET", "/"+sc.TenantID+"/v2.0/.well-known/openid-configuration", "", nil)
	wantStatus(t, r, 200, "")
	doc := r.json(t)
	if doc["issuer"] != srv.URL+"/"+sc.TenantID+"/v2.0" || doc["token_endpoint"] != srv.URL+"/"+sc.TenantID+"/oauth2/v2.0/token" ||
		doc["authorization_endpoint"] == nil {
		t.Errorf("metadata = %v", doc)
	}
	keys := call(t, srv, "GET", "/"+sc.TenantID+"/discovery/v2.0/keys", "", nil)
	wantStatus(t, keys, 200, "")
	if !strings.Contains(string(keys.body), base64.RawURLEncoding.EncodeToString(srv.SigningPublicKey().N.Bytes())) {
		t.Errorf("jwks does not hold the signing key: %s", keys.body)
	}

	for _, tc := range []struct {
		tenant string
		code   string
	}{{newGUID(), "90002"}, {"contoso", "900023"}} {
		r := call(t, srv, "GET", "/"+tc.tenant+"/v2.0/.well-known/openid-configuration", "", nil)
		if r.status != 400 || !strings.HasPrefix(r.json(t)["error_description"].(string), "AADSTS"+tc.code+":") {
			t.Errorf("tenant %s: status %d body %s, want 400 AADSTS%s", tc.tenant, r.status, r.body, tc.code)
		}
	}
	_, err := getToken(srv, certCredential(t, srv, newGUID(), sc.ClientID, sc.Bundle))
	wantSTSCode(t, err, 90002)

	r = call(t, srv, "GET", "/"+sc.TenantID+"/oauth2/v2.0/token", "", nil)
	if r.status != 400 || r.json(t)["error_codes"].([]any)[0] != float64(900561) {
		t.Errorf("GET on the token endpoint: %d %s", r.status, r.body)
	}
}

func TestScopes(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioLegacy)
	for _, tc := range []struct {
		scope  string
		status int
		code   float64
		aud    string
	}{
		{srv.GraphEndpoint() + "/.default openid offline_access profile", 200, 0, srv.GraphEndpoint()},
		{GraphAppID + "/.default", 200, 0, GraphAppID},
		{"https://graph.microsoft.com/.default", 200, 0, "https://graph.microsoft.com"},
		{srv.GraphEndpoint() + "/User.Read", 400, 1002012, ""},
		{srv.GraphEndpoint() + "/.default https://other.example/.default", 400, 1002012, ""},
		{"openid profile", 400, 1002012, ""},
		{"https://other.example/.default", 400, 500011, ""},
	} {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sc.ClientID},
			"client_secret": {sc.ClientSecret}, "scope": {tc.scope}}
		r := postForm(t, srv, sc.TenantID, form)
		if r.status != tc.status {
			t.Errorf("scope %q: status %d, want %d; %s", tc.scope, r.status, tc.status, r.body)
			continue
		}
		body := r.json(t)
		if tc.status == 200 {
			if body["token_type"] != "Bearer" || body["expires_in"] != float64(3599) || body["ext_expires_in"] != float64(3599) {
				t.Errorf("token response = %v", body)
			}
			claims, _ := claimsOf(t, srv, body["access_token"].(string))
			if claims["aud"] != tc.aud {
				t.Errorf("scope %q: aud = %v, want %s", tc.scope, claims["aud"], tc.aud)
			}
		} else if codes := body["error_codes"].([]any); codes[0] != tc.code {
			t.Errorf("scope %q: error_codes %v, want %v", tc.scope, codes, tc.code)
		}
	}
}

func TestTokenLifetime(t *testing.T) {
	srv := newServer(t, WithTokenLifetime(10*time.Minute))
	sc := seed(t, srv, ScenarioLegacy)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sc.ClientID},
		"client_secret": {sc.ClientSecret}, "scope": {srv.GraphEndpoint() + "/.default"}}
	body := postForm(t, srv, sc.TenantID, form).json(t)
	claims, _ := claimsOf(t, srv, body["access_token"].(string))
	if body["expires_in"] != float64(599) || claims["exp"].(float64)-claims["iat"].(float64) != 600 {
		t.Errorf("expires_in = %v, exp-iat = %v; want 599 and 600", body["expires_in"], claims["exp"].(float64)-claims["iat"].(float64))
	}
}

// createApp registers an application through Graph as the admin and returns its appId and
// object id.
func createApp(t *testing.T, srv *Server, tenantID, name string) (appID, objectID string) {
	t.Helper()
	r := call(t, srv, "POST", "/v1.0/applications", adminToken(t, srv, tenantID),
		map[string]any{"displayName": name, "signInAudience": "AzureADMyOrg"})
	wantStatus(t, r, 201, "")
	body := r.json(t)
	return body["appId"].(string), body["id"].(string)
}

func createSP(t *testing.T, srv *Server, tenantID, appID string) string {
	t.Helper()
	r := call(t, srv, "POST", "/v1.0/servicePrincipals", adminToken(t, srv, tenantID), map[string]any{"appId": appID})
	wantStatus(t, r, 201, "")
	return r.json(t)["id"].(string)
}

func TestAppWithoutServicePrincipal(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioEmpty)
	appID, _ := createApp(t, srv, sc.TenantID, "no sp yet")
	_, secret, err := srv.AddPassword(sc.TenantID, appID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = getToken(srv, secretCredential(t, srv, sc.TenantID, appID, secret))
	wantSTSCode(t, err, 7000229)

	createSP(t, srv, sc.TenantID, appID)
	claims, _ := claimsOf(t, srv, mustToken(t, srv, secretCredential(t, srv, sc.TenantID, appID, secret)))
	if _, ok := claims["roles"]; ok {
		t.Errorf("roles claim present without grants: %v", claims["roles"])
	}
}

// graphSP returns the id of the tenant's Microsoft Graph service principal.
func graphSP(t *testing.T, srv *Server, tenantID string) string {
	t.Helper()
	r := call(t, srv, "GET", "/v1.0/servicePrincipals(appId='"+GraphAppID+"')?$select=id,appRoles", adminToken(t, srv, tenantID), nil)
	wantStatus(t, r, 200, "")
	return r.json(t)["id"].(string)
}

func grant(t *testing.T, srv *Server, tenantID, token, resourceID, principalID, roleValue string) response {
	t.Helper()
	roleID, ok := GraphRoleID(roleValue)
	if !ok {
		t.Fatalf("no role %s", roleValue)
	}
	return call(t, srv, "POST", "/v1.0/servicePrincipals/"+resourceID+"/appRoleAssignedTo", token,
		map[string]any{"principalId": principalID, "resourceId": resourceID, "appRoleId": roleID})
}

func TestPropagationDelayOnRoles(t *testing.T) {
	clock := &testClock{}
	srv := newServer(t, WithClock(clock.Now), WithPropagationDelay(time.Minute))
	sc := seed(t, srv, ScenarioLegacy)
	r := grant(t, srv, sc.TenantID, adminToken(t, srv, sc.TenantID), graphSP(t, srv, sc.TenantID), sc.ServicePrincipalID, "Mail.Read")
	wantStatus(t, r, 201, "")

	roles := func() []string {
		claims, _ := claimsOf(t, srv, mustToken(t, srv, secretCredential(t, srv, sc.TenantID, sc.ClientID, sc.ClientSecret)))
		return rolesOf(claims)
	}
	if got := roles(); slices.Contains(got, "Mail.Read") || !sameSet(got, RequiredRoleValues()) {
		t.Fatalf("roles right after the grant = %v, want the seeded 25 only", got)
	}
	clock.Advance(61 * time.Second)
	if got := roles(); !slices.Contains(got, "Mail.Read") {
		t.Fatalf("roles after the delay = %v, want Mail.Read", got)
	}
	if v, _ := srv.App(sc.TenantID, sc.ClientID); len(v.GrantedRoles) != 26 {
		t.Errorf("App().GrantedRoles has %d roles, want 26", len(v.GrantedRoles))
	}

	if err := srv.RevokeGrant(sc.TenantID, sc.ClientID, "Mail.Read"); err != nil {
		t.Fatal(err)
	}
	if got := roles(); slices.Contains(got, "Mail.Read") {
		t.Errorf("roles after RevokeGrant = %v", got)
	}
}

func TestPropagationDelayOnNewCertificate(t *testing.T) {
	clock := &testClock{}
	srv := newServer(t, WithClock(clock.Now), WithPropagationDelay(time.Minute))
	sc := seed(t, srv, ScenarioLegacy)
	b := generateBundle(t)
	r := call(t, srv, "PATCH", "/v1.0/applications/"+sc.AppObjectID, adminToken(t, srv, sc.TenantID),
		map[string]any{"keyCredentials": []any{newKeyEntry(b, nil)}})
	wantStatus(t, r, 204, "")

	_, err := getToken(srv, certCredential(t, srv, sc.TenantID, sc.ClientID, b))
	wantSTSCode(t, err, 700027)
	clock.Advance(61 * time.Second)
	claims, _ := claimsOf(t, srv, mustToken(t, srv, certCredential(t, srv, sc.TenantID, sc.ClientID, b)))
	if claims["appidacr"] != "2" {
		t.Errorf("appidacr = %v, want 2", claims["appidacr"])
	}
}

func TestExpiredCertificateIsRejected(t *testing.T) {
	clock := &testClock{}
	srv := newServer(t, WithClock(clock.Now))
	sc := seed(t, srv, ScenarioMigrated)
	clock.Advance(400 * 24 * time.Hour)
	_, err := getToken(srv, certCredential(t, srv, sc.TenantID, sc.ClientID, sc.Bundle))
	wantSTSCode(t, err, 700027)
	if !strings.Contains(err.Error(), "expired") {
		t.Errorf("error does not say expired: %v", err)
	}
}

// newKeyEntry is a keyCredentials element for a new certificate.
func newKeyEntry(b *certs.Bundle, mod func(map[string]any)) map[string]any {
	e := map[string]any{
		"type":          "AsymmetricX509Cert",
		"usage":         "Verify",
		"key":           base64.StdEncoding.EncodeToString(b.Cert.Raw),
		"displayName":   "CN=" + b.Cert.Subject.CommonName,
		"startDateTime": b.Cert.NotBefore.UTC().Format(time.RFC3339),
		"endDateTime":   b.Cert.NotAfter.UTC().Format(time.RFC3339),
	}
	if mod != nil {
		mod(e)
	}
	return e
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
