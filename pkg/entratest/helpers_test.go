package entratest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

func TestMain(m *testing.M) {
	// Both silently redirect azidentity away from the fake.
	os.Unsetenv("AZURE_AUTHORITY_HOST")
	os.Unsetenv("AZURE_REGIONAL_AUTHORITY_NAME")
	os.Exit(m.Run())
}

// testClock is a clock that runs with real time plus an offset tests can advance.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

func newServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	srv, err := NewServer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func seed(t *testing.T, srv *Server, name string) *Scenario {
	t.Helper()
	sc, err := srv.Seed(name)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func generateBundle(t *testing.T) *certs.Bundle {
	t.Helper()
	b, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func clientOptions(srv *Server) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: srv.AuthorityHost()},
		Transport: srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

func certCredential(t *testing.T, srv *Server, tenantID, clientID string, b *certs.Bundle) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientCertificateCredential(tenantID, clientID, []*x509.Certificate{b.Cert}, b.Key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: clientOptions(srv), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func secretCredential(t *testing.T, srv *Server, tenantID, clientID, secret string) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenantID, clientID, secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(srv), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// getToken asks cred for a Graph token of the fake.
func getToken(srv *Server, cred azcore.TokenCredential) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{srv.GraphEndpoint() + "/.default"}})
	return tok.Token, err
}

func mustToken(t *testing.T, srv *Server, cred azcore.TokenCredential) string {
	t.Helper()
	tok, err := getToken(srv, cred)
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	return tok
}

// stsCodes extracts error_codes from an azidentity authentication failure.
func stsCodes(t *testing.T, err error) []int {
	t.Helper()
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil {
		t.Fatalf("want an AuthenticationFailedError with a response, got %v", err)
	}
	body, perr := runtime.Payload(afe.RawResponse)
	if perr != nil {
		t.Fatal(perr)
	}
	var e struct {
		ErrorCodes []int `json:"error_codes"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("decoding STS error %s: %v", body, err)
	}
	return e.ErrorCodes
}

func wantSTSCode(t *testing.T, err error, code int) {
	t.Helper()
	if err == nil {
		t.Fatalf("want AADSTS%d, got a token", code)
	}
	if got := stsCodes(t, err); len(got) != 1 || got[0] != code {
		t.Fatalf("error_codes = %v, want [%d]", got, code)
	}
}

// claimsOf verifies tok with the fake's signing key and returns its claims and header.
func claimsOf(t *testing.T, srv *Server, tok string) (jwt.MapClaims, map[string]any) {
	t.Helper()
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return srv.SigningPublicKey(), nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithLeeway(24*time.Hour))
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	return claims, parsed.Header
}

func rolesOf(claims jwt.MapClaims) []string { return stringList(claims["roles"]) }

func adminToken(t *testing.T, srv *Server, tenantID string) string {
	return operatorToken(t, srv, tenantID, "admin")
}

func operatorToken(t *testing.T, srv *Server, tenantID, kind string) string {
	t.Helper()
	tok, err := srv.OperatorToken(tenantID, kind)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// response is a raw HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body as an object.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d, body %q is not a JSON object: %v", r.status, r.body, err)
	}
	return m
}

// graphCode is the error.code of a Graph error body.
func (r response) graphCode(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func (r response) graphMessage(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

// call sends a request to the fake; path starts with "/"; body is JSON-encoded unless it
// is a string (sent as is) or nil.
func call(t *testing.T, srv *Server, method, path, token string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// wantStatus fails unless r has the status (and, when code is not empty, the Graph error code).
func wantStatus(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if code != "" {
		if got := r.graphCode(t); got != code {
			t.Fatalf("error code = %q, want %q; body %s", got, code, r.body)
		}
	}
}

// values returns the "value" array of a collection response.
func values(t *testing.T, r response) []map[string]any {
	t.Helper()
	raw, ok := r.json(t)["value"].([]any)
	if !ok {
		t.Fatalf("no value array in %s", r.body)
	}
	out := make([]map[string]any, 0, len(raw))
	for _, v := range raw {
		out = append(out, v.(map[string]any))
	}
	return out
}
