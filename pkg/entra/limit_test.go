package entra

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

// hugeBody streams up to 1 GiB of JSON-looking bytes without a Content-Length and counts
// what it managed to write before the client hung up.
func hugeBody(written *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		chunk := []byte(`{"value":[` + strings.Repeat(`"aaaaaaaaaaaaaaa",`, 3600))
		for written.Load() < 1<<30 {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}
}

// A Graph endpoint that streams a huge body: one line of error, not retried, and the
// client stops reading near the cap.
func TestGraphResponseCapped(t *testing.T) {
	var written atomic.Int64
	var requests atomic.Int32
	h := hugeBody(&written)
	g, _ := newTestGraph(t, func(w http.ResponseWriter, r *http.Request) { requests.Add(1); h(w, r) }, GraphOptions{})
	_, err := g.GetApplication(context.Background(), "00000000-0000-0000-0000-000000000001")
	var tl *ResponseTooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("err = %v, want a ResponseTooLargeError", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "larger than 8 MiB") {
		t.Errorf("message %q: want one line naming the 8 MiB cap", msg)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests: an over-cap response must not be retried", n)
	}
	if n := written.Load(); n > 64<<20 {
		t.Errorf("the server wrote %d bytes: the client read far past the cap", n)
	}
}

// A Content-Length over the cap fails before the body is read.
func TestCapResponsesContentLength(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write([]byte(strings.Repeat("x", 1000)))
	}))
	defer srv.Close()
	tr := CapResponses(srv.Client(), 999)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/p", nil)
	if _, err := tr.Do(req); !errors.As(err, new(*ResponseTooLargeError)) {
		t.Errorf("Content-Length over the cap: %v", err)
	}
	// Exactly at the cap is fine.
	tr = CapResponses(srv.Client(), 1000)
	resp, err := tr.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 2000)
	total := 0
	for {
		n, err := resp.Body.Read(buf[total:])
		total += n
		if err != nil {
			if err.Error() != "EOF" {
				t.Errorf("read at the cap: %v", err)
			}
			break
		}
	}
	if total != 1000 {
		t.Errorf("read %d bytes, want 1000", total)
	}
}

// A token service that streams a huge token response: the certificate credential fails
// with the cap error, and the client reads about the cap, not the body.
func TestTokenResponseCapped(t *testing.T) {
	var written atomic.Int64
	srv := httptest.NewTLSServer(hugeBody(&written))
	defer srv.Close()
	c, err := ResolveCloud("", srv.URL, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := NewCertificateCredential(c, "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", b,
		CredentialOptions{Transport: srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = FetchToken(context.Background(), cred, "https://graph.microsoft.com/.default")
	if err == nil || !strings.Contains(err.Error(), "larger than 64 KiB") {
		t.Fatalf("err = %v, want the 64 KiB cap", err)
	}
	if ae := asAuthError(t, err); !strings.HasPrefix(ae.Error(), "the response from "+srv.Listener.Addr().String()) || !strings.Contains(ae.Error(), "larger than 64 KiB") || !strings.Contains(ae.Hint(), "-authority-host") {
		t.Errorf("%q, hint %q: want one line naming the host and the cap, and a hint naming -authority-host", ae, ae.Hint())
	}
	if n := written.Load(); n > 16<<20 {
		t.Errorf("the server wrote %d bytes: the client read far past the cap", n)
	}
}

func TestIsKnownHost(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://login.microsoftonline.com/":             true,
		"https://LOGIN.microsoftonline.us":               true,
		"https://login.chinacloudapi.cn/":                true,
		"https://graph.microsoft.com":                    true,
		"https://dod-graph.microsoft.us":                 true,
		"https://microsoftgraph.chinacloudapi.cn":        true,
		"https://graph.microsoft.com:443":                true,
		"https://graph.microsoft.com:8443":               false,
		"https://127.0.0.1:4443/":                        false,
		"https://login.microsoftonline.com.evil/":        false,
		"https://evil.example/login.microsoftonline.com": false,
	} {
		if got := IsKnownHost(raw); got != want {
			t.Errorf("IsKnownHost(%q) = %v, want %v", raw, got, want)
		}
	}
	c, _ := ResolveCloud("usgov", "https://127.0.0.1:4443", "")
	if a, g := c.UnknownHosts(); a != "127.0.0.1:4443" || g != "" {
		t.Errorf("UnknownHosts = %q, %q", a, g)
	}
}
