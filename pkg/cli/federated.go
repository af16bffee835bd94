package cli

import (
	"context"
	"errors"
	"flag"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/token"
	"github.com/entraclaw/entraclaw-cli/pkg/verify"
)

// Values of -credential.
const (
	CredentialAuto        = "auto"
	CredentialCertificate = "certificate"
	CredentialFederated   = "federated"
)

// federatedFlags are the token binary's flags for workload identity federation.
type federatedFlags struct {
	credential, tokenFile, tokenEnv, serviceConnection string
}

// registerFederatedFlags adds -credential and the external token's sources to fs.
func registerFederatedFlags(fs *flag.FlagSet) *federatedFlags {
	f := &federatedFlags{}
	fs.StringVar(&f.credential, "credential", CredentialAuto, "`kind` of credential: auto (this machine's certificate, as always), certificate, or federated (a CI job's or a pod's own OIDC token, exchanged through a federated credential on the app: no secret and no certificate)")
	fs.StringVar(&f.tokenFile, "federated-token-file", "", "with -credential federated: a `file` holding the external token, re-read for every token (default: AZURE_FEDERATED_TOKEN_FILE)")
	fs.StringVar(&f.tokenEnv, "federated-token-env", "", "with -credential federated: the `name` of an environment variable holding the external token (GitLab id_tokens)")
	fs.StringVar(&f.serviceConnection, "service-connection-id", "", "with -credential federated in Azure Pipelines: the service connection `id` (default: AZURESUBSCRIPTION_SERVICE_CONNECTION_ID)")
	return f
}

// federated reports whether -credential asks for federation, and checks the value.
func (f *federatedFlags) federated() (bool, error) {
	switch f.credential {
	case CredentialAuto, CredentialCertificate:
		if f.tokenFile != "" || f.tokenEnv != "" || f.serviceConnection != "" {
			return false, UsageError("-federated-token-file, -federated-token-env and -service-connection-id need -credential federated")
		}
		return false, nil
	case CredentialFederated:
		return true, nil
	}
	return false, UsageError("-credential must be %s, %s or %s, not %q", CredentialAuto, CredentialCertificate, CredentialFederated, f.credential)
}

// federatedCache is how a federated token is cached (token.FederatedCache says where).
type federatedCache struct {
	minValidity time.Duration
	noCache     bool
}

// runFederatedToken prints a token got with the external token of a CI job or a pod. No
// state file is needed: tenant and client come from flags, the environment, the config
// file, or a state file when there is one. Tokens are cached in the kernel keyring where
// -token-cache allows it (auto or kernel) and keyctl works, else not at all.
func runFederatedToken(ctx context.Context, c *Common, f *federatedFlags, fc federatedCache, scope string, stdio Stdio) error {
	env, err := federatedEnv(c)
	if err != nil {
		return err
	}
	if scope == "" {
		scope = env.Cloud.GraphScope()
	}
	cache, cached := federatedTokenCache(c, env)
	if cached && !fc.noCache {
		if tok, ok := cache.Get(scope, token.FederatedThumbprint, fc.minValidity); ok {
			return printToken(stdio, c, env.Tenant, tok.Value, tok.ExpiresOn)
		}
	}
	cred, err := f.newCredential(env)
	if err != nil {
		return err
	}
	tok, err := entra.FetchToken(ctx, cred, scope)
	if err != nil {
		return err // typed where it entered: a federation mismatch names what was presented
	}
	exp, err := token.Check(tok.Token, env.Tenant, env.Client, tok.ExpiresOn, time.Now())
	if err != nil {
		return badTokenError(env.Cloud.AuthorityHost, &token.MintedError{BadTokenError: asBadToken(err)})
	}
	if cached {
		_ = cache.Put(scope, token.FederatedThumbprint, tok.Token, exp, time.Time{}) // a cache that fails costs the next call a mint
	}
	return printToken(stdio, c, env.Tenant, tok.Token, exp)
}

// federatedTokenCache is the app's tokens in the kernel keyring's token cache when
// -token-cache lets federated tokens be cached (token.FederatedCache); false when not.
func federatedTokenCache(c *Common, env *Env) (token.Cache, bool) {
	if !token.FederatedCache(c.TokenCache) {
		return token.Cache{}, false
	}
	cache := appTokens(env)
	cache.Store = env.Store.WithTokenCache(keystore.CacheKernel)
	return cache, true
}

func asBadToken(err error) *token.BadTokenError {
	var bad *token.BadTokenError
	if errors.As(err, &bad) {
		return bad
	}
	return &token.BadTokenError{Reason: err.Error()}
}

// federatedEnv resolves the configuration without needing a state file: the tenant and
// the client id may come from flags, the environment or the config file.
func federatedEnv(c *Common) (*Env, error) {
	env, err := c.Resolve(StateOptional)
	if err != nil {
		return nil, err
	}
	if env.Tenant == "" || env.Client == "" {
		return nil, UsageError("-credential federated needs the tenant and client id: -tenant-id and -client-id (or ENTRACLAW_TENANT_ID / ENTRACLAW_CLIENT_ID, the config file, or a state file)")
	}
	return env, nil
}

// newCredential builds the federated credential from the external token's source.
func (f *federatedFlags) newCredential(env *Env) (azcore.TokenCredential, error) {
	src, err := entra.FindFederatedSource(entra.FederatedSourceOptions{TokenFile: f.tokenFile, TokenEnv: f.tokenEnv, ServiceConnectionID: f.serviceConnection})
	if err != nil {
		return nil, &Error{Code: ExitNotSetUp, Err: err, Hint: "in GitHub Actions give the job `permissions: id-token: write`; in Kubernetes enable workload identity on the pod; see README \"CI without secrets\""}
	}
	return entra.NewFederatedCredential(env.Cloud, env.Tenant, env.Client, src, entra.CredentialOptions{})
}

// runFederatedChecks is entraclaw-verify -credential federated: in a CI job, with no
// keyring and perhaps no state file, it checks the app (no client secret, exactly the
// recorded federated credentials when a state file records them) and a token minted
// with the external token.
func runFederatedChecks(ctx context.Context, o *verifyOptions, stdio Stdio, c *Common) error {
	env, err := federatedEnv(c)
	if err != nil {
		return err
	}
	cred, err := o.fed.newCredential(env)
	if err != nil {
		return err
	}
	return runChecksWith(ctx, env, o, verify.Deps{Store: env.Store, Stderr: stdio.Err, TokenCredential: cred}, stdio, c)
}
