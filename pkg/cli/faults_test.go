package cli_test

// The fault matrix: every binary against the faults of the real services (throttling,
// server errors, replication lag, STS errors, a network cut, a missing or locked keyring,
// a concurrent writer). Each case asserts the exit code, the one-line message, the end
// state (the app in the fake, the state file bytes, the keyring item) and, where the run
// failed, that a plain re-run repairs everything and entraclaw-verify then passes.
//
//	go test ./pkg/cli -run Fault -v     # prints the matrix as a markdown table
//
// (SIGKILL at each step and concurrent migrates live in migrate_test.go.)

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// fastRetry is the Retry-After of injected 429s and 503s: azcore honours
// x-ms-retry-after-ms, so the retries cost milliseconds.
const fastRetry = 5 * time.Millisecond

// graphAttempts is how often the Graph client sends one request before it gives up
// (entra's default MaxRetries 4, plus the first attempt).
const graphAttempts = 5

// faultRow is one line of the matrix.
type faultRow struct {
	id, fault, binary string
	exit              int
	message           string
	endState, rerun   string
}

var faultMatrix struct {
	sync.Mutex
	rows []faultRow
}

const faultMatrixHeader = "| case | binary | exit | message (the error line, else the summary or FAIL line) | end state verified | re-run repairs |\n|---|---|---|---|---|---|"

func (r faultRow) markdown() string {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	return fmt.Sprintf("| %s %s | %s | %d | `%s` | %s | %s |", r.id, cell(r.fault), r.binary, r.exit, cell(r.message), cell(r.endState), cell(r.rerun))
}

func recordFault(t *testing.T, r faultRow) {
	t.Helper()
	t.Log(r.markdown())
	faultMatrix.Lock()
	defer faultMatrix.Unlock()
	faultMatrix.rows = append(faultMatrix.rows, r)
}

func TestFaultMatrix(t *testing.T) {
	t.Parallel()
	requireKeyring(t)
	cases := []struct {
		name string
		run  func(*testing.T)
	}{
		{"1-throttling", faultThrottling},
		{"2a-5xx-burst", fault5xxBurst},
		{"2b-5xx-beyond-budget", fault5xxBeyondBudget},
		{"3-replication-lag", faultReplicationLag},
		{"4a-cert-propagation", faultCertPropagation},
		{"4b-missing-sp", faultMissingServicePrincipal},
		{"4c-unknown-tenant", faultUnknownTenant},
		{"5a-connection-resets", faultConnectionResets},
		{"5b-fake-stopped", faultServerStopped},
		{"6a-no-secret-service", faultNoSecretService},
		{"6b-locked-keyring", faultLockedKeyring},
		{"7-concurrent-password", faultConcurrentPassword},
	}
	faultMatrix.Lock()
	faultMatrix.rows = nil // -count=N runs the matrix N times
	faultMatrix.Unlock()
	t.Run("case", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				c.run(t)
			})
		}
	})
	faultMatrix.Lock()
	defer faultMatrix.Unlock()
	rows := faultMatrix.rows
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	var b strings.Builder
	b.WriteString("fault matrix:\n" + faultMatrixHeader + "\n")
	for _, r := range rows {
		b.WriteString(r.markdown() + "\n")
	}
	t.Log(b.String())
}

// ---- 1. throttling ----

// faultThrottling: a 429 storm (every Graph route the migration uses answers 429 with a
// Retry-After of one second) during a legacy migration: each request is retried and the
// migration completes.
func faultThrottling(t *testing.T) {
	f := startFake(t, "legacy")
	srv := f.Server
	// The first request (the app lookup) gets Throttle's burst; every later route its own.
	// The preflight reads run concurrently: a one-request burst, then every route its own
	// (a request may meet both, and must still fit the retry budget).
	srv.Throttle(1, fastRetry)
	routes := []string{entratest.RouteListSPs, entratest.RouteListAssignments, entratest.RouteGetApplication, entratest.RouteRemovePassword, entratest.RoutePatchApplication}
	// One 429 per route: real Retry-After is whole seconds, so every 429 costs this test a
	// second; one per route proves each route retries, and the burst meets a retried one.
	const perRoute = 1
	for _, r := range routes {
		srv.FailRepeat(r, perRoute, entratest.Failure{Status: 429, Code: "TooManyRequests", Message: "Too many requests.", RetryAfter: fastRetry})
	}
	served := 1 + perRoute*len(routes)

	res := runBinary(t, f, nil, "entraclaw-migrate")
	res.wantExit(t, 0)
	throttled := strings.Count(res.stderr, "429 Too Many Requests (throttled)")
	if throttled != served {
		t.Errorf("stderr reports %d throttled requests, the fake served %d 429s:\n%s", throttled, served, res.stderr)
	}
	snap := srv.Snapshot()
	if snap.Knobs.ThrottleRemaining != 0 || len(snap.Knobs.PendingFailures) != 0 {
		t.Errorf("not every 429 was served: throttle %d left, pending %v", snap.Knobs.ThrottleRemaining, snap.Knobs.PendingFailures)
	}
	for _, r := range routes {
		if n := snap.Requests[r]; n <= perRoute {
			t.Errorf("%s: %d requests, want more than the %d throttled ones (retried)", r, n, perRoute)
		}
	}
	end := assertMigrated(t, f)
	recordFault(t, faultRow{id: "1", fault: fmt.Sprintf("429 storm, Retry-After %s (%d 429s on 6 routes)", fastRetry, served), binary: "migrate",
		exit: res.code, message: res.message(), endState: fmt.Sprintf("%d requests retried after 429; %s", throttled, end), rerun: "— (succeeded)"})
}

// ---- 2. server errors ----

// fault5xxBurst: two 503s on the certificate upload are retried.
func fault5xxBurst(t *testing.T) {
	f := startFake(t, "legacy")
	f.Server.FailRepeat(entratest.RoutePatchApplication, 2, entratest.Failure{Status: 503, Code: "ServiceUnavailable", RetryAfter: fastRetry})
	res := runBinary(t, f, nil, "entraclaw-migrate")
	res.wantExit(t, 0)
	if n := f.Server.Counts()[entratest.RoutePatchApplication]; n != 3 {
		t.Errorf("PATCH application: %d requests, want 3 (2 × 503, then the upload)", n)
	}
	if n := strings.Count(res.stderr, "503 Service Unavailable (throttled)"); n != 2 {
		t.Errorf("stderr reports %d 503s, want 2:\n%s", n, res.stderr)
	}
	end := assertMigrated(t, f)
	recordFault(t, faultRow{id: "2a", fault: "PATCH /applications/{id} 503 ×2", binary: "migrate", exit: res.code, message: res.message(),
		endState: "upload retried (3 PATCHes); " + end, rerun: "— (succeeded)"})
}

// fault5xxBeyondBudget: 503s on the certificate upload outlast the retries: exit 1
// naming the call and the status, the certificate stays in the keyring, and the re-run
// uploads that same certificate.
func fault5xxBeyondBudget(t *testing.T) {
	f := startFake(t, "legacy")
	f.Server.FailRepeat(entratest.RoutePatchApplication, graphAttempts, entratest.Failure{Status: 503, Code: "ServiceUnavailable", RetryAfter: fastRetry})
	res := runBinary(t, f, nil, "entraclaw-migrate")
	res.wantExit(t, 1)
	res.wantError(t, `upload certificate [0-9a-f]{40} to the provisioner app: graph: PATCH /applications/[0-9a-f-]{36}: 503 ServiceUnavailable`)
	res.wantHint(t, "entraclaw-migrate again")
	thumb := assertStoppedBeforeUpload(t, f)

	rerun := runBinary(t, f, nil, "entraclaw-migrate")
	rerun.wantExit(t, 0)
	end := assertMigrated(t, f)
	if got := keyringThumbprint(t, f, f.Scenario.TenantID); got != thumb {
		t.Errorf("the re-run replaced the keyring certificate %s with %s instead of uploading it", thumb, got)
	}
	recordFault(t, faultRow{id: "2b", fault: fmt.Sprintf("PATCH /applications/{id} 503 ×%d (beyond the retries)", graphAttempts), binary: "migrate", exit: res.code, message: res.message(),
		endState: "secret kept (state file and app), backup kept, cert in keyring, not on app, no thumbprint recorded",
		rerun:    "yes: the same keyring cert uploaded; " + end})
}

// assertStoppedBeforeUpload checks the state a migration leaves when it fails at the
// certificate upload and returns the thumbprint of the certificate it stored.
func assertStoppedBeforeUpload(t *testing.T, f *fakeEnv) string {
	t.Helper()
	doc := readState(t, f)
	if _, ok := doc["PROVISIONER_CLIENT_SECRET"]; !ok {
		t.Error("the state file lost the secret although the certificate never worked")
	}
	if _, ok := doc["PROVISIONER_CERT_THUMBPRINT"]; ok {
		t.Error("a thumbprint was recorded although the upload failed")
	}
	if backups, _ := f.backups(); len(backups) != 1 {
		t.Errorf("backups: %v, want one", backups)
	}
	thumb := keyringThumbprint(t, f, f.Scenario.TenantID)
	if thumb == "" {
		t.Fatal("no certificate in the keyring after a failed upload")
	}
	app := appOf(t, f, f.Scenario.ClientID)
	if len(app.PasswordCredentials) != 1 || len(app.KeyCredentials) != 0 {
		t.Errorf("app after the failed upload: %d passwords, %d certificates; want 1 (the secret, still working) and 0", len(app.PasswordCredentials), len(app.KeyCredentials))
	}
	return thumb
}

// ---- 3. replication lag ----

// faultReplicationLag: a first migration in an empty tenant while new objects stay
// invisible to Graph for a while: the app, its service principal, the permissions and
// the grants go through the Graph client's lag retries.
func faultReplicationLag(t *testing.T) {
	f := startFake(t, "empty")
	const lag = time.Second
	f.Server.SetReplicationLag(lag)
	res := runBinary(t, f, nil, "entraclaw-migrate")
	res.wantExit(t, 0)
	waits := strings.Count(res.stderr, "new object not visible yet")
	if waits == 0 {
		t.Errorf("no replication-lag retry reported:\n%s", res.stderr)
	}
	if !strings.Contains(res.stderr, "Created Provisioner app ") || !strings.Contains(res.stderr, "Created the service principal") {
		t.Errorf("app or service principal not created:\n%s", res.stderr)
	}
	end := assertMigrated(t, f)
	recordFault(t, faultRow{id: "3", fault: fmt.Sprintf("replication lag %s, empty tenant", lag), binary: "migrate", exit: res.code, message: res.message(),
		endState: fmt.Sprintf("app + SP created, %d lag retries; %s", waits, end), rerun: "— (succeeded)"})
}

// ---- 4. token endpoint errors ----

// faultCertPropagation: the STS answers AADSTS700027 for a while after the upload;
// migrate polls until the certificate gets a token with every role.
func faultCertPropagation(t *testing.T) {
	f := startFake(t, "legacy")
	const delay = time.Second
	f.Server.SetPropagationDelay(delay)
	res := runBinary(t, f, nil, "entraclaw-migrate")
	res.wantExit(t, 0)
	if !regexp.MustCompile(`(?m)^Propagation complete after [1-9][0-9]*\.[0-9]s\.$`).MatchString(res.stderr) {
		t.Errorf("migrate did not wait for the propagation:\n%s", res.stderr)
	}
	polls := f.Server.TokenRequests()
	if polls < 2 {
		t.Errorf("%d token requests, want several (AADSTS700027 until the certificate propagated)", polls)
	}
	end := assertMigrated(t, f)
	recordFault(t, faultRow{id: "4a", fault: fmt.Sprintf("AADSTS700027 for %s after the upload (propagation)", delay), binary: "migrate", exit: res.code, message: res.message(),
		endState: fmt.Sprintf("waited: %d token polls; %s", polls, end), rerun: "— (succeeded)"})
}

// faultMissingServicePrincipal: AADSTS7000229 for the token binary.
func faultMissingServicePrincipal(t *testing.T) {
	f := startFake(t, "migrated")
	before := snapshotLocal(t, f)
	f.Server.FailNext(entratest.RouteToken, entratest.Failure{Status: 401, Code: "7000229",
		Message: fmt.Sprintf("The client application %s is missing service principal in the tenant %s.", f.Scenario.ClientID, f.Scenario.TenantID)})
	res := runBinary(t, f, nil, "entraclaw-provisioner-token")
	res.wantExit(t, 1)
	res.wantNoStdout(t)
	res.wantError(t, `^AADSTS7000229: The client application [0-9a-f-]{36} is missing service principal`)
	res.wantHint(t, "entraclaw-migrate")
	before.assertUnchanged(t, f)
	assertNoCachedToken(t, f)

	rerun := runBinary(t, f, nil, "entraclaw-provisioner-token")
	rerun.wantExit(t, 0)
	if !strings.HasPrefix(rerun.stdout, "eyJ") {
		t.Errorf("re-run printed %q, want a token", rerun.stdout)
	}
	assertVerifyPasses(t, f)
	recordFault(t, faultRow{id: "4b", fault: "AADSTS7000229 (missing service principal)", binary: "provisioner-token", exit: res.code, message: res.message(),
		endState: "state file, keyring item, app unchanged; no token cached; hint: " + res.hint(), rerun: "yes: token printed, verify 4/4"})
}

// faultUnknownTenant: AADSTS90002 for a tenant the authority does not know.
func faultUnknownTenant(t *testing.T) {
	f := startFake(t, "migrated")
	const unknown = "0badc0de-0000-4000-8000-000000000000"
	if err := keystore.New(f.Service).PutBundle(unknown, f.Scenario.Bundle.PEM()); err != nil {
		t.Fatal(err)
	}
	before := snapshotLocal(t, f)
	res := runBinary(t, f, nil, "entraclaw-provisioner-token", "-tenant-id", unknown)
	res.wantExit(t, 1)
	res.wantNoStdout(t)
	res.wantError(t, `AADSTS90002: Tenant '`+unknown+`' not found`)
	res.wantHint(t, "TENANT_ID")
	before.assertUnchanged(t, f)

	rerun := runBinary(t, f, nil, "entraclaw-provisioner-token")
	rerun.wantExit(t, 0)
	assertVerifyPasses(t, f)
	recordFault(t, faultRow{id: "4c", fault: "AADSTS90002 (unknown tenant, -tenant-id)", binary: "provisioner-token", exit: res.code, message: res.message(),
		endState: "nothing written; hint: " + res.hint(), rerun: "yes (right tenant): token printed, verify 4/4"})
}

// ---- 5. network cut ----

// faultConnectionResets: the connection drops on every attempt to remove the legacy
// password, more often than the client retries: exit 1 saying it cannot reach the host,
// the run stops before any certificate is made, and a re-run finishes the job.
func faultConnectionResets(t *testing.T) {
	f := startFake(t, "legacy")
	f.Server.FailRepeat(entratest.RouteRemovePassword, graphAttempts, entratest.Failure{Code: entratest.CodeReset})
	res := runBinary(t, f, nil, "entraclaw-migrate")
	res.wantExit(t, 1)
	res.wantError(t, `remove password credential [0-9a-f-]{36} from the provisioner app \(0 of 1 removed; the certificate works\): graph: POST /applications/[0-9a-f-]{36}/removePassword: cannot reach 127\.0\.0\.1:[0-9]+: `)
	if n := f.Server.Counts()[entratest.RouteRemovePassword]; n != graphAttempts {
		t.Errorf("removePassword: %d attempts, want %d", n, graphAttempts)
	}
	doc := readState(t, f)
	if _, ok := doc["PROVISIONER_CLIENT_SECRET"]; !ok {
		t.Error("the state file lost the secret although the secret is still on the app")
	}
	if !strings.Contains(res.stderr, "The client secret was kept and still works") {
		t.Errorf("stderr does not say the secret was kept:\n%s", res.stderr)
	}
	if thumb := keyringThumbprint(t, f, f.Scenario.TenantID); thumb == "" {
		t.Error("no certificate in the keyring: the password step runs after the certificate works")
	}
	if app := appOf(t, f, f.Scenario.ClientID); len(app.PasswordCredentials) != 1 || len(app.KeyCredentials) != 1 {
		t.Errorf("app after the cut: %d passwords, %d certificates; want 1 and 1", len(app.PasswordCredentials), len(app.KeyCredentials))
	}

	rerun := runBinary(t, f, nil, "entraclaw-migrate")
	rerun.wantExit(t, 0)
	if !strings.Contains(rerun.stderr, "Removed 1 legacy password credential(s)") {
		t.Errorf("the re-run did not remove the password:\n%s", rerun.stderr)
	}
	end := assertMigrated(t, f)
	recordFault(t, faultRow{id: "5a", fault: fmt.Sprintf("TCP reset ×%d on POST removePassword", graphAttempts), binary: "migrate", exit: res.code, message: res.message(),
		endState: "secret kept (state file and app), cert working", rerun: "yes: password removed, secret purged; " + end})
}

// faultServerStopped: the token binary with the authority gone.
func faultServerStopped(t *testing.T) {
	f := startFake(t, "migrated")
	before := snapshotLocal(t, f)
	f.Server.Close()
	res := runBinary(t, f, nil, "entraclaw-provisioner-token")
	res.wantExit(t, 1)
	res.wantNoStdout(t)
	res.wantError(t, `cannot reach 127\.0\.0\.1:[0-9]+: `)
	if lines := strings.Count(strings.TrimSpace(res.stderr), "\n") + 1; lines > 2 {
		t.Errorf("stderr has %d lines, want the error and its hint:\n%s", lines, res.stderr)
	}
	before.assertUnchanged(t, f)
	assertNoCachedToken(t, f)
	recordFault(t, faultRow{id: "5b", fault: "authority down (fake stopped)", binary: "provisioner-token", exit: res.code, message: res.message(),
		endState: "state file and keyring item unchanged, no token cached", rerun: "n/a: the token binary writes nothing to repair"})
}

// ---- 6. keyring unavailable or locked ----

// faultNoSecretService: nothing answers on the session bus.
func faultNoSecretService(t *testing.T) {
	f := startFake(t, "legacy")
	noBus := []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(f.Dir, "no-such-bus")}
	before := snapshotLocal(t, f)

	tok := runBinary(t, f, noBus, "entraclaw-provisioner-token")
	tok.wantExit(t, 1)
	tok.wantNoStdout(t)
	tok.wantError(t, `Secret Service is not reachable`)
	tok.wantHint(t, "start a Secret Service")
	recordFault(t, faultRow{id: "6a", fault: "no Secret Service on the bus", binary: "provisioner-token", exit: tok.code, message: tok.message(),
		endState: "nothing read or written; hint: " + tok.hint(), rerun: "n/a"})

	mig := runBinary(t, f, noBus, "entraclaw-migrate")
	mig.wantExit(t, 1)
	mig.wantError(t, `keyring preflight: Secret Service is not reachable`)
	mig.wantHint(t, "start a Secret Service")
	assertUntouched(t, f, before)

	rerun := runBinary(t, f, nil, "entraclaw-migrate")
	rerun.wantExit(t, 0)
	end := assertMigrated(t, f)
	recordFault(t, faultRow{id: "6a", fault: "no Secret Service on the bus", binary: "migrate", exit: mig.code, message: mig.message(),
		endState: "preflight: state file byte-identical, no backup, 0 Graph writes, 0 token requests", rerun: "yes (with the keyring): " + end})
}

// faultLockedKeyring: a locked login collection. The collection cannot be unlocked
// again without a prompt, so this runs in a second, private Secret Service
// (scripts/with-secret-service.sh), locks it over D-Bus and runs the binaries there.
func faultLockedKeyring(t *testing.T) {
	for _, tool := range []string{"dbus-run-session", "dbus-send", "gnome-keyring-daemon"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOutsideCI(t, "%s not found: the locked-keyring case needs a private gnome-keyring", tool)
		}
	}
	f := startFake(t, "legacy")
	before := snapshotLocal(t, f)
	out := t.TempDir()
	script := `dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets ` +
		`org.freedesktop.Secret.Service.Lock array:objpath:/org/freedesktop/secrets/collection/login >"$OUT/lock.out" || exit 90
for bin in entraclaw-provisioner-token entraclaw-migrate; do
	"$bin" >"$OUT/$bin.out" 2>"$OUT/$bin.err"
	echo $? >"$OUT/$bin.rc"
done`
	cmd := exec.Command(filepath.Join(moduleRoot(), "scripts", "with-secret-service.sh"), "sh", "-c", script)
	cmd.Dir = f.Dir
	cmd.Env = append(withoutEnv(f.Env, "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"), "OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("locking a private keyring: %v\n%s", err, b)
	}
	results := map[string]binaryResult{}
	for _, bin := range []string{"entraclaw-provisioner-token", "entraclaw-migrate"} {
		read := func(ext string) string {
			b, err := os.ReadFile(filepath.Join(out, bin+ext))
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		var code int
		if _, err := fmt.Sscan(read(".rc"), &code); err != nil {
			t.Fatal(err)
		}
		results[bin] = binaryResult{name: bin, stdout: read(".out"), stderr: read(".err"), code: code}
	}

	tok := results["entraclaw-provisioner-token"]
	tok.wantExit(t, 1)
	tok.wantNoStdout(t)
	tok.wantError(t, `Secret Service is locked`)
	tok.wantHint(t, "unlock the login keyring")
	recordFault(t, faultRow{id: "6b", fault: "login keyring locked", binary: "provisioner-token", exit: tok.code, message: tok.message(),
		endState: "nothing written; hint: " + tok.hint(), rerun: "n/a"})

	mig := results["entraclaw-migrate"]
	mig.wantExit(t, 1)
	mig.wantError(t, `keyring preflight: Secret Service is locked`)
	mig.wantHint(t, "unlock the login keyring")
	assertUntouched(t, f, before)

	rerun := runBinary(t, f, nil, "entraclaw-migrate")
	rerun.wantExit(t, 0)
	end := assertMigrated(t, f)
	recordFault(t, faultRow{id: "6b", fault: "login keyring locked", binary: "migrate", exit: mig.code, message: mig.message(),
		endState: "preflight: state file byte-identical, no backup, 0 Graph writes, 0 token requests", rerun: "yes (unlocked keyring): " + end})
}

// assertUntouched checks that a migration that failed its preflight changed nothing.
func assertUntouched(t *testing.T, f *fakeEnv, before localState) {
	t.Helper()
	before.assertUnchanged(t, f)
	if backups, _ := f.backups(); len(backups) != 0 {
		t.Errorf("backups written by a failed preflight: %v", backups)
	}
	if n := f.Server.WriteCalls(); n != 0 {
		t.Errorf("%d Graph writes after a failed preflight, want 0 (counts %v)", n, f.Server.Counts())
	}
	if n := f.Server.TokenRequests(); n != 0 {
		t.Errorf("%d token requests after a failed preflight, want 0", n)
	}
	if app := appOf(t, f, f.Scenario.ClientID); len(app.PasswordCredentials) != 1 || len(app.KeyCredentials) != 0 {
		t.Errorf("app changed by a failed preflight: %d passwords, %d certificates", len(app.PasswordCredentials), len(app.KeyCredentials))
	}
}

// ---- 7. a concurrent writer ----

// faultConcurrentPassword: someone adds a client secret while migrate runs (after it
// removed the passwords): migrate still succeeds, verify catches the new secret by its
// keyId, and the next migrate removes it.
func faultConcurrentPassword(t *testing.T) {
	f := startFake(t, "legacy")
	var keyID string
	res := runWatchingStderr(t, f, func(line string) {
		if keyID == "" && strings.HasPrefix(line, "Removed 1 legacy password credential") {
			id, _, err := f.Server.AddPassword(f.Scenario.TenantID, f.Scenario.ClientID, 24*time.Hour)
			if err != nil {
				t.Error(err)
			}
			keyID = id
		}
	}, "entraclaw-migrate")
	res.wantExit(t, 0)
	if keyID == "" {
		t.Fatalf("migrate never removed the legacy password:\n%s", res.stderr)
	}

	ver := runBinary(t, f, nil, "entraclaw-verify")
	ver.wantExit(t, 4)
	failLine := regexp.MustCompile(`(?m)^FAIL\s+no-passwords\s+.*keyId ` + keyID + `.*$`).FindString(ver.stdout)
	if failLine == "" {
		t.Errorf("verify does not name the new secret %s:\n%s", keyID, ver.stdout)
	}
	if !strings.Contains(ver.stdout, "3/4 checks passed") {
		t.Errorf("verify: want only no-passwords to fail:\n%s", ver.stdout)
	}

	rerun := runBinary(t, f, nil, "entraclaw-migrate")
	rerun.wantExit(t, 0)
	if !strings.Contains(rerun.stderr, "Removed 1 legacy password credential(s) from Provisioner app") {
		t.Errorf("the re-run did not remove the new secret:\n%s", rerun.stderr)
	}
	end := assertMigrated(t, f)
	recordFault(t, faultRow{id: "7", fault: "password added mid-run (AddPassword right after the password step)", binary: "migrate, verify", exit: ver.code,
		message: strings.Join(strings.Fields(failLine), " "), endState: "migrate exit 0; verify exit 4 names keyId " + keyID,
		rerun: "yes: migrate removed it; " + end})
}

// ---- running binaries ----

// binaryResult is one finished run of a binary.
type binaryResult struct {
	name           string
	stdout, stderr string
	code           int
}

// runBinary runs a binary in f's directory; extraEnv entries override f.Env.
func runBinary(t *testing.T, f *fakeEnv, extraEnv []string, name string, args ...string) binaryResult {
	t.Helper()
	cmd := f.command(name, args...)
	cmd.Env = append(cmd.Env, extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("running %s: %v", name, err)
	}
	return binaryResult{name: name, stdout: out.String(), stderr: withoutHostWarning(errb.String()), code: cmd.ProcessState.ExitCode()}
}

// runWatchingStderr runs a binary and hands each stderr line to onLine as it appears.
func runWatchingStderr(t *testing.T, f *fakeEnv, onLine func(string), name string, args ...string) binaryResult {
	t.Helper()
	cmd := f.command(name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		errb.WriteString(sc.Text() + "\n")
		onLine(sc.Text())
	}
	_ = cmd.Wait()
	return binaryResult{name: name, stdout: out.String(), stderr: withoutHostWarning(errb.String()), code: cmd.ProcessState.ExitCode()}
}

func (r binaryResult) wantExit(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s exited %d, want %d\nstdout:\n%s\nstderr:\n%s", r.name, r.code, code, r.stdout, r.stderr)
	}
}

func (r binaryResult) wantNoStdout(t *testing.T) {
	t.Helper()
	if r.stdout != "" {
		t.Errorf("%s printed on stdout: %q", r.name, r.stdout)
	}
}

// errorLine is the "name: error: ..." line without its prefix ("" when none).
func (r binaryResult) errorLine() string { return r.prefixedLine("error: ") }

func (r binaryResult) hint() string { return r.prefixedLine("hint: ") }

func (r binaryResult) prefixedLine(kind string) string {
	prefix := r.name + ": " + kind
	for _, line := range strings.Split(r.stderr, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return rest
		}
	}
	return ""
}

// message is the matrix's message: the error line, else migrate's summary line, else
// the last stderr line.
func (r binaryResult) message() string {
	if e := r.errorLine(); e != "" {
		return "error: " + e
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	for _, line := range lines {
		if strings.HasPrefix(line, "Migration complete:") || strings.HasPrefix(line, "Already migrated:") {
			return line
		}
	}
	return lines[len(lines)-1]
}

// wantError asserts exactly one error line, matching the regexp pattern.
func (r binaryResult) wantError(t *testing.T, pattern string) {
	t.Helper()
	if n := strings.Count(r.stderr, r.name+": error: "); n != 1 {
		t.Errorf("%s: %d error lines, want 1:\n%s", r.name, n, r.stderr)
	}
	if !regexp.MustCompile(pattern).MatchString(r.errorLine()) {
		t.Errorf("%s: error line %q does not match %q\nstderr:\n%s", r.name, r.errorLine(), pattern, r.stderr)
	}
}

func (r binaryResult) wantHint(t *testing.T, substr string) {
	t.Helper()
	if !strings.Contains(r.hint(), substr) {
		t.Errorf("%s: hint %q does not contain %q\nstderr:\n%s", r.name, r.hint(), substr, r.stderr)
	}
}

func withoutEnv(env []string, keys ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, key := range keys {
			drop = drop || k == key
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// ---- end state ----

func statePath(f *fakeEnv) string { return filepath.Join(f.Dir, ".entraclaw-state.json") }

// readState decodes the state file's string values.
func readState(t *testing.T, f *fakeEnv) map[string]any {
	t.Helper()
	b, err := os.ReadFile(statePath(f))
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("state file: %v", err)
	}
	return doc
}

func stateString(doc map[string]any, key string) string {
	s, _ := doc[key].(string)
	return s
}

// keyringThumbprint is the thumbprint of the certificate in the keyring item of
// account, "" when there is none.
func keyringThumbprint(t *testing.T, f *fakeEnv, account string) string {
	t.Helper()
	pem, err := keystore.New(f.Service).GetBundle(account)
	if errors.Is(err, keystore.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatalf("reading keyring account %s: %v", account, err)
	}
	b, err := certs.ParseBundle(pem)
	if err != nil {
		t.Fatalf("keyring account %s: %v", account, err)
	}
	return certs.Thumbprint(b.Cert)
}

func appOf(t *testing.T, f *fakeEnv, clientID string) entratest.AppView {
	t.Helper()
	app, ok := f.Server.App(f.Scenario.TenantID, clientID)
	if !ok {
		t.Fatalf("no app %s in the fake", clientID)
	}
	return app
}

// assertMigrated checks the end state of a finished migration — no secret in the state
// file, the recorded thumbprint is the keyring certificate and the app's only
// certificate, no password on the app, every role granted — and that entraclaw-verify
// passes. It returns a summary for the matrix.
func assertMigrated(t *testing.T, f *fakeEnv) string {
	t.Helper()
	doc := readState(t, f)
	tenant, client := stateString(doc, "TENANT_ID"), stateString(doc, "PROVISIONER_CLIENT_ID")
	if tenant != f.Scenario.TenantID || client == "" {
		t.Fatalf("state file: TENANT_ID %q PROVISIONER_CLIENT_ID %q", tenant, client)
	}
	if _, ok := doc["PROVISIONER_CLIENT_SECRET"]; ok {
		t.Error("the state file still holds PROVISIONER_CLIENT_SECRET")
	}
	thumb := stateString(doc, "PROVISIONER_CERT_THUMBPRINT")
	if got := keyringThumbprint(t, f, tenant); got == "" || got != thumb {
		t.Errorf("keyring certificate %q, state file thumbprint %q", got, thumb)
	}
	app := appOf(t, f, client)
	if len(app.PasswordCredentials) != 0 {
		t.Errorf("app has %d password credentials", len(app.PasswordCredentials))
	}
	if len(app.KeyCredentials) != 1 || app.KeyCredentials[0].Thumbprint != thumb {
		t.Errorf("app certificates %+v, want exactly %s", app.KeyCredentials, thumb)
	}
	if want := len(entratest.RequiredRoleValues()); len(app.GrantedRoles) != want || app.RequiredResourceAccessCount != want {
		t.Errorf("app: %d roles granted, %d declared, want %d", len(app.GrantedRoles), app.RequiredResourceAccessCount, want)
	}
	assertVerifyPasses(t, f)
	return fmt.Sprintf("app: 0 passwords, 1 cert = keyring = state thumbprint, %d roles; verify 4/4", len(app.GrantedRoles))
}

func assertVerifyPasses(t *testing.T, f *fakeEnv) {
	t.Helper()
	res := runBinary(t, f, nil, "entraclaw-verify")
	res.wantExit(t, 0)
	if !strings.Contains(res.stdout, "4/4 checks passed") {
		t.Errorf("verify:\n%s", res.stdout)
	}
}

// localState is what a failed run must leave as it was on this machine.
type localState struct {
	stateFile []byte
	thumb     string // keyring certificate of the scenario's tenant
	app       entratest.AppView
}

func snapshotLocal(t *testing.T, f *fakeEnv) localState {
	t.Helper()
	b, err := os.ReadFile(statePath(f))
	if err != nil {
		t.Fatal(err)
	}
	return localState{stateFile: b, thumb: keyringThumbprint(t, f, f.Scenario.TenantID), app: appOf(t, f, f.Scenario.ClientID)}
}

func (s localState) assertUnchanged(t *testing.T, f *fakeEnv) {
	t.Helper()
	if b, err := os.ReadFile(statePath(f)); err != nil || !bytes.Equal(b, s.stateFile) {
		t.Errorf("the state file changed (err %v)", err)
	}
	if got := keyringThumbprint(t, f, f.Scenario.TenantID); got != s.thumb {
		t.Errorf("keyring certificate changed from %q to %q", s.thumb, got)
	}
	app := appOf(t, f, f.Scenario.ClientID)
	if len(app.PasswordCredentials) != len(s.app.PasswordCredentials) || len(app.KeyCredentials) != len(s.app.KeyCredentials) {
		t.Errorf("app credentials changed: %d/%d passwords, %d/%d certificates",
			len(s.app.PasswordCredentials), len(app.PasswordCredentials), len(s.app.KeyCredentials), len(app.KeyCredentials))
	}
}

// assertNoCachedToken checks that the token binary cached nothing for the scenario.
func assertNoCachedToken(t *testing.T, f *fakeEnv) {
	t.Helper()
	_, _, err := keystore.New(keystore.TokenCacheService(f.Service)).GetCachedToken(tokenCacheKey(t, f, ""))
	switch {
	case err == nil:
		t.Error("a token was cached although the request failed")
	case !errors.Is(err, keystore.ErrNotFound):
		t.Errorf("reading the token cache: %v", err)
	}
}
