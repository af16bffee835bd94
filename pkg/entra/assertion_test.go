package entra

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/golang-jwt/jwt/v5"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/tpmkey"
)

// appidacr reads the appidacr claim of a token without verifying it.
func appidacr(t *testing.T, raw string) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Appidacr string `json:"appidacr"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c.Appidacr
}

// TestSignerCredentialAssertion: the assertion is the one MSAL sends Entra ID.
func TestSignerCredentialAssertion(t *testing.T) {
	sts := newFakeSTS(t)
	b, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := sts.cloud(t)
	cred, err := NewSignerCredential(c, testTenant, testClient, b.Cert, b.Key, sts.options())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FetchToken(testContext(t), cred, c.GraphScope()); err != nil {
		t.Fatal(err)
	}
	sts.mu.Lock()
	form := sts.form
	sts.mu.Unlock()
	if got := form["client_assertion_type"]; len(got) != 1 || got[0] != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		t.Fatalf("client_assertion_type = %v", got)
	}
	raw := form["client_assertion"][0]
	tok, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return &b.Key.PublicKey, nil }, jwt.WithValidMethods([]string{"PS256"}))
	if err != nil {
		t.Fatalf("assertion does not verify as PS256 with the certificate's key: %v", err)
	}
	sum := sha256.Sum256(b.Cert.Raw)
	if tok.Header["x5t#S256"] != base64.StdEncoding.EncodeToString(sum[:]) || tok.Header["typ"] != "JWT" {
		t.Fatalf("header %v", tok.Header)
	}
	claims := tok.Claims.(jwt.MapClaims)
	wantAud := sts.srv.URL + "/" + testTenant + "/oauth2/v2.0/token"
	if claims["aud"] != wantAud || claims["iss"] != testClient || claims["sub"] != testClient {
		t.Fatalf("claims aud %v iss %v sub %v, want aud %s", claims["aud"], claims["iss"], claims["sub"], wantAud)
	}
	nbf, _ := claims.GetNotBefore()
	exp, _ := claims.GetExpirationTime()
	if nbf == nil || exp == nil || exp.Sub(nbf.Time) != assertionLifetime || time.Since(nbf.Time) > time.Minute {
		t.Fatalf("nbf %v exp %v", nbf, exp)
	}
	if jti, _ := claims["jti"].(string); len(jti) != 36 {
		t.Fatalf("jti %q", jti)
	}

	other, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSignerCredential(c, testTenant, testClient, b.Cert, other.Key, sts.options()); err == nil {
		t.Fatal("a signer whose key is not the certificate's was accepted")
	}
	if _, err := NewSignerCredential(c, "bad tenant!", testClient, b.Cert, b.Key, sts.options()); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad tenant: %v", err)
	}
}

// TestTPMCredentialGetsCertificateToken: a key made in a (software) TPM gets a
// certificate-authenticated token (appidacr 2) from the fake, through
// NewCertificateCredential like a keyring key; with the TPM gone the error is one line.
func TestTPMCredentialGetsCertificateToken(t *testing.T) {
	sw := entratest.StartSoftwareTPM(t)
	t.Setenv(tpmkey.EnvTPM, sw.Socket)
	srv := newFake(t)
	sc := fakeSeed(t, srv, entratest.ScenarioLegacy)
	b, err := tpmkey.Generate(context.Background(), "", time.Now(), certs.DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	// What the keyring item gives back.
	b, err = certs.ParseBundle(b.PEM())
	if err != nil || !b.TPMBound() {
		t.Fatalf("ParseBundle: %v", err)
	}
	if err := srv.AddKeyCredential(sc.TenantID, sc.ClientID, b.Cert, b.Cert.NotBefore, b.Cert.NotAfter); err != nil {
		t.Fatal(err)
	}
	c := fakeCloud(t, srv)
	opts := CredentialOptions{Transport: srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}}
	cred, err := NewCertificateCredential(c, sc.TenantID, sc.ClientID, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	at, err := FetchToken(testContext(t), cred, c.GraphScope())
	if err != nil {
		t.Fatalf("TPM-signed assertion: %v", err)
	}
	t.Logf("token with a TPM-signed assertion in %s", time.Since(start).Round(time.Millisecond))
	if got := appidacr(t, at.Token); got != "2" {
		t.Fatalf("appidacr %q, want 2 (certificate)", got)
	}

	// The TPM is gone: a new credential (a new process) fails in one line, saying so.
	sw.Stop()
	cred, err = NewCertificateCredential(c, sc.TenantID, sc.ClientID, b, opts)
	if err != nil {
		t.Fatalf("building the credential needs no TPM: %v", err)
	}
	_, err = FetchToken(testContext(t), cred, c.GraphScope())
	if !errors.Is(err, tpmkey.ErrNoTPM) || strings.ContainsAny(err.Error(), "\r\n") {
		t.Fatalf("gone TPM: %q", err)
	}
	t.Logf("gone: %v", err)

	// A TPM key block that does not belong to the certificate is refused before any request.
	other, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewCertificateCredential(c, sc.TenantID, sc.ClientID, &certs.Bundle{Cert: other.Cert, TPMKey: b.TPMKey}, opts); !errors.Is(err, tpmkey.ErrInvalidBlock) {
		t.Fatalf("mismatched TPM key: %v", err)
	}
}

// TestSignerCredentialDomainTenant: for a tenant given as a domain the assertion's aud is
// the token endpoint the OIDC metadata names (by tenant GUID), as MSAL sends it.
func TestSignerCredentialDomainTenant(t *testing.T) {
	t.Setenv("AZURE_REGIONAL_AUTHORITY_NAME", "")
	const domain = "contoso.example.com"
	var (
		mu  sync.Mutex
		aud any
		srv *httptest.Server
	)
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/openid-configuration"):
			_ = json.NewEncoder(w).Encode(map[string]string{
				"authorization_endpoint": srv.URL + "/" + testTenant + "/oauth2/v2.0/authorize",
				"token_endpoint":         srv.URL + "/" + testTenant + "/oauth2/v2.0/token",
				"issuer":                 srv.URL + "/" + testTenant + "/v2.0",
			})
		case strings.HasSuffix(r.URL.Path, "/token"):
			_ = r.ParseForm()
			tok, _, err := jwt.NewParser().ParseUnverified(r.PostForm.Get("client_assertion"), jwt.MapClaims{})
			if err == nil {
				mu.Lock()
				aud = tok.Claims.(jwt.MapClaims)["aud"]
				mu.Unlock()
			}
			_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":3599,"access_token":"fake-access-token"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := ResolveCloud("", srv.URL, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := NewSignerCredential(c, domain, testClient, b.Cert, b.Key, CredentialOptions{Transport: srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FetchToken(testContext(t), cred, c.GraphScope()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := srv.URL + "/" + testTenant + "/oauth2/v2.0/token"; aud != want {
		t.Fatalf("aud %v, want %s", aud, want)
	}
}
