package cli_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/provision"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// killLatency is the fake's per-request latency while a run is killed, so that the kill
// lands in the middle of the step after the progress line.
const killLatency = 50 * time.Millisecond

// TestMigrateConvergesAfterKill kills entraclaw-migrate with SIGKILL right after each of
// its progress lines in turn, runs it again to completion, and checks that every
// interrupted run converges to the same migrated end state. The legacy scenario is
// killed after every line, a rotation (with another machine's certificate on the app and
// a propagation delay) too, while a token loop runs through the killed run and the re-run:
// no token call may fail at any step; the empty one after the lines of the steps only it
// has (tenant, app, service principal, permissions, consent) and the first one after them.
func TestMigrateConvergesAfterKill(t *testing.T) {
	t.Parallel()
	requireKeyring(t)
	cases := []struct {
		name, scenario string
		args           []string
		otherMachine   bool // another machine's certificate on the app
		tokenLoop      bool // scripts ask for tokens throughout; none may fail
	}{
		{"legacy", entratest.ScenarioLegacy, nil, false, false},
		{"empty", entratest.ScenarioEmpty, nil, false, false},
		{"rotate", entratest.ScenarioMigrated, []string{"-rotate"}, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// A full run tells how many progress lines there are.
			f := startFake(t, c.scenario)
			_, stderr, code := f.run(t, "entraclaw-migrate", c.args...)
			if code != 0 {
				t.Fatalf("a full run exited %d:\n%s", code, stderr)
			}
			lines := strings.Count(stderr, "\n")
			if lines < 8 {
				t.Fatalf("only %d progress lines:\n%s", lines, stderr)
			}
			last := lines - 1
			if c.scenario == entratest.ScenarioEmpty {
				last = strings.Count(stderr[:strings.Index(stderr, "Admin consent granted")], "\n") + 2
			}
			for k := 1; k <= last; k++ {
				t.Run(fmt.Sprintf("after-line-%d", k), func(t *testing.T) {
					t.Parallel()
					f := startFake(t, c.scenario)
					var others []string
					if c.otherMachine {
						others = append(others, addOtherMachineCert(t, f))
					}
					var loop *tokenLoop
					if c.tokenLoop {
						f.Server.SetPropagationDelay(300 * time.Millisecond)
						loop = startTokenLoop(t, f, 20*time.Millisecond)
					}
					f.Server.SetLatency(killLatency)
					killed := killAfterLines(t, f, k, c.args...)
					// A request the killed process had in flight still completes on the
					// server (or is dropped), as it would in Entra ID; let it land so that
					// the re-run sees what the killed run left behind. The token loop's
					// requests are in flight too, which WaitIdle also waits out.
					f.Server.SetLatency(0)
					f.Server.WaitIdle()
					_, stderr, code := f.run(t, "entraclaw-migrate")
					if loop != nil {
						if calls, failures, first := loop.stop(); failures != 0 {
							t.Errorf("killed after %q: %d of %d token calls failed (first: %s)", killed, failures, calls, first)
						}
					}
					if code != 0 {
						t.Fatalf("the run after the kill (after %q) exited %d:\n%s", killed, code, stderr)
					}
					assertConverged(t, f, others...)
					if t.Failed() {
						t.Logf("killed after %q; the re-run said:\n%s", killed, stderr)
					}
				})
			}
		})
	}
}

// addOtherMachineCert puts another machine's certificate on the scenario's app and
// returns its thumbprint.
func addOtherMachineCert(t *testing.T, f *fakeEnv) string {
	t.Helper()
	b, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Server.AddKeyCredential(f.Scenario.TenantID, f.Scenario.ClientID, b.Cert, b.Cert.NotBefore.Add(time.Second), b.Cert.NotAfter.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	return certs.Thumbprint(b.Cert)
}

// killAfterLines starts entraclaw-migrate, reads its stderr and kills it with SIGKILL
// right after the k-th line. It returns that line.
func killAfterLines(t *testing.T, f *fakeEnv, k int, args ...string) string {
	t.Helper()
	cmd := f.command("entraclaw-migrate", args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	line := ""
	for n := 0; n < k && sc.Scan(); n++ {
		line = sc.Text()
	}
	_ = cmd.Process.Kill()
	_, _ = io.Copy(io.Discard, stderr)
	_ = cmd.Wait()
	return line
}

// assertConverged checks the migrated end state: no secret in the state file, no
// password on the app, exactly this machine's certificate on it (the keyring's, whose
// thumbprint the state file records) besides other machines' certificates (others),
// all roles granted, and a working token.
func assertConverged(t *testing.T, f *fakeEnv, others ...string) {
	t.Helper()
	doc, err := state.Load(f.Dir + "/" + state.FileName)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Has(state.KeyClientSecret) {
		t.Error("the state file holds PROVISIONER_CLIENT_SECRET")
	}
	tenant, _, _ := doc.String(state.KeyTenantID)
	client, _, _ := doc.String(state.KeyClientID)
	recorded, _, _ := doc.String(state.KeyThumbprint)
	store := keystore.New(f.Service)
	pem, err := store.GetBundle(tenant)
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	b, err := certs.ParseBundle(pem)
	if err != nil {
		t.Fatal(err)
	}
	thumb := certs.Thumbprint(b.Cert)
	if recorded != thumb {
		t.Errorf("PROVISIONER_CERT_THUMBPRINT %q, keyring certificate %s", recorded, thumb)
	}
	for _, suffix := range []string{provision.PreviousAccountSuffix, provision.NextAccountSuffix} {
		if has, err := store.HasBundle(tenant + suffix); err != nil || has {
			t.Errorf("keyring account %s%s is left over (%v)", tenant, suffix, err)
		}
	}
	app, ok := f.Server.App(tenant, client)
	if !ok {
		t.Fatalf("no app %s", client)
	}
	if n := len(app.PasswordCredentials); n != 0 {
		t.Errorf("%d passwords on the app", n)
	}
	var onApp []string
	for _, k := range app.KeyCredentials {
		onApp = append(onApp, k.Thumbprint)
	}
	want := append([]string{thumb}, others...)
	slices.Sort(onApp)
	slices.Sort(want)
	if !slices.Equal(onApp, want) {
		t.Errorf("certificates on the app %v, want exactly %v (this machine's is %s)", onApp, want, thumb)
	}
	if n := len(app.GrantedRoles); n != len(entratest.RequiredRoleValues()) {
		t.Errorf("%d roles granted", n)
	}
	if apps := f.Server.Snapshot().Tenants; len(apps) != 1 || len(apps[0].Apps) != 1 {
		t.Errorf("the tenant holds %d apps, want 1", len(apps[0].Apps))
	}
	out, stderr, code := f.run(t, "entraclaw-provisioner-token", "-no-cache")
	if code != 0 || !strings.HasPrefix(out, "eyJ") {
		t.Errorf("entraclaw-provisioner-token exited %d:\n%s", code, stderr)
	}
}

// TestConcurrentMigrates starts two migrations on one state file at the same time: the
// run lock serialises them, both succeed, and the end state is one certificate.
func TestConcurrentMigrates(t *testing.T) {
	f := startFake(t, entratest.ScenarioLegacy)
	f.Server.SetLatency(20 * time.Millisecond)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	stderrs := make([]bytes.Buffer, 2)
	for i := range codes {
		cmd := f.command("entraclaw-migrate")
		cmd.Stderr = &stderrs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cmd.Wait()
			codes[i] = cmd.ProcessState.ExitCode()
		}()
	}
	wg.Wait()
	for i, code := range codes {
		if code != 0 {
			t.Fatalf("migrate %d exited %d:\n%s", i, code, stderrs[i].String())
		}
	}
	waited := strings.Contains(stderrs[0].String()+stderrs[1].String(), "waiting for another entraclaw-migrate to finish (lock ")
	noop := strings.Contains(stderrs[0].String()+stderrs[1].String(), "Already migrated")
	if !waited || !noop {
		t.Errorf("the runs did not serialise (waited %v, second was a no-op %v):\n%s\n---\n%s", waited, noop, stderrs[0].String(), stderrs[1].String())
	}
	f.Server.SetLatency(0)
	assertConverged(t, f)
}
