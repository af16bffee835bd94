package cli_test

// Secrets never leak: every binary and scenario at -v, success and failure paths, with
// every byte of output and every file left behind scanned for the client secrets, the private
// keys and access tokens.

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// jwtPattern matches an access token (header and claims segments of a JWT).
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.`)

// wrongSecret is written over a rolled-back secret to play a wrong one.
const wrongSecret = "wrong~Secret.Q7x_0000000000000000000000000"

// leakSource is something to scan: one run's stdout or stderr, or a file.
type leakSource struct {
	name string
	data []byte
	// tokenAllowed exempts access tokens (the token binary's stdout; the fake az).
	tokenAllowed bool
	// secretAllowed exempts client secrets (state backups, by design).
	secretAllowed bool
}

// leakScan collects what must never appear and where to look for it.
type leakScan struct {
	secrets map[string]string // value -> what it is
	keyBody map[string]string // 64-character base64 lines of private keys -> which key
	sources []leakSource
	runs    int
}

func newLeakScan() *leakScan {
	return &leakScan{secrets: map[string]string{}, keyBody: map[string]string{}}
}

func (s *leakScan) addSecret(value, what string) {
	if value != "" {
		s.secrets[value] = what
	}
}

// addKeys records the private key of the tenant's keyring item: every full 64-character line
// of its base64 body, as stored and as PKCS#1 and PKCS#8 DER. Any of them in the output is a leak.
func (s *leakScan) addKeys(t *testing.T, f *fakeEnv, tenant string) {
	t.Helper()
	item, err := keystore.New(f.Service).GetBundle(tenant)
	if err != nil {
		t.Fatalf("reading the keyring item: %v", err)
	}
	b, err := certs.ParseBundle(item)
	if err != nil {
		t.Fatal(err)
	}
	what := "private key of " + certs.Thumbprint(b.Cert)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(b.Key)
	if err != nil {
		t.Fatal(err)
	}
	bodies := []string{base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(b.Key)), base64.StdEncoding.EncodeToString(pkcs8)}
	for rest := item; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			bodies = append(bodies, base64.StdEncoding.EncodeToString(block.Bytes))
		}
	}
	for _, body := range bodies {
		for i := 0; i+64 <= len(body); i += 64 {
			s.keyBody[body[i:i+64]] = what
		}
	}
}

// run runs a binary, records its output for the scan and checks its exit code.
func (s *leakScan) run(t *testing.T, f *fakeEnv, tmp string, stdin []byte, want int, name string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	cmd := f.command(name, args...)
	cmd.Env = append(slices.Clone(cmd.Env), "TMPDIR="+tmp)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("running %s: %v", name, err)
	}
	label := jwtPattern.ReplaceAllString(f.Scenario.Name+": "+name+" "+strings.Join(args, " "), "<token>")
	if code := cmd.ProcessState.ExitCode(); code != want {
		t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", label, code, want, out.String(), errb.String())
	}
	s.runs++
	s.sources = append(s.sources,
		leakSource{name: label + " (stdout)", data: out.Bytes(), tokenAllowed: name == binToken},
		leakSource{name: label + " (stderr)", data: errb.Bytes()})
	return out.Bytes(), errb.Bytes()
}

// addFiles records every regular file under dir and checks the modes: state files,
// backups and temporary files 0600 (every file when allPrivate), lock files not world-writable.
func (s *leakScan) addFiles(t *testing.T, dir string, allPrivate bool) (files int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		base, perm := filepath.Base(path), info.Mode().Perm()
		isBackup := strings.HasPrefix(base, state.FileName+".bak.") || strings.HasPrefix(base, "state.json.bak.")
		switch {
		case strings.HasSuffix(base, ".lock"):
			if perm&0o002 != 0 {
				t.Errorf("lock file %s is world-writable (%v)", rel, perm)
			}
		case allPrivate || base == state.FileName || isBackup || strings.Contains(base, ".tmp-") || strings.HasPrefix(base, ".entraclaw-"):
			if perm != 0o600 {
				t.Errorf("%s has mode %v, want 0600", rel, perm)
			}
		}
		s.sources = append(s.sources, leakSource{
			name: path, data: data, secretAllowed: isBackup,
			// bin/az (and az.cmd for Windows) is the fake Azure CLI: it hands out the operator's
			// tokens like `az login` would; azure-identity-token is the fake pod's projected
			// service-account token (an external OIDC token, as the kubelet writes it).
			tokenAllowed: rel == filepath.Join("bin", "az") || rel == filepath.Join("bin", "az.cmd") || rel == "azure-identity-token",
		})
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// scan reports every leak and returns the number of bytes scanned.
func (s *leakScan) scan(t *testing.T) (scanned int) {
	t.Helper()
	for _, src := range s.sources {
		scanned += len(src.data)
		text := string(src.data)
		if !src.secretAllowed {
			for value, what := range s.secrets {
				if strings.Contains(text, value) {
					t.Errorf("LEAK: %s holds %s", src.name, what)
				}
			}
		}
		if strings.Contains(text, "PRIVATE KEY-----") {
			t.Errorf("LEAK: %s holds a PRIVATE KEY PEM block", src.name)
		}
		for line, what := range s.keyBody {
			if strings.Contains(text, line) {
				t.Errorf("LEAK: %s holds the base64 body of the %s", src.name, what)
				break
			}
		}
		if !src.tokenAllowed && jwtPattern.MatchString(text) {
			t.Errorf("LEAK: %s holds an access token (%s…)", src.name, jwtPattern.FindString(text)[:20])
		}
	}
	return scanned
}

// stateSecret reads PROVISIONER_CLIENT_SECRET from the state file and checks its mode.
func stateSecret(t *testing.T, f *fakeEnv) string {
	t.Helper()
	path := filepath.Join(f.Dir, state.FileName)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("the rolled-back state file has mode %v, want 0600", info.Mode().Perm())
	}
	doc, err := state.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := doc.String(state.KeyClientSecret)
	if err != nil || secret == "" {
		t.Fatalf("no PROVISIONER_CLIENT_SECRET in the rolled-back state file (%v)", err)
	}
	return secret
}

// tempEntries lists the names in the system temporary directory.
func tempEntries(t *testing.T) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = true
	}
	return names
}

func TestSecretsNeverLeak(t *testing.T) {
	requireKeyring(t)
	tempBefore := tempEntries(t)
	s := newLeakScan()
	// TMPDIR of every binary: whatever they put in os.TempDir() is scanned.
	tmp := t.TempDir()

	// legacy: migrate, use, roll back, fail, migrate again.
	legacy := startFake(t, "legacy")
	tenant := legacy.Scenario.TenantID
	s.addSecret(legacy.Scenario.ClientSecret, "the legacy client secret")
	s.addSecret(wrongSecret, "the wrong secret written into the rolled-back state file")
	s.run(t, legacy, tmp, nil, 0, binMigrate, "-v")
	s.addKeys(t, legacy, tenant)
	s.run(t, legacy, tmp, nil, 0, binToken, "-v")
	s.run(t, legacy, tmp, nil, 0, binToken, "-v", "-o", "json")
	token, _ := s.run(t, legacy, tmp, nil, 0, binToken, "-v", "-no-cache")
	s.run(t, legacy, tmp, nil, 0, binVerify, "-v")
	s.run(t, legacy, tmp, nil, 0, binVerify, "-v", "-o", "json")
	s.run(t, legacy, tmp, token, 0, binVerify, "-v", "-token", "-")
	s.run(t, legacy, tmp, token, 0, binVerify, "-v", "-decode", "-")
	s.run(t, legacy, tmp, nil, 2, binVerify, "-v", "-token", strings.TrimSpace(string(token)))

	s.run(t, legacy, tmp, nil, 0, binRollback, "-v", "-yes", "-remove-app-cert")
	rolledBack := stateSecret(t, legacy)
	s.addSecret(rolledBack, "the rolled-back client secret")
	// The certificate is off the app: AADSTS700027 for the token, failed checks for verify.
	_, stderr := s.run(t, legacy, tmp, nil, 1, binToken, "-v", "-no-cache")
	if !bytes.Contains(stderr, []byte("AADSTS700027")) {
		t.Errorf("the token after -remove-app-cert did not fail with AADSTS700027:\n%s", stderr)
	}
	s.run(t, legacy, tmp, nil, 4, binVerify, "-v")
	s.run(t, legacy, tmp, nil, 4, binVerify, "-v", "-o", "json")
	// A wrong secret in the rolled-back state file.
	statePath := filepath.Join(legacy.Dir, state.FileName)
	data, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath, bytes.Replace(data, []byte(rolledBack), []byte(wrongSecret), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	s.run(t, legacy, tmp, nil, 1, binToken, "-v", "-no-cache")
	s.run(t, legacy, tmp, nil, 4, binVerify, "-v", "-check", "secret-purged,token")
	s.run(t, legacy, tmp, nil, 0, binMigrate, "-v")
	s.addKeys(t, legacy, tenant)
	s.run(t, legacy, tmp, nil, 0, binVerify, "-v")
	s.run(t, legacy, tmp, nil, 0, binMigrate, "-v", "-o", "json")

	// empty: create everything, roll back purging the certificate, migrate to a new one.
	empty := startFake(t, "empty")
	s.run(t, empty, tmp, nil, 0, binMigrate, "-v")
	s.addKeys(t, empty, empty.Scenario.TenantID)
	s.run(t, empty, tmp, nil, 0, binToken, "-v", "-o", "json")
	s.run(t, empty, tmp, nil, 0, binRollback, "-v", "-yes", "-o", "json", "-purge-cert", "-remove-app-cert")
	s.addSecret(stateSecret(t, empty), "the second rolled-back client secret")
	s.run(t, empty, tmp, nil, 0, binMigrate, "-v", "-o", "json")
	s.addKeys(t, empty, empty.Scenario.TenantID)
	s.run(t, empty, tmp, nil, 0, binVerify, "-v")

	// The scan must see what it is exempting: the token on the token binary's stdout and
	// the legacy secret in the first backup.
	if !jwtPattern.Match(token) {
		t.Fatalf("the token binary printed no JWT: %q", token)
	}
	backups, err := legacy.backups()
	slices.Sort(backups)
	if err != nil || len(backups) == 0 {
		t.Fatalf("no state backups in %s (%v)", legacy.Dir, err)
	}
	if first, err := os.ReadFile(backups[0]); err != nil || !bytes.Contains(first, []byte(legacy.Scenario.ClientSecret)) {
		t.Errorf("the first backup does not hold the legacy secret (%v)", err)
	}

	files := s.addFiles(t, legacy.Dir, false) + s.addFiles(t, empty.Dir, false) + s.addFiles(t, tmp, true) +
		s.addFiles(t, legacy.StateHome, true) + s.addFiles(t, empty.StateHome, true)
	// The binaries' TMPDIR is tmp; anything new in the system temporary directory came from a
	// hard-coded path. Go test, build and Secret Service directories (of this or concurrent
	// test processes) are not theirs.
	for name := range tempEntries(t) {
		if tempBefore[name] || slices.ContainsFunc([]string{"Test", "go-build", "go-test-script", "entraclaw-secret-service.", "dbus-"},
			func(prefix string) bool { return strings.HasPrefix(name, prefix) }) {
			continue
		}
		files += s.addFiles(t, filepath.Join(os.TempDir(), name), false)
	}
	scanned := s.scan(t)
	t.Logf("scanned %d runs (stdout and stderr) and %d files: %d bytes, for %d secrets, %d base64 lines of private keys, PEM markers and JWTs",
		s.runs, files, scanned, len(s.secrets), len(s.keyBody))
}

// TestNoSecretFlags: no binary takes a secret in argv; the one flag named like one takes a duration.
func TestNoSecretFlags(t *testing.T) {
	secretLike := regexp.MustCompile(`(?i)secret|password|passwd|private|credential`)
	for _, name := range []string{binToken, binMigrate, binVerify, binRollback, binFake} {
		cmd := exec.Command(filepath.Join(binDir, name), "-h")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s -h: %v\n%s", name, err, out.String())
		}
		var flags []string
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "  -") {
				continue
			}
			flag := strings.Fields(line)[0]
			flags = append(flags, flag)
			if secretLike.MatchString(flag) && !slices.Contains([]string{"-secret-lifetime", "-max-key-credentials", "-credential"}, flag) { // a lifetime, a count, a kind
				t.Errorf("%s takes %s: secrets must not be passed in argv", name, flag)
			}
		}
		if len(flags) == 0 {
			t.Fatalf("%s -h lists no flags:\n%s", name, out.String())
		}
		t.Logf("%s: %s", name, strings.Join(flags, " "))
	}
}
