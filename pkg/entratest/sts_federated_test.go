package entratest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"
)

// assertionCredential is azidentity's ClientAssertionCredential with getAssertion asked
// for every token, as the token binary will use it.
func assertionCredential(t *testing.T, srv *Server, tenantID, clientID string, getAssertion func(context.Context) (string, error)) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientAssertionCredential(tenantID, clientID, getAssertion,
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: clientOptions(srv), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// fetchGitHubToken plays a GitHub Actions job asking for its ID token.
func fetchGitHubToken(ctx context.Context, srv *Server) (string, error) {
	reqURL, reqToken := srv.GitHubTokenRequest()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reqURL+"&audience="+url.QueryEscape(FederationAudience), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "bearer "+reqToken)
	res, err := srv.Client().Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var body struct{ Value string }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.Value == "" {
		return "", errors.New("no token from the GitHub endpoint: " + res.Status)
	}
	return body.Value, nil
}

func TestFederatedGitHubTokenGetsTheAppToken(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	if err := srv.AddFIC(sc.TenantID, sc.ClientID, "github-prod", GitHubIssuer, DefaultOIDCSubject, FederationAudience); err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	cred := assertionCredential(t, srv, sc.TenantID, sc.ClientID, func(ctx context.Context) (string, error) {
		asked.Add(1)
		return fetchGitHubToken(ctx, srv)
	})
	claims, _ := claimsOf(t, srv, mustToken(t, srv, cred))
	if claims["appid"] != sc.ClientID || claims["appidacr"] != "2" || claims["oid"] != sc.ServicePrincipalID || claims["idtyp"] != "app" {
		t.Errorf("claims = %v", claims)
	}
	if got := rolesOf(claims); !sameSet(got, RequiredRoleValues()) {
		t.Errorf("roles = %v, want the required roles", got)
	}
	if asked.Load() != 1 || srv.Counts()[RouteGitHubIDToken] != 1 {
		t.Errorf("assertion asked %d times, GitHub endpoint %d; want 1 each", asked.Load(), srv.Counts()[RouteGitHubIDToken])
	}
	if srv.Counts()[RouteOIDCDiscovery] != 0 {
		t.Error("the STS fetched discovery for GitHub's issuer, whose keys it knows locally")
	}
}

func TestFederatedK8sTokenFileDiscoveredOverTLSAndRotated(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	if err := srv.AddFIC(sc.TenantID, sc.ClientID, "k8s", srv.OIDCIssuerURL(), srv.K8sSubject(), FederationAudience); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "azure-identity-token")
	readFile := func(context.Context) (string, error) {
		b, err := os.ReadFile(path)
		return string(b), err
	}
	if err := srv.WriteK8sTokenFile(path); err != nil {
		t.Fatal(err)
	}
	mustToken(t, srv, assertionCredential(t, srv, sc.TenantID, sc.ClientID, readFile))
	if c := srv.Counts(); c[RouteOIDCDiscovery] != 1 || c[RouteOIDCKeys] != 1 {
		t.Errorf("discovery %d, keys %d; want one each", c[RouteOIDCDiscovery], c[RouteOIDCKeys])
	}
	// The cluster rotates its signing key and the kubelet the file: the new kid is
	// found in the JWKS fetched afresh.
	if err := srv.RotateOIDCKey(); err != nil {
		t.Fatal(err)
	}
	if err := srv.WriteK8sTokenFile(path); err != nil {
		t.Fatal(err)
	}
	mustToken(t, srv, assertionCredential(t, srv, sc.TenantID, sc.ClientID, readFile))
}

func TestFederatedPipelinesToken(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	conn := srv.PipelinesServiceConnectionID()
	if err := srv.AddFIC(sc.TenantID, sc.ClientID, "ado", srv.PipelinesIssuer(), "sc://acme/app/"+conn, FederationAudience); err != nil {
		t.Fatal(err)
	}
	cred := assertionCredential(t, srv, sc.TenantID, sc.ClientID, func(ctx context.Context) (string, error) {
		uri, access := srv.PipelinesTokenRequest()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, uri+"?api-version=7.1&serviceConnectionId="+conn, nil)
		req.Header.Set("Authorization", "Bearer "+access)
		res, err := srv.Client().Do(req)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		var body struct{ OIDCToken string }
		err = json.NewDecoder(res.Body).Decode(&body)
		return body.OIDCToken, err
	})
	mustToken(t, srv, cred)
}

// postAssertion sends a client-credentials request with a client assertion and returns
// the STS answer.
func postAssertion(t *testing.T, srv *Server, tenantID, clientID, assertion string) (int, map[string]any) {
	t.Helper()
	form := url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {srv.GraphEndpoint() + "/.default"},
		"client_assertion_type": {clientAssertionType}, "client_assertion": {assertion},
	}
	res, err := srv.Client().PostForm(srv.tokenEndpoint(tenantID), form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("token answer %q: %v", body, err)
	}
	return res.StatusCode, m
}

// wantFederatedError checks the AADSTS code and the shape of an STS error body.
func wantFederatedError(t *testing.T, status int, body map[string]any, code string) {
	t.Helper()
	codes, _ := body["error_codes"].([]any)
	desc, _ := body["error_description"].(string)
	if status < 400 || len(codes) != 1 || json.Number(strings.TrimPrefix(code, "AADSTS")).String() != jsonNumber(codes[0]) {
		t.Fatalf("status %d, body %v; want %s", status, body, code)
	}
	if !strings.HasPrefix(desc, code+": ") || body["error"] == "" || body["timestamp"] == nil || body["trace_id"] == nil || body["correlation_id"] == nil {
		t.Errorf("error body %v is not shaped like an AADSTS error", body)
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// signRaw signs claims with an arbitrary key (not one the fake publishes).
func signRaw(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFederatedMismatchMatrix(t *testing.T) {
	clock := &testClock{}
	srv := newServer(t, WithClock(clock.Now))
	sc := seed(t, srv, ScenarioMigrated)
	if err := srv.AddFIC(sc.TenantID, sc.ClientID, "github-prod", GitHubIssuer, DefaultOIDCSubject, FederationAudience); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddFIC(sc.TenantID, sc.ClientID, "nowhere", srv.URL+"/_oidc/nowhere", "s", FederationAudience); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddFIC(sc.TenantID, sc.ClientID, "k8s", srv.OIDCIssuerURL(), srv.K8sSubject(), FederationAudience); err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	mint := func(claims map[string]any) string {
		t.Helper()
		if _, ok := claims["iss"]; !ok {
			claims["iss"] = GitHubIssuer
		}
		tok, err := srv.MintExternalToken(claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	k8sKid := kidOf(t, mint(map[string]any{"iss": srv.OIDCIssuerURL()}))
	k8sClaims := jwt.MapClaims{"iss": srv.OIDCIssuerURL(), "sub": srv.K8sSubject(), "aud": FederationAudience, "exp": now.Add(time.Hour).Unix()}
	entraToken, _ := srv.OperatorToken(sc.TenantID, "admin")
	cases := []struct {
		name, assertion, code string
	}{
		{"issuer with a trailing slash", mint(map[string]any{"iss": GitHubIssuer + "/"}), "AADSTS700211"},
		{"issuer no FIC names", mint(map[string]any{"iss": "https://example.invalid"}), "AADSTS700211"},
		{"subject differing only in case", mint(map[string]any{"sub": strings.ToUpper(DefaultOIDCSubject)}), "AADSTS7002138"},
		{"other subject", mint(map[string]any{"sub": "repo:acme/app:environment:dev"}), "AADSTS700213"},
		{"subject with a trailing space", mint(map[string]any{"sub": DefaultOIDCSubject + " "}), "AADSTS700213"},
		{"wrong audience", mint(map[string]any{"aud": "api://other"}), "AADSTS700212"},
		{"expired", mint(map[string]any{"iat": now.Add(-time.Hour).Unix(), "nbf": now.Add(-time.Hour).Unix(), "exp": now.Add(-10 * time.Minute).Unix()}), "AADSTS700024"},
		{"not yet valid", mint(map[string]any{"nbf": now.Add(10 * time.Minute).Unix(), "exp": now.Add(20 * time.Minute).Unix()}), "AADSTS700024"},
		{"no exp", mint(map[string]any{"exp": nil}), "AADSTS700024"},
		{"lifetime over 25 hours", mint(map[string]any{"exp": now.Add(26 * time.Hour).Unix()}), "AADSTS70023"},
		{"Entra-issued token", entraToken, "AADSTS700222"},
		{"ES384 token", signRaw(t, jwt.SigningMethodES384, ecKey, "k", k8sClaims), "AADSTS5002738"},
		{"key not in the issuer's JWKS", signRaw(t, jwt.SigningMethodRS256, otherKey, "unknown-kid", k8sClaims), "AADSTS7000272"},
		{"signed by another key with the issuer's kid", signRaw(t, jwt.SigningMethodRS256, otherKey, k8sKid, k8sClaims), "AADSTS700027"},
		{"issuer without discovery", mint(map[string]any{"iss": srv.URL + "/_oidc/nowhere", "sub": "s"}), "AADSTS50166"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postAssertion(t, srv, sc.TenantID, sc.ClientID, tc.assertion)
			wantFederatedError(t, status, body, tc.code)
		})
	}
	if status, body := postAssertion(t, srv, sc.TenantID, sc.ClientID, mint(map[string]any{})); status != http.StatusOK {
		t.Fatalf("the matching token was refused: %d %v", status, body)
	}
}

func TestFederatedCredentialPropagates(t *testing.T) {
	clock := &testClock{}
	srv := newServer(t, WithClock(clock.Now), WithFICPropagationDelay(time.Minute))
	sc := seed(t, srv, ScenarioMigrated)
	base := "/v1.0/applications(appId='" + sc.ClientID + "')/federatedIdentityCredentials"
	wantStatus(t, call(t, srv, http.MethodPost, base, adminToken(t, srv, sc.TenantID), ficBody("prod", DefaultOIDCSubject)), http.StatusCreated, "")
	tok, err := srv.MintExternalToken(map[string]any{"iss": GitHubIssuer})
	if err != nil {
		t.Fatal(err)
	}
	status, body := postAssertion(t, srv, sc.TenantID, sc.ClientID, tok)
	wantFederatedError(t, status, body, "AADSTS70021")
	for _, want := range []string{"Assertion Issuer: '" + GitHubIssuer + "'", "Assertion Subject: '" + DefaultOIDCSubject + "'"} {
		if !strings.Contains(body["error_description"].(string), want) {
			t.Errorf("70021 description lacks %q", want)
		}
	}
	clock.Advance(61 * time.Second)
	if status, body := postAssertion(t, srv, sc.TenantID, sc.ClientID, tok); status != http.StatusOK {
		t.Fatalf("after the propagation delay: %d %v", status, body)
	}
	// A changed credential propagates again; SetFICPropagationDelay applies to new writes.
	srv.SetFICPropagationDelay(0)
	wantStatus(t, call(t, srv, http.MethodPatch, base+"/prod", adminToken(t, srv, sc.TenantID), map[string]any{"subject": "repo:acme/app:environment:dev"}), http.StatusNoContent, "")
	dev, _ := srv.MintExternalToken(map[string]any{"iss": GitHubIssuer, "sub": "repo:acme/app:environment:dev"})
	if status, body := postAssertion(t, srv, sc.TenantID, sc.ClientID, dev); status != http.StatusOK {
		t.Fatalf("changed credential with no delay: %d %v", status, body)
	}
}

func TestCertificateAssertionsStayOnTheCertificatePath(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	// An external token for an app without FICs is refused as federated, not as a
	// certificate assertion (which would be AADSTS700027).
	tok, _ := srv.MintExternalToken(nil)
	status, body := postAssertion(t, srv, sc.TenantID, sc.ClientID, tok)
	wantFederatedError(t, status, body, "AADSTS700211")
	status, body = postAssertion(t, srv, sc.TenantID, "00000000-0000-0000-0000-00000000beef", tok)
	wantFederatedError(t, status, body, "AADSTS700016")
}
