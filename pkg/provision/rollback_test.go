package provision_test

import (
	"bytes"
	"context"
	"errors"
	"os"
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
	// The backup was restored (the old thumbprint line is gone with it), then the secret set.
	want, _ := state.Parse(f.sc.StateJSON)
	want.Set(state.KeyClientSecret, secret)
	if got := f.readState(); !bytes.Equal(got, want.Marshal()) {
		t.Errorf("state file after rollback:\n%s\nwant the backup with the new secret", got)
	}
	if info, err := os.Stat(f.statePath); err != nil || !privateMode(info) {
		t.Errorf("state file mode %v, %v; want 0600", info.Mode(), err)
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
	// The secret works.
	cred, err := entra.NewSecretCredential(f.cloud, f.sc.TenantID, f.sc.ClientID, secret, entra.CredentialOptions{Transport: f.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := entra.FetchToken(context.Background(), cred, f.cloud.GraphScope()); err != nil {
		t.Errorf("the rolled-back secret gets no token: %v", err)
	}
	if sum.RestoredFrom != backups[0] || sum.RerunCommand != "entraclaw-migrate && entraclaw-verify -wait 2m" {
		t.Errorf("summary: %+v", sum)
	}
	for _, line := range []string{"WARNING: ROLLED BACK TO SECRET AUTH", "expires at " + sum.SecretExpires, "entraclaw-migrate && entraclaw-verify -wait 2m"} {
		if !strings.Contains(progress, line) {
			t.Errorf("progress lacks %q:\n%s", line, progress)
		}
	}

	// Back to certificate auth.
	f.mustMigrate(f.config())
	f.assertMigrated(f.sc.ClientID)
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
	// No backup: the state file is kept and a warning says so.
	if sum.RestoredFrom != f.statePath || !strings.Contains(progress, "no backup") {
		t.Errorf("restored from %s:\n%s", sum.RestoredFrom, progress)
	}
}

func TestRollbackRejectsBadBackupBeforeChangingAnything(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	bad := f.statePath + ".bak.1"
	if err := os.WriteFile(bad, []byte("[1, 2]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.rollback(f.rollbackConfig())
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
