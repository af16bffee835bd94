package token

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/machinecert"
)

// The token cache: one item per token in the cache that goes with the certificate's keyring
// (keystore's TokenCache: the same keyring, the kernel keyring, or none), under the key
// cacheKey(tenant, client, scope, certificate thumbprint, authority host), each recorded in
// the app's index item so that all of an app's tokens can be found and removed. Source.Get
// reads and writes it; Cache is every other use of it (the status, -remove-cached-tokens,
// the federated path, and provision's clearing after a rotation or rollback).

// FederatedThumbprint stands for the certificate in the cache key of a token got through
// workload identity federation (there is no certificate).
const FederatedThumbprint = "federated"

// cacheKey is the cache key of the token of client in tenant for scope, minted with the
// certificate thumb (or FederatedThumbprint) from authorityHost. The authority host is part
// of it so that a token from another token service is never served to a run against the
// real one.
func cacheKey(tenant, client, scope, thumb, authorityHost string) string {
	return keystore.TokenCacheKey(tenant, client, scope, thumb, authorityHost)
}

// Cache is one app's tokens in the token cache of a certificate keyring.
type Cache struct {
	// Store is the certificate's keyring; the tokens are in its TokenCache.
	Store                         *keystore.Store
	Tenant, Client, AuthorityHost string
}

// Cached is one token found in the cache: never its value.
type Cached struct {
	Thumbprint string
	ExpiresOn  time.Time
}

// source is a Source for c's token for scope, for the checks Source applies to every
// cache read and write.
func (c Cache) source(scope string) *Source {
	return &Source{Store: c.Store, Tenant: c.Tenant, Client: c.Client, Scope: scope, AuthorityHost: c.AuthorityHost,
		Note: func(string) {}, Loaded: func(Cert) {}}
}

// Get is the token for scope cached under thumb, when it passes Check (one that does not is
// deleted) and has at least minValidity left.
func (c Cache) Get(scope, thumb string, minValidity time.Duration) (*Token, bool) {
	s := c.source(scope)
	s.MinValidity = minValidity
	cache := c.Store.TokenCache()
	return s.usable(cache, thumb, s.readEntry(cache, thumb).cached)
}

// Put caches value, which Check accepted with expiry exp, as the token for scope minted
// under thumb. certNotAfter (zero when there is no certificate) lets a cache apart from the
// certificate serve the token without reading the certificate.
func (c Cache) Put(scope, thumb, value string, exp, certNotAfter time.Time) error {
	return c.source(scope).put(c.Store.TokenCache(), thumb, value, exp, certNotAfter)
}

// knownThumbprints is every certificate thumbprint this machine's tokens can have been
// cached under: stateThumb (the state file's), the keyring certificate's (expired or not)
// and the previous certificate's kept during a rotation. Unreadable items are skipped.
func (c Cache) knownThumbprints(stateThumb string) []string {
	var thumbs []string
	add := func(t string) {
		t = strings.ToLower(t)
		if t != "" && !slices.Contains(thumbs, t) {
			thumbs = append(thumbs, t)
		}
	}
	add(stateThumb)
	for _, account := range []string{c.Tenant, c.Tenant + keystore.PreviousAccountSuffix} {
		if b, err := machinecert.Read(c.Store, account); err == nil {
			add(certThumbprint(b))
		}
	}
	return thumbs
}

// Find lists the cached tokens for scope minted with a certificate this machine knows of
// (knownThumbprints).
func (c Cache) Find(scope, stateThumb string) ([]Cached, error) {
	cache := c.Store.TokenCache()
	var found []Cached
	for _, thumb := range c.knownThumbprints(stateThumb) {
		e, err := cache.GetCachedTokenEntry(cacheKey(c.Tenant, c.Client, scope, thumb, c.AuthorityHost))
		switch {
		case errors.Is(err, keystore.ErrNotFound):
		case err != nil:
			return found, err
		default:
			found = append(found, Cached{Thumbprint: thumb, ExpiresOn: e.ExpiresOn})
		}
	}
	return found, nil
}

// Remove is -remove-cached-tokens: it deletes the app's tokens for scope that Find finds,
// then the rest of the app's tokens (other scopes, certificates and authority hosts) from
// every cache, and says how many it found for scope.
func (c Cache) Remove(scope, stateThumb string) (int, error) {
	cache := c.Store.TokenCache()
	found, err := c.Find(scope, stateThumb)
	if err != nil {
		return 0, err
	}
	for _, t := range found {
		if err := cache.DeleteCachedToken(cacheKey(c.Tenant, c.Client, scope, t.Thumbprint, c.AuthorityHost)); err != nil {
			return 0, err
		}
	}
	if err := cache.DeleteCachedTokens(c.Tenant, c.Client); err != nil {
		return 0, err
	}
	return len(found), nil
}

// Clear removes the app's cached tokens from every cache this machine may hold them in:
// all of them, or only those minted with the given certificates (a rotation retires one).
// Rotation, rollback and purge call it for the tokens they make stale. A failure is for the
// caller to warn about: every token is checked before it is used anyway. A keyring that is
// not reachable where the certificate is a TPM-wrapped key file is not a failure: that
// setup is for machines without a Secret Service, where no token can have been cached in it.
func (c Cache) Clear(ctx context.Context, thumbprints ...string) error {
	if c.Store == nil || c.Tenant == "" || c.Client == "" {
		return nil
	}
	err := c.Store.TokenCache().WithContext(ctx).DeleteCachedTokens(c.Tenant, c.Client, thumbprints...)
	var unavailable *keystore.UnavailableError
	if c.Store.KeyFileDir() != "" && errors.As(err, &unavailable) && unavailable.NotReachable() {
		return nil
	}
	return err
}
