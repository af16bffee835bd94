package cli_test

// The bad-input table: every binary fed broken state files, broken keyring items and bad flags
// must answer with one `<binary>: error: …` line (plus a hint), the documented exit code,
// nothing on stdout, and an untouched state file. `go test ./pkg/cli -run BadInput -v` prints
// the table in Markdown.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

const (
	binToken    = "entraclaw-provisioner-token"
	binMigrate  = "entraclaw-migrate"
	binVerify   = "entraclaw-verify"
	binRollback = "entraclaw-rollback"
	binFake     = "entraclaw-fake-entra"
)

// stateMarker is a value planted in broken state files: no message may echo it.
const stateMarker = "planted-value-q7x"

// unprivilegedUID is who runs the permission cases when the tests run as root.
const unprivilegedUID = 65534

// badCase is one row of the table.
type badCase struct {
	bin   string
	input string   // what is wrong, for the table
	args  []string // rollback rows get -yes added
	env   []string // extra environment, KEY=VALUE
	// state prepares the row's directory; nil writes the scenario's state file unchanged.
	state func(t *testing.T, r *badRun)
	// bundle, when set, is the keyring item (for the scenario's tenant) under a private service.
	bundle func(t *testing.T, f *fakeEnv) []byte
	// unprivileged runs the binary as a non-root user (permission checks do not apply to root).
	unprivileged bool
	scenario     string // "migrated" (default) or "legacy"
	exit         int
	msg          string // regexp the line after "<bin>: error: " must match (success rows: stderr)
	noHint       bool   // the error line stands alone
	stdout       string // regexp stdout must match; "" means stdout must be empty
	// after checks a successful row's directory.
	after func(t *testing.T, r *badRun)
}

// badRun is a row being run: its directory, state file and keyring service.
type badRun struct {
	f         *fakeEnv
	dir       string
	statePath string
	service   string // the row's own keyring service, if any
}

func (r *badRun) writeState(t *testing.T, data []byte) {
	t.Helper()
	if err := os.WriteFile(r.statePath, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// putBundle stores item as the tenant's item under a new keyring service and returns the
// service. With recordThumbprint, the state file records the certificate's thumbprint (when
// there is one), so that verify gets past the thumbprint comparison to the real problem.
func (r *badRun) putBundle(t *testing.T, item []byte, recordThumbprint bool) string {
	t.Helper()
	service := randomService()
	r.service = service
	t.Cleanup(func() {
		_ = keyring.DeleteAll(service)
		_ = keyring.DeleteAll(keystore.TokenCacheService(service))
	})
	if err := keystore.New(service).PutBundle(r.f.Scenario.TenantID, item); err != nil {
		t.Fatal(err)
	}
	if cert := firstCertificate(item); cert != nil && recordThumbprint {
		editState(nil, map[string]string{"PROVISIONER_CERT_THUMBPRINT": strconv.Quote(certs.Thumbprint(cert))})(t, r)
	}
	return service
}

// firstCertificate is the first parseable CERTIFICATE block of data, or nil.
func firstCertificate(data []byte) *x509.Certificate {
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if cert, err := x509.ParseCertificate(block.Bytes); block.Type == "CERTIFICATE" && err == nil {
			return cert
		}
	}
	return nil
}

// sanitize replaces the row's temporary names in a line for the table.
func (r *badRun) sanitize(line string) string {
	pairs := []string{r.dir, "$DIR", r.f.Dir, "$WORK", r.f.Scenario.TenantID, "$TENANT", r.f.Service, "$SERVICE"}
	if r.service != "" {
		pairs = append(pairs, r.service, "$SERVICE")
	}
	if r.f.Scenario.ClientID != "" {
		pairs = append(pairs, r.f.Scenario.ClientID, "$CLIENT")
	}
	return strings.NewReplacer(pairs...).Replace(line)
}

// withState replaces the state file with content.
func withState(content string) func(*testing.T, *badRun) {
	return func(t *testing.T, r *badRun) { r.writeState(t, []byte(content)) }
}

// editState rewrites the scenario's state file line by line: lines mentioning a key of
// drop are removed, and `"KEY": …` lines of a key in set get the raw JSON value given.
func editState(drop []string, set map[string]string) func(*testing.T, *badRun) {
	return func(t *testing.T, r *badRun) {
		var out []string
		lines := strings.Split(string(r.f.Scenario.StateJSON), "\n")
		for _, line := range lines {
			key, _, ok := strings.Cut(strings.TrimSpace(line), ":")
			key = strings.Trim(key, `"`)
			if ok && slices.Contains(drop, key) {
				continue
			}
			if v, found := set[key]; ok && found {
				comma := ""
				if strings.HasSuffix(line, ",") {
					comma = ","
				}
				line = fmt.Sprintf("  %q: %s%s", key, v, comma)
			}
			out = append(out, line)
		}
		r.writeState(t, []byte(strings.Join(out, "\n")))
	}
}

// symlinkedState moves the state file into a subdirectory and links to it.
func symlinkedState(t *testing.T, r *badRun) {
	real := filepath.Join(r.dir, "real", "state.json")
	if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, r.f.Scenario.StateJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("real", "state.json"), r.statePath); err != nil {
		t.Fatal(err)
	}
}

// linkSurvived asserts the state file is still a symlink to real/state.json.
func linkSurvived(t *testing.T, r *badRun) {
	t.Helper()
	target, err := os.Readlink(r.statePath)
	if err != nil || target != filepath.Join("real", "state.json") {
		t.Errorf("the state file is no longer the symlink to real/state.json: %q, %v", target, err)
	}
}

func danglingState(t *testing.T, r *badRun) {
	if err := os.Symlink("gone.json", r.statePath); err != nil {
		t.Fatal(err)
	}
}

// unreadableState leaves the state file to the unprivileged user, with mode 0000.
func unreadableState(t *testing.T, r *badRun) {
	r.writeState(t, r.f.Scenario.StateJSON)
	chownUnprivileged(t, r.dir, r.statePath)
	if err := os.Chmod(r.statePath, 0); err != nil {
		t.Fatal(err)
	}
}

// readOnlyDir leaves a readable state file (owned by the unprivileged user) in a read-only directory.
func readOnlyDir(t *testing.T, r *badRun) {
	r.writeState(t, r.f.Scenario.StateJSON)
	chownUnprivileged(t, r.dir, r.statePath)
	if err := os.Chmod(r.dir, 0o555); err != nil {
		t.Fatal(err)
	}
}

func chownUnprivileged(t *testing.T, paths ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	for _, p := range paths {
		if err := os.Chown(p, unprivilegedUID, unprivilegedUID); err != nil {
			t.Fatal(err)
		}
	}
}

// Keyring items.

func bundleGarbage(*testing.T, *fakeEnv) []byte {
	return []byte("not a PEM bundle: " + stateMarker)
}

func bundleMismatch(t *testing.T, f *fakeEnv) []byte {
	other, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return append(f.Scenario.Bundle.CertPEM(), other.KeyPEM()...)
}

func bundleExpired(t *testing.T, _ *fakeEnv) []byte {
	b, err := certs.Generate(time.Now().Add(-366 * 24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return b.PEM()
}

func bundleEncrypted(_ *testing.T, f *fakeEnv) []byte {
	encrypted := "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI" + "\n-----END ENCRYPTED PRIVATE KEY-----\n"
	return append(f.Scenario.Bundle.CertPEM(), encrypted...)
}

// State file contents.

var (
	stateNotJSON   = `{"TENANT_ID": "` + stateMarker + `", `
	stateArray     = `["TENANT_ID", "` + stateMarker + `"]` + "\n"
	stateHuge      = `{"TENANT_ID": "11111111-2222-3333-4444-555555555555", "BLOB": "` + strings.Repeat("x", 1<<20) + `"}` + "\n"
	stateDeep      = `{"NESTED": ` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "}\n"
	stateDuplicate = `{"TENANT_ID": "` + stateMarker + `", "TENANT_ID": "` + stateMarker + `"}` + "\n"
)

// stateCases are the broken state files every binary must refuse without changing them.
func stateCases(bin string, extra ...string) []badCase {
	corrupt := `invalid state file .*\.entraclaw-state\.json`
	cases := []badCase{
		{input: "state file empty", state: withState(""), exit: 1, msg: corrupt + `: .*empty`},
		{input: "state file not JSON", state: withState(stateNotJSON), exit: 1, msg: corrupt},
		{input: "state file a JSON array", state: withState(stateArray), exit: 1, msg: corrupt + `: top-level JSON value is an array, not an object`},
		{input: "state file > 1 MiB", state: withState(stateHuge), exit: 1, msg: corrupt + `: .*limit`},
		{input: "state file nested 100000 deep", state: withState(stateDeep), exit: 1, msg: corrupt + `: values nested more than 32 levels`},
		{input: "state file duplicate key", state: withState(stateDuplicate), exit: 1, msg: corrupt + `: duplicate key "TENANT_ID"`},
		{input: "TENANT_ID a number", state: editState(nil, map[string]string{"TENANT_ID": "42"}), exit: 1, msg: `TENANT_ID.*number`},
		{input: "PROVISIONER_CLIENT_ID an object", state: editState(nil, map[string]string{"PROVISIONER_CLIENT_ID": `{"id": "` + stateMarker + `"}`}), exit: 1, msg: `PROVISIONER_CLIENT_ID.*object`},
		{input: "state file a dangling symlink", state: danglingState, exit: 1, msg: `broken symlink: .*\.entraclaw-state\.json points to gone\.json`},
		{input: "state file unreadable (0000)", state: unreadableState, unprivileged: true, exit: 1, msg: `\.entraclaw-state\.json.*permission denied`},
	}
	for i := range cases {
		cases[i].bin = bin
		cases[i].args = extra
	}
	return cases
}

func badInputCases() []badCase {
	var cases []badCase
	for _, bin := range []string{binToken, binVerify, binMigrate, binRollback} {
		cases = append(cases, stateCases(bin)...)
	}
	noTenant := editState([]string{"TENANT_ID"}, nil)
	noClient := editState([]string{"PROVISIONER_CLIENT_ID"}, nil)
	cases = append(cases,
		// Missing keys: token and verify need both; migrate finds both on its own; rollback needs the app.
		badCase{bin: binToken, input: "no TENANT_ID", state: noTenant, exit: 3, msg: `no tenant: .* has no TENANT_ID`},
		badCase{bin: binToken, input: "no PROVISIONER_CLIENT_ID", state: noClient, exit: 3, msg: `no provisioner app recorded`},
		badCase{bin: binVerify, input: "no TENANT_ID", state: noTenant, exit: 3, msg: `no tenant: .* has no TENANT_ID`},
		badCase{bin: binVerify, input: "no PROVISIONER_CLIENT_ID", state: noClient, exit: 3, msg: `no provisioner app recorded`},
		badCase{bin: binRollback, input: "no PROVISIONER_CLIENT_ID", state: noClient, exit: 3, msg: `no PROVISIONER_CLIENT_ID`},

		// Writers in a read-only directory.
		badCase{bin: binMigrate, input: "read-only directory", state: readOnlyDir, unprivileged: true, exit: 1, msg: `state file directory .* is not writable`},
		badCase{bin: binRollback, input: "read-only directory", state: readOnlyDir, unprivileged: true, exit: 1, msg: `state file directory .* is not writable`},

		// Symlinks to a valid file work, and writers keep the link.
		badCase{bin: binToken, input: "state file a symlink", state: symlinkedState, exit: 0, msg: `^$`, stdout: `^eyJ[^\n]+\n$`},
		badCase{bin: binVerify, input: "state file a symlink", state: symlinkedState, exit: 0, msg: `^$`, stdout: `4/4 checks passed`},
		badCase{bin: binMigrate, input: "state file a symlink (legacy)", scenario: "legacy", state: symlinkedState, exit: 0,
			msg: `Migration complete`, after: func(t *testing.T, r *badRun) {
				linkSurvived(t, r)
				data, err := os.ReadFile(r.statePath)
				if err != nil || bytes.Contains(data, []byte("PROVISIONER_CLIENT_SECRET")) || !bytes.Contains(data, []byte("PROVISIONER_CERT_THUMBPRINT")) {
					t.Errorf("the link's target was not migrated (%v):\n%s", err, data)
				}
			}},
		badCase{bin: binRollback, input: "state file a symlink (legacy, migrated)", scenario: "legacy", state: symlinkedState, exit: 0,
			msg: `Rolled back to secret auth`, after: func(t *testing.T, r *badRun) {
				linkSurvived(t, r)
				data, err := os.ReadFile(r.statePath)
				if err != nil || !bytes.Contains(data, []byte("PROVISIONER_CLIENT_SECRET")) {
					t.Errorf("the link's target holds no rolled-back secret (%v)", err)
				}
			}},
	)

	// Keyring items: not set up (3) for the token; a failed check (4) for verify.
	for _, k := range []struct {
		input  string
		bundle func(*testing.T, *fakeEnv) []byte
		msg    string
	}{
		{"keyring item garbage", bundleGarbage, `not a usable certificate bundle: bundle holds no PEM data`},
		{"keyring key not matching cert", bundleMismatch, `not a usable certificate bundle: private key does not match`},
		{"keyring cert expired", bundleExpired, `provisioner certificate [0-9a-f]{40} expired on`},
		{"keyring key encrypted", bundleEncrypted, `not a usable certificate bundle: encrypted private keys are not supported`},
	} {
		cases = append(cases,
			badCase{bin: binToken, input: k.input, bundle: k.bundle, exit: 3, msg: k.msg},
			badCase{bin: binVerify, input: k.input, bundle: k.bundle, args: []string{"-check", "keyring-cert"}, exit: 4,
				msg: `1 of 1 checks failed|keyring-cert`, stdout: `FAIL  keyring-cert`},
			badCase{bin: binMigrate, input: k.input + " (-operator-auth provisioner)", bundle: k.bundle, args: []string{"-operator-auth", "provisioner"}, exit: 3, msg: k.msg},
		)
	}

	// Flags and environment variables.
	for _, bin := range []string{binToken, binVerify, binMigrate, binRollback} {
		cases = append(cases,
			badCase{bin: bin, input: "-tenant-id not-a-tenant!", args: []string{"-tenant-id", "not-a-tenant!"}, exit: 2, msg: `tenant`},
			badCase{bin: bin, input: "-client-id not-a-guid", args: []string{"-client-id", "not-a-guid"}, exit: 2, msg: `client`},
			badCase{bin: bin, input: "-cloud mars", args: []string{"-cloud", "mars"}, exit: 2, msg: `mars`},
			badCase{bin: bin, input: "-o yaml", args: []string{"-o", "yaml"}, exit: 2, msg: `-o must be text or json`},
			badCase{bin: bin, input: "-authority-host http://", args: []string{"-authority-host", "http://login.example.com/"}, exit: 2, msg: `https`},
			badCase{bin: bin, input: "-graph-endpoint http://", args: []string{"-graph-endpoint", "http://graph.example.com"}, exit: 2, msg: `https`},
			badCase{bin: bin, input: "unknown flag -frobnicate", args: []string{"-frobnicate"}, exit: 2, msg: `flag provided but not defined: -frobnicate`},
			badCase{bin: bin, input: "positional argument", args: []string{"extra"}, exit: 2, msg: `unexpected argument "extra"`},
			badCase{bin: bin, input: "-keyring-service ''", args: []string{"-keyring-service", ""}, exit: 2, msg: `-keyring-service must not be empty`},
			badCase{bin: bin, input: "ENTRACLAW_V=maybe", env: []string{"ENTRACLAW_V=maybe"}, exit: 2, msg: `ENTRACLAW_V`},
			badCase{bin: bin, input: "ENTRACLAW_CLOUD=mars", env: []string{"ENTRACLAW_CLOUD=mars"}, exit: 2, msg: `mars`},
		)
	}
	for _, bin := range []string{binToken, binVerify, binRollback} { // migrate creates a missing state file
		cases = append(cases, badCase{bin: bin, input: "-state-file missing.json", args: []string{"-state-file", "missing.json"}, exit: 3, msg: `missing\.json`})
	}
	cases = append(cases,
		badCase{bin: binToken, input: "-scope User.Read", args: []string{"-scope", "https://graph.microsoft.com/User.Read"}, exit: 2, msg: `/\.default`},
		badCase{bin: binToken, input: "-scope two scopes", args: []string{"-scope", "https://a/.default https://b/.default"}, exit: 2, msg: `/\.default`},
		badCase{bin: binToken, input: "-min-validity banana", args: []string{"-min-validity", "banana"}, exit: 2, msg: `-min-validity`},
		badCase{bin: binToken, input: "-min-validity -1m", args: []string{"-min-validity", "-1m"}, exit: 2, msg: `-min-validity must be`},
		badCase{bin: binToken, input: "ENTRACLAW_MIN_VALIDITY=banana", env: []string{"ENTRACLAW_MIN_VALIDITY=banana"}, exit: 2, msg: `ENTRACLAW_MIN_VALIDITY`},
		badCase{bin: binMigrate, input: "-propagation-timeout -1s", args: []string{"-propagation-timeout", "-1s"}, exit: 2, msg: `-propagation-timeout must be`},
		badCase{bin: binMigrate, input: "-renew-before 0", args: []string{"-renew-before", "0"}, exit: 2, msg: `-renew-before must be`},
		badCase{bin: binMigrate, input: "-operator-auth password", args: []string{"-operator-auth", "password"}, exit: 2, msg: `-operator-auth must be`},
		badCase{bin: binMigrate, input: "ENTRACLAW_PROPAGATION_TIMEOUT=soon", env: []string{"ENTRACLAW_PROPAGATION_TIMEOUT=soon"}, exit: 2, msg: `ENTRACLAW_PROPAGATION_TIMEOUT`},
		badCase{bin: binVerify, input: "-wait -5s", args: []string{"-wait", "-5s"}, exit: 2, msg: `-wait must be`},
		badCase{bin: binVerify, input: "-expires-in 0", args: []string{"-expires-in", "0"}, exit: 2, msg: `-expires-in must be`},
		badCase{bin: binVerify, input: "-operator-auth password", args: []string{"-operator-auth", "password"}, exit: 2, msg: `-operator-auth must be`},
		badCase{bin: binVerify, input: "-check bogus", args: []string{"-check", "bogus"}, exit: 2, msg: `-check`},
		badCase{bin: binVerify, input: "-operator-auth azcli, -graph-endpoint az cannot take", args: []string{"-operator-auth", "azcli", "-graph-endpoint", "https://graph.example.com/a~b"}, exit: 2, msg: `cannot be used with -operator-auth azcli`},
		badCase{bin: binVerify, input: "-token and -decode", args: []string{"-token", "-", "-decode", "-"}, exit: 2, msg: `cannot be combined`},
		badCase{bin: binVerify, input: "-decode - with garbage", args: []string{"-decode", "-"}, exit: 1, msg: `stdin`},
		badCase{bin: binRollback, input: "-secret-lifetime 0", args: []string{"-secret-lifetime", "0"}, exit: 2, msg: `-secret-lifetime must be`},
		badCase{bin: binRollback, input: "-secret-lifetime banana", args: []string{"-secret-lifetime", "banana"}, exit: 2, msg: `-secret-lifetime`},
		badCase{bin: binRollback, input: "no -yes, stdin not a terminal", args: []string{"-no-yes"}, exit: 2, msg: `refusing to roll back without -yes`},
		badCase{bin: binRollback, input: "-backup missing", args: []string{"-backup", "missing.bak"}, exit: 1, msg: `missing\.bak`},

		badCase{bin: binFake, input: "unknown flag -frobnicate", args: []string{"-frobnicate"}, exit: 2, msg: `flag provided but not defined: -frobnicate`},
		badCase{bin: binFake, input: "positional argument", args: []string{"-workdir", "w", "extra"}, exit: 2, msg: `unexpected argument "extra"`},
		badCase{bin: binFake, input: "no -workdir", exit: 2, msg: `-workdir is required`},
		badCase{bin: binFake, input: "-scenario weird", args: []string{"-workdir", "w", "-scenario", "weird"}, exit: 2, msg: `-scenario must be`},
		badCase{bin: binFake, input: "-latency banana", args: []string{"-workdir", "w", "-latency", "banana"}, exit: 2, msg: `-latency`},
		badCase{bin: binFake, input: "ENTRACLAW_FAKE_LATENCY=banana", args: []string{"-workdir", "w"}, env: []string{"ENTRACLAW_FAKE_LATENCY=banana"}, exit: 2, msg: `ENTRACLAW_FAKE_LATENCY`},
	)
	return cases
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	fakes := map[string]*fakeEnv{"migrated": startFake(t, "migrated"), "legacy": startFake(t, "legacy")}
	runAs := newUnprivilegedRunner(t)
	table := []string{"| binary | input | exit | first line of stderr |", "|---|---|---|---|"}
	for i, c := range badInputCases() {
		if c.scenario == "" {
			c.scenario = "migrated"
		}
		name := fmt.Sprintf("%02d_%s_%s", i, strings.TrimPrefix(c.bin, "entraclaw-"), c.input)
		t.Run(name, func(t *testing.T) {
			first := runBadCase(t, fakes[c.scenario], runAs, c)
			table = append(table, fmt.Sprintf("| %s | %s | %s | %s |", c.bin, mdEscape(c.input), first.exit, mdEscape(first.line)))
		})
	}
	t.Log("bad-input table:\n" + strings.Join(table, "\n"))
}

type rowResult struct{ exit, line string }

func mdEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "`", "'")
}

func runBadCase(t *testing.T, f *fakeEnv, runAs *unprivilegedRunner, c badCase) rowResult {
	if c.unprivileged && runAs.skip != "" {
		t.Logf("skipped: %s", runAs.skip)
		return rowResult{"skipped", runAs.skip}
	}
	r := &badRun{f: f, dir: newRowDir(t, c.unprivileged)}
	r.statePath = filepath.Join(r.dir, ".entraclaw-state.json")
	if c.state != nil {
		c.state(t, r)
	} else if c.bin != binFake {
		r.writeState(t, f.Scenario.StateJSON)
	}
	env := append(slices.Clone(f.Env), "HOME="+r.dir)
	if c.bundle != nil {
		env = append(env, "ENTRACLAW_KEYRING_SERVICE="+r.putBundle(t, c.bundle(t, f), c.state == nil))
	}
	env = append(env, c.env...)
	before := snapshotDir(t, r.dir)

	args := c.args
	switch {
	case c.bin == binRollback && slices.Contains(args, "-no-yes"):
		args = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "-no-yes" })
	case c.bin == binRollback:
		args = append([]string{"-yes"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, c.bin), args...)
	if c.unprivileged {
		cmd = runAs.command(ctx, c.bin, args...)
		// The other user's own per-user state directory (locks and backups).
		env = append(env, "XDG_STATE_HOME="+newRowDir(t, true))
	}
	cmd.Dir, cmd.Env = r.dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdin = strings.NewReader("not.a.token\n")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish: %v\nstderr:\n%s", c.bin, args, err, stderr.String())
	}
	code := cmd.ProcessState.ExitCode()
	lines := strings.Split(strings.TrimRight(withoutHostWarning(stderr.String()), "\n"), "\n")
	res := rowResult{exit: fmt.Sprint(code), line: r.sanitize(lines[0])}
	t.Logf("%s %q: exit %d\nstdout:\n%sstderr:\n%s", c.bin, args, code, stdout.String(), stderr.String())

	if code != c.exit {
		t.Errorf("exit %d, want %d", code, c.exit)
	}
	if c.stdout == "" && stdout.Len() > 0 {
		t.Errorf("stdout is not empty:\n%s", stdout.String())
	}
	if c.stdout != "" && !regexp.MustCompile(c.stdout).MatchString(stdout.String()) {
		t.Errorf("stdout does not match %q:\n%s", c.stdout, stdout.String())
	}
	if strings.Contains(stderr.String()+stdout.String(), stateMarker) {
		t.Errorf("the output echoes the input's content (%q)", stateMarker)
	}
	if strings.Contains(stderr.String(), "goroutine ") || strings.Contains(stderr.String(), "panic:") {
		t.Errorf("a Go stack trace on stderr")
	}
	if c.exit == 0 {
		if !regexp.MustCompile(c.msg).MatchString(withoutHostWarning(stderr.String())) {
			t.Errorf("stderr (without the fake-host warning) does not match %q", c.msg)
		}
		if c.after != nil {
			c.after(t, r)
		}
		return res
	}

	checkErrorLines(t, c, lines)
	after := snapshotDir(t, r.dir)
	if diff := diffSnapshots(before, after); diff != "" {
		t.Errorf("the directory changed: %s", diff)
	}
	return res
}

// checkErrorLines asserts stderr is `<bin>: error: …` and at most a `<bin>: hint: …` line.
func checkErrorLines(t *testing.T, c badCase, lines []string) {
	t.Helper()
	errPrefix, hintPrefix := c.bin+": error: ", c.bin+": hint: "
	if c.exit == 4 || c.bin == binMigrate || c.bin == binRollback {
		// Warnings of verify and progress lines of the writers may come first; the error
		// line (and its hint) end stderr.
		for len(lines) > 1 && !strings.HasPrefix(lines[0], errPrefix) {
			if strings.HasPrefix(lines[0], c.bin+":") && !strings.HasPrefix(lines[0], c.bin+": warning: ") {
				t.Errorf("a %s line other than a warning before the error line: %s", c.bin, lines[0])
			}
			lines = lines[1:]
		}
	}
	msg, ok := strings.CutPrefix(lines[0], errPrefix)
	switch {
	case !ok:
		t.Errorf("stderr does not start with %q:\n%s", errPrefix, strings.Join(lines, "\n"))
	case !regexp.MustCompile(c.msg).MatchString(msg):
		t.Errorf("the error line does not match %q: %s", c.msg, lines[0])
	}
	switch {
	case len(lines) > 2:
		t.Errorf("stderr has %d lines, want the error line and at most a hint:\n%s", len(lines), strings.Join(lines, "\n"))
	case len(lines) == 2 && !strings.HasPrefix(lines[1], hintPrefix):
		t.Errorf("the second line is not a hint: %s", lines[1])
	case len(lines) == 1 && !c.noHint:
		t.Errorf("no hint line after: %s", lines[0])
	}
}

// newRowDir is a fresh directory for one row, outside every fake's directory so that the
// state-file search does not find theirs. Unprivileged rows get one the other user can enter.
func newRowDir(t *testing.T, unprivileged bool) string {
	if !unprivileged {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "entraclaw-badinput-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.Chmod(dir, 0o700)
		_ = os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	chownUnprivileged(t, dir)
	return dir
}

// snapshotDir maps every entry of dir (recursively) to its type, mode and content.
// Lock files are left out: taking a lock may create one.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.HasSuffix(rel, ".lock") {
			return nil
		}
		entry := info.Mode().String()
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			entry += " -> " + target
		case info.Mode().IsRegular():
			data, err := os.ReadFile(path)
			switch {
			case errors.Is(err, fs.ErrPermission): // a mode-0000 file, when not root
				entry += fmt.Sprintf(" %d bytes, modified %s", info.Size(), info.ModTime())
			case err != nil:
				return err
			default:
				entry += " " + string(data)
			}
		}
		snap[rel] = entry
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func diffSnapshots(before, after map[string]string) string {
	var diffs []string
	for name, b := range before {
		a, ok := after[name]
		switch {
		case !ok:
			diffs = append(diffs, name+" was removed")
		case a != b:
			diffs = append(diffs, name+" was changed")
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			diffs = append(diffs, name+" was created")
		}
	}
	slices.Sort(diffs)
	return strings.Join(diffs, "; ")
}

// unprivilegedRunner runs binaries as a non-root user when the tests run as root.
type unprivilegedRunner struct {
	skip    string // why permission cases cannot run ("" when they can)
	setpriv string
	bin     string // a copy of the binaries the other user may execute
}

func newUnprivilegedRunner(t *testing.T) *unprivilegedRunner {
	if os.Geteuid() != 0 {
		return &unprivilegedRunner{bin: binDir}
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return &unprivilegedRunner{skip: "running as root and setpriv is not installed, so permission checks cannot be exercised"}
	}
	dir, err := os.MkdirTemp("", "entraclaw-badinput-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{binToken, binMigrate, binVerify, binRollback} {
		if err := copyExecutable(filepath.Join(binDir, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	probe := exec.Command(setpriv, unprivilegedArgs(filepath.Join(dir, binToken), "-version")...)
	if out, err := probe.CombinedOutput(); err != nil {
		return &unprivilegedRunner{skip: fmt.Sprintf("running as root and setpriv cannot switch to uid %d: %v: %s", unprivilegedUID, err, bytes.TrimSpace(out))}
	}
	return &unprivilegedRunner{setpriv: setpriv, bin: dir}
}

func unprivilegedArgs(bin string, args ...string) []string {
	uid := fmt.Sprint(unprivilegedUID)
	return append([]string{"--reuid=" + uid, "--regid=" + uid, "--clear-groups", bin}, args...)
}

func (u *unprivilegedRunner) command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	path := filepath.Join(u.bin, bin)
	if u.setpriv == "" {
		return exec.CommandContext(ctx, path, args...)
	}
	return exec.CommandContext(ctx, u.setpriv, unprivilegedArgs(path, args...)...)
}

func copyExecutable(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
