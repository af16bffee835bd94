package provision_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/provision"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
	"github.com/entraclaw/entraclaw-cli/pkg/token"
)

// machine is one machine on the fixture's app: its own keyring and state file.
type machine struct {
	f         *fixture
	name      string
	store     *keystore.Store
	statePath string
}

// provisionerDeps are the deps of a run as the provisioner itself (-operator-auth
// provisioner): the operator credential is this machine's current certificate.
func (mc *machine) provisionerDeps() provision.Deps {
	d := mc.f.deps()
	d.Store = mc.store
	d.OperatorCredential = func(tenant string) (azcore.TokenCredential, error) {
		b, err := mc.current()
		if err != nil {
			return nil, err
		}
		return d.CertCredential(mc.f.sc.TenantID, mc.f.sc.ClientID, b)
	}
	return d
}

func (mc *machine) operatorDeps() provision.Deps {
	d := mc.f.deps()
	d.Store = mc.store
	return d
}

func (mc *machine) current() (*certs.Bundle, error) {
	pem, err := mc.store.GetBundle(mc.f.sc.TenantID)
	if err != nil {
		return nil, err
	}
	return certs.ParseBundle(pem)
}

func (mc *machine) thumb() string {
	mc.f.t.Helper()
	b, err := mc.current()
	if err != nil {
		mc.f.t.Fatalf("%s: %v", mc.name, err)
	}
	return certs.Thumbprint(b.Cert)
}

func (mc *machine) config() provision.Config {
	cfg := mc.f.config()
	cfg.StatePath = mc.statePath
	cfg.KeyringService = testService + "-" + mc.name
	return cfg
}

// renewNow runs Renew with the certificate due (-renew-before longer than its lifetime).
func (mc *machine) renew(due bool) (*provision.Summary, string, error) {
	cfg := mc.config()
	if due {
		cfg.RenewBefore, cfg.RenewBeforeSet = 365*24*time.Hour, true
	}
	var progress bytes.Buffer
	cfg.Progress = &progress
	sum, err := provision.Renew(context.Background(), cfg, mc.provisionerDeps())
	return sum, progress.String(), err
}

// newMachines returns the fixture's own machine (the "migrated" scenario's) and n-1 more,
// each migrated by an operator onto the same app (its first certificate by PATCH).
func newMachines(t testing.TB, n int, opts ...entratest.Option) (*fixture, []*machine) {
	f := newFixture(t, entratest.ScenarioMigrated, opts...)
	ms := []*machine{{f: f, name: "m0", store: f.store, statePath: f.statePath}}
	for i := 1; i < n; i++ {
		dir := t.TempDir()
		mc := &machine{f: f, name: fmt.Sprintf("m%d", i), statePath: filepath.Join(dir, state.FileName),
			store: keystore.New(testService, keystore.WithBackend(keystore.NewMemoryBackend()), keystore.WithOS("linux"))}
		if err := state.WriteFile(mc.statePath, f.readState()); err != nil {
			t.Fatal(err)
		}
		var progress bytes.Buffer
		cfg := mc.config()
		cfg.Progress = &progress
		if _, err := provision.Migrate(context.Background(), cfg, mc.operatorDeps()); err != nil {
			t.Fatalf("%s: first migration: %v\n%s", mc.name, err, progress.String())
		}
		ms = append(ms, mc)
	}
	return f, ms
}

func TestRenewNotDueSendsNothing(t *testing.T) {
	f, ms := newMachines(t, 1)
	f.srv.ResetCounts()
	before := ms[0].thumb()
	sum, progress, err := ms[0].renew(false)
	if err != nil {
		t.Fatalf("Renew: %v\n%s", err, progress)
	}
	if n := len(f.srv.Counts()); n != 0 || f.srv.TokenRequests() != 0 {
		t.Errorf("a renewal that is not due sent requests: %v", f.srv.Counts())
	}
	if sum.Renewal == nil || sum.Renewal.Due || !strings.Contains(progress, "Not due") {
		t.Errorf("summary %+v, progress %q: want not due", sum.Renewal, progress)
	}
	if ms[0].thumb() != before {
		t.Error("the certificate changed")
	}
	rec, err := state.LoadRenewal(ms[0].statePath)
	if err != nil || rec == nil || rec.Outcome != state.RenewalNotDue || rec.NextDue.IsZero() {
		t.Errorf("renewal record = %+v, %v; want not-due with a next due time", rec, err)
	}
}

func TestRenewDueRollsTheKeyWithAddKeyAndRemoveKey(t *testing.T) {
	f, ms := newMachines(t, 1)
	mc := ms[0]
	old := mc.thumb()
	f.srv.ResetCounts()
	sum, progress, err := mc.renew(true)
	if err != nil {
		t.Fatalf("Renew: %v\n%s", err, progress)
	}
	counts := f.srv.Counts()
	if counts["POST /v1.0/applications/{id}/addKey"] != 1 || counts["POST /v1.0/applications/{id}/removeKey"] != 1 {
		t.Errorf("requests = %v; want one addKey and one removeKey", counts)
	}
	for route, n := range counts {
		if strings.HasPrefix(route, "PATCH ") {
			t.Errorf("renewal sent %d %s", n, route)
		}
	}
	if sum.Renewal.GraphWrites != 2 || sum.Renewal.GraphRequests-sum.Renewal.GraphWrites > 2 {
		t.Errorf("renewal made %d Graph requests, %d writes; want 2 writes and at most 2 reads", sum.Renewal.GraphRequests, sum.Renewal.GraphWrites)
	}
	now := mc.thumb()
	app := f.app(f.sc.ClientID)
	if now == old || len(app.KeyCredentials) != 1 || app.KeyCredentials[0].Thumbprint != now {
		t.Errorf("after renewal: current %s (was %s), app keys %v; want only the new one", now, old, thumbs(app))
	}
	for _, suffix := range []string{provision.NextAccountSuffix, provision.PreviousAccountSuffix} {
		if f.hasKeyringItem(f.sc.TenantID + suffix) {
			t.Errorf("keyring item %s left behind", suffix)
		}
	}
	rec, _ := state.LoadRenewal(mc.statePath)
	if rec == nil || rec.Outcome != state.RenewalRenewed || rec.Thumbprint != now || rec.ConsecutiveFailures != 0 {
		t.Errorf("renewal record = %+v; want renewed to %s", rec, now)
	}
}

func TestRenewExpiredIsLeftToAnOperator(t *testing.T) {
	f, ms := newMachines(t, 1)
	expired, err := certs.GenerateWithLifetime(time.Now().Add(-48*time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutBundle(f.sc.TenantID, expired.PEM()); err != nil {
		t.Fatal(err)
	}
	f.srv.ResetCounts()
	_, progress, err := ms[0].renew(false)
	var coder interface{ ExitCode() int }
	if err == nil || !asCoder(err, &coder) || coder.ExitCode() != 3 || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Renew with an expired certificate = %v; want exit 3 saying it expired\n%s", err, progress)
	}
	if len(f.srv.Counts()) != 0 {
		t.Errorf("requests sent: %v", f.srv.Counts())
	}
	rec, _ := state.LoadRenewal(ms[0].statePath)
	if rec == nil || rec.Outcome != state.RenewalExpired || rec.ConsecutiveFailures != 1 {
		t.Errorf("renewal record = %+v; want expired, one failure", rec)
	}
}

// TestFleetRenewsAtOnce: machines on one app renew in the same moment, on a tenant whose
// reads lag and whose new certificates take a while to be accepted, each with a token
// loop running. Nobody's token call fails, each ends with exactly its own new
// certificate on the app, and the app holds one per machine.
func TestFleetRenewsAtOnce(t *testing.T) {
	const n = 5
	f, ms := newMachines(t, n, entratest.WithReadLag(300*time.Millisecond), entratest.WithPropagationDelay(300*time.Millisecond))
	old := map[string]string{}
	for _, mc := range ms {
		old[mc.name] = mc.thumb()
	}
	ctx, stop := context.WithCancel(context.Background())
	var calls, failures atomic.Int64
	var loops sync.WaitGroup
	for _, mc := range ms {
		loops.Add(1)
		go func() {
			defer loops.Done()
			tokenLoop(ctx, mc, &calls, &failures)
		}()
	}
	var renewals sync.WaitGroup
	errs := make([]error, n)
	sums := make([]*provision.Summary, n)
	for i, mc := range ms {
		renewals.Add(1)
		go func() {
			defer renewals.Done()
			var progress string
			sums[i], progress, errs[i] = mc.renew(true)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%w\n%s", errs[i], progress)
			}
		}()
	}
	renewals.Wait()
	time.Sleep(200 * time.Millisecond) // the loops run on the new certificates a moment
	stop()
	loops.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: Renew: %v", ms[i].name, err)
		}
	}
	if failures.Load() != 0 || calls.Load() == 0 {
		t.Errorf("token loops: %d of %d calls failed; want 0 failures", failures.Load(), calls.Load())
	}
	app := f.app(f.sc.ClientID)
	if len(app.KeyCredentials) != n {
		t.Errorf("the app holds %d certificates, want %d: %v", len(app.KeyCredentials), n, thumbs(app))
	}
	for i, mc := range ms {
		now := mc.thumb()
		if now == old[mc.name] || !slices.Contains(thumbs(app), now) || slices.Contains(thumbs(app), old[mc.name]) {
			t.Errorf("%s: current %s (was %s); app keys %v", mc.name, now, old[mc.name], thumbs(app))
		}
		if r := sums[i]; r != nil && r.Renewal != nil {
			t.Logf("%s: %d Graph requests, %d writes", mc.name, r.Renewal.GraphRequests, r.Renewal.GraphWrites)
		}
	}
}

// TestConcurrentOperatorRotationsKeepBothCertificates is the first finding of the fleet
// issue: two machines rotating at once (an operator's -rotate) used to PATCH the whole
// list from reads taken before the other's upload, dropping a certificate.
func TestConcurrentOperatorRotationsKeepBothCertificates(t *testing.T) {
	f, ms := newMachines(t, 2, entratest.WithPropagationDelay(300*time.Millisecond), entratest.WithReadLag(200*time.Millisecond))
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, mc := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := mc.config()
			cfg.Rotate = true
			var progress bytes.Buffer
			cfg.Progress = &progress
			if _, err := provision.Migrate(context.Background(), cfg, mc.operatorDeps()); err != nil {
				errs[i] = fmt.Errorf("%w\n%s", err, progress.String())
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", ms[i].name, err)
		}
	}
	app := f.app(f.sc.ClientID)
	for _, mc := range ms {
		if !slices.Contains(thumbs(app), mc.thumb()) {
			t.Errorf("%s's certificate %s is not on the app: %v", mc.name, mc.thumb(), thumbs(app))
		}
	}
	if len(app.KeyCredentials) != 2 {
		t.Errorf("the app holds %v; want the two new certificates", thumbs(app))
	}
}

// TestPlantedPreviousIsNotRemovedFromTheApp: a <tenant>.previous holding another
// machine's certificate (with a key block that cannot sign for it) must not make a plain
// migrate remove that machine's certificate from the app.
func TestPlantedPreviousIsNotRemovedFromTheApp(t *testing.T) {
	for _, tc := range []struct {
		name, recorded, warning string
	}{
		{"not replaced here", "", "no rotation on this machine replaced"},
		{"recorded, but its key cannot sign", "victim", "cannot be proven"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ms := newMachines(t, 2)
			victim, err := ms[1].current()
			if err != nil {
				t.Fatal(err)
			}
			// The other machine's public certificate with a dummy TPM key block.
			planted := &certs.Bundle{Cert: victim.Cert, TPMKey: &pem.Block{Type: certs.TPMKeyBlockType, Bytes: []byte("dummy")}}
			if err := f.store.PutBundle(f.sc.TenantID+provision.PreviousAccountSuffix, planted.PEM()); err != nil {
				t.Fatal(err)
			}
			if tc.recorded != "" {
				if err := state.UpdateRenewal(f.statePath, func(r *state.Renewal) { r.Replaced = certs.Thumbprint(victim.Cert) }); err != nil {
					t.Fatal(err)
				}
			}
			_, progress := f.mustMigrate(ms[0].config())
			if !slices.Contains(thumbs(f.app(f.sc.ClientID)), certs.Thumbprint(victim.Cert)) {
				t.Fatalf("the other machine's certificate was removed from the app\n%s", progress)
			}
			if !strings.Contains(progress, tc.warning) {
				t.Errorf("no warning %q about the planted item:\n%s", tc.warning, progress)
			}
		})
	}
}

// tokenLoop mints tokens for mc until ctx ends, the way entraclaw-provisioner-token does
// (pkg/token, which retries when a rotation retires the certificate it read), never
// from the cache: every call proves the certificate in the keyring works at that moment.
func tokenLoop(ctx context.Context, mc *machine, calls, failures *atomic.Int64) {
	src := &token.Source{
		Store: mc.store, Tenant: mc.f.sc.TenantID, Client: mc.f.sc.ClientID,
		Scope: mc.f.cloud.GraphScope(), AuthorityHost: mc.f.cloud.AuthorityHost, NoCache: true,
		LoadBundle: func(store *keystore.Store, _ time.Time) (*certs.Bundle, error) {
			pem, err := store.GetBundle(mc.f.sc.TenantID)
			if err != nil {
				return nil, err
			}
			return certs.ParseBundle(pem)
		},
		Credential: func(b *certs.Bundle) (azcore.TokenCredential, error) {
			return entra.NewCertificateCredential(mc.f.cloud, mc.f.sc.TenantID, mc.f.sc.ClientID, b, entra.CredentialOptions{Transport: mc.f.srv.Client()})
		},
	}
	for ctx.Err() == nil {
		_, err := src.Get(ctx)
		if ctx.Err() != nil {
			return
		}
		calls.Add(1)
		if err != nil {
			failures.Add(1)
			mc.f.t.Logf("%s: token call failed: %v", mc.name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func thumbs(app entratest.AppView) []string {
	var out []string
	for _, k := range app.KeyCredentials {
		out = append(out, k.Thumbprint)
	}
	return out
}

func asCoder(err error, target *interface{ ExitCode() int }) bool {
	for e := err; e != nil; {
		if c, ok := e.(interface{ ExitCode() int }); ok {
			*target = c
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}
