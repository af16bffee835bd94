package provision_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/provision"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
	"github.com/entraclaw/entraclaw-cli/pkg/tpmkey"
)

// useKeyFiles points the fixture's store at TPM-wrapped key files (the token cache stays
// in its in-memory keyring) and returns their directory.
func (f *fixture) useKeyFiles() string {
	dir := filepath.Join(f.dir, "keys")
	f.store = keystore.New(testService, keystore.WithBackend(f.backend), keystore.WithTPMFiles(dir), keystore.WithOS("linux"))
	return filepath.Join(dir, testService)
}

func stateValue(t *testing.T, doc *state.Doc, key string) string {
	t.Helper()
	v, _, err := doc.String(key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMigrateTPMFileRecordsTheStoreAndRotatesInIt(t *testing.T) {
	f := newFixture(t, entratest.ScenarioLegacy)
	t.Setenv(tpmkey.EnvTPM, entratest.StartSoftwareTPM(t).Socket)
	keyDir := f.useKeyFiles()
	cfg := f.config()
	cfg.KeyStore = provision.KeyStoreTPMFile
	sum, progress := f.mustMigrate(cfg)
	f.assertMigrated(f.sc.ClientID)
	file := filepath.Join(keyDir, f.sc.TenantID+".pem")
	if got := stateValue(t, f.state(), state.KeyKeyStore); got != "tpm-file" || sum.PrivateKey != "tpm-file" {
		t.Errorf("recorded store %q, summary %q; want tpm-file", got, sum.PrivateKey)
	}
	if !strings.Contains(progress, "Cert stored in TPM-wrapped key file "+file+"; its private key stays in the TPM.") {
		t.Errorf("progress does not name the key file:\n%s", progress)
	}
	data, err := os.ReadFile(file)
	if err != nil || !tpmkey.IsTPMBundle(data) || strings.Contains(string(data), "PRIVATE KEY") {
		t.Fatalf("key file %s: %v; TPM bundle %v", file, err, tpmkey.IsTPMBundle(data))
	}
	if has, _ := keystore.New(testService, keystore.WithBackend(f.backend)).HasBundle(f.sc.TenantID); has {
		t.Error("the certificate went to the keyring as well")
	}
	first := certs.Thumbprint(f.keyringCert(f.sc.TenantID).Cert)

	// A rotation stays in the files, make-before-break, without -key-store.
	sum, _ = f.mustMigrate(provision.Config{StatePath: f.statePath, Cloud: f.cloud, KeyringService: testService, Rotate: true, PropagationTimeout: cfg.PropagationTimeout, ReplicationWait: cfg.ReplicationWait})
	if !sum.Rotated || sum.Thumbprint == first || !f.keyringCert(f.sc.TenantID).TPMBound() {
		t.Errorf("rotation: rotated %v, thumbprint %s (was %s)", sum.Rotated, sum.Thumbprint, first)
	}
	for _, suffix := range []string{provision.NextAccountSuffix, provision.PreviousAccountSuffix} {
		if _, err := os.Stat(filepath.Join(keyDir, f.sc.TenantID+suffix+".pem")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s file left after the rotation: %v", suffix, err)
		}
	}

	// -purge-cert deletes the files and the store's record.
	rc := f.rollbackConfig()
	rc.PurgeCert = true
	if _, progress, err := f.rollback(rc); err != nil {
		t.Fatalf("Rollback: %v\n%s", err, progress)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file left after -purge-cert: %v", err)
	}
	if doc := f.state(); doc.Has(state.KeyKeyStore) || doc.Has(state.KeyThumbprint) {
		t.Errorf("-purge-cert left %s or %s in the state file", state.KeyKeyStore, state.KeyThumbprint)
	}
}

func TestMigrateRefusesToMoveARecordedCertificateBetweenKeyringAndFiles(t *testing.T) {
	for _, c := range []struct {
		name, recorded, asked string
	}{
		{"keyring to tpm-file", "", provision.KeyStoreTPMFile},
		{"tpm to tpm-file", "tpm", provision.KeyStoreTPMFile},
		{"tpm-file to keyring", "tpm-file", provision.KeyStoreKeyring},
		{"tpm-file to tpm", "tpm-file", provision.KeyStoreTPM},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, entratest.ScenarioMigrated)
			if c.recorded != "" {
				if _, err := state.Update(f.statePath, false, func(d *state.Doc) error { d.Set(state.KeyKeyStore, c.recorded); return nil }); err != nil {
					t.Fatal(err)
				}
			}
			if c.asked == provision.KeyStoreTPMFile {
				f.useKeyFiles()
			}
			before := f.readState()
			cfg := f.config()
			cfg.KeyStore = c.asked
			_, progress, err := f.migrate(cfg)
			var perr *provision.Error
			if !errors.As(err, &perr) || perr.ExitCode() != 2 || !strings.Contains(err.Error(), "cannot be make-before-break; nothing was changed") {
				t.Fatalf("Migrate = %v, want the exit-2 refusal\n%s", err, progress)
			}
			if want := "run `entraclaw-rollback -purge-cert` (back to a client secret, this machine's certificate deleted), then `entraclaw-migrate -key-store " + c.asked + "`"; perr.Hint() != want {
				t.Errorf("hint %q, want %q", perr.Hint(), want)
			}
			if string(f.readState()) != string(before) || f.srv.WriteCalls() != 0 {
				t.Errorf("a refused run changed something: state changed %v, %d Graph write(s)", string(f.readState()) != string(before), f.srv.WriteCalls())
			}
		})
	}
}

// noSecretService is a keyring with no Secret Service behind it, as go-keyring reports it.
type noSecretService struct{}

var errNoSecrets = errors.New("The name org.freedesktop.secrets was not provided by any .service files")

func (noSecretService) Get(string, string) (string, error) { return "", errNoSecrets }
func (noSecretService) Set(string, string, string) error   { return errNoSecrets }
func (noSecretService) Delete(string, string) error        { return errNoSecrets }

func TestFirstMigrateWithoutSecretServiceSuggestsTheOptions(t *testing.T) {
	socket := entratest.StartSoftwareTPM(t).Socket
	for _, c := range []struct {
		name, tpm, want string
	}{
		{"with a TPM", socket, "this machine has a usable TPM: `entraclaw-migrate -key-store tpm-file`"},
		{"without a TPM", filepath.Join(t.TempDir(), "no-tpm"), "there is no Secret Service and no usable TPM here; either use a machine with a TPM (`entraclaw-migrate -key-store tpm-file`, no Secret Service needed), or start a Secret Service in your systemd user session"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, entratest.ScenarioLegacy)
			t.Setenv(tpmkey.EnvTPM, c.tpm)
			f.store = keystore.New(testService, keystore.WithBackend(noSecretService{}), keystore.WithOS("linux"))
			_, _, err := f.migrate(f.config())
			var perr *provision.Error
			if !errors.As(err, &perr) || !strings.Contains(err.Error(), "Secret Service is not reachable") {
				t.Fatalf("Migrate = %v, want the keyring preflight's failure", err)
			}
			if !strings.HasPrefix(perr.Hint(), c.want) || strings.Contains(perr.Hint(), "with-secret-service") {
				t.Errorf("hint %q, want it to start with %q", perr.Hint(), c.want)
			}
			if f.srv.WriteCalls() != 0 {
				t.Error("the failed preflight wrote to the app")
			}
		})
	}

	// A machine whose certificate is recorded in the keyring is told to start that keyring
	// first: its store is never switched, and moving it is a purge and a new migration.
	f := newFixture(t, entratest.ScenarioMigrated)
	t.Setenv(tpmkey.EnvTPM, socket)
	f.store = keystore.New(testService, keystore.WithBackend(noSecretService{}), keystore.WithOS("linux"))
	_, _, err := f.migrate(f.config())
	var perr *provision.Error
	if !errors.As(err, &perr) || !strings.HasPrefix(perr.Hint(), "this machine's certificate is recorded in the keyring: start its Secret Service") ||
		!strings.Contains(perr.Hint(), "`entraclaw-rollback -purge-cert`, then `entraclaw-migrate -key-store tpm-file`") {
		t.Errorf("Migrate of a recorded keyring machine = %v, hint %q: want the keyring first, and a move only as purge then migrate", err, perr.Hint())
	}
}
