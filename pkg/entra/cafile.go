package entra

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// maxCAFileSize bounds what -ca-file reads: CA bundles are kilobytes, not megabytes.
const maxCAFileSize = 16 << 20

// WithCAFile returns c with a transport that trusts the system roots plus every
// certificate in the PEM file at path, for the Entra ID (azidentity) and Graph (azcore)
// connections. This is what SSL_CERT_FILE does on Linux, on every OS: on macOS and Windows
// Go verifies against the platform's store and ignores SSL_CERT_FILE; there, a chain the
// platform rejects is checked again by Go against the system roots plus these certificates.
// A missing or unreadable file, or one without a PEM certificate, is an ErrInvalidArgument
// that names the file but never echoes its contents.
//
// The file is read and checked here; the system roots are loaded at the first request
// (caTransport), so a run that makes none (a cached token) does not parse them.
func (c Cloud) WithCAFile(path string) (Cloud, error) {
	added, err := readCAFile(path)
	if err != nil {
		return Cloud{}, err
	}
	c.Transport = &caTransport{added: added}
	return c, nil
}

// caTransport is newCATransport over the system roots plus added, built at its first
// request: loading the system roots reads and parses every certificate of the OS store
// (about 5 ms on Debian), which a run that sends no request should not pay.
type caTransport struct {
	added  []*x509.Certificate
	once   sync.Once
	client *http.Client
}

func (t *caTransport) Do(req *http.Request) (*http.Response, error) {
	t.once.Do(func() { t.client = newCATransport(rootsWith(t.added)) })
	return t.client.Do(req)
}

// rootsWith returns the system root pool (an empty pool where there is none) with added.
func rootsWith(added []*x509.Certificate) *x509.CertPool {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, cert := range added {
		pool.AddCert(cert)
	}
	return pool
}

// readAtMost reads at most limit bytes of the file at path: a file that grew after
// its size was checked is refused rather than read without end.
func readAtMost(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("larger than %d MiB, not a CA bundle", limit>>20)
	}
	return data, err
}

// readCAFile returns the certificates of the PEM file at path: at least one, or an
// ErrInvalidArgument that names the file but never echoes its contents.
func readCAFile(path string) ([]*x509.Certificate, error) {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, invalidArgument("-ca-file %s does not exist", path)
	case err != nil:
		return nil, invalidArgument("-ca-file %s: %v", path, unwrapPathError(err))
	case info.IsDir():
		return nil, invalidArgument("-ca-file %s is a directory, not a PEM file", path)
	case !info.Mode().IsRegular():
		// A device or a FIFO (/dev/zero, a named pipe) would be read forever.
		return nil, invalidArgument("-ca-file %s is not a regular file", path)
	case info.Size() > maxCAFileSize:
		return nil, invalidArgument("-ca-file %s is larger than %d MiB, not a CA bundle", path, maxCAFileSize>>20)
	}
	data, err := readAtMost(path, maxCAFileSize)
	if err != nil {
		return nil, invalidArgument("-ca-file %s: %v", path, unwrapPathError(err))
	}
	var added []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue // keys and other blocks are not trust anchors; skipped, never echoed
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, invalidArgument("-ca-file %s: PEM block %d is not a valid certificate", path, n)
		}
		added = append(added, cert)
	}
	if len(added) == 0 {
		return nil, invalidArgument("-ca-file %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path)
	}
	return added, nil
}

// newCATransport is azcore's default HTTP client (internal/transport.DefaultHTTPClient: proxy
// from the environment, its timeouts and pool sizes, TLS 1.2 or later, HTTP/2 with health-check
// pings) with roots as the trusted CAs.
func newCATransport(roots *x509.CertPool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		TLSClientConfig: &tls.Config{
			MinVersion:    tls.VersionTLS12,
			Renegotiation: tls.RenegotiateFreelyAsClient,
			RootCAs:       roots,
		},
		HTTP2: &http.HTTP2Config{SendPingTimeout: 10 * time.Second, PingTimeout: 5 * time.Second},
	}}
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
