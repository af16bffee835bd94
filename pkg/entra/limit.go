package entra

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Response body caps. A real token response is under 16 KB and a Graph page a few MB;
// anything far larger is a broken or hostile endpoint, and reading it whole would let it
// take the machine's memory (a 2 GiB "access token" once took 17 GB of RSS).
const (
	MaxTokenResponseBytes = 64 << 10 // STS: OIDC metadata, instance discovery, token responses
	MaxGraphResponseBytes = 8 << 20  // one Graph response (a page of a collection)
)

// ResponseTooLargeError is a response whose body exceeded its cap. It is not retried.
type ResponseTooLargeError struct {
	Host  string
	Path  string
	Limit int64
}

func (e *ResponseTooLargeError) Error() string {
	return fmt.Sprintf("the response from %s%s is larger than %s; refusing to read it", e.Host, e.Path, byteSize(e.Limit))
}

// Hint says what to check.
func (e *ResponseTooLargeError) Hint() string {
	return "check -authority-host / -graph-endpoint (ENTRACLAW_AUTHORITY_HOST, ENTRACLAW_GRAPH_ENDPOINT) and any proxy: a Microsoft endpoint never answers this much"
}

// NonRetriable tells azcore's retry policy not to ask again.
func (e *ResponseTooLargeError) NonRetriable() {}

// certificateError is a TLS certificate the client does not trust (unknown CA, wrong host,
// expired). Asking again gets the same certificate, so it is not retried: without this,
// azcore's retry policy took 8-10 s of backoff to report it.
type certificateError struct{ err error }

func (e *certificateError) Error() string { return e.err.Error() }
func (e *certificateError) Unwrap() error { return e.err }

// NonRetriable tells azcore's retry policy not to ask again.
func (e *certificateError) NonRetriable() {}

func isCertificateError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// CapResponses wraps next (nil: a default client like azcore's, honouring HTTPS_PROXY and
// SSL_CERT_FILE) so that a response body longer than limit bytes fails with a
// *ResponseTooLargeError after reading at most limit+1 bytes of it. A Content-Length over
// the limit fails before any of the body is read. A TLS certificate the client does not
// trust fails at once too (certificateError): every credential and Graph client sends
// through this wrapper, so it is the one place to tell azcore's retry policy.
func CapResponses(next policy.Transporter, limit int64) policy.Transporter {
	if next == nil {
		next = defaultClient()
	}
	return &capTransport{next: next, limit: limit}
}

type capTransport struct {
	next  policy.Transporter
	limit int64
}

func (t *capTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := t.next.Do(req)
	if err != nil && isCertificateError(err) {
		return nil, &certificateError{err}
	}
	if err != nil || resp == nil || resp.Body == nil {
		return resp, err
	}
	tooLarge := &ResponseTooLargeError{Host: req.URL.Host, Path: req.URL.Path, Limit: t.limit}
	if resp.ContentLength > t.limit {
		resp.Body.Close()
		return nil, tooLarge
	}
	resp.Body = &capReader{r: resp.Body, left: t.limit, err: tooLarge}
	return resp, nil
}

// capReader reads at most left bytes and fails with err when there is more.
type capReader struct {
	r    io.ReadCloser
	left int64
	err  error
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n + int(c.left), c.err // drop the byte over the limit
	}
	return n, err
}

func (c *capReader) Close() error { return c.r.Close() }

var (
	defaultClientOnce sync.Once
	defaultHTTPClient *http.Client
)

// defaultClient is an HTTP client configured like azcore's default one.
func defaultClient() *http.Client {
	defaultClientOnce.Do(func() {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		defaultHTTPClient = &http.Client{Transport: tr}
	})
	return defaultHTTPClient
}
