package cli_test

// The end-to-end harness: the real commands (this test binary re-executed under each tool's
// name, see TestMain; the fake built once), the real Secret Service
// (scripts/with-secret-service.sh under `make test`), and an in-process fake Entra ID + Graph
// over HTTPS per script or test. See docs/internals.md and pkg/cli/testdata/script/*/.

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/zalando/go-keyring"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/cli"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/fakecmd"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// binDir holds the five commands, copies of this test binary that testscript.Main puts on PATH.
var binDir string

// keyringErr is why the real keyring is unusable ("" when it works).
var keyringErr string

// TestMain runs the end-to-end tests in-process, as FiloSottile/age does: testscript.Main copies
// this test binary under each tool's name into a directory it puts first on PATH, and a copy
// started by a test runs that tool's entry point (the same cli.Main call as cmd/*/main.go) and
// exits. Processes, signals and exit codes stay real; no binary is linked, not even the fake.
func TestMain(m *testing.M) {
	testscript.Main(harness{m}, map[string]func(){
		binToken:    tool(binToken, cli.RunToken),
		binMigrate:  tool(binMigrate, cli.RunMigrate),
		binVerify:   tool(binVerify, cli.RunVerify),
		binRollback: tool(binRollback, cli.RunRollback),
		binFake:     tool(binFake, fakecmd.Run),
	})
}

// tool is the entry point of one tool in a test-binary copy: the short test timings
// (export_test.go), then what cmd/NAME/main.go does.
func tool(name string, run cli.Command) func() {
	return func() {
		cli.UseTestTimings()
		os.Exit(cli.Main(name, run))
	}
}

// harness runs the tests of the top-level test process, after testscript.Main has set up
// the commands' directory.
type harness struct{ m *testing.M }

func (h harness) Run() int {
	// Nothing a developer exported (ENTRACLAW_STATE_FILE, ENTRACLAW_KEYRING_SERVICE,
	// AZURE_*, …) reaches a test or a binary a test runs, even one run with the inherited
	// environment: the commands get f.Env, built from scratch, and this process forgets them.
	for _, k := range strayVariables(os.Environ()) {
		os.Unsetenv(k)
	}
	tokenPath, err := exec.LookPath(binToken)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testscript.Main put no commands on PATH:", err)
		return 1
	}
	binDir = filepath.Dir(tokenPath)
	if err := keystore.New("entraclaw-test-probe").Probe(); err != nil {
		keyringErr = err.Error()
	}
	return h.m.Run()
}

// goBuild builds packages into dir as `make build` does (buildEnv), its output on stderr.
func goBuild(dir string, packages ...string) error {
	build := exec.Command("go", append([]string{"build", "-o", dir + string(os.PathSeparator)}, packages...)...)
	build.Dir = moduleRoot()
	build.Env = buildEnv()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	return build.Run()
}

// buildEnv is the environment of the harness's go builds: on Linux CGO_ENABLED=0, like
// `make build`/`make install`, so the tests run what users install (and linking skips
// the external linker). The tools run as copies of the test binary, which `go test`
// builds: `make test` exports CGO_ENABLED=0 on Linux for the same reason.
func buildEnv() []string {
	env := os.Environ()
	if runtime.GOOS == "linux" {
		env = append(env, "CGO_ENABLED=0")
	}
	return env
}

// strayVariables returns the names of the ENTRACLAW_* and AZURE_* variables in environ.
func strayVariables(environ []string) []string {
	var names []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ENTRACLAW_") || strings.HasPrefix(k, "AZURE_") {
			names = append(names, k)
		}
	}
	return names
}

func moduleRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// requireKeyring skips a test that needs the real keyring, or fails it under CI=true.
func requireKeyring(t testing.TB) {
	t.Helper()
	if keyringErr != "" {
		skipOutsideCI(t, "no Secret Service (%s); run `make test` (scripts/with-secret-service.sh)", keyringErr)
	}
}

// skipOutsideCI skips a test whose machinery this machine lacks; under CI=true, where
// .ci/run installs everything, it fails instead, so nothing is skipped silently there.
func skipOutsideCI(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("required under CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}

func randomService() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "entraclaw-test-" + hex.EncodeToString(b) + "-cert"
}

// fakeEnv is one fake Entra ID + Graph with its working directory and environment.
type fakeEnv struct {
	Server   *entratest.Server
	Scenario *entratest.Scenario
	Dir      string
	Env      []string
	Service  string
	// Bin is the directory the commands run from: binDir, or the benchmarks' production build.
	Bin string
	// StateHome is the XDG_STATE_HOME of the commands: the per-user directory that
	// holds the state file's locks and backups, outside the work tree (Dir).
	StateHome string
	workdir   *entratest.Workdir
}

// newFakeEnv starts a server and prepares dir (ca.pem, bin/az, env) without seeding; the
// commands run from bin.
func newFakeEnv(dir, bin string) (*fakeEnv, error) {
	srv, err := entratest.NewServer()
	if err != nil {
		return nil, fmt.Errorf("starting the fake: %w", err)
	}
	stateHome, err := os.MkdirTemp("", "entraclaw-state-home-")
	if err != nil {
		srv.Close()
		return nil, err
	}
	f := &fakeEnv{Server: srv, Dir: dir, Service: randomService(), Bin: bin, StateHome: stateHome}
	f.Env = f.environ()
	return f, nil
}

func (f *fakeEnv) environ() []string {
	env := []string{
		"ENTRACLAW_AUTHORITY_HOST=" + f.Server.AuthorityHost(),
		"ENTRACLAW_GRAPH_ENDPOINT=" + f.Server.GraphEndpoint(),
		"ENTRACLAW_KEYRING_SERVICE=" + f.Service,
		"SSL_CERT_FILE=" + filepath.Join(f.Dir, "ca.pem"),
		"CURL_CA_BUNDLE=" + filepath.Join(f.Dir, "ca.pem"),
		"FAKE_URL=" + f.Server.URL,
		"PATH=" + filepath.Join(f.Dir, "bin") + string(os.PathListSeparator) + f.Bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + f.Dir,
		"XDG_STATE_HOME=" + f.StateHome,
		"NO_COLOR=1",
		// The tests of the Secret Service's token cache keep it; the kernel keyring's
		// (and auto's choice) are tested on their own (kernelcache_test.go).
		"ENTRACLAW_TOKEN_CACHE=keyring",
	}
	return append(env, passThrough()...)
}

// passThrough is the part of the test process's environment every command needs.
func passThrough() []string {
	var env []string
	for _, k := range []string{"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "CI", "TMPDIR", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// seed fills the directory with a scenario and writes the workdir files and keyring item.
func (f *fakeEnv) seed(scenario string) error {
	sc, err := f.Server.Seed(scenario)
	if err != nil {
		return err
	}
	f.Scenario = sc
	wd, err := entratest.WriteWorkdir(f.Dir, f.Server, sc)
	if err != nil {
		return err
	}
	f.workdir = wd
	if sc.Bundle != nil {
		if err := keystore.New(f.Service).PutBundle(sc.TenantID, sc.Bundle.PEM()); err != nil {
			return fmt.Errorf("storing the scenario's certificate: %w", err)
		}
	}
	return nil
}

// backups lists the state file's backups: in the per-user directory, and any
// an earlier version left next to the file.
func (f *fakeEnv) backups() ([]string, error) {
	own, err := filepath.Glob(filepath.Join(f.StateHome, "entraclaw", "*", "state.json.bak.*"))
	if err != nil {
		return nil, err
	}
	legacy, err := filepath.Glob(filepath.Join(f.Dir, state.FileName+".bak.*"))
	return append(own, legacy...), err
}

// cleanup closes the server and removes every keyring item the run made.
func (f *fakeEnv) cleanup() {
	f.Server.Close()
	_ = os.RemoveAll(f.StateHome)
	if f.Scenario != nil {
		// Tokens a binary cached in the kernel keyring (-token-cache auto or kernel): the
		// token cache's DeleteCachedTokens clears every cache.
		_ = keystore.New(f.Service).TokenCache().DeleteCachedTokens(f.Scenario.TenantID, f.Scenario.ClientID)
	}
	_ = keyring.DeleteAll(f.Service)
	_ = keyring.DeleteAll(keystore.TokenCacheService(f.Service))
}

// startFake is the Go-test entry point: a seeded fake in a temporary directory.
func startFake(t testing.TB, scenario string) *fakeEnv {
	t.Helper()
	return startFakeFrom(t, scenario, binDir)
}

// startFakeFrom is startFake with the commands run from bin.
func startFakeFrom(t testing.TB, scenario, bin string) *fakeEnv {
	t.Helper()
	requireKeyring(t)
	f, err := newFakeEnv(t.TempDir(), bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.cleanup)
	if err := f.seed(scenario); err != nil {
		t.Fatal(err)
	}
	return f
}

// command returns an exec.Cmd for one of the commands, run in f.Dir with f.Env.
func (f *fakeEnv) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(f.Bin, name), args...)
	cmd.Dir = f.Dir
	cmd.Env = f.Env
	return cmd
}

// run runs a binary to completion.
func (f *fakeEnv) run(t testing.TB, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := f.command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("running %s: %v", name, err)
	}
	return out.String(), errb.String(), code
}

// hostWarning matches the warning every binary prints for the fake's loopback endpoints.
var hostWarning = regexp.MustCompile(`(?m)^entraclaw-[a-z-]+: warning: -(authority-host|graph-endpoint) \S+ (and -graph-endpoint \S+ )?(is|are) not (a )?Microsoft cloud hosts?: [^\n]*\n`)

// withoutHostWarning is stderr without that warning line, for tests that count lines.
func withoutHostWarning(stderr string) string { return hostWarning.ReplaceAllString(stderr, "") }

// ---- testscript ----

func TestScript(t *testing.T) {
	t.Parallel() // mostly waits on the fake (latency, propagation, lag): overlaps the other waiting tests
	requireKeyring(t)
	for _, folder := range scriptFolders(t) {
		t.Run(folder.name, func(t *testing.T) {
			t.Parallel()
			testscript.Run(t, testscript.Params{
				Files:               folder.files,
				Setup:               scriptSetup,
				Cmds:                scriptCommands,
				Condition:           scriptCondition,
				RequireExplicitExec: true,
			})
		})
	}
}

// slowScripts take several seconds each, mostly waiting on the fake (read lag, propagation,
// throttling) or on a software TPM. Parallel tests get their turn in the order they queue,
// so these go first: started last, one of them alone would hold up the end of the run.
var slowScripts = []string{
	"runbook/runbook_real_tenant.txtar",
	"tpm/tpm_runbook.txtar",
	"verify/verify_wait_propagation.txtar",
	"tpm/tpm_file.txtar",
}

// scriptFolder is one folder of testdata/script and its scripts, in the order they run.
type scriptFolder struct {
	name  string
	files []string
}

// scriptFolders lists testdata/script's folders and scripts: the slow scripts and their
// folders first, in slowScripts' order, then the rest alphabetically.
func scriptFolders(t *testing.T) []scriptFolder {
	root := filepath.Join("testdata", "script")
	files, err := filepath.Glob(filepath.Join(root, "*", "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in %s: %v", root, err)
	}
	rank := func(file string) int {
		rel, _ := filepath.Rel(root, file)
		if i := slices.Index(slowScripts, filepath.ToSlash(rel)); i >= 0 {
			return i
		}
		return len(slowScripts)
	}
	for _, slow := range slowScripts {
		if !slices.Contains(files, filepath.Join(root, filepath.FromSlash(slow))) {
			t.Errorf("slowScripts names %s, which is not in %s", slow, root)
		}
	}
	slices.SortStableFunc(files, func(a, b string) int { return cmp.Compare(rank(a), rank(b)) })
	var folders []scriptFolder
	for _, file := range files {
		name := filepath.Base(filepath.Dir(file))
		i := slices.IndexFunc(folders, func(f scriptFolder) bool { return f.name == name })
		if i < 0 {
			folders = append(folders, scriptFolder{name: name})
			i = len(folders) - 1
		}
		folders[i].files = append(folders[i].files, file)
	}
	return folders
}

const fakeKey = "fake"

func scriptSetup(e *testscript.Env) error {
	f, err := newFakeEnv(e.WorkDir, binDir)
	if err != nil {
		return err
	}
	e.Values[fakeKey] = f
	e.Defer(f.cleanup)
	if err := os.WriteFile(filepath.Join(e.WorkDir, "ca.pem"), f.Server.CAPEM(), 0o644); err != nil {
		return err
	}
	// The repository's scripts, so runbooks can call scripts/provisioner-token.py verbatim.
	for _, name := range []string{"provisioner-token.py", "runbook.sh"} {
		data, err := os.ReadFile(filepath.Join(moduleRoot(), "scripts", name))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(e.WorkDir, "scripts"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(e.WorkDir, "scripts", name), data, 0o755); err != nil {
			return err
		}
	}
	for _, kv := range f.Env {
		k, v, _ := strings.Cut(kv, "=")
		e.Setenv(k, v)
	}
	// Scripts can check that the README and docs/ say what the binaries do.
	e.Setenv("README", filepath.Join(moduleRoot(), "README.md"))
	e.Setenv("DOCS", filepath.Join(moduleRoot(), "docs"))
	return nil
}

func fakeOf(ts *testscript.TestScript) *fakeEnv {
	return ts.Value(fakeKey).(*fakeEnv)
}

var scriptCommands = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"fake":       cmdFake,
	"keyring":    cmdKeyring,
	"exits":      cmdExits,
	"certgen":    cmdCertgen,
	"hostwarned": cmdHostWarned,
	"swtpm":      cmdSWTPM,
}

// cmdHostWarned asserts that the last command's stderr is exactly N warning lines about the
// fake's loopback (non-Microsoft) hosts and nothing else: `hostwarned 1`.
func cmdHostWarned(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: hostwarned N")
	}
	stderr := ts.ReadFile("stderr")
	if n := len(hostWarning.FindAllString(stderr, -1)); n != atoi(ts, args[0]) {
		ts.Fatalf("%d host warning lines on stderr, want %s:\n%s", n, args[0], stderr)
	}
	if rest := withoutHostWarning(stderr); rest != "" {
		ts.Fatalf("stderr has more than the host warning:\n%s", rest)
	}
}

// cmdExits runs a program like exec (same environment, stdin and saved stdout/stderr for
// the next asserts) and asserts its exact exit code: `exits 3 entraclaw-provisioner-token`.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want := atoi(ts, args[0])
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("running %s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// cmdCertgen writes a PEM bundle whose certificate ends at now+offset:
// `certgen expired.pem -1h`, `certgen soon.pem 240h`.
func cmdCertgen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: certgen FILE NOTAFTER-OFFSET")
	}
	off := parseDuration(ts, args[1])
	b, err := certs.Generate(time.Now().Add(off - 365*24*time.Hour + 5*time.Minute))
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b.PEM(), 0o600))
}

func parseDuration(ts *testscript.TestScript, s string) time.Duration {
	d, err := time.ParseDuration(s)
	ts.Check(err)
	return d
}

func atoi(ts *testscript.TestScript, s string) int {
	n, err := strconv.Atoi(s)
	ts.Check(err)
	return n
}

// cmdFake drives the in-process fake; see the harness section of docs/internals.md.
func cmdFake(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: fake seed|set|throttle|fail|failn|addpassword|addcert|removecert|revoke|count|writes|tokens|resetcounts|state|stop|az ...")
	}
	f := fakeOf(ts)
	srv := f.Server
	need := func(n int) {
		if len(args) < n+1 {
			ts.Fatalf("fake %s: want %d argument(s)", args[0], n)
		}
	}
	tenant, client := "", ""
	if f.Scenario != nil {
		tenant, client = f.Scenario.TenantID, f.Scenario.ClientID
	}
	assertCount := func(what string, got, want int) {
		if (got == want) == neg {
			ts.Fatalf("fake %s: got %d, want %s%d\ncounts: %v", what, got, map[bool]string{true: "not ", false: ""}[neg], want, srv.Counts())
		}
	}
	switch args[0] {
	case "seed":
		need(1)
		ts.Check(f.seed(args[1]))
		ts.Setenv("TENANT", f.Scenario.TenantID)
		ts.Setenv("CLIENT", f.Scenario.ClientID)
		ts.Setenv("APP_OBJECT_ID", f.Scenario.AppObjectID)
		ts.Setenv("LEGACY_SECRET", f.Scenario.ClientSecret)
		if f.Scenario.Bundle != nil {
			ts.Setenv("THUMBPRINT", certs.Thumbprint(f.Scenario.Bundle.Cert))
		}
	case "set":
		need(2)
		d := parseDuration(ts, args[2])
		switch args[1] {
		case "latency":
			srv.SetLatency(d)
		case "propagation":
			srv.SetPropagationDelay(d)
		case "replication":
			srv.SetReplicationLag(d)
		case "tokenlifetime":
			srv.SetTokenLifetime(d)
		case "readlag":
			srv.SetReadLag(d)
		case "certlifetimecap":
			srv.SetCertLifetimeCap(d)
		default:
			ts.Fatalf("fake set: unknown knob %q", args[1])
		}
	case "throttle":
		need(2)
		srv.Throttle(atoi(ts, args[1]), parseDuration(ts, args[2]))
	case "tokenloop": // fake tokenloop N WINDOW: AADSTS50196 past N token requests per WINDOW
		need(2)
		srv.SetTokenLoopLimit(atoi(ts, args[1]), parseDuration(ts, args[2]))
	case "publish": // fake publish ROLE[:disabled][:user]
		need(1)
		_, err := srv.PublishRole(args[1])
		ts.Check(err)
	case "failafter": // fake failafter ROUTE STATUS CODE: apply the write, then answer the failure
		need(3)
		srv.FailAfterNext(args[1], entratest.Failure{Status: atoi(ts, args[2]), Code: args[3]})
	case "fail":
		need(3)
		srv.FailNext(args[1], entratest.Failure{Status: atoi(ts, args[2]), Code: args[3], Message: strings.Join(args[4:], " ")})
	case "failn":
		need(4)
		srv.FailRepeat(args[2], atoi(ts, args[1]), entratest.Failure{Status: atoi(ts, args[3]), Code: args[4], Message: strings.Join(args[5:], " ")})
	case "addpassword":
		lifetime := 365 * 24 * time.Hour
		if len(args) > 1 {
			lifetime = parseDuration(ts, args[1])
		}
		_, _, err := srv.AddPassword(tenant, client, lifetime)
		ts.Check(err)
	case "addcert":
		// another machine's certificate, or the one in FILE
		b, err := certs.Generate(time.Now())
		if len(args) > 1 {
			b, err = certs.ParseBundle([]byte(ts.ReadFile(args[1])))
		}
		ts.Check(err)
		ts.Check(srv.AddKeyCredential(tenant, client, b.Cert, b.Cert.NotBefore.Add(time.Second), b.Cert.NotAfter.Add(-time.Second)))
		ts.Setenv("OTHER_THUMBPRINT", certs.Thumbprint(b.Cert))
	case "removecert":
		need(1)
		ts.Check(srv.RemoveKeyCredential(tenant, client, args[1]))
	case "revoke":
		need(1)
		ts.Check(srv.RevokeGrant(tenant, client, args[1]))
	case "count":
		need(2)
		assertCount("count "+args[1], srv.Counts()[args[1]], atoi(ts, args[2]))
	case "writes":
		need(1)
		assertCount("writes", srv.WriteCalls(), atoi(ts, args[1]))
	case "tokens":
		need(1)
		assertCount("tokens", srv.TokenRequests(), atoi(ts, args[1]))
	case "resetcounts":
		srv.ResetCounts()
	case "state":
		b, err := json.MarshalIndent(srv.Snapshot(), "", "  ")
		ts.Check(err)
		_, _ = ts.Stdout().Write(append(b, '\n'))
	case "stop":
		srv.Close()
	case "az":
		need(1)
		ts.Setenv("ENTRACLAW_FAKE_AZ_ACCOUNT", args[1])
	case "ci": // fake ci github|pipelines|k8s FILE: the environment of a CI job (or pod) of the fake's OIDC issuers
		need(1)
		cmdFakeCI(ts, srv, args[1:])
	case "ficpropagation": // fake ficpropagation D: new federated credentials reach the token service after D
		need(1)
		srv.SetFICPropagationDelay(parseDuration(ts, args[1]))
	case "oidcsubject": // fake oidcsubject SUB: the subject the fake's CI issuers put in their tokens
		need(1)
		srv.SetOIDCSubject(args[1])
	case "external": // fake external FILE iss=… sub=… aud=… exp=+5m nbf=-1m: an external token with these claims
		need(1)
		claims := map[string]any{}
		for _, kv := range args[2:] {
			k, v, _ := strings.Cut(kv, "=")
			if d, err := time.ParseDuration(v); err == nil && (k == "exp" || k == "nbf" || k == "iat") {
				claims[k] = time.Now().Add(d).Unix()
				continue
			}
			claims[k] = v
		}
		tok, err := srv.MintExternalToken(claims)
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(tok), 0o600))
	default:
		ts.Fatalf("fake: unknown subcommand %q", args[0])
	}
}

// cmdKeyring inspects and edits the real keyring items of this script's service.
func cmdKeyring(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: keyring has|missing|delete|put|save|thumbprint|tpmbound ACCOUNT [FILE]")
	}
	f := fakeOf(ts)
	store := keystore.New(f.Service)
	account := args[1]
	switch args[0] {
	case "has", "missing":
		has, err := store.HasBundle(account)
		ts.Check(err)
		if has != (args[0] == "has") != neg {
			ts.Fatalf("keyring %s %s: item present=%v", args[0], account, has)
		}
	case "delete":
		ts.Check(store.DeleteBundle(account))
	case "put":
		if len(args) < 3 {
			ts.Fatalf("keyring put ACCOUNT FILE")
		}
		ts.Check(store.PutBundle(account, []byte(ts.ReadFile(args[2]))))
	case "thumbprint":
		pem, err := store.GetBundle(account)
		ts.Check(err)
		b, err := certs.ParseBundle(pem)
		ts.Check(err)
		fmt.Fprintln(ts.Stdout(), certs.Thumbprint(b.Cert))
	case "tpmbound":
		// The item names a key in the TPM and holds no private key at all; ! says the
		// opposite: an in-memory key.
		pem, err := store.GetBundle(account)
		ts.Check(err)
		b, err := certs.ParseBundle(pem)
		ts.Check(err)
		noKey := !bytes.Contains(pem, []byte("PRIVATE KEY")) && b.Key == nil
		if (b.TPMBound() && noKey) == neg {
			ts.Fatalf("keyring tpmbound %s: TPM-bound %v, holds no private key %v", account, b.TPMBound(), noKey)
		}
	case "save":
		if len(args) < 3 {
			ts.Fatalf("keyring save ACCOUNT FILE")
		}
		pem, err := store.GetBundle(account)
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(args[2]), pem, 0o600))
	default:
		ts.Fatalf("keyring: unknown subcommand %q", args[0])
	}
}

// scriptTB lets entratest.StartSoftwareTPM run inside a script.
type scriptTB struct{ ts *testscript.TestScript }

func (s scriptTB) Helper()                           {}
func (s scriptTB) Cleanup(fn func())                 { s.ts.Defer(fn) }
func (s scriptTB) Fatalf(format string, args ...any) { s.ts.Fatalf(format, args...) }
func (s scriptTB) Skipf(format string, args ...any) {
	s.ts.Fatalf(format+" (guard the script with [!swtpm] skip)", args...)
}

// scriptCondition is [swtpm]: swtpm is installed, or CI=true (where a missing swtpm must
// fail the script, not skip it).
func scriptCondition(cond string) (bool, error) {
	if cond == "swtpm" {
		_, err := exec.LookPath("swtpm")
		return err == nil || os.Getenv("CI") == "true", nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// cmdSWTPM runs software TPMs for a script: `swtpm start NAME` starts one (stopped when
// the script ends) and points ENTRACLAW_TPM at it; `swtpm use NAME` points ENTRACLAW_TPM
// at a running one; `swtpm stop NAME` kills it (the TPM is gone); `swtpm fill NAME` leaves
// no room in it for another loaded object (the TPM is full).
func cmdSWTPM(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: swtpm start|use|stop|fill NAME")
	}
	key := "swtpm:" + args[1]
	switch args[0] {
	case "start":
		sw := entratest.StartSoftwareTPM(scriptTB{ts})
		swtpms.Store(ts, key, sw)
		ts.Setenv("ENTRACLAW_TPM", sw.Socket)
	case "use":
		ts.Setenv("ENTRACLAW_TPM", swtpms.Load(ts, key).Socket)
	case "stop":
		swtpms.Load(ts, key).Stop()
	case "fill":
		// Fill its object slots as programs killed mid-command would on a TPM without a
		// resource manager: primaries that nobody flushes.
		t, err := linuxudstpm.Open(swtpms.Load(ts, key).Socket)
		ts.Check(err)
		defer t.Close()
		for i := 0; ; i++ {
			_, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(tpm2.ECCSRKTemplate)}.Execute(t)
			if errors.Is(err, tpm2.TPMRCObjectMemory) {
				break
			}
			if err != nil || i > 32 {
				ts.Fatalf("filling the TPM: %v after %d objects", err, i)
			}
		}
	}
}

// swtpms are the software TPMs of each running script, by name.
var swtpms = swtpmRegistry{m: map[*testscript.TestScript]map[string]*entratest.SoftwareTPM{}}

type swtpmRegistry struct {
	mu sync.Mutex
	m  map[*testscript.TestScript]map[string]*entratest.SoftwareTPM
}

func (r *swtpmRegistry) Store(ts *testscript.TestScript, key string, sw *entratest.SoftwareTPM) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[ts] == nil {
		r.m[ts] = map[string]*entratest.SoftwareTPM{}
		ts.Defer(func() { r.mu.Lock(); delete(r.m, ts); r.mu.Unlock() })
	}
	r.m[ts][key] = sw
}

func (r *swtpmRegistry) Load(ts *testscript.TestScript, key string) *entratest.SoftwareTPM {
	r.mu.Lock()
	defer r.mu.Unlock()
	sw := r.m[ts][key]
	if sw == nil {
		ts.Fatalf("no software TPM %s: `swtpm start` it first", strings.TrimPrefix(key, "swtpm:"))
	}
	return sw
}

// cmdFakeCI sets the environment a CI job of the fake's issuers sees.
func cmdFakeCI(ts *testscript.TestScript, srv *entratest.Server, args []string) {
	switch args[0] {
	case "github":
		u, tok := srv.GitHubTokenRequest()
		ts.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", u)
		ts.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", tok)
	case "pipelines":
		u, tok := srv.PipelinesTokenRequest()
		ts.Setenv("SYSTEM_OIDCREQUESTURI", u)
		ts.Setenv("SYSTEM_ACCESSTOKEN", tok)
		ts.Setenv("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", srv.PipelinesServiceConnectionID())
		ts.Setenv("PIPELINES_ISSUER", srv.PipelinesIssuer())
		ts.Setenv("PIPELINES_SUBJECT", "sc://acme/app/"+srv.PipelinesServiceConnectionID())
	case "k8s":
		if len(args) < 2 {
			ts.Fatalf("fake ci k8s FILE")
		}
		path := ts.MkAbs(args[1])
		ts.Check(srv.WriteK8sTokenFile(path))
		ts.Setenv("AZURE_FEDERATED_TOKEN_FILE", path)
		ts.Setenv("K8S_ISSUER", srv.OIDCIssuerURL())
	default:
		ts.Fatalf("fake ci: unknown CI %q (github, pipelines, k8s FILE)", args[0])
	}
}
