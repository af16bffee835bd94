package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/verify"
)

const tokenSummary = `entraclaw-provisioner-token prints a Microsoft Graph access token for the provisioner app,
minted with the certificate in the OS keyring, and nothing else on stdout:

    TOKEN=$(entraclaw-provisioner-token)

It never creates or repairs anything and never calls Graph. Tokens are cached in the keyring
(service entraclaw-provisioner-token-cache, one item per tenant|client|scope|certificate)
until less than -min-validity is left; -remove-cached-tokens deletes this app's.`

// tokenOutput is the -o json shape, modelled on `az account get-access-token`.
type tokenOutput struct {
	AccessToken string `json:"accessToken"`
	ExpiresOn   string `json:"expiresOn"`
	ExpiresOnTS int64  `json:"expires_on"`
	TokenType   string `json:"tokenType"`
	Tenant      string `json:"tenant"`
}

// RunToken is entraclaw-provisioner-token.
func RunToken(ctx context.Context, args []string, stdio Stdio) error {
	fs, c := NewFlagSet("entraclaw-provisioner-token", tokenSummary, stdio)
	scope := fs.String("scope", "", "token `scope`, <resource>/.default (default: the Graph endpoint's /.default)")
	noCache := fs.Bool("no-cache", false, "always request a fresh token (the cache is refreshed with it)")
	minValidity := fs.Duration("min-validity", 5*time.Minute, "serve a cached token only while it has at least this long left")
	removeCached := fs.Bool("remove-cached-tokens", false, "remove this app's cached tokens (for -scope) from the keyring and exit; prints nothing on stdout")
	if err := c.Parse(fs, args); err != nil {
		return err
	}
	if err := DurationFlag("min-validity", *minValidity, true); err != nil {
		return err
	}
	env, err := c.Resolve(NeedProvisioner)
	if err != nil {
		return err
	}
	if *scope == "" {
		*scope = env.Cloud.GraphScope()
	}
	if !strings.HasSuffix(*scope, "/.default") || strings.ContainsAny(*scope, " \t") {
		return UsageError("-scope must be a single <resource>/.default scope (client credentials cannot request individual permissions), not %q", *scope)
	}
	if *removeCached {
		return removeCachedTokens(env, *scope, stdio)
	}

	now := time.Now()
	cache := keystore.New(keystore.TokenCacheService(env.KeyringService))
	cacheKey := func(thumb string) string { return strings.Join([]string{env.Tenant, env.Client, *scope, thumb}, "|") }

	// The two keyring reads are D-Bus round trips that dominate a cached call: look the
	// cached token up under the thumbprint the state file records while the bundle is
	// read, and use it only if the keyring certificate turns out to have that thumbprint.
	type cached struct {
		token string
		exp   time.Time
		err   error
	}
	speculative := make(chan cached, 1)
	stateThumb := strings.ToLower(env.Thumbprint)
	if !*noCache && stateThumb != "" {
		go func() {
			tok, exp, err := cache.GetCachedToken(cacheKey(stateThumb))
			speculative <- cached{tok, exp, err}
		}()
	} else {
		speculative <- cached{err: keystore.ErrNotFound}
	}
	bundle, err := env.LoadBundle(now)
	hit := <-speculative
	if err != nil {
		return err
	}
	thumb := certs.Thumbprint(bundle.Cert)
	if certs.ExpiresWithin(bundle.Cert, now, verify.DefaultExpiresIn) {
		days := int(bundle.Cert.NotAfter.Sub(now).Hours() / 24)
		fmt.Fprintf(stdio.Err, "entraclaw-provisioner-token: %s provisioner certificate %s expires on %s (in %d days); run `entraclaw-migrate` to rotate it\n",
			newPainter(stdio).yellow("warning:"), thumb, bundle.Cert.NotAfter.UTC().Format("2006-01-02"), days)
	}
	if !*noCache {
		if thumb != stateThumb {
			hit.token, hit.exp, hit.err = cache.GetCachedToken(cacheKey(thumb))
		}
		if hit.err == nil && hit.exp.Sub(now) >= *minValidity {
			return printToken(stdio, c, env.Tenant, hit.token, hit.exp)
		}
	}

	cred, err := env.CertificateCredential(bundle)
	if err != nil {
		return err
	}
	at, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{*scope}})
	if err != nil {
		return err
	}
	if err := cache.PutCachedToken(cacheKey(thumb), at.Token, at.ExpiresOn); err != nil && c.Verbose {
		fmt.Fprintf(stdio.Err, "entraclaw-provisioner-token: token cache not updated: %v\n", err)
	}
	return printToken(stdio, c, env.Tenant, at.Token, at.ExpiresOn)
}

func printToken(stdio Stdio, c *Common, tenant, token string, exp time.Time) error {
	if c.JSON() {
		return WriteJSON(stdio.Out, tokenOutput{
			AccessToken: token, ExpiresOn: exp.UTC().Format(time.RFC3339), ExpiresOnTS: exp.Unix(),
			TokenType: "Bearer", Tenant: tenant,
		})
	}
	_, err := fmt.Fprintln(stdio.Out, token)
	return err
}
