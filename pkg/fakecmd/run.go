// Package fakecmd is the entraclaw-fake-entra command: its flags (ENTRACLAW_FAKE_* before
// ENTRACLAW_*), the working directory it writes (CA, state file, fake az, env files), the
// migrated scenario's certificate in the keyring, and serving pkg/entratest until a signal.
// It is apart from pkg/entratest, which imports only pkg/certs, because it wires the fake to
// the keyring and to the command line's flag and error conventions (pkg/cli); and apart
// from pkg/cli so that no tool links the fake.
package fakecmd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

const summary = `entraclaw-fake-entra serves a fake Entra ID token service and Microsoft Graph v1.0 over
HTTPS on 127.0.0.1 (its own CA) and seeds one tenant with a scenario:
  legacy    the provisioner app with one client secret, grants done, a legacy state file
  migrated  the app with one certificate (stored in the keyring), no secret
  empty     only the tenant: entraclaw-migrate creates everything
It writes into -workdir: ca.pem, .entraclaw-state.json, bin/az (a fake Azure CLI) and env
(the exports a shell needs: . WORKDIR/env; it first unsets every ENTRACLAW_* and AZURE_*
variable of that shell), and ci-env, which sources env and adds what a CI job gets for
workload identity federation (GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN, Azure
Pipelines' SYSTEM_OIDCREQUESTURI and SYSTEM_ACCESSTOKEN, Kubernetes'
AZURE_FEDERATED_TOKEN_FILE, a token file it rewrites every 48 minutes). It prints one ready
line and runs until signalled.

With -listen 127.0.0.1:443 -real-hosts it answers as login.microsoftonline.com,
graph.microsoft.com and management.azure.com (map them to 127.0.0.1 in /etc/hosts); env then
sets no host, only the CA, and operator-sp.json holds an operator app's sign-in for the real
az (az login --service-principal ... --allow-no-subscriptions).

Keyring items go under -keyring-service (default entraclaw-fake-cert), which env exports to
the tools. The production names (entraclaw-provisioner-cert, entraclaw-provisioner-token-cache)
are refused unless -keyring-service names one on the command line.`

// defaultService is the fake's keyring service: never the production one by default.
const defaultService = cli.FakeKeyringService

// fakeOptions are the fake's flags, filled and checked by parseFake.
type fakeOptions struct {
	workdir, scenario, service, listen, oidcSubject string
	k8sNamespace, k8sName                           string
	realHosts, showVersion                          bool
	server                                          []entratest.Option // the knobs, as server options
	published                                       []string
	failures, failuresAfter                         []failOnce
	throttle, tokenThrottle                         int
	retryAfter, tokenRetryAfter                     time.Duration
	caeLifetime                                     time.Duration
	setCAELifetime                                  bool // -cae-token-lifetime given, or -token-lifetime not
}

// Run is entraclaw-fake-entra: parse → serve until the context ends.
func Run(ctx context.Context, args []string, stdio cli.Stdio) error {
	o, err := parseFake(args, stdio)
	if err != nil || o.showVersion {
		if err == nil {
			err = cli.PrintVersion(stdio.Out, "entraclaw-fake-entra", false)
		}
		return err
	}
	return serveFake(ctx, o, stdio)
}

// parseFake reads the flags (each also from $ENTRACLAW_FAKE_<FLAG>, else $ENTRACLAW_<FLAG>)
// and checks them: every exit-2 path, before anything is served or written.
func parseFake(args []string, stdio cli.Stdio) (*fakeOptions, error) {
	fs := flag.NewFlagSet("entraclaw-fake-entra", flag.ContinueOnError)
	fs.SetOutput(stdio.Out) // -h to stdout, exit 0
	o := &fakeOptions{}
	k8sAccount, knobs := registerFakeFlags(fs, o)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "%s\n\nUsage:\n  entraclaw-fake-entra -workdir DIR [-scenario legacy|migrated|empty] [flags]\n", summary)
		fmt.Fprintf(w, "\nExamples:\n%s\n", cli.Examples("entraclaw-fake-entra"))
		fmt.Fprintf(w, "\nFlags (each also read from $ENTRACLAW_FAKE_<FLAG>, else $ENTRACLAW_<FLAG>; which real behaviour each\nmodels, and its source: docs/fake-fidelity.md):\n")
		printFlagGroups(w, fs)
	}
	// Every flag falls back to the variable the other binaries read, e.g. -keyring-service
	// to ENTRACLAW_KEYRING_SERVICE when ENTRACLAW_FAKE_KEYRING_SERVICE is unset.
	if err := cli.ParseFlags(fs, args, cli.EnvPrefix+"_FAKE", cli.EnvPrefix); err != nil {
		return nil, err
	}
	if o.showVersion {
		return o, nil
	}
	if isProductionService(o.service) && !onCommandLine(args, "keyring-service") {
		return nil, cli.UsageError("refusing to use the production keyring service %q from the environment; pass -keyring-service %s on the command line if you mean it, or unset ENTRACLAW_FAKE_KEYRING_SERVICE / ENTRACLAW_KEYRING_SERVICE", o.service, o.service)
	}
	if o.workdir == "" {
		return nil, cli.UsageError("-workdir is required")
	}
	switch o.scenario {
	case "legacy", "migrated", "empty":
	default:
		return nil, cli.UsageError("-scenario must be legacy, migrated or empty, not %q", o.scenario)
	}
	var ok bool
	o.k8sNamespace, o.k8sName, ok = strings.Cut(*k8sAccount, ":")
	if !ok || o.k8sNamespace == "" || o.k8sName == "" || strings.Contains(o.k8sName, ":") {
		return nil, cli.UsageError("-k8s-service-account must be NAMESPACE:NAME, not %q", *k8sAccount)
	}
	// -token-lifetime shortens CAE tokens too (WithTokenLifetime), unless
	// -cae-token-lifetime is set as well (flag or environment).
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.setCAELifetime = set["cae-token-lifetime"] || !set["token-lifetime"]
	o.server = knobs()
	return o, nil
}

// registerFakeFlags defines the fake's flags on fs. It returns the raw
// -k8s-service-account and a function that turns the knobs into server options once
// the flags are parsed.
func registerFakeFlags(fs *flag.FlagSet, o *fakeOptions) (k8sAccount *string, knobs func() []entratest.Option) {
	fs.StringVar(&o.workdir, "workdir", "", "directory to write ca.pem, the state file, bin/az and env into (required)")
	fs.StringVar(&o.scenario, "scenario", "legacy", "legacy, migrated or empty")
	fs.StringVar(&o.service, "keyring-service", defaultService, "keyring service `name` for the migrated scenario's certificate, exported to the tools by env")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "`host:port` to serve on (127.0.0.1:443 for -real-hosts)")
	fs.BoolVar(&o.realHosts, "real-hosts", false, "answer as login.microsoftonline.com, graph.microsoft.com and management.azure.com (certificate, routing by Host, URLs), and write an env with no host settings, only the CA; map those names to 127.0.0.1 and use -listen 127.0.0.1:443")
	latency := fs.Duration("latency", 0, "delay added to every request")
	propagation := fs.Duration("propagation-delay", 0, "new grants reach tokens, and new certificates are accepted, this long after the change")
	replication := fs.Duration("replication-lag", 0, "objects created through Graph are invisible (404) for this long")
	tokenLifetime := fs.Duration("token-lifetime", time.Hour, "lifetime of the access tokens it issues (CAE ones too, unless -cae-token-lifetime is given)")
	fs.DurationVar(&o.caeLifetime, "cae-token-lifetime", entratest.DefaultCAETokenLifetime, "lifetime of tokens asked for with the cp1 client capability (CAE), as Entra ID gives CAE clients long-lived tokens")
	fs.IntVar(&o.throttle, "throttle", 0, "answer the first N Graph requests with 429 Too Many Requests")
	fs.DurationVar(&o.retryAfter, "retry-after", time.Second, "the Retry-After of -throttle's 429s (sent in whole seconds, rounded up)")
	fs.IntVar(&o.tokenThrottle, "token-throttle", 0, "answer the first N token requests with 429, Retry-After and a plain-text body, as Entra ID throttles client_credentials")
	fs.DurationVar(&o.tokenRetryAfter, "token-retry-after", entratest.DefaultTokenRetryAfter, "the Retry-After of -token-throttle's 429s")
	keyRemoval := fs.Duration("key-removal-delay", 0, "a certificate removed from an application is still accepted by the token service this long")
	readLag := fs.Duration("read-lag", 0, "for this long after a PATCH of an application, Graph reads of it return the previous value")
	backing403 := fs.Bool("sp-lag-403", false, "while a new app is hidden by -replication-lag, POST /servicePrincipals answers the real replication 403 instead of 400")
	loopLimit := fs.Int("token-loop-limit", 0, "refuse a client asking the token endpoint more than N times within -token-loop-window with AADSTS50196 (0: off)")
	loopWindow := fs.Duration("token-loop-window", time.Minute, "the window of -token-loop-limit")
	certCap := fs.Duration("cert-lifetime-cap", 0, "tenant policy: refuse certificates valid longer than this (e.g. 4320h for 180 days; 0: off)")
	noPasswords := fs.Bool("block-add-pw", false, "tenant policy: refuse addPassword")
	maxKeys := fs.Int("max-key-credentials", 0, "refuse a PATCH or addKey leaving more than `N` certificates on an application with Directory_ResourceSizeExceeded (0: off)")
	noDeviceCode := fs.Bool("block-device-code", false, "Conditional Access: refuse device-code sign-ins with AADSTS53003")
	fs.StringVar(&o.oidcSubject, "oidc-subject", entratest.DefaultOIDCSubject, "the `sub` of the GitHub-shaped ID tokens (ci-env's ACTIONS_ID_TOKEN_REQUEST_URL)")
	ficPropagation := fs.Duration("fic-propagation-delay", 0, "a new or changed federated identity credential is accepted by the token service this long after the write (AADSTS70021 until then)")
	k8sAccount = fs.String("k8s-service-account", entratest.DefaultK8sNamespace+":"+entratest.DefaultK8sServiceAccount, "`NAMESPACE:NAME` of the Kubernetes-style token file's subject (system:serviceaccount:NAMESPACE:NAME)")
	registerFaultFlags(fs, o)
	return k8sAccount, func() []entratest.Option {
		return []entratest.Option{
			entratest.WithLatency(*latency),
			entratest.WithPropagationDelay(*propagation),
			entratest.WithReplicationLag(*replication),
			entratest.WithTokenLifetime(*tokenLifetime),
			entratest.WithKeyRemovalDelay(*keyRemoval),
			entratest.WithReadLag(*readLag),
			entratest.WithBackingAppForbidden(*backing403),
			entratest.WithTokenLoopLimit(*loopLimit, *loopWindow),
			entratest.WithCertLifetimeCap(*certCap),
			entratest.WithPasswordAdditionBlocked(*noPasswords),
			entratest.WithMaxKeyCredentials(*maxKeys),
			entratest.WithDeviceCodeBlocked(*noDeviceCode),
			entratest.WithFICPropagationDelay(*ficPropagation),
		}
	}
}

// registerFaultFlags defines the repeatable flags: -publish-role, -fail-once and
// -fail-after-once.
func registerFaultFlags(fs *flag.FlagSet, o *fakeOptions) {
	fs.Func("publish-role", "publish one more Graph application permission, e.g. AgentIdentityBlueprint.UpdateBranding.All (suffix :disabled or :user; repeatable)", func(v string) error {
		o.published = append(o.published, v)
		return nil
	})
	fs.Func("fail-after-once", "apply the next request to a Graph route, then answer it with a failure, e.g. 'POST /v1.0/applications=504:GatewayTimeout' (repeatable)", func(v string) error {
		f, err := parseFailOnce(v)
		if err == nil && !strings.Contains(f.route, " /v1.0/") {
			err = fmt.Errorf("-fail-after-once works on Graph routes (/v1.0/...), not %q", f.route)
		}
		o.failuresAfter = append(o.failuresAfter, f)
		return err
	})
	fs.Func("fail-once", "fail the next request to a route once, e.g. 'PATCH /v1.0/applications/{id}=503:ServiceUnavailable' or 'POST /{tenant}/oauth2/v2.0/token=401:7000229' (repeatable)", func(v string) error {
		f, err := parseFailOnce(v)
		o.failures = append(o.failures, f)
		return err
	})
}

// newFakeServer starts the server with the options' knobs and faults, not yet seeded.
func newFakeServer(o *fakeOptions) (*entratest.Server, error) {
	opts := []entratest.Option{entratest.WithListenAddress(o.listen)}
	if o.realHosts {
		opts = append(opts, entratest.WithRealHosts())
	}
	opts = append(opts, o.server...)
	opts = append(opts, entratest.WithOIDCSubject(o.oidcSubject), entratest.WithK8sServiceAccount(o.k8sNamespace, o.k8sName))
	srv, err := entratest.NewServer(opts...)
	if err != nil {
		return nil, err
	}
	for _, spec := range o.published {
		if _, err := srv.PublishRole(spec); err != nil {
			srv.Close()
			return nil, cli.UsageError("-publish-role: %v", err)
		}
	}
	for _, f := range o.failuresAfter {
		srv.FailAfterNext(f.route, f.failure)
	}
	srv.Throttle(o.throttle, o.retryAfter)
	srv.ThrottleTokens(o.tokenThrottle, o.tokenRetryAfter)
	if o.setCAELifetime {
		srv.SetCAETokenLifetime(o.caeLifetime)
	}
	for _, f := range o.failures {
		srv.FailNext(f.route, f.failure)
	}
	return srv, nil
}

// serveFake seeds the scenario, writes the workdir, stores the migrated scenario's
// certificate in the keyring, prints the ready line and serves until ctx ends.
func serveFake(ctx context.Context, o *fakeOptions, stdio cli.Stdio) error {
	srv, err := newFakeServer(o)
	if err != nil {
		return err
	}
	defer srv.Close()
	sc, err := srv.Seed(o.scenario)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.workdir, 0o700); err != nil {
		return err
	}
	wd, err := entratest.WriteWorkdir(o.workdir, srv, sc, append(toolsPathEnv(), "ENTRACLAW_KEYRING_SERVICE="+o.service)...)
	if err != nil {
		return err
	}
	store := keystore.New(o.service)
	if sc.Bundle != nil {
		if err := store.PutBundle(sc.TenantID, sc.Bundle.PEM()); err != nil {
			return fmt.Errorf("storing the migrated scenario's certificate: %w", err)
		}
		defer store.DeleteBundle(sc.TenantID)
	}
	go rotateTokenFile(ctx, srv, wd.K8sTokenFile, stdio)
	fmt.Fprintf(stdio.Out, "entraclaw-fake-entra ready: url=%s scenario=%s tenant=%s client=%s env=%s%s\n",
		srv.URL, o.scenario, sc.TenantID, orDash(sc.ClientID), wd.EnvFile, realHostsNote(o.realHosts))
	<-ctx.Done()
	fmt.Fprintf(stdio.Err, "entraclaw-fake-entra: stopping (%s)\n", strings.TrimSpace(summarize(srv.Counts())))
	return nil
}

// tokenFileRotation is how often the Kubernetes-style token file is rewritten: at 80% of
// its one-hour lifetime, as the kubelet rotates projected service-account tokens.
const tokenFileRotation = 48 * time.Minute

// rotateTokenFile rewrites the workdir's Kubernetes-style token file until ctx ends, so a
// long practice session never finds it expired.
func rotateTokenFile(ctx context.Context, srv *entratest.Server, path string, stdio cli.Stdio) {
	tick := time.NewTicker(tokenFileRotation)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := srv.WriteK8sTokenFile(path); err != nil {
				fmt.Fprintf(stdio.Err, "entraclaw-fake-entra: rotating %s: %v\n", path, err)
			}
		}
	}
}

// isProductionService reports whether service, or the token cache that goes with it, is
// one of the names the real tools use.
func isProductionService(service string) bool {
	prod := []string{keystore.DefaultService, keystore.TokenCacheService(keystore.DefaultService)}
	return slices.Contains(prod, service) || slices.Contains(prod, keystore.TokenCacheService(service))
}

// onCommandLine reports whether flag name was given in args (as -name, --name, -name=v).
func onCommandLine(args []string, name string) bool {
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			return false
		}
		n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if n == name {
			return true
		}
	}
	return false
}

// realHostsNote is the ready line's tail under -real-hosts: the hosts it answers as.
func realHostsNote(on bool) string {
	if !on {
		return ""
	}
	return " real-hosts=" + strings.Join(entratest.RealHostNames(), ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func summarize(counts map[string]int) string {
	total := 0
	for _, n := range counts {
		total += n
	}
	return fmt.Sprintf("%d requests served", total)
}

// failOnce is one -fail-once value.
type failOnce struct {
	route   string
	failure entratest.Failure
}

// parseFailOnce reads "METHOD /pattern=STATUS[:CODE]" (CODE is a Graph error code, or the
// AADSTS number on the token route; without it the status text, e.g. GatewayTimeout).
func parseFailOnce(v string) (failOnce, error) {
	route, what, ok := strings.Cut(v, "=")
	status, code, _ := strings.Cut(what, ":")
	n, err := strconv.Atoi(status)
	if err == nil && code == "" {
		code = strings.ReplaceAll(http.StatusText(n), " ", "")
	}
	if !ok || err != nil || code == "" {
		return failOnce{}, fmt.Errorf("want ROUTE=STATUS:CODE, e.g. 'PATCH /v1.0/applications/{id}=503:ServiceUnavailable', not %q", v)
	}
	if !slices.Contains(entratest.Routes(), route) {
		return failOnce{}, fmt.Errorf("unknown route %q; routes: %s", route, strings.Join(entratest.Routes(), ", "))
	}
	return failOnce{route: route, failure: entratest.Failure{Status: n, Code: code, Message: "Injected by -fail-once."}}, nil
}

// flagGroups sorts the fake's knobs for -h (issue 22): each flag in exactly one group.
var flagGroups = []struct {
	title string
	flags []string
}{
	{"Setup", []string{"workdir", "scenario", "keyring-service", "listen", "real-hosts", "version"}},
	{"Latency and faults", []string{"latency", "throttle", "retry-after", "token-throttle", "token-retry-after",
		"token-loop-limit", "token-loop-window", "fail-once", "fail-after-once"}},
	{"Replication and propagation", []string{"propagation-delay", "key-removal-delay", "replication-lag", "sp-lag-403",
		"read-lag", "fic-propagation-delay"}},
	{"Tenant policies", []string{"cert-lifetime-cap", "block-add-pw", "max-key-credentials", "block-device-code", "publish-role"}},
	{"Identities and tokens", []string{"token-lifetime", "cae-token-lifetime", "oidc-subject", "k8s-service-account"}},
}

// printFlagGroups prints fs's flags group by group, each through cli.PrintFlags on a
// flag set holding that group only; a flag in no group is printed last under "Other".
func printFlagGroups(w io.Writer, fs *flag.FlagSet) {
	grouped := map[string]bool{}
	for _, g := range flagGroups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		cli.PrintFlags(w, subFlagSet(fs, g.flags), cli.EnvPrefix+"_FAKE")
		for _, name := range g.flags {
			grouped[name] = true
		}
	}
	var rest []string
	fs.VisitAll(func(f *flag.Flag) {
		if !grouped[f.Name] {
			rest = append(rest, f.Name)
		}
	})
	if len(rest) > 0 {
		fmt.Fprintf(w, "\nOther:\n")
		cli.PrintFlags(w, subFlagSet(fs, rest), cli.EnvPrefix+"_FAKE")
	}
}

// subFlagSet is a flag set sharing fs's flags named in names, defaults included.
func subFlagSet(fs *flag.FlagSet, names []string) *flag.FlagSet {
	sub := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	for _, name := range names {
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		sub.Var(f.Value, f.Name, f.Usage)
		sub.Lookup(f.Name).DefValue = f.DefValue
	}
	return sub
}
