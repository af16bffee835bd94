package verify

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// fixture is a fake Entra ID + Graph seeded "migrated", its state file and a keyring
// holding the scenario's bundle.
type fixture struct {
	srv   *entratest.Server
	sc    *entratest.Scenario
	store *keystore.Store
	cfg   Config
	deps  Deps
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv, err := entratest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	sc, err := srv.Seed("migrated")
	if err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(t.TempDir(), state.FileName)
	if err := os.WriteFile(statePath, sc.StateJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	store := keystore.New("entraclaw-verify-test", keystore.WithBackend(keystore.NewMemoryBackend()), keystore.WithOS("linux"))
	if err := store.PutBundle(sc.TenantID, sc.Bundle.PEM()); err != nil {
		t.Fatal(err)
	}
	cloud, err := entra.ResolveCloud("public", srv.AuthorityHost(), srv.GraphEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		srv: srv, sc: sc, store: store,
		cfg: Config{StatePath: statePath, Tenant: sc.TenantID, Client: sc.ClientID, Cloud: cloud},
		deps: Deps{
			Store:      store,
			Credential: entra.CredentialOptions{Transport: srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}},
			Graph:      entra.GraphOptions{Transport: srv.Client(), MaxRetries: -1},
		},
	}
}

func (f *fixture) run(t *testing.T) *Report {
	t.Helper()
	rep, err := Run(context.Background(), f.cfg, f.deps)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// editState changes the state file in place.
func (f *fixture) editState(t *testing.T, edit func(*state.Doc)) {
	t.Helper()
	if _, err := state.Update(f.cfg.StatePath, false, func(d *state.Doc) error { edit(d); return nil }); err != nil {
		t.Fatal(err)
	}
}

// installCert makes b this machine's certificate: uploaded to the app, stored in the
// keyring and recorded in the state file.
func (f *fixture) installCert(t *testing.T, b *certs.Bundle) {
	t.Helper()
	if err := f.srv.AddKeyCredential(f.sc.TenantID, f.sc.ClientID, b.Cert, b.Cert.NotBefore, b.Cert.NotAfter); err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutBundle(f.sc.TenantID, b.PEM()); err != nil {
		t.Fatal(err)
	}
	f.editState(t, func(d *state.Doc) { d.Set(state.KeyThumbprint, certs.Thumbprint(b.Cert)) })
}

func result(t *testing.T, rep *Report, name string) Result {
	t.Helper()
	for _, r := range rep.Checks {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no %s result in %+v", name, rep.Checks)
	return Result{}
}

// expectVerdicts asserts which checks passed; every other one must have failed.
func expectVerdicts(t *testing.T, rep *Report, passing ...string) {
	t.Helper()
	for _, r := range rep.Checks {
		if r.OK != slices.Contains(passing, r.Name) {
			t.Errorf("%s: ok=%v, detail %q", r.Name, r.OK, r.Detail)
		}
	}
	if rep.OK != (len(passing) == len(rep.Checks)) {
		t.Errorf("report ok=%v", rep.OK)
	}
}

func generate(t *testing.T, now time.Time) *certs.Bundle {
	t.Helper()
	b, err := certs.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRunMigratedPassesEverything(t *testing.T) {
	f := newFixture(t)
	rep := f.run(t)
	if len(rep.Checks) != 4 {
		t.Fatalf("%d checks, want 4", len(rep.Checks))
	}
	expectVerdicts(t, rep, DefaultChecks(nil, false)...)
	if len(rep.Warnings) != 0 || rep.Err() != nil {
		t.Errorf("warnings %v, err %v", rep.Warnings, rep.Err())
	}
	if d := result(t, rep, NameKeyringCert).Detail; !strings.Contains(d, certs.Thumbprint(f.sc.Bundle.Cert)) || !strings.Contains(d, "Secret Service") {
		t.Errorf("keyring-cert detail %q lacks the thumbprint or the backend", d)
	}
	if d := result(t, rep, NameToken).Detail; !strings.Contains(d, "all 25 required roles") {
		t.Errorf("token detail %q", d)
	}
	if f.srv.WriteCalls() != 0 {
		t.Errorf("verify wrote to Graph %d time(s)", f.srv.WriteCalls())
	}
}

// TestRunRequests pins what one full Run asks of Entra ID and Graph: one sign-in (the
// Graph client's token serves the token check too), one app read by appId with the
// certificate bodies and, at the same time, its federated credentials, one read of
// Graph's app roles.
func TestRunRequests(t *testing.T) {
	f := newFixture(t)
	for attempt := 1; attempt <= 2; attempt++ { // a second Run signs in afresh
		f.srv.ResetCounts()
		expectVerdicts(t, f.run(t), DefaultChecks(nil, false)...)
		got := f.srv.Counts()
		delete(got, entratest.RouteFakeState)
		total := 0
		for _, n := range got {
			total += n
		}
		if got[entratest.RouteOpenIDConfiguration] != 1 || got[entratest.RouteToken] != 1 || f.srv.TokenRequests() != 1 ||
			got[entratest.RouteGetApplication] != 1 || got[entratest.RouteListFICs] != 1 || total != 5 {
			t.Errorf("run %d: requests %v, want 5: one discovery, one token, one app read, one read of its federated credentials (beside it), one Graph SP read", attempt, got)
		}
	}
}

// TestRunAppReadFails: both app checks use the one read of the app, so when it fails
// neither can run, and it is not retried by the second check.
func TestRunAppReadFails(t *testing.T) {
	f := newFixture(t)
	f.srv.FailNext(entratest.RouteGetApplication, entratest.Failure{Status: 503, Code: "ServiceUnavailable", Message: "Injected."})
	rep := f.run(t)
	expectVerdicts(t, rep, NameSecretPurged, NameToken)
	for _, name := range []string{NameNoPasswords, NameKeyringCert} {
		if r := result(t, rep, name); !r.CouldNotRun || !strings.Contains(r.Detail, "ServiceUnavailable") {
			t.Errorf("%s = %+v: want could-not-run naming the Graph error", name, r)
		}
	}
	if n := f.srv.Counts()[entratest.RouteGetApplication]; n != 1 {
		t.Errorf("the app was read %d times, want 1", n)
	}
}

func TestRunSecretBackInState(t *testing.T) {
	f := newFixture(t)
	f.editState(t, func(d *state.Doc) { d.Set(state.KeyClientSecret, "hunter2-secret-value") })
	rep := f.run(t)
	expectVerdicts(t, rep, NameNoPasswords, NameKeyringCert, NameToken)
	r := result(t, rep, NameSecretPurged)
	if !strings.Contains(r.Detail, f.cfg.StatePath) || strings.Contains(r.Detail, "hunter2") {
		t.Errorf("detail %q: want the file named and the value absent", r.Detail)
	}
	var fe *FailedError
	if err := rep.Err(); !errors.As(err, &fe) || fe.ExitCode() != 4 || !slices.Equal(fe.Failed, []string{NameSecretPurged}) {
		t.Errorf("Err() = %v", err)
	}
}

func TestRunPasswordOnApp(t *testing.T) {
	f := newFixture(t)
	keyID, secret, err := f.srv.AddPassword(f.sc.TenantID, f.sc.ClientID, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rep := f.run(t)
	expectVerdicts(t, rep, NameSecretPurged, NameKeyringCert, NameToken)
	r := result(t, rep, NameNoPasswords)
	if !strings.Contains(r.Detail, "1 password credential") || !strings.Contains(r.Detail, keyID) || strings.Contains(r.Detail, secret) {
		t.Errorf("detail %q: want the count and keyId, never the secret", r.Detail)
	}
}

func TestRunKeyringItemRemoved(t *testing.T) {
	f := newFixture(t)
	if err := f.store.DeleteBundle(f.sc.TenantID); err != nil {
		t.Fatal(err)
	}
	rep := f.run(t)
	expectVerdicts(t, rep, NameSecretPurged)
	if r := result(t, rep, NameNoPasswords); !r.CouldNotRun || !strings.HasPrefix(r.Detail, "could not read the app: ") {
		t.Errorf("no-passwords = %+v", r)
	}
	if r := result(t, rep, NameKeyringCert); r.CouldNotRun || !strings.Contains(r.Detail, "no provisioner certificate in the ") {
		t.Errorf("keyring-cert = %+v", r)
	}
	if r := result(t, rep, NameToken); r.CouldNotRun {
		t.Errorf("token = %+v", r)
	}
	var fe *FailedError
	if err := rep.Err(); !errors.As(err, &fe) || !slices.Equal(fe.Failed, []string{NameNoPasswords, NameKeyringCert, NameToken}) {
		t.Errorf("Err() = %v", err)
	}
	if f.srv.TokenRequests() != 0 {
		t.Errorf("%d token requests without a certificate", f.srv.TokenRequests())
	}
}

func TestRunKeyringItemRemovedGraphReadByOperator(t *testing.T) {
	f := newFixture(t)
	// Read Graph as "someone else": the scenario's certificate through its own credential,
	// while the keyring no longer has it.
	cred, err := entra.NewCertificateCredential(f.cfg.Cloud, f.sc.TenantID, f.sc.ClientID, f.sc.Bundle, f.deps.Credential)
	if err != nil {
		t.Fatal(err)
	}
	f.deps.GraphCredential = cred
	if err := f.store.DeleteBundle(f.sc.TenantID); err != nil {
		t.Fatal(err)
	}
	rep := f.run(t)
	expectVerdicts(t, rep, NameSecretPurged, NameNoPasswords)
}

func TestRunThumbprintMismatch(t *testing.T) {
	f := newFixture(t)
	f.editState(t, func(d *state.Doc) { d.Set(state.KeyThumbprint, strings.Repeat("ab", 20)) })
	rep := f.run(t)
	expectVerdicts(t, rep, NameSecretPurged, NameNoPasswords, NameToken)
	if r := result(t, rep, NameKeyringCert); !strings.Contains(r.Detail, "does not match PROVISIONER_CERT_THUMBPRINT "+strings.Repeat("ab", 20)) {
		t.Errorf("detail %q", r.Detail)
	}
	f.editState(t, func(d *state.Doc) { d.Delete(state.KeyThumbprint) })
	if r := result(t, f.run(t), NameKeyringCert); r.OK || !strings.Contains(r.Detail, "has no PROVISIONER_CERT_THUMBPRINT") {
		t.Errorf("without a recorded thumbprint: %+v", r)
	}
}

func TestRunThumbprintCaseInsensitive(t *testing.T) {
	f := newFixture(t)
	f.editState(t, func(d *state.Doc) { d.Set(state.KeyThumbprint, strings.ToUpper(certs.Thumbprint(f.sc.Bundle.Cert))) })
	expectVerdicts(t, f.run(t), DefaultChecks(nil, false)...)
}

func TestRunCertNotOnApp(t *testing.T) {
	f := newFixture(t)
	// Another certificate must stay on the app so that Graph can still be read with it.
	other := generate(t, time.Now())
	if err := f.srv.AddKeyCredential(f.sc.TenantID, f.sc.ClientID, other.Cert, other.Cert.NotBefore, other.Cert.NotAfter); err != nil {
		t.Fatal(err)
	}
	cred, err := entra.NewCertificateCredential(f.cfg.Cloud, f.sc.TenantID, f.sc.ClientID, other, f.deps.Credential)
	if err != nil {
		t.Fatal(err)
	}
	f.deps.GraphCredential = cred
	if err := f.srv.RemoveKeyCredential(f.sc.TenantID, f.sc.ClientID, certs.Thumbprint(f.sc.Bundle.Cert)); err != nil {
		t.Fatal(err)
	}
	rep := f.run(t)
	expectVerdicts(t, rep, NameSecretPurged, NameNoPasswords)
	if r := result(t, rep, NameKeyringCert); !strings.Contains(r.Detail, "is not registered on the app") {
		t.Errorf("keyring-cert detail %q", r.Detail)
	}
	if r := result(t, rep, NameToken); r.CouldNotRun || !strings.Contains(r.Detail, "AADSTS700027") {
		t.Errorf("token = %+v", r)
	}
}

func TestRunTokenMissingRole(t *testing.T) {
	f := newFixture(t)
	if err := f.srv.RevokeGrant(f.sc.TenantID, f.sc.ClientID, "AgentIdUser.ReadWrite.All"); err != nil {
		t.Fatal(err)
	}
	rep := f.run(t)
	expectVerdicts(t, rep, NameSecretPurged, NameNoPasswords, NameKeyringCert)
	if r := result(t, rep, NameToken); r.CouldNotRun || !strings.Contains(r.Detail, "missing 1 of 25 required roles: AgentIdUser.ReadWrite.All") {
		t.Errorf("token = %+v", r)
	}
}

func TestRunExpiredCert(t *testing.T) {
	f := newFixture(t)
	f.installCert(t, generate(t, time.Now().Add(-400*24*time.Hour)))
	rep := f.run(t)
	expectVerdicts(t, rep, NameSecretPurged)
	if r := result(t, rep, NameKeyringCert); !strings.Contains(r.Detail, "expired on") {
		t.Errorf("keyring-cert detail %q", r.Detail)
	}
	if r := result(t, rep, NameToken); !strings.Contains(r.Detail, "expired on") {
		t.Errorf("token detail %q", r.Detail)
	}
	if r := result(t, rep, NameNoPasswords); !r.CouldNotRun || !strings.Contains(r.Detail, "expired") {
		t.Errorf("no-passwords = %+v", r)
	}
}

func TestRunWarnings(t *testing.T) {
	f := newFixture(t)
	// This machine's certificate expires in about 15 days.
	soon := generate(t, time.Now().Add(-350*24*time.Hour))
	f.installCert(t, soon)
	// Another machine's certificate expired long ago.
	old := generate(t, time.Now().Add(-500*24*time.Hour))
	if err := f.srv.AddKeyCredential(f.sc.TenantID, f.sc.ClientID, old.Cert, old.Cert.NotBefore, old.Cert.NotAfter); err != nil {
		t.Fatal(err)
	}
	// A backup from before the migration still holds the secret; a later one does not.
	withSecret := f.cfg.StatePath + ".bak.1700000000"
	if err := os.WriteFile(withSecret, []byte(`{"TENANT_ID": "x", "PROVISIONER_CLIENT_SECRET": "hunter2-secret-value"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.cfg.StatePath+".bak.1700000001", []byte(`{"TENANT_ID": "x"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	rep := f.run(t)
	expectVerdicts(t, rep, DefaultChecks(nil, false)...)
	if len(rep.Warnings) != 3 {
		t.Fatalf("warnings %q, want 3", rep.Warnings)
	}
	all := strings.Join(rep.Warnings, "\n")
	for _, want := range []string{
		"provisioner certificate " + certs.Thumbprint(soon.Cert) + " expires on " + soon.Cert.NotAfter.UTC().Format(time.DateOnly),
		"shred -u " + withSecret,
		"another certificate that expired on " + old.Cert.NotAfter.UTC().Format(time.DateOnly) + ": thumbprint " + certs.Thumbprint(old.Cert),
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "1700000001") || strings.Contains(all, "hunter2") {
		t.Errorf("warnings name the clean backup or the secret:\n%s", all)
	}
	if got := result(t, rep, NameSecretPurged).Warnings; len(got) != 1 {
		t.Errorf("secret-purged warnings %q", got)
	}
	if got := result(t, rep, NameKeyringCert).Warnings; len(got) != 2 {
		t.Errorf("keyring-cert warnings %q", got)
	}

	f.cfg.ExpiresIn = 24 * time.Hour
	if rep := f.run(t); len(rep.Warnings) != 2 {
		t.Errorf("with ExpiresIn 24h: warnings %q, want 2", rep.Warnings)
	}
}

// TestRunTooManyAppKeys: more certificates on the app than MaxAppKeys is a keyring-cert
// warning naming the count and the fix, not a failure; 0 means DefaultMaxAppKeys.
func TestRunTooManyAppKeys(t *testing.T) {
	f := newFixture(t)
	for range 2 { // other machines' valid certificates: 3 on the app with this machine's
		other := generate(t, time.Now())
		if err := f.srv.AddKeyCredential(f.sc.TenantID, f.sc.ClientID, other.Cert, other.Cert.NotBefore, other.Cert.NotAfter); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		max  int
		warn bool
	}{{2, true}, {3, false}, {0, false}} {
		f.cfg.MaxAppKeys = tc.max
		rep := f.run(t)
		expectVerdicts(t, rep, DefaultChecks(nil, false)...)
		all := strings.Join(result(t, rep, NameKeyringCert).Warnings, "\n")
		want := "the app holds 3 certificates (keyCredentials), more than -max-app-keys 2; "
		if got := strings.Contains(all, want) && strings.Contains(all, "`entraclaw-migrate -prune-expired 30d`"); got != tc.warn {
			t.Errorf("MaxAppKeys %d: warned %v, want %v: %q", tc.max, got, tc.warn, all)
		}
		if !tc.warn && len(rep.Warnings) != 0 {
			t.Errorf("MaxAppKeys %d: warnings %q, want none", tc.max, rep.Warnings)
		}
	}
}

func TestRunSelectedChecksOnly(t *testing.T) {
	f := newFixture(t)
	f.cfg.Checks = []string{NameSecretPurged}
	rep := f.run(t)
	if len(rep.Checks) != 1 || rep.Checks[0].Name != NameSecretPurged || !rep.OK {
		t.Fatalf("report %+v", rep)
	}
	if n := f.srv.TokenRequests(); n != 0 {
		t.Errorf("secret-purged alone made %d token requests", n)
	}
	f.cfg.Checks = []string{NameToken, NameNoPasswords}
	rep = f.run(t)
	if len(rep.Checks) != 2 || rep.Checks[0].Name != NameNoPasswords || rep.Checks[1].Name != NameToken {
		t.Errorf("checks run out of order or missing: %+v", rep.Checks)
	}
	f.cfg.Checks = []string{"bogus"}
	if _, err := Run(context.Background(), f.cfg, f.deps); err == nil {
		t.Error("unknown check accepted")
	}
}

func TestRunGraphUnreachable(t *testing.T) {
	f := newFixture(t)
	f.srv.Close()
	rep := f.run(t)
	expectVerdicts(t, rep, NameSecretPurged)
	for _, r := range rep.Checks[1:] {
		if !r.CouldNotRun {
			t.Errorf("%s: want could-not-run, got %+v", r.Name, r)
		}
	}
	var nr *NotRunError
	if err := rep.Err(); !errors.As(err, &nr) || nr.ExitCode() != 1 {
		t.Errorf("Err() = %v", err)
	}
}

func TestParseChecks(t *testing.T) {
	got, err := ParseChecks(" token, secret-purged,token,")
	if err != nil || !slices.Equal(got, []string{NameToken, NameSecretPurged}) {
		t.Errorf("ParseChecks = %v, %v", got, err)
	}
	if got, err := ParseChecks(""); err != nil || got != nil {
		t.Errorf("empty: %v, %v", got, err)
	}
	if _, err := ParseChecks("token,nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown name: %v", err)
	}
}

func TestRequiredRoles(t *testing.T) {
	if got := RequiredRoles(nil); !slices.Equal(got, entra.BaseProvisionerRoles) {
		t.Errorf("RequiredRoles(nil) = %v", got)
	}
	app := []string{"Application"}
	sp := &entra.ServicePrincipal{AppRoles: []entra.AppRole{
		{ID: "1", Value: "Mail.Read", IsEnabled: true, AllowedMemberTypes: app},
		{ID: "2", Value: "AgentIdUser.Read.All", IsEnabled: true, AllowedMemberTypes: app},
		{ID: "3", Value: "AgentIdentityBlueprint.Create", IsEnabled: true, AllowedMemberTypes: app},
		{ID: "4", Value: "User.ReadWrite.All", IsEnabled: true, AllowedMemberTypes: app},
		{ID: "5", Value: "AgentIdentity.Legacy.All", IsEnabled: false, AllowedMemberTypes: app},
		{ID: "6", Value: "AgentIdentity.Delegated", IsEnabled: true, AllowedMemberTypes: []string{"User"}},
		{ID: "7", Value: "AgentIdentityBlueprint.UpdateBranding.All", IsEnabled: true, AllowedMemberTypes: app},
	}}
	base := []string{"Application.ReadWrite.All", "DelegatedPermissionGrant.ReadWrite.All", "LicenseAssignment.ReadWrite.All", "Organization.Read.All", "User.ReadWrite.All"}
	want := append([]string{"AgentIdUser.Read.All", "AgentIdentityBlueprint.Create", "AgentIdentityBlueprint.UpdateBranding.All"}, base...)
	if got := RequiredRoles(sp); !slices.Equal(got, want) {
		t.Errorf("RequiredRoles = %v, want %v", got, want)
	}
	// With the app: only the declared Agent ID roles are required; published, undeclared
	// ones are a warning; disabled and user-only roles are neither.
	declared := &entra.Application{RequiredResourceAccess: []entra.RequiredResourceAccess{{ResourceAppID: entra.GraphAppID,
		ResourceAccess: []entra.ResourceAccess{{ID: "2", Type: "Role"}, {ID: "3", Type: "Role"}, {ID: "5", Type: "Role"}, {ID: "6", Type: "Scope"}}}}}
	got := RoleRule(sp, declared)
	if want := append([]string{"AgentIdUser.Read.All", "AgentIdentityBlueprint.Create"}, base...); !slices.Equal(got.Required, want) {
		t.Errorf("RoleRule.Required = %v, want %v", got.Required, want)
	}
	if !slices.Equal(got.Undeclared, []string{"AgentIdentityBlueprint.UpdateBranding.All"}) {
		t.Errorf("RoleRule.Undeclared = %v", got.Undeclared)
	}
}

// Issue 9 item 4: a role Microsoft publishes after the migration does not make verify
// fail; it is a warning naming the admin command. A disabled or user-only published role
// is not even that.
func TestNewlyPublishedRoleIsAWarning(t *testing.T) {
	f := newFixture(t)
	for _, spec := range []string{"AgentIdentityBlueprint.UpdateBranding.All", "AgentIdentity.Retired.All:disabled", "AgentIdentity.Signin:user"} {
		if _, err := f.srv.PublishRole(spec); err != nil {
			t.Fatal(err)
		}
	}
	rep := f.run(t)
	if !rep.OK {
		t.Fatalf("verify failed after a role was published: %+v", rep.Checks)
	}
	joined := strings.Join(rep.Warnings, "\n")
	if !strings.Contains(joined, "AgentIdentityBlueprint.UpdateBranding.All") || !strings.Contains(joined, "entraclaw-migrate -operator-auth azcli") ||
		strings.Contains(joined, "Retired") || strings.Contains(joined, "Signin") {
		t.Errorf("warnings = %q", rep.Warnings)
	}
	// A declared role that is not granted still fails the check.
	if err := f.srv.RevokeGrant(f.sc.TenantID, f.sc.ClientID, "AgentIdentity.Read.All"); err != nil {
		t.Fatal(err)
	}
	if rep := f.run(t); rep.OK {
		t.Error("verify passed with a declared Agent ID role not granted")
	}
}

func TestWait(t *testing.T) {
	f := newFixture(t)
	var out bytes.Buffer
	f.deps.Stderr = &out
	rep, err := Wait(context.Background(), f.cfg, f.deps, time.Minute, time.Millisecond)
	if err != nil || !rep.OK || out.Len() != 0 {
		t.Fatalf("passing on the first attempt: ok=%v err=%v output %q", rep.OK, err, out.String())
	}

	f.editState(t, func(d *state.Doc) { d.Set(state.KeyClientSecret, "hunter2-secret-value") })
	f.cfg.Checks = []string{NameSecretPurged}
	rep, err = Wait(context.Background(), f.cfg, f.deps, 20*time.Millisecond, time.Millisecond)
	if err != nil || rep.OK {
		t.Fatalf("failing: ok=%v err=%v", rep.OK, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "entraclaw-verify: attempt ") || !strings.Contains(l, "1 of 1 checks failing (secret-purged)") {
			t.Errorf("progress line %q", l)
		}
	}
	if !strings.Contains(lines[len(lines)-1], "giving up") {
		t.Errorf("last line %q does not say it gives up", lines[len(lines)-1])
	}

	// The secret is purged while Wait polls: it ends with a passing report.
	out.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.deps.Stderr = writerFunc(func(p []byte) (int, error) {
		f.editState(t, func(d *state.Doc) { d.Delete(state.KeyClientSecret) })
		return len(p), nil
	})
	rep, err = Wait(ctx, f.cfg, f.deps, time.Minute, time.Millisecond)
	if err != nil || !rep.OK {
		t.Errorf("after the fix: ok=%v err=%v", rep.OK, err)
	}
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// Issue 9 item 5: a throttled token request (AADSTS50196) is "not yet", not a failure, and
// -wait asks less often after it.
func TestThrottledTokenIsNotYet(t *testing.T) {
	f := newFixture(t)
	f.srv.SetTokenLoopLimit(1, time.Hour)
	if rep := f.run(t); !rep.OK {
		t.Fatalf("first run: %+v", rep.Checks)
	}
	rep := f.run(t)
	tok := rep.Checks[len(rep.Checks)-1]
	if tok.Name != NameToken || tok.OK || !tok.CouldNotRun || !tok.Throttled || !strings.Contains(tok.Detail, "not yet") {
		t.Errorf("throttled token check = %+v", tok)
	}
	// Long enough for a loaded machine; it ends as soon as the second back-off is seen.
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.deps.Stderr = writerFunc(func(p []byte) (int, error) {
		out.Write(p)
		if strings.Contains(string(p), "retrying in 40ms") {
			cancel()
		}
		return len(p), nil
	})
	if _, err := Wait(ctx, f.cfg, f.deps, 5*time.Second, 10*time.Millisecond); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "retrying in 20ms") || !strings.Contains(s, "retrying in 40ms") {
		t.Errorf("wait did not back off:\n%s", s)
	}
}
