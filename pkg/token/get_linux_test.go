package token

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// The token cache in the real kernel keyring (this user's user keyring): a cached call reads
// neither the certificate nor its keyring.

// countingCredential mints testJWT tokens, counting the requests.
type countingCredential struct {
	requests atomic.Int32
	delay    time.Duration
}

func (c *countingCredential) GetToken(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.requests.Add(1)
	time.Sleep(c.delay)
	exp := time.Now().Add(time.Hour)
	return azcore.AccessToken{Token: testJWT(goodClaims(time.Now())), ExpiresOn: exp}, nil
}

// kernelSource is a Source whose certificate is in memory (a MemoryBackend keyring; loads
// counted) and whose tokens are cached in the kernel keyring under a random service.
type kernelSource struct {
	*Source
	bundle *certs.Bundle
	loads  atomic.Int32
	cred   *countingCredential
	loaded []Cert
	mu     sync.Mutex
}

func newKernelSource(t *testing.T) *kernelSource {
	t.Helper()
	if err := keystore.ProbeKernelKeyring(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("no kernel keyring: %v", err)
	}
	b, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	svc := "entraclaw-test-" + strings.ToLower(rand.Text()[:10]) + "-cert"
	store := keystore.New(svc, keystore.WithBackend(keystore.NewMemoryBackend())).WithTokenCache(keystore.CacheKernel)
	ks := &kernelSource{bundle: b, cred: &countingCredential{}}
	ks.Source = &Source{
		Store: store, Tenant: ctTenant, Client: ctClient, Scope: "https://graph.microsoft.com/.default",
		AuthorityHost: "https://login.microsoftonline.com/", StateThumbprint: certs.Thumbprint(b.Cert),
		LoadBundle: func(*keystore.Store, time.Time) (*certs.Bundle, error) {
			ks.loads.Add(1)
			return b, nil
		},
		Credential:  func(*certs.Bundle) (azcore.TokenCredential, error) { return ks.cred, nil },
		MinValidity: 5 * time.Minute,
		LockRoot:    func() (string, error) { return t.TempDir(), nil },
		Loaded: func(c Cert) {
			ks.mu.Lock()
			defer ks.mu.Unlock()
			ks.loaded = append(ks.loaded, c)
		},
	}
	t.Cleanup(func() { _ = store.TokenCache().DeleteCachedTokens(ctTenant, ctClient) })
	return ks
}

// A token minted once is served from the kernel keyring without reading the certificate,
// and the expiry warning still learns the certificate's NotAfter (from the cache entry).
func TestKernelCachedTokenReadsNoCertificate(t *testing.T) {
	ks := newKernelSource(t)
	first, err := ks.Get(context.Background())
	if err != nil || first.FromCache || ks.loads.Load() != 1 || ks.cred.requests.Load() != 1 {
		t.Fatalf("first: %+v, %v; %d loads, %d requests", first, err, ks.loads.Load(), ks.cred.requests.Load())
	}
	e, err := ks.Store.TokenCache().GetCachedTokenEntry(ks.key(ks.StateThumbprint))
	if err != nil || !e.CertNotAfter.Equal(ks.bundle.Cert.NotAfter.Truncate(time.Second)) {
		t.Fatalf("cache entry: NotAfter %v, %v; want the certificate's %v", e.CertNotAfter, err, ks.bundle.Cert.NotAfter)
	}
	second, err := ks.Get(context.Background())
	if err != nil || !second.FromCache || second.Value != first.Value {
		t.Fatalf("second: %+v, %v; want the cached token", second, err)
	}
	if n := ks.loads.Load(); n != 1 {
		t.Errorf("the cached call read the certificate (%d loads in all, want 1)", n)
	}
	if n := ks.cred.requests.Load(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
	if len(ks.loaded) != 2 || ks.loaded[1].Thumbprint != ks.StateThumbprint || !ks.loaded[1].NotAfter.Equal(e.CertNotAfter) {
		t.Errorf("Loaded was told %+v; want the certificate twice, the second time from the cache entry", ks.loaded)
	}
}

// An entry whose certificate has expired, or that records no certificate (an older entry),
// is not served on its own: the certificate is read and decides.
func TestKernelCachedTokenWithExpiredOrUnknownCertificate(t *testing.T) {
	ks := newKernelSource(t)
	cache := ks.Store.TokenCache()
	tok := testJWT(goodClaims(time.Now()))
	for i, notAfter := range []time.Time{time.Now().Add(-time.Hour), {}} {
		e := keystore.CachedToken{AccessToken: tok, ExpiresOn: time.Now().Add(time.Hour), CertNotAfter: notAfter}
		if err := cache.PutCachedTokenEntry(ks.key(ks.StateThumbprint), e); err != nil {
			t.Fatal(err)
		}
		got, err := ks.Get(context.Background())
		if err != nil || !got.FromCache {
			t.Fatalf("%v: %+v, %v", notAfter, got, err)
		}
		if n := ks.loads.Load(); n != int32(i+1) {
			t.Errorf("certificate NotAfter %v: %d loads, want the certificate read", notAfter, n)
		}
	}
}

// A burst of cold callers sends one token request: the miss takes the per-user lock.
func TestKernelCacheColdBurstSendsOneRequest(t *testing.T) {
	ks := newKernelSource(t)
	ks.cred.delay = 200 * time.Millisecond
	root := t.TempDir()
	ks.LockRoot = func() (string, error) { return root, nil }
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := *ks.Source
			if _, err := src.Get(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := ks.cred.requests.Load(); n != 1 {
		t.Errorf("5 cold callers sent %d token requests, want 1", n)
	}
}
