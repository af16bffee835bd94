package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zalando/go-keyring"

	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// realStateFile writes a "real" state file (tenant, app, secret, a foreign key) outside
// any test working directory and returns its path and bytes.
func realStateFile(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "real-repo", ".entraclaw-state.json")
	data := []byte(`{
  "TENANT_ID": "99999999-9999-4999-8999-999999999999",
  "PROVISIONER_CLIENT_ID": "88888888-8888-4888-8888-888888888888",
  "PROVISIONER_CLIENT_SECRET": "real-secret-do-not-touch",
  "BLUEPRINT_APP_ID": "77777777-7777-4777-8777-777777777777"
}
`)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(realConfigFile(path), []byte(realConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// realConfig is a developer's config file for the real tenant: production keyring service
// and hosts. The fake's env (variables beat the config file) must hide all of it.
const realConfig = `keyring-service ` + keystore.DefaultService + `
authority-host https://login.microsoftonline.com
graph-endpoint https://graph.microsoft.com
cloud public
`

// realConfigFile is where realStateFile puts realConfig: next to the real state file.
func realConfigFile(statePath string) string {
	return filepath.Join(filepath.Dir(statePath), "entraclaw.config")
}

// strayEnv is what a developer's shell might export: a real state file, production
// keyring names, a config file for the real tenant, output and version pins, Azure SDK
// variables.
func strayEnv(statePath string) []string {
	return []string{
		"ENTRACLAW_STATE_FILE=" + statePath,
		"ENTRACLAW_CONFIG=" + realConfigFile(statePath),
		"ENTRACLAW_TENANT_ID=99999999-9999-4999-8999-999999999999",
		"ENTRACLAW_CLIENT_ID=88888888-8888-4888-8888-888888888888",
		"ENTRACLAW_KEYRING_SERVICE=" + keystore.DefaultService,
		"ENTRACLAW_AUTHORITY_HOST=https://login.microsoftonline.com",
		"ENTRACLAW_GRAPH_ENDPOINT=https://graph.microsoft.com",
		"ENTRACLAW_O=json",
		"ENTRACLAW_VERSION=v1.2.0",
		"ENTRACLAW_NO_CACHE=true",
		"AZURE_CLIENT_ID=88888888-8888-4888-8888-888888888888",
		"AZURE_TENANT_ID=99999999-9999-4999-8999-999999999999",
		"AZURE_AUTHORITY_HOST=https://login.microsoftonline.com",
	}
}

// TestStrayEnvironmentFakeWorkdir: with a developer's ENTRACLAW_*/AZURE_* exports in the
// shell, `. D/env` forgets them, so migrate, verify and the token run against the fake and
// its workdir only; the real state file stays byte-identical and nothing is written under
// the production keyring names.
func TestStrayEnvironmentFakeWorkdir(t *testing.T) {
	requireKeyring(t)
	real, before := realStateFile(t)
	dir := t.TempDir()
	service := randomService()
	startFakeCLI(t, "-workdir", dir, "-scenario", "legacy", "-keyring-service", service)
	// the same config file at the default place too ($HOME/.config/entraclaw/config)
	if err := os.MkdirAll(filepath.Join(dir, ".config", "entraclaw"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".config", "entraclaw", "config"), []byte(realConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = keyring.DeleteAll(service)
		_ = keyring.DeleteAll(keystore.TokenCacheService(service))
	})

	sh := exec.Command("bash", "-c", `set -e; . "$1/env"; cd "$1"
entraclaw-migrate 2>migrate.err
entraclaw-verify >verify.out
TOKEN=$(entraclaw-provisioner-token)
printf '%s\n' "$TOKEN"`, "bash", dir)
	sh.Env = append(append(minimalEnv(), "PATH="+binDir+":/usr/bin:/bin", "HOME="+dir), strayEnv(real)...)
	var out, errb bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &errb
	if err := sh.Run(); err != nil {
		migrateErr, _ := os.ReadFile(filepath.Join(dir, "migrate.err"))
		t.Fatalf("migrate/verify/token under a stray environment: %v\n%s\n%s", err, errb.String(), migrateErr)
	}
	if tok := strings.TrimSuffix(out.String(), "\n"); !strings.HasPrefix(tok, "eyJ") || strings.Count(tok, ".") != 2 || strings.Contains(tok, "\n") {
		t.Errorf("TOKEN is not one JWT: %q", out.String())
	}
	if v, _ := os.ReadFile(filepath.Join(dir, "verify.out")); !strings.Contains(string(v), "4/4 checks passed") {
		t.Errorf("verify: %s", v)
	}
	assertUnchanged(t, real, before)
	assertNoProductionItems(t, "99999999-9999-4999-8999-999999999999")
}

// TestStrayEnvironmentHarness: the harness's commands never see the test process's
// ENTRACLAW_*/AZURE_* variables.
func TestStrayEnvironmentHarness(t *testing.T) {
	real, before := realStateFile(t)
	for _, kv := range strayEnv(real) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	f := startFake(t, "legacy")
	if _, errs, code := f.run(t, "entraclaw-migrate"); code != 0 {
		t.Fatalf("migrate: exit %d\n%s", code, errs)
	}
	out, errs, code := f.run(t, "entraclaw-provisioner-token")
	if code != 0 || !strings.HasPrefix(out, "eyJ") || strings.Count(out, "\n") != 1 {
		t.Fatalf("token: exit %d, stdout %q\n%s", code, out, errs)
	}
	assertUnchanged(t, real, before)
	assertNoProductionItems(t, f.Scenario.TenantID)
}

// TestFakeRefusesProductionKeyring: the fake writes under the production service names
// only when -keyring-service says so on the command line, never from the environment.
func TestFakeRefusesProductionKeyring(t *testing.T) {
	for _, env := range []string{"ENTRACLAW_KEYRING_SERVICE", "ENTRACLAW_FAKE_KEYRING_SERVICE"} {
		cmd := exec.Command(filepath.Join(binDir, "entraclaw-fake-entra"), "-workdir", t.TempDir(), "-scenario", "migrated")
		cmd.Env = append(minimalEnv(), "PATH=/usr/bin:/bin", env+"="+keystore.DefaultService)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(errb.String(), "refusing to use the production keyring service") {
			t.Errorf("%s=%s: exit %d (%v), stderr %q; want exit 2 refusing", env, keystore.DefaultService, code, err, errb.String())
		}
	}
}

func assertUnchanged(t *testing.T, path string, before []byte) {
	t.Helper()
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the real state file %s changed (err %v):\n%s", path, err, after)
	}
	backups, _ := filepath.Glob(path + ".*")
	if len(backups) > 0 {
		t.Errorf("files appeared next to the real state file: %v", backups)
	}
}

func assertNoProductionItems(t *testing.T, tenant string) {
	t.Helper()
	if keyringErr != "" {
		return
	}
	if has, err := keystore.New(keystore.DefaultService).HasBundle(tenant); err != nil || has {
		t.Errorf("an item appeared under the production service %s: has=%v err=%v", keystore.DefaultService, has, err)
	}
}
