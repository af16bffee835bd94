package provision_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/provision"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

const testService = "entraclaw-provision-test"

func TestMain(m *testing.M) {
	// Locks and backups go to the per-user state directory: keep this run's out of the real one.
	stateHome, err := os.MkdirTemp("", "entraclaw-state-home-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_STATE_HOME", stateHome)
	code := m.Run()
	os.RemoveAll(stateHome)
	os.Exit(code)
}

// staticCredential hands out one fixed token (the operator's).
type staticCredential struct{ token string }

func (c staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// failingCredential is an operator who cannot sign in.
type failingCredential struct{}

func (failingCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, errors.New("AzureCLICredential: ERROR: Please run 'az login' to setup account.")
}

// failingCredentialWith fails with err.
type failingCredentialWith struct{ err error }

func (f failingCredentialWith) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, f.err
}

// fixture is a seeded fake, a state file in a temporary directory and an in-memory keyring.
type fixture struct {
	t         testing.TB
	srv       *entratest.Server
	sc        *entratest.Scenario
	cloud     entra.Cloud
	dir       string
	statePath string
	backend   *keystore.MemoryBackend
	store     *keystore.Store
	operator  string // operator kind for srv.OperatorToken
}

func newFixture(t testing.TB, scenario string, opts ...entratest.Option) *fixture {
	t.Helper()
	t.Setenv("AZURE_AUTHORITY_HOST", "")
	t.Setenv("AZURE_REGIONAL_AUTHORITY_NAME", "")
	srv, err := entratest.NewServer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	sc, err := srv.Seed(scenario)
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := entra.ResolveCloud("public", srv.AuthorityHost(), srv.GraphEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := &fixture{t: t, srv: srv, sc: sc, cloud: cloud, dir: dir, statePath: filepath.Join(dir, state.FileName), backend: keystore.NewMemoryBackend(), operator: "admin"}
	f.store = keystore.New(testService, keystore.WithBackend(f.backend), keystore.WithOS("linux"))
	if sc.StateJSON != nil {
		if err := os.WriteFile(f.statePath, sc.StateJSON, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if sc.Bundle != nil {
		if err := f.store.PutBundle(sc.TenantID, sc.Bundle.PEM()); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) config() provision.Config {
	return provision.Config{
		StatePath:          f.statePath,
		Cloud:              f.cloud,
		KeyringService:     testService,
		PropagationTimeout: 20 * time.Second,
		ReplicationWait:    100 * time.Millisecond,
	}
}

func (f *fixture) deps() provision.Deps {
	transport := f.srv.Client()
	return provision.Deps{
		Store: f.store,
		OperatorCredential: func(string) (azcore.TokenCredential, error) {
			tok, err := f.srv.OperatorToken(f.sc.TenantID, f.operator)
			if err != nil {
				return nil, err
			}
			return staticCredential{tok}, nil
		},
		CertCredential: func(tenant, client string, b *certs.Bundle) (azcore.TokenCredential, error) {
			return entra.NewCertificateCredential(f.cloud, tenant, client, b, entra.CredentialOptions{Transport: transport})
		},
		GraphOptions: entra.GraphOptions{
			Transport:         transport,
			RetryDelay:        10 * time.Millisecond,
			MaxRetryDelay:     100 * time.Millisecond,
			NotFoundBaseDelay: 10 * time.Millisecond,
		},
	}
}

// migrate runs Migrate with cfg and returns the summary and the progress text.
func (f *fixture) migrate(cfg provision.Config) (*provision.Summary, string, error) {
	f.t.Helper()
	var progress bytes.Buffer
	cfg.Progress = &progress
	sum, err := provision.Migrate(context.Background(), cfg, f.deps())
	if f.sc.ClientSecret != "" && strings.Contains(progress.String(), f.sc.ClientSecret) {
		f.t.Fatal("the progress output contains the legacy secret")
	}
	return sum, progress.String(), err
}

func (f *fixture) mustMigrate(cfg provision.Config) (*provision.Summary, string) {
	f.t.Helper()
	sum, progress, err := f.migrate(cfg)
	if err != nil {
		f.t.Fatalf("Migrate: %v\nprogress:\n%s", err, progress)
	}
	return sum, progress
}

// app returns the provisioner app as the fake holds it.
func (f *fixture) app(clientID string) entratest.AppView {
	f.t.Helper()
	v, ok := f.srv.App(f.sc.TenantID, clientID)
	if !ok {
		f.t.Fatalf("no app %s in the fake", clientID)
	}
	return v
}

func (f *fixture) readState() []byte {
	f.t.Helper()
	data, err := os.ReadFile(f.statePath)
	if err != nil {
		f.t.Fatal(err)
	}
	return data
}

// keyringCert returns this machine's certificate from the keyring.
// state loads the state file.
func (f *fixture) state() *state.Doc {
	f.t.Helper()
	doc, err := state.Load(f.statePath)
	if err != nil {
		f.t.Fatal(err)
	}
	return doc
}

func (f *fixture) keyringCert(account string) *certs.Bundle {
	f.t.Helper()
	pem, err := f.store.GetBundle(account)
	if err != nil {
		f.t.Fatalf("keyring account %s: %v", account, err)
	}
	b, err := certs.ParseBundle(pem)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) hasKeyringItem(account string) bool {
	f.t.Helper()
	has, err := f.store.HasBundle(account)
	if err != nil {
		f.t.Fatal(err)
	}
	return has
}

// assertMigrated checks the end state every successful migration must reach.
func (f *fixture) assertMigrated(clientID string) {
	f.t.Helper()
	doc, err := state.Load(f.statePath)
	if err != nil {
		f.t.Fatal(err)
	}
	if doc.Has(state.KeyClientSecret) {
		f.t.Error("the state file still holds PROVISIONER_CLIENT_SECRET")
	}
	cert := f.keyringCert(f.sc.TenantID)
	thumb := certs.Thumbprint(cert.Cert)
	if got, _, _ := doc.String(state.KeyThumbprint); got != thumb {
		f.t.Errorf("PROVISIONER_CERT_THUMBPRINT = %q, keyring certificate %s", got, thumb)
	}
	app := f.app(clientID)
	if n := len(app.PasswordCredentials); n != 0 {
		f.t.Errorf("the app has %d password credentials, want 0", n)
	}
	if !slices.ContainsFunc(app.KeyCredentials, func(k entratest.KeyCredentialView) bool { return k.Thumbprint == thumb }) {
		f.t.Errorf("the keyring certificate %s is not on the app", thumb)
	}
	for _, want := range entratest.RequiredRoleValues() {
		if !slices.Contains(app.GrantedRoles, want) {
			f.t.Errorf("role %s is not granted", want)
		}
	}
	// The certificate gets a token.
	cred, err := f.deps().CertCredential(f.sc.TenantID, clientID, cert)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := entra.FetchToken(context.Background(), cred, f.cloud.GraphScope()); err != nil {
		f.t.Errorf("the keyring certificate gets no token: %v", err)
	}
}

func TestMigrateLegacy(t *testing.T) {
	f := newFixture(t, entratest.ScenarioLegacy)
	sum, progress := f.mustMigrate(f.config())
	f.assertMigrated(f.sc.ClientID)

	app := f.app(f.sc.ClientID)
	cert := f.keyringCert(f.sc.TenantID)
	if len(app.KeyCredentials) != 1 {
		t.Errorf("the app has %d certificates, want exactly this machine's", len(app.KeyCredentials))
	}
	// Every other key, its value and its order are kept byte for byte.
	want, err := state.Parse(f.sc.StateJSON)
	if err != nil {
		t.Fatal(err)
	}
	want.Delete(state.KeyClientSecret)
	want.Set(state.KeyThumbprint, certs.Thumbprint(cert.Cert))
	if got := f.readState(); !bytes.Equal(got, want.Marshal()) {
		t.Errorf("state file:\n%s\nwant:\n%s", got, want.Marshal())
	}
	// The backup keeps the secret for a rollback.
	backups, err := state.Backups(f.statePath)
	if err != nil || len(backups) != 1 {
		t.Fatalf("backups: %v, %v", backups, err)
	}
	if data, _ := os.ReadFile(backups[0]); !bytes.Equal(data, f.sc.StateJSON) {
		t.Error("the backup differs from the original state file")
	}

	if sum.PasswordsRemoved != 1 || !sum.CertUploaded || !sum.Propagated || !sum.Changed || sum.Rotated {
		t.Errorf("summary: %+v", sum)
	}
	if sum.PermissionsAdded != 0 || sum.GrantsAdded != 0 {
		t.Errorf("permissions were already there: added %d, granted %d", sum.PermissionsAdded, sum.GrantsAdded)
	}
	if sum.Thumbprint != certs.Thumbprint(cert.Cert) || sum.ClientID != f.sc.ClientID || sum.TenantID != f.sc.TenantID || sum.AppObjectID != f.sc.AppObjectID {
		t.Errorf("summary ids: %+v", sum)
	}
	for _, line := range []string{
		"Backed up state file to " + backups[0],
		"warning: legacy PROVISIONER_CLIENT_SECRET found in state file. Cert-auth supersedes secret-auth; purging the secret from disk.",
		"Ensuring 25 Graph application permissions on provisioner app...",
		"Provisioner app already has the required Graph permissions",
		"Removed 1 legacy password credential(s) from Provisioner app (cert-auth only from here on).",
		"Generating cert for Provisioner (RSA 2048, 365 days)...",
		"Cert private key stored in Secret Service (service='" + testService + "', account=" + f.sc.TenantID + ").",
		"Uploading public cert to app (SHA-1 thumb: " + certs.Thumbprint(cert.Cert) + ")...",
		"Waiting for Entra ID to accept the new certificate and roles...",
		"Propagation complete after ",
	} {
		if !strings.Contains(progress, line) {
			t.Errorf("progress lacks %q:\n%s", line, progress)
		}
	}
}

func TestMigrateRerunChangesNothing(t *testing.T) {
	f := newFixture(t, entratest.ScenarioLegacy)
	f.mustMigrate(f.config())
	before := f.readState()
	info, err := os.Stat(f.statePath)
	if err != nil {
		t.Fatal(err)
	}
	keyringWrites := f.backend.Writes()
	f.srv.ResetCounts()

	sum, progress := f.mustMigrate(f.config())

	if n := f.srv.WriteCalls(); n != 0 {
		t.Errorf("the re-run made %d Graph writes: %v", n, f.srv.Counts())
	}
	// The app by client id with every property, its service principal and Graph's
	// service principal (concurrently), then the granted roles: nothing is read twice.
	if n := graphReads(f.srv); n != 4 {
		t.Errorf("the re-run made %d Graph reads, want 4: %v", n, f.srv.Counts())
	}
	if n := f.srv.TokenRequests(); n != 0 {
		t.Errorf("the re-run asked the STS for %d tokens (it must not wait for propagation)", n)
	}
	after, err := os.Stat(f.statePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.readState(), before) || !after.ModTime().Equal(info.ModTime()) {
		t.Error("the re-run rewrote the state file")
	}
	// Probe writes and deletes one item; nothing else may be written.
	if n := f.backend.Writes() - keyringWrites; n != 2 {
		t.Errorf("the re-run made %d keyring writes, want only the probe's 2", n)
	}
	if sum.Changed || sum.Propagated || sum.PropagationWait != "0s" || len(sum.Actions) != 0 {
		t.Errorf("summary of a no-op run: %+v", sum)
	}
	if strings.Contains(progress, "Waiting for Entra ID") {
		t.Errorf("a no-op run waited for propagation:\n%s", progress)
	}
	if backups, _ := state.Backups(f.statePath); len(backups) != 1 {
		t.Errorf("backups after the re-run: %v", backups)
	}
}

func TestMigrateEmptyTenant(t *testing.T) {
	f := newFixture(t, entratest.ScenarioEmpty)
	sum, progress := f.mustMigrate(f.config())
	if sum.ClientID == "" {
		t.Fatal("no client id in the summary")
	}
	f.assertMigrated(sum.ClientID)
	doc, err := state.Load(f.statePath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := doc.Keys(), []string{state.KeyTenantID, state.KeyClientID, state.KeyThumbprint}; !slices.Equal(got, want) {
		t.Errorf("state keys %v, want %v", got, want)
	}
	if tenant, _, _ := doc.String(state.KeyTenantID); tenant != f.sc.TenantID {
		t.Errorf("TENANT_ID %q (from the operator token), want %s", tenant, f.sc.TenantID)
	}
	app := f.app(sum.ClientID)
	if app.DisplayName != entra.ProvisionerDisplayName || app.SignInAudience != entra.SignInAudienceMyOrg || app.ServicePrincipalID == "" {
		t.Errorf("created app: %+v", app)
	}
	if app.RequiredResourceAccessCount != 25 || len(app.GrantedRoles) != 25 {
		t.Errorf("declared %d permissions and granted %d roles, want 25 each", app.RequiredResourceAccessCount, len(app.GrantedRoles))
	}
	if sum.PermissionsAdded != 25 || sum.GrantsAdded != 25 || !sum.Propagated {
		t.Errorf("summary: %+v", sum)
	}
	for _, line := range []string{"Creating Provisioner app 'EntraClaw Agent ID Provisioner'...", "Admin consent granted (25 new grant(s))."} {
		if !strings.Contains(progress, line) {
			t.Errorf("progress lacks %q:\n%s", line, progress)
		}
	}
}

func TestMigrateDryRunChangesNothing(t *testing.T) {
	for _, scenario := range []string{entratest.ScenarioLegacy, entratest.ScenarioEmpty, entratest.ScenarioMigrated} {
		t.Run(scenario, func(t *testing.T) {
			f := newFixture(t, scenario)
			var before []byte
			if f.sc.StateJSON != nil {
				before = f.readState()
			}
			keyringWrites := f.backend.Writes()
			f.srv.ResetCounts()
			cfg := f.config()
			cfg.DryRun = true
			if scenario == entratest.ScenarioMigrated {
				cfg.Rotate = true
			}
			sum, progress := f.mustMigrate(cfg)

			if n := f.srv.WriteCalls(); n != 0 {
				t.Errorf("dry run made %d Graph writes", n)
			}
			if n := f.backend.Writes() - keyringWrites; n != 0 {
				t.Errorf("dry run made %d keyring writes", n)
			}
			entries, err := os.ReadDir(f.dir)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case before == nil && len(entries) != 0:
				t.Errorf("dry run created files: %v", entries)
			case before != nil && (len(entries) != 1 || !bytes.Equal(f.readState(), before)):
				t.Errorf("dry run changed the directory or the state file: %v", entries)
			}
			if !sum.DryRun || sum.Changed || len(sum.Actions) == 0 {
				t.Errorf("summary: %+v", sum)
			}
			if !strings.Contains(progress, "dry run: would ") {
				t.Errorf("progress shows no plan:\n%s", progress)
			}
		})
	}
}

func TestMigrateRotateKeepsOtherMachinesCertificate(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	other, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.AddKeyCredential(f.sc.TenantID, f.sc.ClientID, other.Cert, other.Cert.NotBefore.Add(time.Second), other.Cert.NotAfter.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	oldThumb := certs.Thumbprint(f.sc.Bundle.Cert)
	cfg := f.config()
	cfg.Rotate = true
	sum, progress := f.mustMigrate(cfg)
	f.assertMigrated(f.sc.ClientID)

	newThumb := certs.Thumbprint(f.keyringCert(f.sc.TenantID).Cert)
	if newThumb == oldThumb {
		t.Fatal("-rotate kept the old certificate")
	}
	var onApp []string
	for _, k := range f.app(f.sc.ClientID).KeyCredentials {
		onApp = append(onApp, k.Thumbprint)
	}
	slices.Sort(onApp)
	want := []string{certs.Thumbprint(other.Cert), newThumb}
	slices.Sort(want)
	if !slices.Equal(onApp, want) {
		t.Errorf("certificates on the app %v, want the other machine's and the new one %v (old %s)", onApp, want, oldThumb)
	}
	if f.hasKeyringItem(f.sc.TenantID + provision.PreviousAccountSuffix) {
		t.Error("the previous certificate's keyring item was not deleted")
	}
	if !sum.Rotated || !sum.PreviousCertRemoved || !sum.Propagated {
		t.Errorf("summary: %+v", sum)
	}
	if !strings.Contains(progress, "Removed this machine's previous certificate "+oldThumb) {
		t.Errorf("progress:\n%s", progress)
	}
}

func TestMigrateDeletesUnusablePreviousItem(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	account := f.sc.TenantID + provision.PreviousAccountSuffix
	if err := f.backend.Set(testService, account, "not a certificate bundle"); err != nil {
		t.Fatal(err)
	}
	sum, progress := f.mustMigrate(f.config())
	if f.hasKeyringItem(account) {
		t.Errorf("the unusable keyring item %s is still there", account)
	}
	if !strings.Contains(progress, "Deleted keyring item service='"+testService+"' account="+account+": it was not a usable certificate bundle") {
		t.Errorf("progress does not say the item was deleted:\n%s", progress)
	}
	if len(sum.Warnings) != 0 || strings.Contains(progress, "warning:") {
		t.Errorf("warnings %q:\n%s", sum.Warnings, progress)
	}
	f.assertMigrated(f.sc.ClientID)

	sum, progress = f.mustMigrate(f.config())
	if len(sum.Warnings) != 0 || strings.Contains(progress, account) || sum.Changed {
		t.Errorf("the re-run still reports the item (changed %v, warnings %q):\n%s", sum.Changed, sum.Warnings, progress)
	}
}

func TestMigrateRenewsCertificateNearExpiry(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	cfg := f.config()
	cfg.RenewBefore = 400 * 24 * time.Hour // longer than the certificate's life: due for renewal
	sum, _ := f.mustMigrate(cfg)
	f.assertMigrated(f.sc.ClientID)
	keys := f.app(f.sc.ClientID).KeyCredentials
	if len(keys) != 1 || keys[0].Thumbprint == certs.Thumbprint(f.sc.Bundle.Cert) {
		t.Errorf("after renewal the app has %+v, want only the new certificate", keys)
	}
	if !sum.Rotated || !sum.PreviousCertRemoved {
		t.Errorf("summary: %+v", sum)
	}
}

func TestMigrateUploadsKeyringCertificateMissingFromApp(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	thumb := certs.Thumbprint(f.sc.Bundle.Cert)
	if err := f.srv.RemoveKeyCredential(f.sc.TenantID, f.sc.ClientID, thumb); err != nil {
		t.Fatal(err)
	}
	sum, _ := f.mustMigrate(f.config())
	f.assertMigrated(f.sc.ClientID)
	if got := certs.Thumbprint(f.keyringCert(f.sc.TenantID).Cert); got != thumb {
		t.Errorf("the keyring certificate was replaced (%s), not uploaded again (%s)", got, thumb)
	}
	if !sum.CertUploaded || sum.Rotated {
		t.Errorf("summary: %+v", sum)
	}
}

// TestMigratePasswordRemovalFailureKeepsTheSecret: the client secret goes last, once
// the certificate works, so a refused removePassword leaves both credentials working.
func TestMigratePasswordRemovalFailureKeepsTheSecret(t *testing.T) {
	f := newFixture(t, entratest.ScenarioLegacy)
	f.srv.FailNext(entratest.RouteRemovePassword, entratest.Failure{Status: 403, Code: "Authorization_RequestDenied", Message: "Insufficient privileges to complete the operation."})
	_, progress, err := f.migrate(f.config())
	if err == nil {
		t.Fatalf("Migrate succeeded although removePassword failed:\n%s", progress)
	}
	if !strings.Contains(err.Error(), "remove password credential") {
		t.Errorf("error %q does not say what failed", err)
	}
	if !strings.Contains(progress, "The client secret was kept and still works (PROVISIONER_CLIENT_SECRET in") {
		t.Errorf("progress does not say the secret was kept:\n%s", progress)
	}
	app := f.app(f.sc.ClientID)
	if len(app.PasswordCredentials) != 1 || len(app.KeyCredentials) != 1 {
		t.Errorf("after the failure the app has %d passwords and %d certificates, want 1 and 1", len(app.PasswordCredentials), len(app.KeyCredentials))
	}
	if doc := f.state(); !doc.Has(state.KeyClientSecret) {
		t.Error("the state file lost PROVISIONER_CLIENT_SECRET although the secret is still on the app")
	}
	// A re-run picks up where it stopped.
	f.mustMigrate(f.config())
	f.assertMigrated(f.sc.ClientID)
}

func TestMigrateWaitsForPropagation(t *testing.T) {
	// The fake counts the delay from the upload; the wait starts a moment later (the
	// thumbprint is recorded first), more so on a loaded machine: ask for a third of it.
	const delay = 1500 * time.Millisecond
	f := newFixture(t, entratest.ScenarioLegacy, entratest.WithPropagationDelay(delay))
	sum, _ := f.mustMigrate(f.config())
	if !sum.Propagated {
		t.Fatalf("not propagated: %+v", sum)
	}
	wait, err := time.ParseDuration(sum.PropagationWait)
	if err != nil {
		t.Fatal(err)
	}
	if wait < delay/3 {
		t.Errorf("waited %s, less than the propagation delay %s", wait, delay)
	}
	f.assertMigrated(f.sc.ClientID)
}

// TestMigratePropagationTimeoutKeepsTheSecret: a first migration whose certificate
// is not accepted in time removes no secret, fails (exit 1) saying so, and a re-run
// once Entra ID has caught up finishes the job.
func TestMigratePropagationTimeoutKeepsTheSecret(t *testing.T) {
	f := newFixture(t, entratest.ScenarioLegacy, entratest.WithPropagationDelay(2*time.Second))
	cfg := f.config()
	cfg.PropagationTimeout = 400 * time.Millisecond
	_, progress, err := f.migrate(cfg)
	var perr *provision.Error
	if !errors.As(err, &perr) || perr.ExitCode() != 1 || !strings.Contains(err.Error(), "the client secret was kept and still works") ||
		!strings.Contains(perr.Hint(), "entraclaw-migrate") {
		t.Fatalf("error %v, want exit 1 saying the secret was kept", err)
	}
	if !strings.Contains(progress, "AADSTS700027") {
		t.Errorf("progress does not say why it was not yet:\n%s", progress)
	}
	app := f.app(f.sc.ClientID)
	if len(app.PasswordCredentials) != 1 || len(app.KeyCredentials) != 1 {
		t.Errorf("app: %d passwords, %d certificates; want 1 and 1", len(app.PasswordCredentials), len(app.KeyCredentials))
	}
	if !f.state().Has(state.KeyClientSecret) {
		t.Error("the state file lost PROVISIONER_CLIENT_SECRET before the certificate worked")
	}
	time.Sleep(2 * time.Second)
	f.mustMigrate(f.config())
	f.assertMigrated(f.sc.ClientID)
	// The re-run found the first run's backup of the same bytes: one copy of the secret, not two.
	if backups, err := state.Backups(f.statePath); err != nil || len(backups) != 1 {
		t.Errorf("backups after the re-run: %v, %v; want one", backups, err)
	}
}

// TestMigrateRotationIsMakeBeforeBreak: until the new certificate has produced a
// token, the old one stays current (keyring item, state file, app); the new one
// waits as <tenant>.next, and a plain re-run finishes the rotation.
func TestMigrateRotationIsMakeBeforeBreak(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated, entratest.WithPropagationDelay(time.Second))
	oldThumb := certs.Thumbprint(f.sc.Bundle.Cert)
	cfg := f.config()
	cfg.Rotate = true
	cfg.PropagationTimeout = 200 * time.Millisecond
	sum, progress := f.mustMigrate(cfg)
	if sum.PreviousCertRemoved || len(f.app(f.sc.ClientID).KeyCredentials) != 2 {
		t.Errorf("the old certificate was removed without proof that the new one works: %+v", sum)
	}
	if got := certs.Thumbprint(f.keyringCert(f.sc.TenantID).Cert); got != oldThumb {
		t.Fatalf("the current keyring item holds %s before the new certificate got a token, want the old %s", got, oldThumb)
	}
	if !strings.Contains(string(f.readState()), oldThumb) {
		t.Errorf("the state file no longer records the serving certificate %s:\n%s", oldThumb, f.readState())
	}
	next := f.keyringCert(f.sc.TenantID + provision.NextAccountSuffix)
	if next == nil || certs.Thumbprint(next.Cert) == oldThumb {
		t.Fatal("the new certificate is not pending as <tenant>.next")
	}
	if !strings.Contains(progress, "rotation pending") {
		t.Errorf("progress does not say the rotation is pending:\n%s", progress)
	}
	// The old certificate still gets tokens.
	cred, err := f.deps().CertCredential(f.sc.TenantID, f.sc.ClientID, f.keyringCert(f.sc.TenantID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := entra.FetchToken(context.Background(), cred, f.cloud.GraphScope()); err != nil {
		t.Fatalf("the serving certificate no longer gets a token mid-rotation: %v", err)
	}

	// A plain re-run waits until Entra ID accepts the new certificate and finishes the rotation.
	sum, _ = f.mustMigrate(f.config())
	newThumb := certs.Thumbprint(next.Cert)
	if !sum.PreviousCertRemoved || len(f.app(f.sc.ClientID).KeyCredentials) != 1 {
		t.Errorf("the re-run did not finish the rotation: %+v", sum)
	}
	for _, suffix := range []string{provision.NextAccountSuffix, provision.PreviousAccountSuffix} {
		if f.hasKeyringItem(f.sc.TenantID + suffix) {
			t.Errorf("keyring item %s left after the rotation", f.sc.TenantID+suffix)
		}
	}
	if got := certs.Thumbprint(f.keyringCert(f.sc.TenantID).Cert); got != newThumb {
		t.Errorf("current keyring item %s, want the new %s", got, newThumb)
	}
	if !strings.Contains(string(f.readState()), newThumb) {
		t.Errorf("state file does not record %s", newThumb)
	}
	f.assertMigrated(f.sc.ClientID)
}

func TestMigrateRefusesSeveralAppsWithTheName(t *testing.T) {
	f := newFixture(t, entratest.ScenarioEmpty)
	tok, err := f.srv.OperatorToken(f.sc.TenantID, "admin")
	if err != nil {
		t.Fatal(err)
	}
	g, err := entra.NewGraph(f.cloud, staticCredential{tok}, entra.GraphOptions{Transport: f.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 2 {
		app, err := g.CreateApplication(context.Background(), entra.ProvisionerDisplayName)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, app.AppID)
	}
	f.srv.ResetCounts()
	_, _, err = f.migrate(f.config())
	var perr *provision.Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %v, want a *provision.Error", err)
	}
	for _, id := range ids {
		if !strings.Contains(err.Error(), id) {
			t.Errorf("error %q does not list app %s", err, id)
		}
	}
	if !strings.Contains(perr.Hint(), "-client-id") {
		t.Errorf("hint %q does not mention -client-id", perr.Hint())
	}
	if n := f.srv.WriteCalls(); n != 0 {
		t.Errorf("%d Graph writes before refusing", n)
	}
	if _, err := os.Stat(f.statePath); !errors.Is(err, os.ErrNotExist) {
		t.Error("a state file was written before refusing")
	}
}

// TestMigrateNeedsAnAdministratorForConsent: an operator who may not grant admin
// consent is refused by the preflight (a dry run too), before anything changes.
func TestMigrateNeedsAnAdministratorForConsent(t *testing.T) {
	f := newFixture(t, entratest.ScenarioEmpty)
	f.operator = "appadmin"
	for _, dry := range []bool{true, false} {
		cfg := f.config()
		cfg.DryRun = dry
		_, _, err := f.migrate(cfg)
		var perr *provision.Error
		if !errors.As(err, &perr) || !strings.Contains(err.Error(), "Privileged Role Administrator or Global Administrator") ||
			!strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("dry run %v: error %v, want a preflight refusal naming the roles", dry, err)
		}
		if perr.ExitCode() != 1 {
			t.Errorf("exit code %d, want 1", perr.ExitCode())
		}
		if snap := f.srv.Snapshot(); len(snap.Tenants[0].Apps) != 0 {
			t.Fatalf("dry run %v: %d apps after the refusal, want 0", dry, len(snap.Tenants[0].Apps))
		}
	}
	f.operator = "admin"
	sum, _ := f.mustMigrate(f.config())
	f.assertMigrated(sum.ClientID)
}

func TestMigratePreflightFailuresChangeNothing(t *testing.T) {
	t.Run("operator not signed in", func(t *testing.T) {
		f := newFixture(t, entratest.ScenarioLegacy)
		deps := f.deps()
		deps.OperatorCredential = func(string) (azcore.TokenCredential, error) { return failingCredential{}, nil }
		_, err := provision.Migrate(context.Background(), f.config(), deps)
		var perr *provision.Error
		if !errors.As(err, &perr) || !strings.Contains(perr.Hint(), "az login") || !strings.Contains(err.Error(), "az login") {
			t.Fatalf("error %v (hint %q), want one that says to run az login", err, hintOf(perr))
		}
		f.assertUntouched()
	})
	t.Run("operator cannot reach the authority", func(t *testing.T) {
		f := newFixture(t, entratest.ScenarioLegacy)
		deps := f.deps()
		unreachable := &url.Error{Op: "Post", URL: "https://login.example/t/oauth2/v2.0/token", Err: errors.New("dial tcp: lookup login.example: no such host")}
		deps.OperatorCredential = func(string) (azcore.TokenCredential, error) { return failingCredentialWith{unreachable}, nil }
		_, err := provision.Migrate(context.Background(), f.config(), deps)
		var perr *provision.Error
		if !errors.As(err, &perr) || !errors.Is(err, unreachable) {
			t.Fatalf("error %v, want a *provision.Error wrapping the credential's error", err)
		}
		if want := "operator sign-in (-operator-auth azcli) failed: cannot reach login.example: dial tcp: lookup login.example: no such host"; err.Error() != want {
			t.Errorf("error %q, want %q (one line, no hint in it)", err, want)
		}
		if h := perr.Hint(); !strings.Contains(h, "HTTPS_PROXY") || strings.Contains(h, "az login") {
			t.Errorf("hint %q, want the network's (HTTPS_PROXY), not a sign-in hint", h)
		}
		f.assertUntouched()
	})
	t.Run("graph endpoint az cannot use", func(t *testing.T) {
		f := newFixture(t, entratest.ScenarioLegacy)
		deps := f.deps()
		deps.OperatorCredential = func(tenant string) (azcore.TokenCredential, error) {
			cloud := f.cloud
			cloud.GraphEndpoint = "https://graph.example.com/~graph"
			return entra.NewOperatorCredential(provision.OperatorAzureCLI, cloud, tenant, nil, entra.CredentialOptions{})
		}
		_, err := provision.Migrate(context.Background(), f.config(), deps)
		var perr *provision.Error
		if !errors.As(err, &perr) || !errors.Is(err, entra.ErrInvalidArgument) {
			t.Fatalf("error %v, want a *provision.Error wrapping entra.ErrInvalidArgument", err)
		}
		if perr.ExitCode() != 2 {
			t.Errorf("exit code %d, want 2 (usage)", perr.ExitCode())
		}
		if !strings.Contains(err.Error(), "-graph-endpoint") || strings.Contains(perr.Hint(), "az login") {
			t.Errorf("error %v (hint %q), want one naming -graph-endpoint without the az login hint", err, perr.Hint())
		}
		f.assertUntouched()
	})
	t.Run("keyring unavailable", func(t *testing.T) {
		f := newFixture(t, entratest.ScenarioLegacy)
		f.backend.FailWrites(errors.New("failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'"))
		_, _, err := f.migrate(f.config())
		var unavailable *keystore.UnavailableError
		if !errors.As(err, &unavailable) {
			t.Fatalf("error %v, want a keystore.UnavailableError", err)
		}
		var perr *provision.Error
		if !errors.As(err, &perr) || !strings.Contains(perr.Hint(), "unlock") {
			t.Errorf("hint %q does not say how to unlock the keyring", hintOf(perr))
		}
		f.assertUntouched()
	})
	t.Run("corrupt state file", func(t *testing.T) {
		f := newFixture(t, entratest.ScenarioLegacy)
		if err := os.WriteFile(f.statePath, []byte(`{"TENANT_ID": "x",`), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := f.migrate(f.config())
		if !errors.Is(err, state.ErrCorrupt) {
			t.Fatalf("error %v, want state.ErrCorrupt", err)
		}
		if n := f.srv.WriteCalls(); n != 0 {
			t.Errorf("%d Graph writes", n)
		}
	})
}

// graphReads is the number of GET requests the fake received since its counts were reset.
func graphReads(srv *entratest.Server) int {
	n := 0
	for route, count := range srv.Counts() {
		if strings.HasPrefix(route, "GET ") {
			n += count
		}
	}
	return n
}

func hintOf(e *provision.Error) string {
	if e == nil {
		return ""
	}
	return e.Hint()
}

// assertUntouched checks that the legacy scenario is exactly as seeded.
func (f *fixture) assertUntouched() {
	f.t.Helper()
	if !bytes.Equal(f.readState(), f.sc.StateJSON) {
		f.t.Error("the state file changed")
	}
	if n := f.srv.WriteCalls(); n != 0 {
		f.t.Errorf("%d Graph writes", n)
	}
	if f.hasKeyringItem(f.sc.TenantID) {
		f.t.Error("the keyring has a certificate")
	}
	entries, _ := os.ReadDir(f.dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".bak.") {
			f.t.Errorf("backup %s was written", e.Name())
		}
	}
}

func TestMigrateFallsBackToDisplayNameForUnknownRecordedApp(t *testing.T) {
	f := newFixture(t, entratest.ScenarioLegacy)
	const stale = "11111111-2222-4333-8444-555555555555"
	if _, err := state.Update(f.statePath, false, func(d *state.Doc) error {
		d.Set(state.KeyClientID, stale)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sum, _ := f.mustMigrate(f.config())
	if sum.ClientID != f.sc.ClientID {
		t.Errorf("migrated app %s, want %s found by display name", sum.ClientID, f.sc.ClientID)
	}
	if !slices.ContainsFunc(sum.Warnings, func(w string) bool { return strings.Contains(w, stale) }) {
		t.Errorf("no warning about the stale client id: %q", sum.Warnings)
	}
	f.assertMigrated(f.sc.ClientID)
	doc, _ := state.Load(f.statePath)
	if got, _, _ := doc.String(state.KeyClientID); got != f.sc.ClientID {
		t.Errorf("PROVISIONER_CLIENT_ID = %s, want %s", got, f.sc.ClientID)
	}
}

func TestConcurrentMigratesSerialise(t *testing.T) {
	f := newFixture(t, entratest.ScenarioLegacy)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := f.config()
			cfg.Progress = &bytes.Buffer{}
			_, errs[i] = provision.Migrate(context.Background(), cfg, f.deps())
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.assertMigrated(f.sc.ClientID)
	if n := len(f.app(f.sc.ClientID).KeyCredentials); n != 1 {
		t.Errorf("%d certificates on the app, want 1", n)
	}
}

// TestRotationSurvivesReadLag: Graph reads lag behind the upload's PATCH. Removing the
// previous certificate from a stale read (PATCH replaces the list) would drop the new
// certificate too, leaving the app with none; the migration re-reads until the new
// one shows, and only then removes the old one.
func TestRotationSurvivesReadLag(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated, entratest.WithReadLag(1500*time.Millisecond))
	cfg := f.config()
	cfg.Rotate = true
	cfg.ReadInterval = 100 * time.Millisecond
	cfg.ReplicationWait = 10 * time.Second
	sum, progress := f.mustMigrate(cfg)
	// addKey and removeKey change one key each: no list is written from a stale read.
	if n := f.srv.Counts()[entratest.RoutePatchApplication]; n != 0 || f.srv.Counts()[entratest.RouteRemoveKey] != 1 {
		t.Errorf("the rotation sent %d PATCHes of the app (want none; addKey and removeKey instead): %v\n%s", n, f.srv.Counts(), progress)
	}
	keys := f.app(f.sc.ClientID).KeyCredentials
	current := certs.Thumbprint(f.keyringCert(f.sc.TenantID).Cert)
	if len(keys) != 1 || keys[0].Thumbprint != current || !sum.PreviousCertRemoved {
		t.Fatalf("after a rotation under read lag the app holds %+v, want only the current certificate %s", keys, current)
	}
	f.assertMigrated(f.sc.ClientID)
}

// TestPropagationPollThrottledIsNotYet: Entra ID answers a tight token loop with
// AADSTS50196; the propagation poll treats it as "not yet" and backs off.
func TestPropagationPollThrottledIsNotYet(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated, entratest.WithPropagationDelay(800*time.Millisecond), entratest.WithTokenLoopLimit(2, time.Second))
	cfg := f.config()
	cfg.Rotate = true
	cfg.PropagationTimeout = 8 * time.Second // throttled waits are capped at a quarter of it
	sum, progress := f.mustMigrate(cfg)
	if !sum.Propagated || !sum.PreviousCertRemoved {
		t.Fatalf("the rotation did not finish under throttling: %+v\n%s", sum, progress)
	}
	if n := f.srv.Counts()[entratest.RouteToken]; n < 3 {
		t.Errorf("%d token requests: the loop limit was never reached", n)
	}
}

// TestMigrateFirstRunReadsTheAppTwice: the preflight reads the app; the certificate step
// uses that read (a backup of the state file does not change the app), and only the
// password step, after the upload, reads it again.
func TestMigrateFirstRunReadsTheAppTwice(t *testing.T) {
	f := newFixture(t, entratest.ScenarioLegacy)
	f.mustMigrate(f.config())
	if n := f.srv.Counts()[entratest.RouteGetApplication]; n != 2 {
		t.Errorf("GET application: %d requests, want 2 (the preflight's, and the one after the upload)", n)
	}
	f.assertMigrated(f.sc.ClientID)
}

// failSecondRemoval forwards to next and makes the fake refuse the second removePassword.
type failSecondRemoval struct {
	next policy.Transporter
	srv  *entratest.Server
	n    int
}

func (t *failSecondRemoval) Do(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/removePassword") {
		if t.n++; t.n == 2 {
			t.srv.FailNext(entratest.RouteRemovePassword, entratest.Failure{Status: 403, Code: "Authorization_RequestDenied", Message: "Insufficient privileges to complete the operation."})
		}
	}
	return t.next.Do(req)
}

// TestMigrateHalfRemovedSecretsAreNotCalledWorking: once a secret is gone, the run cannot
// tell whether the state file's was among them, so it does not say the secret still works.
func TestMigrateHalfRemovedSecretsAreNotCalledWorking(t *testing.T) {
	f := newFixture(t, entratest.ScenarioLegacy)
	if _, _, err := f.srv.AddPassword(f.sc.TenantID, f.sc.ClientID, time.Hour); err != nil {
		t.Fatal(err)
	}
	deps := f.deps()
	deps.GraphOptions.Transport = &failSecondRemoval{next: deps.GraphOptions.Transport, srv: f.srv}
	var progress strings.Builder
	cfg := f.config()
	cfg.Progress = &progress
	_, err := provision.Migrate(context.Background(), cfg, deps)
	if err == nil || !strings.Contains(err.Error(), "(1 of 2 removed; the certificate works)") {
		t.Fatalf("error %v, want the second removal refused", err)
	}
	if strings.Contains(progress.String(), "still works") || !strings.Contains(progress.String(), "The certificate works; PROVISIONER_CLIENT_SECRET in") {
		t.Errorf("progress claims a secret that may be gone still works, or does not say the certificate works:\n%s", progress.String())
	}
	f.mustMigrate(f.config())
	f.assertMigrated(f.sc.ClientID)
}

// TestMigrateRefusesATenantOtherThanTheStateFiles: -tenant-id names the tenant the
// operator signed in to, but the state file belongs to another: refused, nothing changed.
func TestMigrateRefusesATenantOtherThanTheStateFiles(t *testing.T) {
	f := newFixture(t, entratest.ScenarioLegacy)
	const other = "99999999-9999-4999-8999-999999999999"
	if _, err := state.Update(f.statePath, false, func(d *state.Doc) error { d.Set(state.KeyTenantID, other); return nil }); err != nil {
		t.Fatal(err)
	}
	before := f.readState()
	cfg := f.config()
	cfg.TenantID = f.sc.TenantID
	_, _, err := f.migrate(cfg)
	if err == nil || !strings.Contains(err.Error(), "is not TENANT_ID "+other) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("error %v, want the state file's tenant named", err)
	}
	if !bytes.Equal(f.readState(), before) || f.hasKeyringItem(f.sc.TenantID) {
		t.Error("the refused run changed the state file or the keyring")
	}
}
