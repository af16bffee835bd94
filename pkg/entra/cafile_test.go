package entra

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

func TestWithCAFileTrustsTheCA(t *testing.T) {
	t.Setenv("AZURE_REGIONAL_AUTHORITY_NAME", "")
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = discardLogger()
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	base, err := ResolveCloud("", srv.URL, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	withCA, err := base.WithCAFile(caFile)
	if err != nil {
		t.Fatalf("WithCAFile: %v", err)
	}
	if base.Transport != nil || withCA.Transport == nil {
		t.Fatalf("WithCAFile changed the receiver or set no transport")
	}
	fetch := func(c Cloud) *AuthError {
		cred, err := NewSecretCredential(c, testTenant, testClient, "s", CredentialOptions{Retry: policy.RetryOptions{MaxRetries: -1}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = FetchToken(testContext(t), cred, c.GraphScope())
		if err == nil {
			t.Fatal("FetchToken succeeded against a 404 server")
		}
		return asAuthError(t, err)
	}
	if ae := fetch(base); !strings.Contains(ae.Hint(), "-ca-file") || !strings.HasPrefix(ae.Error(), "cannot reach ") {
		t.Errorf("without the CA: %q (hint %q), want a TLS failure pointing at -ca-file", ae, ae.Hint())
	}
	// With the CA the TLS handshake succeeds and the 404 of the metadata request is what fails.
	if ae := fetch(withCA); strings.Contains(ae.Error(), "x509") || strings.Contains(ae.Error(), "certificate") || strings.Contains(ae.Error(), "cannot reach") || strings.Contains(ae.Hint(), "-ca-file") {
		t.Errorf("with -ca-file: %q (hint %q), want an HTTP failure, not a TLS one", ae, ae.Hint())
	}
	// The Graph pipeline uses the same transport: a 404 from Graph, not a TLS error.
	// (GetApplicationByAppID maps that 404 to "no such app": nil, nil.)
	g, err := NewGraph(withCA, staticCredential{}, GraphOptions{MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if app, err := g.GetApplicationByAppID(testContext(t), testClient); err != nil || app != nil {
		t.Errorf("Graph with -ca-file: %v, %v; want the 404 as no app", app, err)
	}
	g, err = NewGraph(base, staticCredential{}, GraphOptions{MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.GetApplicationByAppID(testContext(t), testClient); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Graph without -ca-file: %v, want a TLS error", err)
	}
}

func TestReadCAFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "nope.pem"), "does not exist"},
		{"directory", dir, "is a directory"},
		{"not PEM", write("secret.txt", "hunter2 not a pem file\n"), "holds no PEM certificate"},
		{"key only", write("key.pem", "-----BEGIN PRIVATE KEY-----\naHVudGVyMg==\n-----END PRIVATE KEY-----\n"), "holds no PEM certificate"},
		{"bad certificate", write("bad.pem", "-----BEGIN CERTIFICATE-----\naHVudGVyMg==\n-----END CERTIFICATE-----\n"), "PEM block 1 is not a valid certificate"},
		// Read without end before (500 MB RSS and counting): refused at once.
		{"device", os.DevNull, "is not a regular file"},
	}
	if p := fifo(t, dir); p != "" {
		tests = append(tests, struct{ name, path, want string }{"fifo", p, "is not a regular file"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readCAFile(tt.path)
			if err == nil || !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("readCAFile = %v, want an invalid argument containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error %q echoes the file or spans lines", err)
			}
		})
	}
}

// A certificate the client does not trust is reported after one attempt: asking again
// gets the same certificate, and azcore's default retries (3, with backoff) took 8-10 s.
func TestUntrustedCertificateIsNotRetried(t *testing.T) {
	t.Setenv("AZURE_REGIONAL_AUTHORITY_NAME", "")
	var handshakes atomic.Int32
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = discardLogger()
	srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		handshakes.Add(1)
		return nil, nil
	}}
	srv.StartTLS()
	defer srv.Close()
	c, err := ResolveCloud("", srv.URL, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	// Default retry options (MaxRetries 0: azcore's 3 retries), a real backoff.
	cred, err := NewSecretCredential(c, testTenant, testClient, "s", CredentialOptions{Retry: policy.RetryOptions{RetryDelay: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = FetchToken(testContext(t), cred, c.GraphScope())
	if ae := asAuthError(t, err); !strings.Contains(ae.Hint(), "-ca-file") {
		t.Errorf("FetchToken: %q (hint %q), want the TLS failure pointing at -ca-file", ae, ae.Hint())
	}
	if n := handshakes.Load(); n != 1 {
		t.Errorf("%d TLS handshakes for the token, want 1 (no retry of an untrusted certificate)", n)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("the certificate error took %s: retried with backoff", d)
	}
	handshakes.Store(0)
	g, err := NewGraph(c, staticCredential{}, GraphOptions{RetryDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.GetApplicationByAppID(testContext(t), testClient); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Graph: %v, want a TLS error", err)
	}
	if n := handshakes.Load(); n != 1 {
		t.Errorf("%d TLS handshakes for the Graph read, want 1", n)
	}
}
