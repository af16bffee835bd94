package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
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
	removeCached := fs.Bool("remove-cached-tokens", false, "remove this app's cached tokens (every scope, certificate and authority host) from the keyring and exit; prints nothing on stdout")
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
	env.Store = env.Store.WithContext(ctx) // keyring waits end at Ctrl-C
	if *removeCached {
		return removeCachedTokens(env, *scope, stdio)
	}
	if stdio.Out == io.Writer(os.Stdout) && stdoutWasClosed() {
		// Checked before the keyring is read or a token minted: the token would go nowhere.
		return stdoutError(errStdoutClosed)
	}

	now := time.Now()
	cache := env.Store.TokenCache()
	cacheKey := func(thumb string) string {
		return keystore.TokenCacheKey(env.Tenant, env.Client, *scope, thumb, env.Cloud.AuthorityHost)
	}
	note := func(msg string) {
		if c.Verbose {
			fmt.Fprintf(stdio.Err, "entraclaw-provisioner-token: %s\n", msg)
		}
	}

	// The two keyring reads are D-Bus round trips that dominate a cached call: look the
	// cached token up under the thumbprint the state file records while the bundle is
	// read (on Linux both over one Secret Service session: keystore.ReadTogether), and
	// use it only if the keyring certificate turns out to have that thumbprint.
	//
	// Why the bundle is still read on a cache hit, although the cache key already holds
	// the state file's thumbprint: a rotation promotes a new certificate by writing the
	// keyring item and then PROVISIONER_CERT_THUMBPRINT (pkg/provision's
	// migrate_certificate.go), so for a moment, and for good after a crash between the
	// two writes or an item replaced by hand, the keyring holds a certificate other than
	// the state file's. A token cached under the state thumbprint was minted with the old
	// certificate; serving it then would skip the expiry warning and the checks of the
	// certificate actually in use (expired, not a usable bundle). So the hit is served
	// only when the keyring certificate's thumbprint equals the key's; otherwise the
	// token is looked up under the keyring certificate's thumbprint (or minted with it).
	// Reading the bundle costs one more item in the same session, not 7 more D-Bus calls.
	type cached struct {
		token string
		exp   time.Time
		err   error
	}
	speculative := make(chan cached, 1)
	stateThumb := strings.ToLower(env.Thumbprint)
	if !*noCache && stateThumb != "" {
		env.Store, cache = keystore.ReadTogether(env.Store, env.Tenant, cache, cacheKey(stateThumb))
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
	// usable checks a cache read: a token that fails checkAccessToken (planted, or cached
	// by an older version) is deleted and ignored; one with too little time left is ignored.
	usable := func(h cached) (time.Time, bool) {
		if h.err != nil {
			if !errors.Is(h.err, keystore.ErrNotFound) {
				if errors.Is(h.err, context.Canceled) {
					return time.Time{}, false
				}
				note("token cache not read: " + h.err.Error())
			}
			return time.Time{}, false
		}
		exp, err := checkAccessToken(h.token, env.Tenant, env.Client, h.exp, time.Now())
		if err != nil {
			note("cached token ignored and deleted: " + err.Error())
			if derr := cache.DeleteCachedToken(cacheKey(thumb)); derr != nil {
				note("token cache item not deleted: " + derr.Error())
			}
			return time.Time{}, false
		}
		return exp, exp.Sub(time.Now()) >= *minValidity
	}
	if !*noCache {
		if thumb != stateThumb {
			hit.token, hit.exp, hit.err = cache.GetCachedToken(cacheKey(thumb))
		}
		if exp, ok := usable(hit); ok {
			return printToken(stdio, c, env.Tenant, hit.token, exp)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// A cold (or stale) cache: one process mints, the others wait on the per-user
		// lock and then find its token.
		unlock, err := lockToken(ctx, cacheKey(thumb), note)
		if err != nil {
			return err
		}
		defer unlock()
		hit.token, hit.exp, hit.err = cache.GetCachedToken(cacheKey(thumb))
		if exp, ok := usable(hit); ok {
			return printToken(stdio, c, env.Tenant, hit.token, exp)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}

	at, err := mintToken(ctx, env, bundle, *scope)
	if sts, ok := entra.AsSTSError(err); ok && sts.HasCode(codeKeyNotFound) {
		// A rotation may have made a new certificate current, and removed this one from
		// the app, between the keyring read and the token request: read it again.
		if again, loadErr := env.LoadBundle(time.Now()); loadErr == nil && certs.Thumbprint(again.Cert) != thumb {
			note("certificate " + thumb + " was retired meanwhile; using the current one")
			bundle, thumb = again, certs.Thumbprint(again.Cert)
			at, err = mintToken(ctx, env, bundle, *scope)
		}
	}
	if err != nil {
		return err
	}
	exp, err := checkAccessToken(at.Token, env.Tenant, env.Client, at.ExpiresOn, time.Now())
	if err != nil {
		return badTokenError(env.Cloud.AuthorityHost, err)
	}
	if err := cache.PutCachedToken(cacheKey(thumb), at.Token, exp); err != nil {
		note("token cache not updated: " + err.Error())
	}
	return printToken(stdio, c, env.Tenant, at.Token, exp)
}

// codeKeyNotFound is AADSTS700027: the certificate that signed the assertion is not
// (or no longer) registered on the app.
const codeKeyNotFound = 700027

// mintToken asks Entra ID for a token with the certificate in bundle.
func mintToken(ctx context.Context, env *Env, bundle *certs.Bundle, scope string) (azcore.AccessToken, error) {
	cred, err := env.CertificateCredential(bundle)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
}

func printToken(stdio Stdio, c *Common, tenant, token string, exp time.Time) error {
	if c.JSON() {
		if err := WriteJSON(stdio.Out, tokenOutput{
			AccessToken: token, ExpiresOn: exp.UTC().Format(time.RFC3339), ExpiresOnTS: exp.Unix(),
			TokenType: "Bearer", Tenant: tenant,
		}); err != nil {
			return stdoutError(err)
		}
		return nil
	}
	if _, err := fmt.Fprintln(stdio.Out, token); err != nil {
		return stdoutError(err)
	}
	return nil
}

// errStdoutClosed: the process started with stdout closed (`>&-`); the Go runtime then
// points fd 1 at /dev/null, so writes would succeed and the token would go nowhere.
var errStdoutClosed = errors.New("stdout is closed")

// stdoutError is a failed write of the result to stdout (closed, full disk, ...): the
// token did not reach the caller, so the run failed.
func stdoutError(err error) error {
	return &Error{Code: ExitFailure, Msg: "writing the token to stdout failed: " + oneLine(err.Error()),
		Hint: "capture stdout, e.g. TOKEN=$(entraclaw-provisioner-token); to discard the token use >/dev/null (a closed stdout, or /dev/null opened read-write as subprocess.DEVNULL does, counts as closed)"}
}
