package token

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

const (
	graphScope = "https://graph.microsoft.com/.default"
	otherScope = "https://example.org/.default"
	authority  = "https://login.microsoftonline.com/"
)

// memoryCache is an app's Cache in an in-memory keyring holding a current and a previous
// certificate.
func memoryCache(t *testing.T) (c Cache, current, previous *certs.Bundle) {
	t.Helper()
	store := keystore.New("entraclaw-test-cert", keystore.WithBackend(keystore.NewMemoryBackend()))
	for _, suffix := range []string{"", keystore.PreviousAccountSuffix} {
		b, err := certs.Generate(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutBundle(ctTenant+suffix, b.PEM()); err != nil {
			t.Fatal(err)
		}
		if suffix == "" {
			current = b
		} else {
			previous = b
		}
	}
	return Cache{Store: store, Tenant: ctTenant, Client: ctClient, AuthorityHost: authority}, current, previous
}

func putToken(t *testing.T, c Cache, scope, thumb string) {
	t.Helper()
	if err := c.Put(scope, thumb, testJWT(goodClaims(time.Now())), time.Now().Add(time.Hour), time.Time{}); err != nil {
		t.Fatal(err)
	}
}

func thumbsOf(found []Cached) []string {
	var thumbs []string
	for _, f := range found {
		thumbs = append(thumbs, f.Thumbprint)
	}
	return thumbs
}

// TestCacheFindsKnownCertificates: Find sees the tokens of the state file's, the current
// and the previous certificate, not those of a certificate this machine does not know.
func TestCacheFindsKnownCertificates(t *testing.T) {
	c, current, previous := memoryCache(t)
	const state, stranger = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	for _, thumb := range []string{state, certs.Thumbprint(current.Cert), certs.Thumbprint(previous.Cert), stranger} {
		putToken(t, c, graphScope, thumb)
	}
	found, err := c.Find(graphScope, state)
	want := []string{state, certs.Thumbprint(current.Cert), certs.Thumbprint(previous.Cert)}
	if err != nil || !slices.Equal(thumbsOf(found), want) {
		t.Errorf("Find = %v, %v; want %v", thumbsOf(found), err, want)
	}
}

// TestCacheRemove: -remove-cached-tokens counts the scope's tokens and removes every token
// of the app, other scopes included.
func TestCacheRemove(t *testing.T) {
	c, current, _ := memoryCache(t)
	thumb := certs.Thumbprint(current.Cert)
	putToken(t, c, graphScope, thumb)
	putToken(t, c, otherScope, thumb)
	n, err := c.Remove(graphScope, "")
	if err != nil || n != 1 {
		t.Fatalf("Remove = %d, %v; want 1", n, err)
	}
	for _, scope := range []string{graphScope, otherScope} {
		if tok, ok := c.Get(scope, thumb, 0); ok {
			t.Errorf("%s: %v still cached", scope, tok)
		}
	}
}

// TestCacheClearOneCertificate: a rotation clears the tokens of the certificate it retired
// and keeps the others.
func TestCacheClearOneCertificate(t *testing.T) {
	c, current, previous := memoryCache(t)
	keep, retire := certs.Thumbprint(current.Cert), certs.Thumbprint(previous.Cert)
	putToken(t, c, graphScope, keep)
	putToken(t, c, graphScope, retire)
	if err := c.Clear(context.Background(), retire); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(graphScope, retire, 0); ok {
		t.Error("the retired certificate's token is still cached")
	}
	if _, ok := c.Get(graphScope, keep, 0); !ok {
		t.Error("the current certificate's token was removed")
	}
}

// TestCacheGetChecks: a cached token is served only when it passes Check (a bad one is
// deleted) and has minValidity left.
func TestCacheGetChecks(t *testing.T) {
	c, _, _ := memoryCache(t)
	putToken(t, c, graphScope, FederatedThumbprint)
	if tok, ok := c.Get(graphScope, FederatedThumbprint, 5*time.Minute); !ok || !tok.FromCache {
		t.Fatalf("Get = %v, %v; want the cached token", tok, ok)
	}
	if _, ok := c.Get(graphScope, FederatedThumbprint, 2*time.Hour); ok {
		t.Error("served a token with less than -min-validity left")
	}
	bad := Cache{Store: c.Store, Tenant: c.Tenant, Client: "33333333-3333-4333-8333-333333333333", AuthorityHost: authority}
	putToken(t, bad, graphScope, FederatedThumbprint) // its appid is ctClient: not this client's
	if _, ok := bad.Get(graphScope, FederatedThumbprint, 0); ok {
		t.Fatal("served another client's token")
	}
	key := cacheKey(bad.Tenant, bad.Client, graphScope, FederatedThumbprint, authority)
	if _, err := c.Store.TokenCache().GetCachedTokenEntry(key); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("the refused token was not deleted: %v", err)
	}
}
