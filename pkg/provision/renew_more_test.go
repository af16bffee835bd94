package provision_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/provision"
)

// TestRollbackRemovesEveryCertificateOfThisMachine: during a pending rotation the .next
// certificate is on the app too; -remove-app-cert takes both off (each would still get
// tokens after an emergency rollback).
func TestRollbackRemovesEveryCertificateOfThisMachine(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated, entratest.WithPropagationDelay(time.Hour))
	cfg := f.config()
	cfg.Rotate, cfg.PropagationTimeout = true, 300*time.Millisecond
	_, progress := f.mustMigrate(cfg)
	if !f.hasKeyringItem(f.sc.TenantID + provision.NextAccountSuffix) {
		t.Fatalf("no pending rotation:\n%s", progress)
	}
	pending := certs.Thumbprint(f.keyringCert(f.sc.TenantID + provision.NextAccountSuffix).Cert)
	current := certs.Thumbprint(f.keyringCert(f.sc.TenantID).Cert)
	rc := f.rollbackConfig()
	rc.RemoveAppCert = true
	f.srv.ResetCounts()
	sum, progress, err := f.rollback(rc)
	// Both are valid: each goes through removeKey, proved by its own key, so a certificate
	// another machine adds meanwhile cannot be dropped by a PATCH of the whole list.
	if n, p := f.srv.Counts()[entratest.RouteRemoveKey], f.srv.Counts()[entratest.RoutePatchApplication]; n != 2 || p != 0 {
		t.Errorf("rollback sent %d removeKey and %d PATCH requests, want 2 and 0", n, p)
	}
	if err != nil {
		t.Fatalf("Rollback: %v\n%s", err, progress)
	}
	left := thumbs(f.app(f.sc.ClientID))
	if slices.Contains(left, pending) || slices.Contains(left, current) {
		t.Errorf("after -remove-app-cert the app still holds %v (current %s, pending %s)", left, current, pending)
	}
	if len(sum.RemovedThumbprints) != 2 {
		t.Errorf("RemovedThumbprints = %v, want the current and the pending certificate", sum.RemovedThumbprints)
	}
}

// dropAfterPatch plays another writer: right after this run's first PATCH of the app, it
// replaces the certificate list with the one it read before (none), as a PATCH built from
// an older read does.
type dropAfterPatch struct {
	next    policy.Transporter
	f       *fixture
	dropped bool
}

func (d *dropAfterPatch) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.next.Do(req)
	if err == nil && req.Method == http.MethodPatch && !d.dropped {
		for _, k := range d.f.app(d.f.sc.ClientID).KeyCredentials {
			if rerr := d.f.srv.RemoveKeyCredential(d.f.sc.TenantID, d.f.sc.ClientID, k.Thumbprint); rerr != nil {
				d.f.t.Error(rerr)
			}
			d.dropped = true
		}
	}
	return resp, err
}

// TestFirstUploadRepairsADroppedCertificate: a first migration's PATCH is re-read; a
// certificate another writer dropped meanwhile is written again, and the run does not
// report success while it is missing.
func TestFirstUploadRepairsADroppedCertificate(t *testing.T) {
	f := newFixture(t, entratest.ScenarioLegacy)
	deps := f.deps()
	drop := &dropAfterPatch{next: deps.GraphOptions.Transport, f: f}
	deps.GraphOptions.Transport = drop
	var progress bytes.Buffer
	cfg := f.config()
	cfg.Progress = &progress
	if _, err := provision.Migrate(context.Background(), cfg, deps); err != nil {
		t.Fatalf("Migrate: %v\n%s", err, progress.String())
	}
	if !drop.dropped {
		t.Fatal("the other writer never dropped the certificate: the test proves nothing")
	}
	if !strings.Contains(progress.String(), "another writer replaced the list") {
		t.Errorf("no word of the repair:\n%s", progress.String())
	}
	f.assertMigrated(f.sc.ClientID)
}

func TestPruneExpiredRemovesOnlyLongExpiredCertificatesOfOthers(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	now := time.Now()
	add := func(expiredAgo time.Duration) string {
		b, err := certs.GenerateWithLifetime(now.Add(-expiredAgo-40*24*time.Hour), 40*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.srv.AddKeyCredential(f.sc.TenantID, f.sc.ClientID, b.Cert, b.Cert.NotBefore, b.Cert.NotAfter); err != nil {
			t.Fatal(err)
		}
		return certs.Thumbprint(b.Cert)
	}
	retired, recent := add(60*24*time.Hour), add(5*24*time.Hour)
	mine := certs.Thumbprint(f.keyringCert(f.sc.TenantID).Cert)

	cfg := f.config()
	cfg.PruneExpired = 30 * 24 * time.Hour
	cfg.DryRun = true
	sum, _ := f.mustMigrate(cfg)
	if len(sum.Actions) != 1 || !strings.Contains(sum.Actions[0], retired) || len(thumbs(f.app(f.sc.ClientID))) != 3 {
		t.Fatalf("dry run: actions %q, app %v; want only %s listed and nothing removed", sum.Actions, thumbs(f.app(f.sc.ClientID)), retired)
	}
	cfg.DryRun = false
	f.srv.ResetCounts()
	_, progress := f.mustMigrate(cfg)
	left := thumbs(f.app(f.sc.ClientID))
	if slices.Contains(left, retired) || !slices.Contains(left, recent) || !slices.Contains(left, mine) {
		t.Errorf("after -prune-expired 30d the app holds %v; want %s gone, %s and %s kept\n%s", left, retired, recent, mine, progress)
	}
	if n := f.srv.Counts()[entratest.RouteRemoveKey]; n != 1 {
		t.Errorf("%d removeKey requests, want 1", n)
	}
}

func TestRenewReportsASecretOnTheApp(t *testing.T) {
	f, ms := newMachines(t, 1)
	if _, _, err := f.srv.AddPassword(f.sc.TenantID, f.sc.ClientID, time.Hour); err != nil {
		t.Fatal(err)
	}
	sum, progress, err := ms[0].renew(true)
	var coder interface{ ExitCode() int }
	if err == nil || !asCoder(err, &coder) || coder.ExitCode() != 4 || !strings.Contains(err.Error(), "1 client secret(s)") {
		t.Fatalf("Renew = %v; want exit 4 naming the secret\n%s", err, progress)
	}
	if sum == nil || sum.Renewal.Outcome != "renewed" || len(f.app(f.sc.ClientID).PasswordCredentials) != 1 {
		t.Errorf("the certificate must still be renewed and the secret left alone: %+v", sum)
	}
}

// TestRenewFinishesAPendingRotation: a rotation left pending (Entra ID was slow) is picked
// up by the next -renew even though the current certificate is not due, and no second
// rotation is started.
func TestRenewFinishesAPendingRotation(t *testing.T) {
	f, ms := newMachines(t, 1, entratest.WithPropagationDelay(1500*time.Millisecond))
	cfg := f.config()
	cfg.Rotate, cfg.PropagationTimeout = true, 200*time.Millisecond
	f.mustMigrate(cfg)
	pending := certs.Thumbprint(f.keyringCert(f.sc.TenantID + provision.NextAccountSuffix).Cert)
	f.srv.ResetCounts()
	sum, progress, err := ms[0].renew(false)
	if err != nil {
		t.Fatalf("Renew: %v\n%s", err, progress)
	}
	if got := ms[0].thumb(); got != pending || sum.Renewal.Outcome != "renewed" {
		t.Errorf("current %s after -renew, outcome %q; want the pending %s promoted\n%s", got, sum.Renewal.Outcome, pending, progress)
	}
	if n := f.srv.Counts()[entratest.RouteAddKey]; n != 0 || strings.Contains(progress, "Generating cert") {
		t.Errorf("-renew started a second rotation (%d addKey requests):\n%s", n, progress)
	}
	if keys := thumbs(f.app(f.sc.ClientID)); len(keys) != 1 || keys[0] != pending {
		t.Errorf("app keys %v, want only %s", keys, pending)
	}
}

// signInCause is an SDK-like error type an operator credential fails with.
type signInCause struct{}

func (*signInCause) Error() string { return "AzureCLICredential: token expired\nrun az login" }

type causeCredential struct{}

func (causeCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, &signInCause{}
}

// TestSignInErrorKeepsItsCause: a failed operator sign-in is one line for people, and
// its cause stays reachable with errors.As (the command line maps types, not text).
func TestSignInErrorKeepsItsCause(t *testing.T) {
	f := newFixture(t, entratest.ScenarioLegacy)
	deps := f.deps()
	deps.OperatorCredential = func(string) (azcore.TokenCredential, error) { return causeCredential{}, nil }
	_, err := provision.Migrate(context.Background(), f.config(), deps)
	var cause *signInCause
	if !errors.As(err, &cause) {
		t.Fatalf("Migrate = %v; want the credential's error reachable with errors.As", err)
	}
	if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "operator sign-in (-operator-auth azcli) failed") {
		t.Errorf("error %q: want one line naming the operator sign-in", err)
	}
}

// removeFirst plays another machine pruning the same certificate a moment earlier: it
// takes the key off the app just before this run's removeKey arrives.
type removeFirst struct {
	next  policy.Transporter
	f     *fixture
	thumb string
}

func (r *removeFirst) Do(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/removeKey") && r.thumb != "" {
		if err := r.f.srv.RemoveKeyCredential(r.f.sc.TenantID, r.f.sc.ClientID, r.thumb); err != nil {
			r.f.t.Error(err)
		}
		r.thumb = ""
	}
	return r.next.Do(req)
}

// TestPruneAfterAnotherMachinePrunedFirst: two machines pruning the same expired
// certificate at once; the second's removeKey finds no such key (400). The certificate is
// gone, which is what was asked: the run succeeds.
func TestPruneAfterAnotherMachinePrunedFirst(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	b, err := certs.GenerateWithLifetime(time.Now().Add(-100*24*time.Hour), 40*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.AddKeyCredential(f.sc.TenantID, f.sc.ClientID, b.Cert, b.Cert.NotBefore, b.Cert.NotAfter); err != nil {
		t.Fatal(err)
	}
	deps := f.deps()
	deps.GraphOptions.Transport = &removeFirst{next: deps.GraphOptions.Transport, f: f, thumb: certs.Thumbprint(b.Cert)}
	cfg := f.config()
	cfg.PruneExpired = 30 * 24 * time.Hour
	var progress bytes.Buffer
	cfg.Progress = &progress
	if _, err := provision.Migrate(context.Background(), cfg, deps); err != nil {
		t.Fatalf("Migrate: %v\n%s", err, progress.String())
	}
	if slices.Contains(thumbs(f.app(f.sc.ClientID)), certs.Thumbprint(b.Cert)) {
		t.Error("the expired certificate is still on the app")
	}
}
