package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/token"
	"github.com/entraclaw/entraclaw-cli/pkg/verify"
)

const tokenSummary = `entraclaw-provisioner-token prints a Microsoft Graph access token for the provisioner app,
minted with the certificate in the OS keyring, and nothing else on stdout:

    TOKEN=$(entraclaw-provisioner-token)

It never creates or repairs anything and never calls Graph. Tokens are cached (-token-cache:
on Linux the kernel keyring where keyctl works, else the keyring; one item per
tenant|client|scope|certificate, service entraclaw-provisioner-token-cache) until less than
-min-validity is left; -remove-cached-tokens deletes this app's from every cache.`

// tokenOutput is the -o json shape, modelled on `az account get-access-token`.
type tokenOutput struct {
	AccessToken string `json:"accessToken"`
	ExpiresOn   string `json:"expiresOn"`
	ExpiresOnTS int64  `json:"expires_on"`
	TokenType   string `json:"tokenType"`
	Tenant      string `json:"tenant"`
}

// tokenOptions are entraclaw-provisioner-token's own flags, parsed and checked.
type tokenOptions struct {
	scope                            string
	noCache, removeCached, federated bool
	minValidity                      time.Duration
	fed                              *federatedFlags
}

// RunToken is entraclaw-provisioner-token: parse, then the certificate or the federated path.
func RunToken(ctx context.Context, args []string, stdio Stdio) error {
	o, c, err := parseToken(args, stdio)
	if err != nil {
		return err
	}
	if o.federated {
		return runFederatedToken(ctx, c, o.fed, federatedCache{minValidity: o.minValidity, noCache: o.noCache}, o.scope, stdio)
	}
	return runCertificateToken(ctx, o, c, stdio)
}

// parseToken reads and checks the flags (exit 2), with no keyring and no network.
func parseToken(args []string, stdio Stdio) (*tokenOptions, *Common, error) {
	fs, c := NewFlagSet("entraclaw-provisioner-token", tokenSummary, stdio)
	o := &tokenOptions{}
	fs.StringVar(&o.scope, "scope", "", "token `scope`, <resource>/.default (default: the Graph endpoint's /.default)")
	fs.BoolVar(&o.noCache, "no-cache", false, "always request a fresh token (the cache is refreshed with it)")
	fs.DurationVar(&o.minValidity, "min-validity", 5*time.Minute, "serve a cached token only while it has at least this long left")
	fs.BoolVar(&o.removeCached, "remove-cached-tokens", false, "remove this app's cached tokens (every scope, certificate and authority host) from every token cache (keyring and kernel keyring) and exit; prints nothing on stdout")
	o.fed = registerFederatedFlags(fs)
	if err := c.Parse(fs, args); err != nil {
		return nil, nil, err
	}
	var err error
	if o.federated, err = o.fed.federated(); err != nil {
		return nil, nil, err
	}
	if err := DurationFlag("min-validity", o.minValidity, true); err != nil {
		return nil, nil, err
	}
	if o.scope != "" {
		if err := checkScope(o.scope); err != nil {
			return nil, nil, err
		}
	}
	if o.federated && o.removeCached {
		return nil, nil, UsageError("-remove-cached-tokens clears this machine's certificate tokens; it does not combine with -credential federated")
	}
	return o, c, nil
}

// runCertificateToken prints a token got with this machine's certificate: cached while it
// has -min-validity left, else minted (pkg/token owns the protocol).
func runCertificateToken(ctx context.Context, o *tokenOptions, c *Common, stdio Stdio) error {
	env, err := c.Resolve(NeedProvisioner)
	if err != nil {
		return err
	}
	if o.scope == "" {
		o.scope = env.Cloud.GraphScope()
	}
	env.Store = env.Store.WithContext(ctx) // keyring waits end at Ctrl-C
	if env.Store, err = c.withTokenCache(env.Store, true); err != nil {
		return err
	}
	if o.removeCached {
		return removeCachedTokens(env, o.scope, stdio)
	}
	if stdio.Out == io.Writer(os.Stdout) && stdoutWasClosed() {
		// Checked before the keyring is read or a token minted: the token would go nowhere.
		return stdoutError(errStdoutClosed)
	}
	src := &token.Source{
		Store: env.Store, Tenant: env.Tenant, Client: env.Client, Scope: o.scope,
		AuthorityHost: env.Cloud.AuthorityHost, StateThumbprint: env.Thumbprint,
		LoadBundle: func(st *keystore.Store, now time.Time) (*certs.Bundle, error) {
			env.Store = st
			return env.LoadBundle(now)
		},
		Credential:  env.CertificateCredential,
		LockRoot:    userStateDir,
		MinValidity: o.minValidity, NoCache: o.noCache,
		Loaded: func(cert token.Cert) {
			warnCertExpiry(stdio, cert.Thumbprint, cert.NotAfter, time.Now(), inGitHubActions())
		},
	}
	if c.Verbose {
		src.Note = func(msg string) { fmt.Fprintf(stdio.Err, "entraclaw-provisioner-token: %s\n", msg) }
	}
	tok, err := src.Get(ctx)
	var minted *token.MintedError
	if errors.As(err, &minted) {
		return badTokenError(env.Cloud.AuthorityHost, minted)
	}
	if err != nil {
		return err
	}
	return printToken(stdio, c, env.Tenant, tok.Value, tok.ExpiresOn)
}

// warnExpiry warns on stderr when the certificate expires within verify's warning window,
// at most once a day per certificate (warnOnceADay): a job that asks for a token every
// minute gets one line a day, not a log full of them. Under GitHub Actions the line is a
// ::warning:: workflow command, so the run's summary shows it. Only stderr changes.
func warnExpiry(stdio Stdio, b *certs.Bundle, now time.Time, githubActions bool) {
	warnCertExpiry(stdio, certs.Thumbprint(b.Cert), b.Cert.NotAfter, now, githubActions)
}

// warnCertExpiry is warnExpiry for the certificate thumb that expires at notAfter: what a
// token served from a cache apart from the certificate (the kernel keyring) knows of it.
func warnCertExpiry(stdio Stdio, thumb string, notAfter, now time.Time, githubActions bool) {
	if notAfter.After(now.Add(verify.DefaultExpiresIn)) {
		return
	}
	if !warnOnceADay(expiryWarningStamp(thumb), now) {
		return
	}
	fmt.Fprintln(stdio.Err, expiryWarning(stdio, thumb, notAfter, now, githubActions))
}

// expiryWarning is warnExpiry's line: `::warning::entraclaw: certificate …` under GitHub
// Actions, else the usual `entraclaw-provisioner-token: warning: …`.
func expiryWarning(stdio Stdio, thumb string, notAfter, now time.Time, githubActions bool) string {
	when := fmt.Sprintf("expires on %s (in %d days)", notAfter.UTC().Format(time.DateOnly), int(notAfter.Sub(now).Hours()/24))
	if !notAfter.After(now) {
		when = "expired on " + notAfter.UTC().Format(time.DateOnly)
	}
	fix := "run `entraclaw-migrate -renew` to renew it, and `entraclaw-migrate -schedule install` to have it renewed before it expires"
	if githubActions {
		// An annotation is plain text: no backquotes.
		return fmt.Sprintf("::warning::entraclaw: certificate %s %s; %s", thumb, when, strings.ReplaceAll(fix, "`", ""))
	}
	return fmt.Sprintf("entraclaw-provisioner-token: %s provisioner certificate %s %s; %s",
		newPainter(stdio).yellow("warning:"), thumb, when, fix)
}

// inGitHubActions is GITHUB_ACTIONS=true, which the Actions runner sets in every step.
func inGitHubActions() bool { return os.Getenv("GITHUB_ACTIONS") == "true" }

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

// checkScope accepts a single <resource>/.default scope: client credentials cannot
// request individual permissions.
func checkScope(scope string) error {
	if !strings.HasSuffix(scope, "/.default") || strings.ContainsAny(scope, " \t") {
		return UsageError("-scope must be a single <resource>/.default scope (client credentials cannot request individual permissions), not %q", scope)
	}
	return nil
}
