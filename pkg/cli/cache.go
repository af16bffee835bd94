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

// The token cache as entraclaw-provisioner-token writes it: one keyring item per token,
// service keystore.TokenCacheService(-keyring-service), account
// keystore.TokenCacheKey(tenant, client, scope, thumbprint, authority host), each recorded
// in the app's index item so that keystore's DeleteCachedTokens can find them all.

// tokenCacheKey is the cache account of env's token for scope minted with certificate thumb
// from env's authority host: the key RunToken uses.
func tokenCacheKey(env *Env, scope, thumb string) string {
	return keystore.TokenCacheKey(env.Tenant, env.Client, scope, thumb, env.Cloud.AuthorityHost)
}

// cacheStore is the keyring service holding env's token cache.
func cacheStore(env *Env) *keystore.Store {
	return env.Store.TokenCache()
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
		_, exp, err := cache.GetCachedToken(tokenCacheKey(env, scope, thumb))
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
		if err := cache.DeleteCachedToken(tokenCacheKey(env, scope, t.Thumbprint)); err != nil {
			return err
		}
	}
	// The rest of the app's tokens too: other scopes, certificates and authority hosts.
	if err := cache.DeleteCachedTokens(env.Tenant, env.Client); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Err, "entraclaw-provisioner-token: removed %d cached token(s) of app %s in tenant %s for %s from the %s (service %q)\n",
		len(found), env.Client, env.Tenant, scope, cache.BackendName(), cache.Service())
	return nil
}
