package cli

import (
	"fmt"

	"github.com/entraclaw/entraclaw-cli/pkg/token"
)

// The token cache belongs to pkg/token (its keys, reads, writes and removal); the command
// line only says which app's tokens and reports what was done.

// appTokens is env's app's tokens in the token cache of env's keyring.
func appTokens(env *Env) token.Cache {
	return token.Cache{Store: env.Store, Tenant: env.Tenant, Client: env.Client, AuthorityHost: env.Cloud.AuthorityHost}
}

// removeCachedTokens is -remove-cached-tokens (like `kubelogin remove-tokens`): it deletes
// this app's cached tokens from every cache and says how many for scope on stderr. Nothing
// goes to stdout.
func removeCachedTokens(env *Env, scope string, stdio Stdio) error {
	n, err := appTokens(env).Remove(scope, env.Thumbprint)
	if err != nil {
		return err
	}
	where := env.Store.TokenCache()
	fmt.Fprintf(stdio.Err, "entraclaw-provisioner-token: removed %d cached token(s) of app %s in tenant %s for %s from the %s (service %q)\n",
		n, env.Client, env.Tenant, scope, where.BackendName(), where.Service())
	return nil
}
