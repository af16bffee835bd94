package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// The token cache as entraclaw-provisioner-token writes it today: one keyring item per
// token, service keystore.TokenCacheService(-keyring-service), account
// tenant|client|scope|thumbprint. RunToken builds the same key.
//
// TODO(merge): when (*keystore.Store).DeleteCachedTokens(tenant, client) lands, call it from
// removeCachedTokens instead of enumerating the keys this file can guess, and take the
// key from the one place token.go builds it (it will include the authority host).

// tokenCacheKey is the cache account of a token for scope minted with certificate thumb.
func tokenCacheKey(tenant, client, scope, thumb string) string {
	return strings.Join([]string{tenant, client, scope, thumb}, "|")
}

// cacheStore is the keyring service holding env's token cache.
func cacheStore(env *Env) *keystore.Store {
	return keystore.New(keystore.TokenCacheService(env.KeyringService))
}

// knownThumbprints is every certificate thumbprint this machine's tokens can have been
// cached under: the state file's, the keyring certificate's (expired or not) and the
// previous certificate's kept during a rotation. Unreadable items are skipped.
func knownThumbprints(env *Env) []string {
	var thumbs []string
	add := func(t string) {
		t = strings.ToLower(t)
		if t != "" && !slices.Contains(thumbs, t) {
			thumbs = append(thumbs, t)
		}
	}
	add(env.Thumbprint)
	for _, account := range []string{env.Tenant, env.Tenant + ".previous"} {
		if pem, err := env.Store.GetBundle(account); err == nil {
			if b, err := certs.ParseBundle(pem); err == nil {
				add(certs.Thumbprint(b.Cert))
			}
		}
	}
	return thumbs
}

// cachedTokenInfo is one token found in the cache: never its value.
type cachedTokenInfo struct {
	Thumbprint string
	ExpiresOn  time.Time
}

// findCachedTokens lists the cached tokens for scope under the known thumbprints.
func findCachedTokens(env *Env, scope string) ([]cachedTokenInfo, error) {
	cache := cacheStore(env)
	var found []cachedTokenInfo
	for _, thumb := range knownThumbprints(env) {
		_, exp, err := cache.GetCachedToken(tokenCacheKey(env.Tenant, env.Client, scope, thumb))
		switch {
		case errors.Is(err, keystore.ErrNotFound):
		case err != nil:
			return found, err
		default:
			found = append(found, cachedTokenInfo{Thumbprint: thumb, ExpiresOn: exp})
		}
	}
	return found, nil
}

// removeCachedTokens is -remove-cached-tokens (like `kubelogin remove-tokens`): it deletes
// this app's cached tokens for scope and says how many on stderr. Nothing goes to stdout.
func removeCachedTokens(env *Env, scope string, stdio Stdio) error {
	cache := cacheStore(env)
	found, err := findCachedTokens(env, scope)
	if err != nil {
		return err
	}
	for _, t := range found {
		if err := cache.DeleteCachedToken(tokenCacheKey(env.Tenant, env.Client, scope, t.Thumbprint)); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdio.Err, "entraclaw-provisioner-token: removed %d cached token(s) of app %s in tenant %s for %s from the %s (service %q)\n",
		len(found), env.Client, env.Tenant, scope, cache.BackendName(), cache.Service())
	return nil
}
