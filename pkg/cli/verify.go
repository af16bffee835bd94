package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/verify"
)

const verifySummary = `entraclaw-verify runs the migration runbook's four checks and prints one PASS/FAIL line each:

    secret-purged  the state file holds no PROVISIONER_CLIENT_SECRET
    no-passwords   the provisioner app has no password credentials (client secrets)
    keyring-cert   the keyring certificate parses, matches PROVISIONER_CERT_THUMBPRINT,
                   is registered on the app and has not expired
    token          a fresh token is an app-only Graph token for this app and tenant,
                   from a certificate (appidacr 2), with every required role

Graph is read with the provisioner's own certificate unless -operator-auth says otherwise.
While Entra ID does not accept that certificate yet (AADSTS700027, right after a migration),
no-passwords and keyring-cert print SKIP (not yet checked) and token is the check to wait for.
keyring-cert warns about certificates on the app named after this machine that no keyring
item of this machine holds (stray: a valid credential whose key is gone), and when the app
holds more than -max-app-keys certificates.
"-token -" checks a piped token only; "-decode -" prints its header and claims (the
signature is not verified: Graph access tokens are not meant to be verified by clients).
-offline prints this machine's status without touching the network (like gh auth status),
with the renewal record of entraclaw-migrate -renew and whether a renewal job is installed.`

// verifyWaitInterval is how long -wait pauses between attempts. A variable so that the
// end-to-end tests can shorten it in the commands they run (export_test.go).
var verifyWaitInterval = 3 * time.Second

// maxTokenInput bounds what -token and -decode read; access tokens are a few KB.
const maxTokenInput = 1 << 20

// RunVerify is entraclaw-verify: parse → run.
func RunVerify(ctx context.Context, args []string, stdio Stdio) error {
	o, c, err := parseVerify(args, stdio)
	if err != nil {
		return err
	}
	return runVerify(ctx, o, c, stdio)
}

// parseVerify fills and checks entraclaw-verify's options: every exit-2 path, with no
// keyring and no network.
func parseVerify(args []string, stdio Stdio) (*verifyOptions, *Common, error) {
	fs, c := NewFlagSet("entraclaw-verify", verifySummary, stdio)
	o := &verifyOptions{}
	fs.StringVar(&o.checkList, "check", "", "comma-separated `checks` to run: "+strings.Join(verify.CheckNames(), ", ")+" (default: all)")
	fs.DurationVar(&o.wait, "wait", 0, "retry until every check passes or this much time has passed, e.g. 2m (0: check once)")
	fs.DurationVar(&o.expiresIn, "expires-in", verify.DefaultExpiresIn, "warn (with -offline: exit 4) when the keyring certificate expires within this time")
	fs.StringVar(&o.operatorAuth, "operator-auth", entra.OperatorProvisioner, "`kind` of credential that reads Graph: provisioner (the app's own certificate), azcli or device-code")
	fs.StringVar(&o.tokenInput, "token", "", "check only this access token (`file`, or - for stdin) against the tenant and client id")
	fs.StringVar(&o.decodeInput, "decode", "", "print the header and claims of an access token (`file`, or - for stdin) as JSON, unverified")
	fs.IntVar(&o.maxAppKeys, "max-app-keys", verify.DefaultMaxAppKeys, "warn when the app holds more than this `number` of certificates (keyCredentials); the fix is entraclaw-migrate -prune-expired")
	o.fed = registerFederatedFlags(fs)
	fs.BoolVar(&o.offline, "offline", false, "print this machine's status from the state file and the keyring only (no network): certificate, expiry, cached token, secrets on disk, renewal; exit 4 on a problem")
	if err := c.Parse(fs, args); err != nil {
		return nil, nil, err
	}
	if err := o.validate(); err != nil {
		return nil, nil, err
	}
	return o, c, nil
}

// runVerify runs what the options chose: decode a token, the federated checks, the
// offline status, one token's check, or the runbook's checks.
func runVerify(ctx context.Context, o *verifyOptions, c *Common, stdio Stdio) error {
	if o.decodeInput != "" {
		return decodeToken(stdio, o.decodeInput)
	}
	if o.federated {
		return runFederatedChecks(ctx, o, stdio, c)
	}

	env, err := c.Resolve(NeedProvisioner)
	if err != nil {
		return err
	}
	env.Store = env.Store.WithContext(ctx) // keyring waits end at Ctrl-C
	switch {
	case o.offline:
		return runStatus(env, o.expiresIn, stdio, c)
	case o.tokenInput != "":
		raw, err := readTokenInput(stdio, o.tokenInput)
		if err != nil {
			return err
		}
		res := verify.CheckToken(raw, verify.Expectations{GraphEndpoint: env.Cloud.GraphEndpoint, Tenant: env.Tenant, Client: env.Client})
		rep := verify.NewReport(res)
		if err := printVerifyReport(stdio, c, rep); err != nil {
			return err
		}
		return rep.Err()
	}
	return runChecks(ctx, env, o, stdio, c)
}

// verifyOptions are entraclaw-verify's own flags.
type verifyOptions struct {
	checkList, operatorAuth, tokenInput, decodeInput string
	wait, expiresIn                                  time.Duration
	maxAppKeys                                       int
	offline, federated                               bool
	checks                                           []string
	fed                                              *federatedFlags
}

// validate checks the flags and their combinations (exit 2), with no keyring or network.
func (o *verifyOptions) validate() error {
	checks, err := verify.ParseChecks(o.checkList)
	if err != nil {
		return UsageError("-check: %v", err)
	}
	o.checks = checks
	if err := DurationFlag("wait", o.wait, true); err != nil {
		return err
	}
	if err := DurationFlag("expires-in", o.expiresIn, false); err != nil {
		return err
	}
	if err := checkOperatorAuth(o.operatorAuth); err != nil {
		return err
	}
	if o.federated, err = o.fed.federated(); err != nil {
		return err
	}
	if o.federated && (o.offline || o.tokenInput != "" || o.operatorAuth != entra.OperatorProvisioner) {
		return UsageError("-credential federated checks the app and a token minted with the external token; it does not combine with -offline, -token or -operator-auth")
	}
	if o.maxAppKeys < 1 {
		return UsageError("-max-app-keys must be a positive number of certificates, not %d", o.maxAppKeys)
	}
	if o.tokenInput != "" || o.decodeInput != "" {
		switch {
		case o.tokenInput != "" && o.decodeInput != "":
			return UsageError("-token and -decode cannot be combined")
		case o.checkList != "" || o.wait != 0:
			return UsageError("-token and -decode look at one token; they do not combine with -check or -wait")
		}
	}
	if o.offline && (o.tokenInput != "" || o.decodeInput != "" || o.checkList != "" || o.wait != 0 || o.operatorAuth != entra.OperatorProvisioner) {
		return UsageError("-offline reads only the state file and the keyring; it does not combine with -token, -decode, -check, -wait or -operator-auth")
	}
	return nil
}

// runChecks runs the runbook's checks once, or until they pass with -wait, and prints
// the report.
func runChecks(ctx context.Context, env *Env, o *verifyOptions, stdio Stdio, c *Common) error {
	deps := verify.Deps{Store: env.Store, Stderr: stdio.Err}
	if o.operatorAuth != entra.OperatorProvisioner {
		cred, err := entra.NewOperatorCredential(o.operatorAuth, env.Cloud, env.Tenant, stdio.Err, entra.CredentialOptions{})
		if err != nil {
			return err
		}
		deps.GraphCredential = cred
	}
	return runChecksWith(ctx, env, o, deps, stdio, c)
}

// runChecksWith is runChecks with the credentials chosen.
func runChecksWith(ctx context.Context, env *Env, o *verifyOptions, deps verify.Deps, stdio Stdio, c *Common) error {
	cfg := verify.Config{
		StatePath: env.StatePath, Tenant: env.Tenant, Client: env.Client, Cloud: env.Cloud,
		Checks: o.checks, ExpiresIn: o.expiresIn, MaxAppKeys: o.maxAppKeys,
	}
	var rep *verify.Report
	var err error
	if o.wait > 0 {
		if rep, err = waitVerify(ctx, cfg, deps, o.wait, stdio, c); ctx.Err() != nil {
			return err // the last complete report is printed, and what passed is said
		}
	} else {
		rep, err = verify.Run(ctx, cfg, deps)
	}
	if ctx.Err() != nil {
		// Interrupted: the checks that were cut short did not fail; report none of them.
		return &Error{Code: ExitInterrupted, Msg: "interrupted", Hint: "verify only reads, so nothing was changed"}
	}
	if rep != nil {
		if perr := printVerifyReport(stdio, c, rep); perr != nil {
			return perr
		}
	}
	if err != nil {
		return err
	}
	return env.reportError(rep)
}

// waitVerify is -wait: verify.Wait with a status line that says what it waits for. On
// Ctrl-C it prints the last complete report and returns the interruption's error.
func waitVerify(ctx context.Context, cfg verify.Config, deps verify.Deps, wait time.Duration, stdio Stdio, c *Common) (*verify.Report, error) {
	sl := NewStatusLine(stdio.Err, stdio.ErrTTY, "entraclaw-verify")
	sl.Start(wait)
	defer sl.Done("")
	var last *verify.Report // the last complete attempt: Ctrl-C can cut the next one short
	deps.Progress = func(r *verify.Report) { last = r; sl.UpdateDetail(pendingChecks(r)) }
	rep, err := verify.Wait(ctx, cfg, deps, wait, verifyWaitInterval)
	switch {
	case ctx.Err() != nil:
		sl.Done("")
		if last != nil {
			rep = last
		}
		if rep != nil {
			_ = printVerifyReport(stdio, c, rep)
		}
		return nil, interruptedVerify(rep, sl.Elapsed())
	case err == nil && rep.OK && sl.Updated():
		sl.Done(fmt.Sprintf("all %d checks pass after %s", len(rep.Checks), sl.Elapsed()))
	case err == nil && !rep.OK:
		msg := fmt.Sprintf("gave up after %s (-wait %s)", sl.Elapsed(), wait)
		if names, _ := pendingChecks(rep); names != "" {
			msg += "; still failing: " + names
		}
		if nc := rep.NotChecked(); len(nc) > 0 {
			msg += "; not yet checked: " + strings.Join(nc, ", ")
		}
		sl.Done(msg)
	}
	return rep, err
}

// pendingChecks names the failing checks of rep, the ones a -wait waits for (its
// state), and gives each one's reason, clipped, and the checks that wait for them (the
// detail). The checks not yet checked are not named: they follow the one that is.
func pendingChecks(rep *verify.Report) (names, detail string) {
	var n, d []string
	for _, r := range rep.Checks {
		if !r.OK && !r.NotChecked {
			n = append(n, r.Name)
			d = append(d, r.Name+": "+clip(r.Detail, 70))
		}
	}
	if nc := rep.NotChecked(); len(nc) > 0 {
		d = append(d, "then "+strings.Join(nc, ", ")+" (not yet checked)")
	}
	return strings.Join(n, ", "), strings.Join(d, "; ")
}

// interruptedVerify is Ctrl-C during -wait: exit 130, saying what passed and what did not.
func interruptedVerify(rep *verify.Report, elapsed time.Duration) error {
	msg := fmt.Sprintf("interrupted after %s", elapsed)
	if rep != nil {
		var passed []string
		for _, r := range rep.Checks {
			if r.OK {
				passed = append(passed, r.Name)
			}
		}
		failing, _ := pendingChecks(rep)
		msg += fmt.Sprintf(": %d of %d checks passed (%s); still waiting for %s", len(passed), len(rep.Checks), orNone(strings.Join(passed, ", ")), orNone(failing))
		if nc := rep.NotChecked(); len(nc) > 0 {
			msg += ", then " + strings.Join(nc, ", ")
		}
	}
	return &Error{Code: ExitInterrupted, Msg: msg,
		Hint: "verify only reads, so nothing was changed; run `entraclaw-verify -wait 2m` again to keep waiting"}
}

// printVerifyReport writes the report: JSON, or one PASS/FAIL line per check and a
// count on stdout with the warnings on stderr.
func printVerifyReport(stdio Stdio, c *Common, rep *verify.Report) error {
	if c.JSON() {
		return WriteJSON(stdio.Out, rep)
	}
	out := stdoutPainter(stdio)
	width := 0
	for _, r := range rep.Checks {
		width = max(width, len(r.Name))
	}
	var b strings.Builder
	for _, r := range rep.Checks {
		verdict := out.green("PASS")
		switch {
		case r.NotChecked:
			verdict = out.yellow("SKIP")
		case !r.OK:
			verdict = out.red("FAIL")
		}
		fmt.Fprintf(&b, "%s  %-*s  %s\n", verdict, width, r.Name, r.Detail)
	}
	fmt.Fprintf(&b, "%d/%d checks passed", rep.Passed(), len(rep.Checks))
	if nc := rep.NotChecked(); len(nc) > 0 {
		fmt.Fprintf(&b, ", %d not yet checked", len(nc))
	}
	b.WriteString("\n")
	if _, err := io.WriteString(stdio.Out, b.String()); err != nil {
		return err
	}
	errp := newPainter(stdio)
	for _, w := range rep.Warnings {
		fmt.Fprintf(stdio.Err, "entraclaw-verify: %s %s\n", errp.yellow("warning:"), w)
	}
	return nil
}

// stdoutPainter colours stdout when it is a terminal and NO_COLOR is unset.
func stdoutPainter(stdio Stdio) painter {
	return painter{on: stdio.OutTTY && !stdio.NoColor}
}

// decodeToken prints {"header","claims","signatureVerified":false} for -decode.
func decodeToken(stdio Stdio, input string) error {
	raw, err := readTokenInput(stdio, input)
	if err != nil {
		return err
	}
	out, err := verify.DecodeForPrint(raw)
	if err != nil {
		return Wrap(ExitFailure, "pass the access token itself: three base64url segments separated by dots", fmt.Errorf("%s: %w", describeInput(input), err))
	}
	if err := WriteJSON(stdio.Out, out); err != nil {
		return err
	}
	fmt.Fprintln(stdio.Err, "entraclaw-verify: note: signature not verified (Graph access tokens are not meant to be verified by clients)")
	return nil
}

// readTokenInput reads a token from a file, or from stdin for "-".
func readTokenInput(stdio Stdio, input string) (string, error) {
	var r io.Reader = stdio.In
	if input != "-" && strings.Count(input, ".") == 2 && strings.HasPrefix(input, "eyJ") {
		// The token itself was passed: never echo it (an open error would name the "file").
		return "", UsageError("-token and -decode take a file name or - (stdin), not the token itself, which would sit in argv and shell history: entraclaw-provisioner-token | entraclaw-verify -token -")
	}
	if input != "-" {
		f, err := os.Open(input)
		if err != nil {
			return "", Wrap(ExitFailure, "", fmt.Errorf("reading the token: %w", err))
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxTokenInput+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("reading the token from %s: %w", describeInput(input), err)
	case len(data) > maxTokenInput:
		return "", Errorf(ExitFailure, "", "%s holds more than %d bytes: not an access token", describeInput(input), maxTokenInput)
	case strings.TrimSpace(string(data)) == "":
		return "", Errorf(ExitFailure, "pipe a token in, e.g. `entraclaw-provisioner-token | entraclaw-verify -token -`", "no token on %s", describeInput(input))
	}
	return string(data), nil
}

func describeInput(input string) string {
	if input == "-" {
		return "stdin"
	}
	return input
}
