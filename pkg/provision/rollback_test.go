package provision_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/provision"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

func (f *fixture) rollbackConfig() provision.RollbackConfig {
	return provision.RollbackConfig{StatePath: f.statePath, Cloud: f.cloud, KeyringService: testService}
}

func (f *fixture) rollback(cfg provision.RollbackConfig) (*provision.RollbackSummary, string, error) {
	f.t.Helper()
	var progress bytes.Buffer
	cfg.Progress = &progress
	sum, err := provision.Rollback(context.Background(), cfg, f.deps())
	return sum, progress.String(), err
}

func TestRollbackAfterMigrateThenMigrateAgain(t *testing.T) {
	f := newFixture(t, entratest.ScenarioLegacy)
	f.mustMigrate(f.config())
	thumb := certs.Thumbprint(f.keyringCert(f.sc.TenantID).Cert)
	backups, err := state.Backups(f.statePath)
	if err != nil || len(backups) != 1 {
		t.Fatalf("backups %v, %v", backups, err)
	}

	// Another tool writes a key after the migration: the rollback must keep it.
	if _, err := state.Update(f.statePath, false, func(d *state.Doc) error { d.Set("LATER_KEY", "later"); return nil }); err != nil {
		t.Fatal(err)
	}
	before := f.readState()

	start := time.Now()
	sum, progress, err := f.rollback(f.rollbackConfig())
	if err != nil {
		t.Fatalf("Rollback: %v\n%s", err, progress)
	}
	doc, err := state.Load(f.statePath)
	if err != nil {
		t.Fatal(err)
	}
	secret, ok, _ := doc.String(state.KeyClientSecret)
	if !ok || secret == "" || secret == f.sc.ClientSecret {
		t.Fatal("the state file does not hold a new client secret")
	}
	if strings.Contains(progress, secret) {
		t.Fatal("the progress output shows the secret")
	}
	// The current file with the secret added: every key it held stays.
	want, _ := state.Parse(before)
	want.Set(state.KeyClientSecret, secret)
	if got := f.readState(); !bytes.Equal(got, want.Marshal()) {
		t.Errorf("state file after rollback:\n%s\nwant the current file with the new secret", got)
	}
	if info, err := os.Stat(f.statePath); err != nil || !privateMode(info) {
		t.Errorf("state file mode %v, %v; want 0600", info.Mode(), err)
	}
	// The pre-rollback file was backed up first, outside the work tree.
	if sum.Backup == "" || state.IsLegacyBackup(f.statePath, sum.Backup) {
		t.Fatalf("no backup of the pre-rollback file in the per-user directory: %+v", sum)
	}
	if got, _ := os.ReadFile(sum.Backup); !bytes.Equal(got, before) {
		t.Error("the backup does not hold the pre-rollback file")
	}
	app := f.app(f.sc.ClientID)
	if len(app.PasswordCredentials) != 1 {
		t.Fatalf("the app has %d passwords, want 1", len(app.PasswordCredentials))
	}
	pw := app.PasswordCredentials[0]
	if end := pw.EndDateTime.Sub(start); end < 23*time.Hour || end > 25*time.Hour {
		t.Errorf("the secret expires in %s, want about 24h", end)
	}
	if !strings.HasPrefix(pw.DisplayName, "entraclaw rollback ") || pw.KeyID != sum.SecretKeyID {
		t.Errorf("password %+v, summary %+v", pw, sum)
	}
	if len(app.KeyCredentials) != 1 || app.KeyCredentials[0].Thumbprint != thumb || !f.hasKeyringItem(f.sc.TenantID) {
		t.Error("the certificate was touched without -purge-cert / -remove-app-cert")
	}
	f.assertSecretWorks(secret)
	if sum.RestoredFrom != "" || sum.RerunCommand != "entraclaw-migrate && entraclaw-verify -wait 2m" {
		t.Errorf("summary: %+v", sum)
	}
	for _, line := range []string{"warning: ROLLED BACK TO SECRET AUTH", "expires at " + sum.SecretExpires, "entraclaw-migrate && entraclaw-verify -wait 2m"} {
		if !strings.Contains(progress, line) {
			t.Errorf("progress lacks %q:\n%s", line, progress)
		}
	}

	// A second rollback replaces the first one's secret: none is left valid in no file.
	sum2, progress, err := f.rollback(f.rollbackConfig())
	if err != nil {
		t.Fatalf("second Rollback: %v\n%s", err, progress)
	}
	doc, _ = state.Load(f.statePath)
	secret2, _, _ := doc.String(state.KeyClientSecret)
	app = f.app(f.sc.ClientID)
	if len(app.PasswordCredentials) != 1 || app.PasswordCredentials[0].KeyID != sum2.SecretKeyID || sum2.ReplacedSecretKeyID != sum.SecretKeyID {
		t.Fatalf("after a second rollback the app has passwords %+v (summary %+v), want only the new one", app.PasswordCredentials, sum2)
	}
	f.assertSecretWorks(secret2)
	if v, _, _ := doc.String("LATER_KEY"); v != "later" {
		t.Error("the second rollback lost a key")
	}

	// Back to certificate auth.
	f.mustMigrate(f.config())
	f.assertMigrated(f.sc.ClientID)
}

func (f *fixture) assertSecretWorks(secret string) {
	f.t.Helper()
	cred, err := entra.NewSecretCredential(f.cloud, f.sc.TenantID, f.sc.ClientID, secret, entra.CredentialOptions{Transport: f.srv.Client()})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := entra.FetchToken(context.Background(), cred, f.cloud.GraphScope()); err != nil {
		f.t.Errorf("the rolled-back secret gets no token: %v", err)
	}
}

func TestRollbackPurgesCertificate(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	cfg := f.rollbackConfig()
	cfg.PurgeCert, cfg.RemoveAppCert = true, true
	cfg.SecretLifetime = time.Hour
	sum, progress, err := f.rollback(cfg)
	if err != nil {
		t.Fatalf("Rollback: %v\n%s", err, progress)
	}
	if f.hasKeyringItem(f.sc.TenantID) {
		t.Error("-purge-cert left the keyring item")
	}
	app := f.app(f.sc.ClientID)
	if len(app.KeyCredentials) != 0 || len(app.PasswordCredentials) != 1 {
		t.Errorf("app after rollback: %+v", app)
	}
	if !sum.CertPurged || !sum.AppCertRemoved || sum.RemovedThumbprint != certs.Thumbprint(f.sc.Bundle.Cert) {
		t.Errorf("summary: %+v", sum)
	}
	if strings.Contains(string(f.readState()), state.KeyThumbprint) {
		t.Error("the state file still names the purged certificate")
	}
}

// TestRollbackIgnoresPlantedBackups: with the state file corrupt, a backup that a
// planted or foreign file could win (world-readable, another app, next to the file)
// is passed over with a warning; the newest trusted one is restored.
func TestRollbackIgnoresPlantedBackups(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	evil, _ := state.Parse(f.sc.StateJSON)
	evil.Set(state.KeyClientID, "00000000-0000-0000-0000-0000000000ee")
	planted := f.statePath + ".bak.9999999999"
	if err := os.WriteFile(planted, evil.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	corrupt := []byte("{ corrupt")
	if err := os.WriteFile(f.statePath, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	// Only the planted backup: it is not restored, and nothing changes.
	_, progress, err := f.rollback(f.rollbackConfig())
	if err == nil || !strings.Contains(progress, "not restoring "+planted+": mode 0644") {
		t.Fatalf("Rollback with only a planted backup: %v\n%s", err, progress)
	}
	if n := f.srv.WriteCalls(); n != 0 || !bytes.Equal(f.readState(), corrupt) {
		t.Fatalf("%d Graph writes; state file changed: %v", n, !bytes.Equal(f.readState(), corrupt))
	}

	// A 0600 backup of another app next to the file loses to this tool's own backup.
	good := goodPathFor(t, f.statePath)
	if err := os.WriteFile(good, f.sc.StateJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	private := f.statePath + ".bak.9999999998"
	if err := os.WriteFile(private, evil.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, progress, err := f.rollback(f.rollbackConfig())
	if err != nil {
		t.Fatalf("Rollback: %v\n%s", err, progress)
	}
	if sum.RestoredFrom != good || sum.ClientID != f.sc.ClientID {
		t.Fatalf("restored from %s for client %s, want %s for %s:\n%s", sum.RestoredFrom, sum.ClientID, good, f.sc.ClientID, progress)
	}
	// The corrupt file was kept as a backup: nothing is lost.
	if got, _ := os.ReadFile(sum.Backup); !bytes.Equal(got, corrupt) {
		t.Error("the corrupt pre-rollback file was not backed up")
	}
	doc, err := state.Load(f.statePath)
	if err != nil {
		t.Fatal(err)
	}
	if client, _, _ := doc.String(state.KeyClientID); client != f.sc.ClientID {
		t.Errorf("restored client %s", client)
	}
}

// goodPathFor is where state.Backup puts a backup of statePath made at unix 1700000000.
func goodPathFor(t *testing.T, statePath string) string {
	dir, err := state.EnsureUserDir(statePath)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "state.json.bak.1700000000")
}

func TestRollbackRejectsBadBackupBeforeChangingAnything(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	bad := f.statePath + ".bak.1"
	if err := os.WriteFile(bad, []byte("[1, 2]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := f.rollbackConfig()
	cfg.Backup = bad
	_, _, err := f.rollback(cfg)
	if !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("error %v, want one naming %s", err, bad)
	}
	if n := f.srv.WriteCalls(); n != 0 {
		t.Errorf("%d Graph writes", n)
	}
	if !bytes.Equal(f.readState(), f.sc.StateJSON) {
		t.Error("the state file changed")
	}
}

// TestRollbackLostAnswerLeavesNoSecret: Graph applies addPassword but the answer is lost
// (504). The secret's text never arrived, so it would stay valid in no file: rollback
// removes it, changes nothing else, and a re-run succeeds with one secret.
func TestRollbackLostAnswerLeavesNoSecret(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	f.srv.FailAfterNext(entratest.RouteAddPassword, entratest.Failure{Status: 504, Code: "GatewayTimeout"})
	_, progress, err := f.rollback(f.rollbackConfig())
	if err == nil {
		t.Fatalf("Rollback succeeded despite the lost answer:\n%s", progress)
	}
	if n := len(f.app(f.sc.ClientID).PasswordCredentials); n != 0 {
		t.Fatalf("%d secrets left on the app after a lost addPassword answer, want 0:\n%s", n, progress)
	}
	if strings.Contains(string(f.readState()), state.KeyClientSecret) {
		t.Fatal("the state file holds a secret")
	}
	if _, progress, err := f.rollback(f.rollbackConfig()); err != nil {
		t.Fatalf("re-run: %v\n%s", err, progress)
	}
	if n := len(f.app(f.sc.ClientID).PasswordCredentials); n != 1 {
		t.Errorf("%d secrets after the re-run, want 1", n)
	}
}
