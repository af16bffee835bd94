package entra

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

const (
	testTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testClient = "11111111-2222-3333-4444-555555555555"
)

// fakeSTS is a minimal token authority: OIDC metadata plus a token endpoint
// whose answer the test chooses.
type fakeSTS struct {
	srv *httptest.Server

	mu        sync.Mutex
	status    int    // token endpoint status
	body      string // token endpoint body
	tokenHits int
	form      map[string][]string
}

func newFakeSTS(t *testing.T) *fakeSTS {
	t.Helper()
	// azidentity honours these silently; the tests below pin the authority themselves.
	t.Setenv("AZURE_REGIONAL_AUTHORITY_NAME", "")
	f := &fakeSTS{status: http.StatusOK, body: `{"token_type":"Bearer","expires_in":3599,"access_token":"fake-access-token"}`}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSTS) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	base := f.srv.URL
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && len(parts) == 4 && parts[1] == "v2.0" && parts[3] == "openid-configuration":
		tenant := parts[0]
		_ = json.NewEncoder(w).Encode(map[string]string{
			"authorization_endpoint":        base + "/" + tenant + "/oauth2/v2.0/authorize",
			"token_endpoint":                base + "/" + tenant + "/oauth2/v2.0/token",
			"device_authorization_endpoint": base + "/" + tenant + "/oauth2/v2.0/devicecode",
			"issuer":                        base + "/" + tenant + "/v2.0",
		})
	case r.Method == http.MethodPost && len(parts) == 4 && parts[3] == "token":
		_ = r.ParseForm()
		f.mu.Lock()
		f.tokenHits++
		f.form = r.PostForm
		status, body := f.status, f.body
		f.mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	case r.Method == http.MethodPost && len(parts) == 4 && parts[3] == "devicecode":
		_, _ = w.Write([]byte(`{"user_code":"ABCD-EFGH","device_code":"dc","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":1,"message":"To sign in, open https://microsoft.com/devicelogin and enter ABCD-EFGH."}`))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeSTS) respond(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}

func (f *fakeSTS) hits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenHits
}

func (f *fakeSTS) cloud(t *testing.T) Cloud {
	t.Helper()
	c, err := ResolveCloud("", f.srv.URL, f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakeSTS) options() CredentialOptions {
	return CredentialOptions{Transport: f.srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCertificateCredentialGetsToken(t *testing.T) {
	sts := newFakeSTS(t)
	// Ours must win over the environment.
	t.Setenv("AZURE_AUTHORITY_HOST", "https://127.0.0.1:1/")
	b, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := sts.cloud(t)
	cred, err := NewCertificateCredential(c, testTenant, testClient, b, sts.options())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := FetchToken(testContext(t), cred, c.GraphScope())
	if err != nil {
		t.Fatalf("FetchToken: %v", err)
	}
	if tok.Token != "fake-access-token" {
		t.Errorf("token = %q", tok.Token)
	}
	sts.mu.Lock()
	form := sts.form
	sts.mu.Unlock()
	if got := form["client_id"]; len(got) != 1 || got[0] != testClient {
		t.Errorf("client_id = %v", got)
	}
	if got := form["client_assertion"]; len(got) != 1 || got[0] == "" {
		t.Errorf("no client assertion sent")
	}
	if got := strings.Join(form["scope"], " "); !strings.HasPrefix(got, c.GraphScope()) {
		t.Errorf("scope = %q, want it to start with %q", got, c.GraphScope())
	}
}

func TestCredentialConstructorsValidate(t *testing.T) {
	c, _ := ResolveCloud("", "", "")
	if _, err := NewSecretCredential(c, "not a tenant", testClient, "s", CredentialOptions{}); err == nil {
		t.Error("bad tenant accepted")
	}
	if _, err := NewSecretCredential(c, testTenant, "contoso.com", "s", CredentialOptions{}); err == nil {
		t.Error("bad client id accepted")
	}
	if _, err := NewSecretCredential(c, testTenant, testClient, "", CredentialOptions{}); err == nil {
		t.Error("empty secret accepted")
	}
	if _, err := NewCertificateCredential(c, testTenant, testClient, nil, CredentialOptions{}); err == nil {
		t.Error("nil bundle accepted")
	}
	odd, _ := ResolveCloud("", "", "https://127.0.0.1:4443/~graph")
	if _, err := NewOperatorCredential(OperatorAzureCLI, odd, "", nil, CredentialOptions{}); err == nil || !strings.Contains(err.Error(), "-graph-endpoint") {
		t.Errorf("azcli with a graph endpoint az cannot take: err = %v", err)
	}
	_, err := NewOperatorCredential("browser", c, "", nil, CredentialOptions{})
	if err == nil || !strings.Contains(err.Error(), "azcli, device-code, provisioner") {
		t.Errorf("unknown operator kind: err = %v, want one listing the valid kinds", err)
	}
}

func TestSTSErrorFromRealCredential(t *testing.T) {
	sts := newFakeSTS(t)
	sts.respond(http.StatusUnauthorized, `{"error":"invalid_client","error_description":"AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found.]\r\nTrace ID: 0d3e6a5b-1c2d-4e5f-8a9b-0c1d2e3f4a5b\r\nCorrelation ID: 9a8b7c6d-5e4f-3a2b-1c0d-ef0123456789\r\nTimestamp: 2026-01-12 15:31:26Z","error_codes":[700027],"timestamp":"2026-01-12 15:31:26Z","trace_id":"0d3e6a5b-1c2d-4e5f-8a9b-0c1d2e3f4a5b","correlation_id":"9a8b7c6d-5e4f-3a2b-1c0d-ef0123456789","error_uri":"https://login.microsoftonline.com/error?code=700027"}`)
	c := sts.cloud(t)
	cred, err := NewSecretCredential(c, testTenant, testClient, "not-the-secret", sts.options())
	if err != nil {
		t.Fatal(err)
	}
	_, err = FetchToken(testContext(t), cred, c.GraphScope())
	if err == nil {
		t.Fatal("FetchToken succeeded against a 401")
	}
	if sts.hits() != 1 {
		t.Errorf("token requests = %d, want 1 (a 401 is not retried)", sts.hits())
	}
	e, ok := AsSTSError(err)
	if !ok {
		t.Fatalf("AsSTSError(%T) = false", err)
	}
	if e.Status != 401 || e.ErrorCode != "invalid_client" || len(e.Codes) != 1 || e.Codes[0] != 700027 || e.Code() != 700027 {
		t.Errorf("STSError = %+v", e)
	}
	wantMsg := "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found.]"
	if e.Error() != wantMsg {
		t.Errorf("Error() = %q, want %q", e.Error(), wantMsg)
	}
	if e.CorrelationID != "9a8b7c6d-5e4f-3a2b-1c0d-ef0123456789" {
		t.Errorf("CorrelationID = %q", e.CorrelationID)
	}
	if !strings.Contains(e.Hint(), "entraclaw-migrate") {
		t.Errorf("Hint() = %q, want it to name entraclaw-migrate", e.Hint())
	}
	// What FetchToken hands out: the AADSTS message alone, its hint apart, the SDK's error inside.
	ae := asAuthError(t, err)
	if ae.Error() != wantMsg || err.Error() != wantMsg {
		t.Errorf("Error() = %q, want exactly %q (one line, no trace id, JSON or hint)", err.Error(), wantMsg)
	}
	if ae.Hint() != e.Hint() || ae.STS == nil || ae.Unreachable {
		t.Errorf("AuthError = %+v, want the STS error and its hint %q", ae, e.Hint())
	}
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) {
		t.Errorf("errors.As(%T, *azidentity.AuthenticationFailedError) = false, want the SDK's error kept", err)
	}
}

// asAuthError is the *AuthError in err's chain; the test fails without one.
func asAuthError(t *testing.T, err error) *AuthError {
	t.Helper()
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("error %T (%v) is not typed: want an *AuthError", err, err)
	}
	if strings.ContainsAny(ae.Error(), "\r\n") || strings.ContainsAny(ae.Hint(), "\r\n") {
		t.Errorf("AuthError %q / hint %q: want one line each", ae.Error(), ae.Hint())
	}
	return ae
}

func TestSTSErrorHints(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{7000215, "secret ID"},
		{7000222, "expired"},
		{700027, "propagate"},
		{700016, "PROVISIONER_CLIENT_ID"},
		{7000229, "service principal"},
		{90002, "TENANT_ID"},
		{900023, "-tenant-id"},
		{1002012, "/.default"},
		{70011, "/.default"},
		{700024, "clock"},
		{50058, "code=50058"},
	}
	for _, tt := range tests {
		e := &STSError{Codes: []int{tt.code}}
		if h := e.Hint(); !strings.Contains(h, tt.want) || strings.Contains(h, "\n") {
			t.Errorf("Hint for %d = %q, want one line containing %q", tt.code, h, tt.want)
		}
	}
}

func TestSTSErrorCodeFromDescription(t *testing.T) {
	sts := newFakeSTS(t)
	sts.respond(http.StatusBadRequest, `{"error":"invalid_request","error_description":"AADSTS90002: Tenant '72f988bf-86f1-41af-91ab-2d7cd011db47' not found.\r\nTrace ID: x"}`)
	c := sts.cloud(t)
	cred, err := NewSecretCredential(c, testTenant, testClient, "s", sts.options())
	if err != nil {
		t.Fatal(err)
	}
	_, err = FetchToken(testContext(t), cred, c.GraphScope())
	e, ok := AsSTSError(err)
	if !ok || e.Code() != 90002 || e.Status != 400 {
		t.Fatalf("AsSTSError = %+v, %v; want code 90002 from the description", e, ok)
	}
}

func TestDescribeNetworkErrors(t *testing.T) {
	t.Setenv("AZURE_REGIONAL_AUTHORITY_NAME", "")
	untrusted := httptest.NewUnstartedServer(http.NotFoundHandler())
	untrusted.Config.ErrorLog = discardLogger()
	untrusted.StartTLS()
	defer untrusted.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := "https://" + closed.Listener.Addr().String()
	closed.Close()

	tests := []struct {
		name, authority, want, wantHint string
	}{
		{"refused", closedURL, "cannot reach " + strings.TrimPrefix(closedURL, "https://") + ": ", "HTTPS_PROXY"},
		{"untrusted certificate", untrusted.URL, "cannot reach " + strings.TrimPrefix(untrusted.URL, "https://") + ": ", "-ca-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ResolveCloud("", tt.authority, tt.authority)
			if err != nil {
				t.Fatal(err)
			}
			cred, err := NewSecretCredential(c, testTenant, testClient, "s", CredentialOptions{Retry: policy.RetryOptions{MaxRetries: -1}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = FetchToken(testContext(t), cred, c.GraphScope())
			if err == nil {
				t.Fatal("FetchToken succeeded")
			}
			ae := asAuthError(t, err)
			if d := err.Error(); !strings.HasPrefix(d, tt.want) || strings.Contains(d, "To troubleshoot") || strings.Contains(d, tt.wantHint) {
				t.Errorf("Error() = %q, want one line starting %q, without the hint", d, tt.want)
			}
			if !strings.Contains(ae.Hint(), tt.wantHint) || !IsUnreachable(err) {
				t.Errorf("Hint() = %q (unreachable %v), want one containing %q, unreachable", ae.Hint(), IsUnreachable(err), tt.wantHint)
			}
		})
	}
}

func TestDescribeAzureCLIErrors(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("fake az is a shell script")
	}
	c, _ := ResolveCloud("", "", "")
	tests := []struct {
		name, script, want, wantHint string
	}{
		{"not installed", "", "azure cli: az not found on PATH", "install the Azure CLI"},
		{"not logged in", "#!/bin/sh\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n", "azure cli: not logged in", "run `az login`"},
		{"other failure", "#!/bin/sh\necho 'WARNING: something' >&2\necho 'ERROR: AADSTS50076: MFA required' >&2\nexit 1\n", "azure cli: AADSTS50076: MFA required", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.script != "" {
				if err := os.WriteFile(filepath.Join(dir, "az"), []byte(tt.script), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("PATH", dir)
			cred, err := NewOperatorCredential(OperatorAzureCLI, c, testTenant, nil, CredentialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = FetchToken(testContext(t), cred, c.GraphScope())
			if err == nil {
				t.Fatal("FetchToken succeeded")
			}
			ae := asAuthError(t, err)
			if err.Error() != tt.want || ae.Hint() != "" && tt.wantHint == "" || !strings.Contains(ae.Hint(), tt.wantHint) {
				t.Errorf("Error() = %q, Hint() = %q; want %q and a hint containing %q", err.Error(), ae.Hint(), tt.want, tt.wantHint)
			}
			if IsUnreachable(err) {
				t.Errorf("an az failure counted as unreachable: %v", err)
			}
		})
	}
}

func TestAzureCLICredentialWithCustomGraph(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("fake az is a shell script")
	}
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"$*\" > " + filepath.Join(dir, "args") + "\necho '{\"accessToken\":\"operator-token\",\"expires_on\":1893553445}'\n"
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	c, _ := ResolveCloud("", "https://127.0.0.1:4443", "https://127.0.0.1:4443")
	cred, err := NewOperatorCredential(OperatorAzureCLI, c, testTenant, nil, CredentialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := FetchToken(testContext(t), cred, c.GraphScope())
	if err != nil {
		t.Fatalf("FetchToken: %v", err)
	}
	if tok.Token != "operator-token" {
		t.Errorf("token = %q", tok.Token)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if want := "--resource https://127.0.0.1:4443 --tenant " + testTenant; !strings.Contains(string(args), want) {
		t.Errorf("az args = %q, want them to contain %q", args, want)
	}
}

func TestDeviceCodePromptGoesToStderr(t *testing.T) {
	sts := newFakeSTS(t)
	sts.respond(http.StatusOK, `{"token_type":"Bearer","expires_in":3599,"access_token":"user-token","id_token":"","client_info":""}`)
	c := sts.cloud(t)
	var stderr bytes.Buffer
	cred, err := NewOperatorCredential(OperatorDeviceCode, c, testTenant, &stderr, sts.options())
	if err != nil {
		t.Fatal(err)
	}
	_, err = FetchToken(testContext(t), cred, c.GraphScope())
	if !strings.Contains(stderr.String(), "enter ABCD-EFGH") {
		t.Errorf("prompt on stderr = %q (token error: %v)", stderr.String(), err)
	}
}

// failingCredential fails the way an SDK credential does: several lines of text.
type failingCredential struct{ err error }

func (f failingCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, f.err
}

// TestFailuresAreTypedWhereTheyEnter: whatever credential our code calls (FetchToken, a
// Graph request that needs a token), its failure comes back as an *AuthError in one line
// that still unwraps to the credential's own error.
func TestFailuresAreTypedWhereTheyEnter(t *testing.T) {
	cause := errors.New("SomeCredential authentication failed\nPOST https://login.example/t/oauth2/v2.0/token\nRESPONSE 500\n{}")
	cred := failingCredential{cause}
	c, err := ResolveCloud("", "https://127.0.0.1:1", "https://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = FetchToken(testContext(t), cred, c.GraphScope())
	if ae := asAuthError(t, err); ae.Error() != "SomeCredential authentication failed" || !errors.Is(err, cause) {
		t.Errorf("FetchToken: %q, want the first line of the credential's text, unwrapping to it", err)
	}
	g, err := NewGraph(c, cred, GraphOptions{MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.GetApplication(testContext(t), "00000000-0000-0000-0000-000000000001")
	var re *RequestError
	if !errors.As(err, &re) || !errors.Is(err, cause) {
		t.Fatalf("Graph request: %v, want a *RequestError unwrapping to the credential's error", err)
	}
	asAuthError(t, re.Err)
	if want := "graph: GET /applications/00000000-0000-0000-0000-000000000001: SomeCredential authentication failed"; err.Error() != want {
		t.Errorf("Graph request: %q, want %q", err, want)
	}
}
