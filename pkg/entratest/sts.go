package entratest

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Entra built-in role template ids carried in operator tokens' wids claim.
const (
	roleGlobalAdministrator      = "62e90394-69f5-4237-9190-012177145e10"
	roleApplicationAdministrator = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
	roleCloudAppAdministrator    = "158c047a-c907-4556-b7ef-446551a6b5f7"
	roleDefaultUser              = "b79fbf4d-3ef9-4689-8143-76b194e85509"
	// Privileged Role Administrator may grant application permissions of any API
	// (serviceprincipal-post-approleassignedto; Entra create-blueprint prerequisites).
	rolePrivilegedRoleAdministrator = "e8611ab8-c189-46e8-94e1-60213ab1f814"
)

// azureCLIAppID is the public client the az CLI signs users in with.
const azureCLIAppID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionSkew is the clock skew tolerated on client assertions' nbf and exp.
const assertionSkew = 5 * time.Minute

// stsError is an AADSTS error: HTTP status, OAuth error string, AADSTS number and text.
type stsError struct {
	status int
	err    string
	code   int
	text   string
}

func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, req request) {
	switch req.name {
	case RouteOpenIDConfiguration:
		s.serveOpenIDConfiguration(w, r, req.tenant)
	case RouteKeys:
		s.serveKeys(w, r, req.tenant)
	case RouteToken:
		s.serveToken(w, r, req.tenant)
	case RouteDeviceCode:
		s.serveDeviceCode(w, r, req.tenant)
	case RouteInstanceDiscovery:
		s.serveInstanceDiscovery(w, r)
	case r.Method + " /{tenant}/oauth2/v2.0/token":
		s.writeSTSError(w, r, stsError{http.StatusBadRequest, "invalid_request", 900561,
			fmt.Sprintf("The endpoint only accepts POST requests. Received a %s request.", r.Method)})
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// checkTenant validates the tenant segment of an STS path — a tenant id or one of the
// tenant's domain names, as Entra accepts either — and returns the tenant id.
func (s *Server) checkTenant(raw string) (string, *stsError) {
	if !isGUID(raw) && !strings.Contains(raw, ".") {
		return "", &stsError{http.StatusBadRequest, "invalid_request", 900023,
			fmt.Sprintf("Specified tenant identifier '%s' is neither a valid DNS name, nor a valid external domain.", raw)}
	}
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	t := s.dir.tenantByName(raw)
	if t == nil {
		return "", &stsError{http.StatusBadRequest, "invalid_request", 90002,
			fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", raw)}
	}
	return t.id, nil
}

// tokenEndpoint is the token URL the metadata advertises; client assertions must name it
// as their audience.
func (s *Server) tokenEndpoint(tenantID string) string {
	return s.stsBase() + "/" + tenantID + "/oauth2/v2.0/token"
}

func (s *Server) serveOpenIDConfiguration(w http.ResponseWriter, r *http.Request, rawTenant string) {
	tid, issuerTid := strings.ToLower(rawTenant), "{tenantid}"
	if !orgTenant(rawTenant) {
		var e *stsError
		if tid, e = s.checkTenant(rawTenant); e != nil {
			s.writeSTSError(w, r, *e)
			return
		}
		issuerTid = tid
	}
	base := s.stsBase() + "/" + tid
	doc := object{
		{"token_endpoint", s.tokenEndpoint(tid)},
		{"token_endpoint_auth_methods_supported", []string{"client_secret_post", "private_key_jwt", "client_secret_basic"}},
		{"jwks_uri", base + "/discovery/v2.0/keys"},
		{"response_modes_supported", []string{"query", "fragment", "form_post"}},
		{"subject_types_supported", []string{"pairwise"}},
		{"id_token_signing_alg_values_supported", []string{"RS256"}},
		{"response_types_supported", []string{"code", "id_token", "code id_token", "id_token token"}},
		{"scopes_supported", []string{"openid", "profile", "email", "offline_access"}},
		{"issuer", s.stsBase() + "/" + issuerTid + "/v2.0"},
		{"request_uri_parameter_supported", false},
		{"userinfo_endpoint", s.stsBase() + "/oidc/userinfo"},
		{"authorization_endpoint", base + "/oauth2/v2.0/authorize"},
		{"device_authorization_endpoint", base + "/oauth2/v2.0/devicecode"},
		{"http_logout_supported", true},
		{"frontchannel_logout_supported", true},
		{"end_session_endpoint", base + "/oauth2/v2.0/logout"},
		{"claims_supported", []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "tid", "ver", "oid"}},
		{"tenant_region_scope", "EU"},
		{"cloud_instance_name", "microsoftonline.com"},
		{"cloud_graph_host_name", "graph.windows.net"},
		{"msgraph_host", strings.TrimPrefix(s.graphBase(), "https://")},
	}
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", doc)
}

func (s *Server) serveKeys(w http.ResponseWriter, r *http.Request, rawTenant string) {
	tid, e := s.checkTenant(rawTenant)
	if e != nil {
		s.writeSTSError(w, r, *e)
		return
	}
	pub := s.signer.key.PublicKey
	key := object{
		{"kty", "RSA"},
		{"use", "sig"},
		{"kid", s.signer.x5t},
		{"x5t", s.signer.x5t},
		{"n", base64.RawURLEncoding.EncodeToString(pub.N.Bytes())},
		{"e", base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())},
		{"x5c", []string{base64.StdEncoding.EncodeToString(s.signer.cert.Raw)}},
		{"issuer", s.stsBase() + "/" + tid + "/v2.0"},
	}
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", object{{"keys", []object{key}}})
}

// serveToken is the client-credentials grant: a client secret or a certificate-signed
// client assertion buys an app-only access token for one resource.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, rawTenant string) {
	if retryAfter := s.takeTokenThrottle(); retryAfter > 0 {
		writeTokenThrottled(w, retryAfter)
		return
	}
	k := s.currentKnobs()
	now := k.clock()
	_ = r.ParseForm()
	grant := r.PostForm.Get("grant_type")
	userGrant := grant == "device_code" || grant == "urn:ietf:params:oauth:grant-type:device_code" || grant == "refresh_token"
	tid := ""
	if !userGrant || !orgTenant(rawTenant) {
		var e *stsError
		if tid, e = s.checkTenant(rawTenant); e != nil {
			s.writeSTSError(w, r, *e)
			return
		}
	}
	if e := s.checkTokenLoop(strings.ToLower(rawTenant), r.PostForm.Get("client_id"), now); e != nil {
		s.writeSTSError(w, r, *e)
		return
	}
	switch {
	case grant == "refresh_token":
		s.grantRefreshToken(w, r, k)
		return
	case userGrant:
		s.grantDeviceCode(w, r, k)
		return
	}
	tok, expiresIn, e := s.grantClientCredentials(r, tid, now, k.lifetimeFor(r.PostForm.Get("claims")))
	if e != nil {
		s.writeSTSError(w, r, *e)
		return
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", object{
		{"token_type", "Bearer"},
		{"expires_in", expiresIn},
		{"ext_expires_in", expiresIn},
		{"access_token", tok},
	})
}

func missingParameter(name string) *stsError {
	return &stsError{http.StatusBadRequest, "invalid_request", 900144,
		fmt.Sprintf("The request body must contain the following parameter: '%s'.", name)}
}

// grantClientCredentials validates a token request (form already parsed) and mints the token.
func (s *Server) grantClientCredentials(r *http.Request, tid string, now time.Time, lifetime time.Duration) (string, int, *stsError) {
	form := r.PostForm
	switch grant := form.Get("grant_type"); grant {
	case "":
		return "", 0, missingParameter("grant_type")
	case "client_credentials":
	default:
		return "", 0, &stsError{http.StatusBadRequest, "unsupported_grant_type", 70003,
			fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant)}
	}
	clientID := form.Get("client_id")
	if clientID == "" {
		return "", 0, missingParameter("client_id")
	}
	scope := form.Get("scope")
	if scope == "" {
		return "", 0, missingParameter("scope")
	}
	resource, e := parseScope(scope)
	if e != nil {
		return "", 0, e
	}
	secret := form.Get("client_secret")
	assertion := form.Get("client_assertion")
	switch {
	case secret == "" && assertion == "":
		return "", 0, &stsError{http.StatusUnauthorized, "invalid_client", 7000216,
			"'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type."}
	case secret != "" && assertion != "":
		return "", 0, &stsError{http.StatusBadRequest, "invalid_request", 90014,
			"The request contains both 'client_secret' and 'client_assertion'; send exactly one client credential."}
	}

	if assertion != "" && s.isFederatedAssertion(tid, clientID, assertion) {
		return s.grantFederated(form, tid, resource, now, lifetime)
	}

	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	t := s.dir.tenant(tid)
	app := t.appByAppID(clientID)
	if app == nil {
		return "", 0, appNotFound(clientID, tid)
	}
	acr := "1"
	if secret != "" {
		e = checkSecret(app, secret, now)
	} else {
		acr = "2"
		e = checkAssertion(app, clientID, form.Get("client_assertion_type"), assertion, s.tokenEndpoint(tid), now)
	}
	if e != nil {
		return "", 0, e
	}
	return s.issueAppToken(t, app, resource, acr, form, now, lifetime)
}

func appNotFound(clientID, tid string) *stsError {
	return &stsError{http.StatusBadRequest, "unauthorized_client", 700016,
		fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tid)}
}

// issueAppToken mints the app-only token once the client has authenticated (acr: "1"
// secret, "2" certificate or federated assertion). Caller holds s.dir.mu.
func (s *Server) issueAppToken(t *tenant, app *application, resource, acr string, form url.Values, now time.Time, lifetime time.Duration) (string, int, *stsError) {
	tid := t.id
	sp := t.spByAppID(app.appID)
	if sp == nil {
		return "", 0, &stsError{http.StatusUnauthorized, "invalid_client", 7000229,
			fmt.Sprintf("The client application %s is missing service principal in the tenant %s. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119", app.appID, tid)}
	}
	if sp.disabled {
		return "", 0, spDisabled(sp)
	}
	if !s.isGraphResource(resource) && !isARMResource(resource) {
		return "", 0, &stsError{http.StatusBadRequest, "invalid_resource", 500011,
			fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resource, tid)}
	}
	var roles []string // Graph's app roles; an ARM token carries none
	if s.isGraphResource(resource) {
		roles = t.grantedRoleValues(sp.id, now, true)
	}
	tok, expiresIn, err := s.mintAppToken(t, app, sp, resource, acr, roles, now, lifetime, strings.Contains(form.Get("claims"), "xms_cc"))
	if err != nil {
		return "", 0, &stsError{http.StatusInternalServerError, "server_error", 50000, "There was an error issuing a token."}
	}
	return tok, expiresIn, nil
}

// parseScope accepts exactly one "<resource>/.default" plus any of MSAL's default OIDC
// scopes, and returns the resource.
func parseScope(scope string) (string, *stsError) {
	var resources []string
	for _, f := range strings.Fields(scope) {
		switch f {
		case "openid", "offline_access", "profile", "email":
			continue
		}
		resources = append(resources, f)
	}
	if len(resources) != 1 || !strings.HasSuffix(resources[0], "/.default") || resources[0] == "/.default" {
		return "", &stsError{http.StatusBadRequest, "invalid_scope", 1002012,
			fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)}
	}
	return strings.TrimSuffix(resources[0], "/.default"), nil
}

// isGraphResource reports whether a resource identifier names Microsoft Graph: this fake's
// Graph endpoint, the public Graph URI, or Graph's appId.
func (s *Server) isGraphResource(resource string) bool {
	resource = strings.TrimSuffix(resource, "/")
	for _, name := range []string{s.GraphEndpoint(), "https://graph.microsoft.com", GraphAppID} {
		if strings.EqualFold(resource, name) {
			return true
		}
	}
	return false
}

// checkSecret matches a client secret against the app's password credentials.
func checkSecret(app *application, secret string, now time.Time) *stsError {
	p := app.matchSecret(secret)
	if p == nil {
		return &stsError{http.StatusUnauthorized, "invalid_client", 7000215,
			fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", app.appID)}
	}
	if now.After(p.end) {
		return &stsError{http.StatusUnauthorized, "invalid_client", 7000222,
			fmt.Sprintf("The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", app.appID)}
	}
	return nil
}

// checkAssertion verifies a client assertion: alg PS256 (MSAL today) or RS256 (older MSAL),
// a thumbprint header (x5t#S256, else x5t; either is accepted with either alg) naming a
// certificate registered on the app, past its propagation delay and within its dates, the
// signature (PSS for PS256), aud = the token endpoint, iss = sub = client_id, and exp (and
// nbf when present) with 5 minutes of skew. No iat is required.
func checkAssertion(app *application, clientID, assertionType, assertion, tokenURL string, now time.Time) *stsError {
	if assertionType != clientAssertionType {
		return &stsError{http.StatusBadRequest, "invalid_request", 50027,
			fmt.Sprintf("Invalid JWT token. The client_assertion_type must be '%s'.", clientAssertionType)}
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"PS256", "RS256"}), jwt.WithoutClaimsValidation())
	unverified, _, err := parser.ParseUnverified(assertion, jwt.MapClaims{})
	if err != nil {
		return &stsError{http.StatusBadRequest, "invalid_request", 50027, "Invalid JWT token. The token is malformed."}
	}
	if alg := unverified.Method.Alg(); alg != "PS256" && alg != "RS256" {
		return &stsError{http.StatusBadRequest, "invalid_request", 5002738,
			fmt.Sprintf("Invalid JWT token. '%s' is not a supported signature algorithm. Supported signing algorithms are: 'RS256, PS256'.", alg)}
	}
	kc, thumb := findAssertionKey(app.stsKeys(now), unverified.Header)
	switch {
	case kc == nil || now.Before(kc.activeAt):
		return keyNotFound(thumb, app.appID)
	case now.Before(kc.start) || now.After(kc.end):
		// The expired form: same prefix as the recorded one, the rest unverified.
		return &stsError{http.StatusUnauthorized, "invalid_client", 700027,
			fmt.Sprintf("Client assertion contains an invalid signature. [Reason - The key used is expired., Thumbprint of key used by client: '%s', Found key 'Start=%s, End=%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'.]",
				thumb, kc.start.UTC().Format("01/02/2006 15:04:05"), kc.end.UTC().Format("01/02/2006 15:04:05"), app.appID)}
	}
	pub, ok := kc.cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return &stsError{http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation."}
	}
	claims := jwt.MapClaims{}
	if _, err := parser.ParseWithClaims(assertion, claims, func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
		return &stsError{http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation."}
	}
	aud, _ := claims.GetAudience()
	if !containsString(aud, tokenURL) {
		return &stsError{http.StatusBadRequest, "invalid_request", 50027,
			fmt.Sprintf("Invalid JWT token. The audience claim of the client assertion must be the token endpoint '%s'.", tokenURL)}
	}
	iss, _ := claims.GetIssuer()
	sub, _ := claims.GetSubject()
	if iss != clientID || sub != clientID {
		return &stsError{http.StatusUnauthorized, "invalid_client", 700021,
			"Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials ."}
	}
	exp, _ := claims.GetExpirationTime()
	nbf, _ := claims.GetNotBefore()
	if exp == nil || now.After(exp.Add(assertionSkew)) || (nbf != nil && now.Before(nbf.Add(-assertionSkew))) {
		return assertionOutOfRange(now, nbf, exp)
	}
	return nil
}

// keyNotFound is AADSTS700027 for a certificate the app does not have (or not yet), in
// the real wording (azure-sdk-for-go sdk/azidentity/testdata/recordings/
// TestClientCertificateCredential_InvalidCertLive.json).
func keyNotFound(thumb, appID string) *stsError {
	return &stsError{http.StatusUnauthorized, "invalid_client", 700027,
		fmt.Sprintf("Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/%s']. Alternatively, SNI may be configured on the app. Please ensure that client assertion is being sent with the x5c claim in the JWT header using MSAL's WithSendX5C() method so that Azure Active Directory can validate the certificate being used.", thumb, appID, appID)}
}

// stsTimeLayout is how the token service writes times in 700024: UTC, seven fractional
// digits, "Z" (an az login --federated-token output quoted in felleslosninger/
// skyporten-examples azure/cli/README.md).
const stsTimeLayout = "2006-01-02T15:04:05.0000000Z"

// assertionOutOfRange is AADSTS700024 in the real form: "Current time: …, assertion valid
// from …, expiry time of assertion …".
func assertionOutOfRange(now time.Time, nbf, exp *jwt.NumericDate) *stsError {
	validFrom, expiry := "(none)", "(none)"
	if nbf != nil {
		validFrom = nbf.UTC().Format(stsTimeLayout)
	}
	if exp != nil {
		expiry = exp.UTC().Format(stsTimeLayout)
	}
	return &stsError{http.StatusUnauthorized, "invalid_client", 700024,
		fmt.Sprintf("Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
			now.UTC().Format(stsTimeLayout), validFrom, expiry)}
}

// findAssertionKey finds the key credential an assertion header points at, by x5t#S256
// (SHA-256) or else x5t (SHA-1), in standard or URL base64 with or without padding. It
// also returns the thumbprint as uppercase hex for error messages.
func findAssertionKey(keys []*keyCredential, header map[string]any) (*keyCredential, string) {
	var want []byte
	var useS256 bool
	if v, ok := header["x5t#S256"].(string); ok {
		want, useS256 = decodeThumbprint(v), true
	} else if v, ok := header["x5t"].(string); ok {
		want = decodeThumbprint(v)
	}
	thumb := strings.ToUpper(hex.EncodeToString(want))
	if want == nil {
		return nil, thumb
	}
	for _, k := range keys {
		have := k.sha1
		if useS256 {
			have = k.sha256
		}
		if bytes.Equal(have, want) {
			return k, thumb
		}
	}
	return nil, thumb
}

// decodeThumbprint decodes a base64 thumbprint in either alphabet, padded or not.
func decodeThumbprint(v string) []byte {
	v = strings.TrimRight(v, "=")
	v = strings.NewReplacer("+", "-", "/", "_").Replace(v)
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil
	}
	return b
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// stsIssuer is the v1 issuer that Graph access tokens carry.
func stsIssuer(tid string) string { return "https://sts.windows.net/" + tid + "/" }

// mintAppToken signs an app-only access token with the claims of a real Graph token.
// The roles claim is absent when no role is granted (and propagated).
func (s *Server) mintAppToken(t *tenant, app *application, sp *servicePrincipal, resource, acr string, roles []string, now time.Time, lifetime time.Duration, cae bool) (string, int, error) {
	expiresIn := int(lifetime/time.Second) - 1
	if expiresIn < 1 {
		expiresIn = 1
	}
	claims := jwt.MapClaims{
		"aud":             resource,
		"iss":             stsIssuer(t.id),
		"iat":             now.Unix(),
		"nbf":             now.Unix(),
		"exp":             now.Add(lifetime).Unix(),
		"app_displayname": app.displayName,
		"appid":           app.appID,
		"appidacr":        acr,
		"idp":             stsIssuer(t.id),
		"idtyp":           "app",
		"oid":             sp.id,
		"sub":             sp.id,
		"tid":             t.id,
		"uti":             randomString(22),
		"ver":             "1.0",
	}
	if len(roles) > 0 {
		claims["roles"] = roles
	}
	addRealisticAppClaims(claims, t.id, cae)
	tok, err := s.signWithNonce(claims)
	return tok, expiresIn, err
}

// operatorKinds maps an operator kind to the directory roles its token carries.
var operatorKinds = map[string][]string{
	"admin":         {roleGlobalAdministrator, roleDefaultUser},
	"appadmin":      {roleApplicationAdministrator, roleDefaultUser},
	"privroleadmin": {rolePrivilegedRoleAdministrator, roleDefaultUser},
	"owner":         {roleDefaultUser},
	"user":          {roleDefaultUser},
}

// OperatorToken mints the delegated token an operator's "az login" would give for Graph
// in the tenant. kind is "admin" (Global Administrator: may do everything), "appadmin"
// (Application Administrator: may create and change applications and service principals
// but not grant app roles), "privroleadmin" (Privileged Role Administrator: may grant app
// roles, and not create or change applications), "owner" (no admin role, but the owner of
// the seeded provisioner app: may change that app and create its service principal) or
// "user" (no admin role: read only). The token is valid for 12 hours and verifies with
// SigningPublicKey.
func (s *Server) OperatorToken(tenantID, kind string) (string, error) {
	wids, ok := operatorKinds[kind]
	if !ok {
		return "", fmt.Errorf("entratest: unknown operator kind %q (want admin, appadmin, privroleadmin, owner or user)", kind)
	}
	now := s.now()
	s.dir.mu.Lock()
	t := s.dir.tenant(tenantID)
	if t == nil {
		s.dir.mu.Unlock()
		return "", fmt.Errorf("entratest: tenant %s: %w", tenantID, errNotFound)
	}
	oid, ok := t.operators[kind]
	if !ok {
		oid = newGUID()
		t.operators[kind] = oid
	}
	upn := kind + "@" + t.domain
	tid := t.id
	s.dir.mu.Unlock()
	sub := sha256.Sum256([]byte(oid))
	claims := jwt.MapClaims{
		"aud":             s.GraphEndpoint(),
		"iss":             stsIssuer(tid),
		"iat":             now.Unix(),
		"nbf":             now.Unix(),
		"exp":             now.Add(12 * time.Hour).Unix(),
		"acr":             "1",
		"amr":             []string{"pwd", "mfa"},
		"app_displayname": "Microsoft Azure CLI",
		"appid":           azureCLIAppID,
		"appidacr":        "0",
		"idtyp":           "user",
		"name":            "Fake " + kind,
		"oid":             oid,
		"scp":             "Application.ReadWrite.All AppRoleAssignment.ReadWrite.All Directory.Read.All",
		"sub":             base64.RawURLEncoding.EncodeToString(sub[:]),
		"tid":             tid,
		"unique_name":     upn,
		"upn":             upn,
		"uti":             randomString(22),
		"ver":             "1.0",
		"wids":            wids,
	}
	return s.sign(claims)
}

// sign makes an RS256 JWT with Entra's header shape (typ, alg, x5t, kid).
func (s *Server) sign(claims jwt.MapClaims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["x5t"] = s.signer.x5t
	tok.Header["kid"] = s.signer.x5t
	return tok.SignedString(s.signer.key)
}

// stsErrorNames gives the OAuth error string for AADSTS numbers used in injected failures.
var stsErrorNames = map[int]string{
	7000215: "invalid_client", 7000222: "invalid_client", 700027: "invalid_client",
	700024: "invalid_client", 700021: "invalid_client", 7000229: "invalid_client",
	7000216: "invalid_client", 700016: "unauthorized_client",
	90002: "invalid_request", 900023: "invalid_request", 50027: "invalid_request",
	900144: "invalid_request", 5002738: "invalid_request", 50196: "invalid_request",
	1002012: "invalid_scope", 70011: "invalid_scope", 500011: "invalid_resource",
	// workload identity federation
	70021: "invalid_request", 700211: "invalid_request", 700212: "invalid_request", 700213: "invalid_request",
	7002138: "invalid_request", 700222: "invalid_request", 50166: "invalid_request", 70023: "invalid_request",
	7000272: "invalid_client",
}

// injectedSTSError builds the AADSTS error for an injected Failure: Code is the AADSTS
// number (with or without the "AADSTS" prefix).
func injectedSTSError(f Failure) stsError {
	code, _ := strconv.Atoi(strings.TrimPrefix(f.Code, "AADSTS"))
	name, ok := stsErrorNames[code]
	if !ok {
		name = "invalid_request"
		if f.Status >= 500 {
			name = "temporarily_unavailable"
		}
	}
	text := f.Message
	if text == "" {
		text = "Injected failure."
	}
	return stsError{status: f.Status, err: name, code: code, text: text}
}

// writeSTSError writes the documented AADSTS error JSON.
func (s *Server) writeSTSError(w http.ResponseWriter, r *http.Request, e stsError) {
	now := s.now().UTC()
	stamp := now.Format("2006-01-02 15:04:05Z")
	traceID := w.Header().Get("x-ms-request-id")
	if traceID == "" {
		traceID = newGUID()
	}
	correlationID := r.Header.Get("client-request-id")
	if !isGUID(correlationID) {
		correlationID = newGUID()
	}
	description := e.text
	codes := []int{}
	if e.code != 0 {
		description = fmt.Sprintf("AADSTS%d: %s", e.code, e.text)
		codes = append(codes, e.code)
	}
	description += "\r\nTrace ID: " + traceID + "\r\nCorrelation ID: " + correlationID + "\r\nTimestamp: " + stamp
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("x-ms-request-id", traceID)
	writeJSON(w, e.status, "application/json; charset=utf-8", object{
		{"error", e.err},
		{"error_description", description},
		{"error_codes", codes},
		{"timestamp", stamp},
		{"trace_id", traceID},
		{"correlation_id", correlationID},
		// Always the public cloud's page, whatever host answered (the recordings).
		{"error_uri", "https://login.microsoftonline.com/error?code=" + strconv.Itoa(e.code)},
	})
}

// object is a JSON object that keeps its keys in order.
type object []field

type field struct {
	name  string
	value any
}

// MarshalJSON writes the fields in order.
func (o object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		name, err := json.Marshal(f.name)
		if err != nil {
			return nil, err
		}
		value, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		buf.Write(name)
		buf.WriteByte(':')
		buf.Write(value)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// writeJSON writes v as the response body with the given status and content type.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "entratest: encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
