package entratest

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// externalClaims verifies an external token against the JWKS its issuer publishes on the
// fake (GitHub and Pipelines keys are served under /_oidc/ too) and returns its claims.
func externalClaims(t *testing.T, srv *Server, kind, tok string) jwt.MapClaims {
	t.Helper()
	keys, err := srv.publishedKeys(kind, srv.now())
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		return keys[kid], nil
	}, jwt.WithValidMethods([]string{"RS256"}))
	if err != nil {
		t.Fatalf("external token does not verify with the %s keys: %v", kind, err)
	}
	return claims
}

// oidcRequest sends a request to an external issuer's endpoint with an optional bearer.
func oidcRequest(t *testing.T, srv *Server, method, url, bearer string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", bearer)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s %s: %d %q is not JSON", method, url, res.StatusCode, body)
	}
	return res.StatusCode, m
}

func TestOIDCDiscoveryAndKeyRotation(t *testing.T) {
	clock := &testClock{}
	srv := newServer(t, WithClock(clock.Now))
	status, doc := oidcRequest(t, srv, http.MethodGet, srv.OIDCIssuerURL()+"/.well-known/openid-configuration", "")
	if status != 200 || doc["issuer"] != srv.OIDCIssuerURL() || doc["jwks_uri"] != srv.URL+"/_oidc/k8s/keys" {
		t.Fatalf("k8s discovery = %d %v", status, doc)
	}
	if _, gh := oidcRequest(t, srv, http.MethodGet, srv.URL+"/_oidc/github/.well-known/openid-configuration", ""); gh["issuer"] != GitHubIssuer {
		t.Errorf("github discovery issuer = %v", gh["issuer"])
	}
	keyCount := func() int {
		_, jwks := oidcRequest(t, srv, http.MethodGet, srv.URL+"/_oidc/k8s/keys", "")
		keys, _ := jwks["keys"].([]any)
		for _, k := range keys {
			if m := k.(map[string]any); m["kty"] != "RSA" || m["alg"] != "RS256" || m["kid"] == "" || m["n"] == "" {
				t.Errorf("key %v", m)
			}
		}
		return len(keys)
	}
	if n := keyCount(); n != 1 {
		t.Fatalf("%d keys before rotation, want 1", n)
	}
	old, err := srv.MintExternalToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RotateOIDCKey(); err != nil {
		t.Fatal(err)
	}
	if n := keyCount(); n != 2 {
		t.Fatalf("%d keys after rotation, want the old and the new", n)
	}
	fresh, _ := srv.MintExternalToken(nil)
	if kidOf(t, old) == kidOf(t, fresh) {
		t.Error("a token minted after the rotation has the old kid")
	}
	clock.Advance(25 * time.Hour)
	if n := keyCount(); n != 1 {
		t.Fatalf("%d keys a day after rotation, want only the new one", n)
	}
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

func TestGitHubIDTokenEndpoint(t *testing.T) {
	srv := newServer(t, WithOIDCSubject("repo:acme/app:ref:refs/heads/main"))
	url, token := srv.GitHubTokenRequest()
	if !strings.Contains(url, "?api-version=") || token == "" {
		t.Fatalf("request URL %q must carry a query and a token", url)
	}
	for _, bearer := range []string{"", "bearer wrong", "Basic " + token} {
		if status, _ := oidcRequest(t, srv, http.MethodGet, url+"&audience=x", bearer); status != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", bearer, status)
		}
	}
	status, body := oidcRequest(t, srv, http.MethodGet, url+"&audience=api://custom", "bearer "+token)
	value, _ := body["value"].(string)
	if status != 200 || value == "" {
		t.Fatalf("answer %d %v", status, body)
	}
	claims := externalClaims(t, srv, issuerGitHub, value)
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if claims["iss"] != GitHubIssuer || claims["sub"] != "repo:acme/app:ref:refs/heads/main" || claims["aud"] != "api://custom" ||
		claims["repository"] != "acme/app" || claims["ref"] != "refs/heads/main" || claims["jti"] == nil ||
		iat == nil || exp == nil || exp.Sub(iat.Time) < 5*time.Minute || exp.Sub(iat.Time) > 10*time.Minute {
		t.Errorf("claims = %v", claims)
	}
	_, body = oidcRequest(t, srv, http.MethodGet, url, "Bearer "+token)
	if aud := externalClaims(t, srv, issuerGitHub, body["value"].(string))["aud"]; aud != FederationAudience {
		t.Errorf("aud without audience = %v, want %s", aud, FederationAudience)
	}
	// Faults can be injected on the issuers' routes too, e.g. a flaky GitHub endpoint.
	srv.FailNext(RouteGitHubIDToken, Failure{Status: http.StatusServiceUnavailable, Message: "try later"})
	if status, body := oidcRequest(t, srv, http.MethodGet, url, "Bearer "+token); status != http.StatusServiceUnavailable || body["message"] != "try later" {
		t.Errorf("injected failure answered %d %v", status, body)
	}
}

func TestPipelinesOIDCTokenEndpoint(t *testing.T) {
	srv := newServer(t)
	uri, access := srv.PipelinesTokenRequest()
	query := "?api-version=7.1&serviceConnectionId=" + srv.PipelinesServiceConnectionID()
	if status, _ := oidcRequest(t, srv, http.MethodPost, uri+query, ""); status != http.StatusUnauthorized {
		t.Errorf("no bearer: %d, want 401", status)
	}
	if status, _ := oidcRequest(t, srv, http.MethodPost, uri+"?api-version=7.1", "Bearer "+access); status != http.StatusBadRequest {
		t.Errorf("no serviceConnectionId: %d, want 400", status)
	}
	if status, _ := oidcRequest(t, srv, http.MethodGet, uri+query, "Bearer "+access); status != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", status)
	}
	status, body := oidcRequest(t, srv, http.MethodPost, uri+query, "Bearer "+access)
	tok, _ := body["oidcToken"].(string)
	if status != 200 || tok == "" {
		t.Fatalf("answer %d %v", status, body)
	}
	claims := externalClaims(t, srv, issuerPipelines, tok)
	if claims["iss"] != srv.PipelinesIssuer() || !strings.HasPrefix(srv.PipelinesIssuer(), "https://vstoken.dev.azure.com/") ||
		claims["sub"] != "sc://acme/app/"+srv.PipelinesServiceConnectionID() || claims["aud"] != FederationAudience {
		t.Errorf("claims = %v", claims)
	}
}

func TestWriteK8sTokenFileRotates(t *testing.T) {
	srv := newServer(t, WithK8sServiceAccount("ci", "deployer"))
	path := filepath.Join(t.TempDir(), "token")
	if err := srv.WriteK8sTokenFile(path); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v; want 0600", err, info.Mode())
	}
	first, _ := os.ReadFile(path)
	claims := externalClaims(t, srv, issuerK8s, string(first))
	aud, _ := claims.GetAudience()
	if claims["iss"] != srv.OIDCIssuerURL() || claims["sub"] != "system:serviceaccount:ci:deployer" ||
		srv.K8sSubject() != "system:serviceaccount:ci:deployer" || len(aud) != 1 || aud[0] != FederationAudience {
		t.Errorf("claims = %v", claims)
	}
	if err := srv.WriteK8sTokenFile(path); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(path); string(second) == string(first) {
		t.Error("rewriting the token file did not rotate the token")
	}
}

func TestWriteWorkdirCIEnv(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioEmpty)
	w, err := WriteWorkdir(t.TempDir(), srv, sc)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(w.CIEnvFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("ci-env: %v (want mode 0600)", err)
	}
	out, err := exec.Command("sh", "-c", `. "$1" && printf '%s\n' "$ACTIONS_ID_TOKEN_REQUEST_URL" "$ACTIONS_ID_TOKEN_REQUEST_TOKEN" "$SYSTEM_OIDCREQUESTURI" "$SYSTEM_ACCESSTOKEN" "$AZURE_FEDERATED_TOKEN_FILE" "$ENTRACLAW_AUTHORITY_HOST"`, "sh", w.CIEnvFile).Output()
	if err != nil {
		t.Fatalf("sourcing ci-env: %v", err)
	}
	ghURL, ghToken := srv.GitHubTokenRequest()
	adoURI, adoToken := srv.PipelinesTokenRequest()
	want := strings.Join([]string{ghURL, ghToken, adoURI, adoToken, w.K8sTokenFile, srv.AuthorityHost()}, "\n") + "\n"
	if string(out) != want {
		t.Fatalf("ci-env exports\n%s\nwant\n%s", out, want)
	}
	tok, err := os.ReadFile(w.K8sTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if claims := externalClaims(t, srv, issuerK8s, string(tok)); claims["iss"] != srv.OIDCIssuerURL() {
		t.Errorf("token file iss = %v", claims["iss"])
	}
}
