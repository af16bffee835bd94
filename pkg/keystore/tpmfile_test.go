//go:build unix

package keystore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newFileStore is a Store of TPM-wrapped key files under a fresh private directory; its
// token cache goes to a fake keyring, returned too.
func newFileStore(t *testing.T) (*Store, *fakeBackend, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "entraclaw")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "keys")
	f := newFake("linux")
	return New(testService, WithBackend(f), WithTPMFiles(dir), WithOS("linux")), f, dir
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func TestTPMFilesRoundTrip(t *testing.T) {
	s, keyring, dir := newFileStore(t)
	bundle := tpmBundle(t)
	if got := s.BackendName(); got != NameTPMFiles {
		t.Errorf("BackendName = %q, want %q", got, NameTPMFiles)
	}
	if has, err := s.HasBundle(testTenant); err != nil || has {
		t.Fatalf("HasBundle before any write = %v, %v; want false, nil", has, err)
	}
	for _, account := range []string{testTenant, testTenant + NextAccountSuffix, testTenant + PreviousAccountSuffix} {
		if err := s.PutBundle(account, bundle); err != nil {
			t.Fatalf("PutBundle(%s): %v", account, err)
		}
		path := filepath.Join(dir, testService, account+".pem")
		if s.KeyFile(account) != path {
			t.Errorf("KeyFile(%s) = %q, want %q", account, s.KeyFile(account), path)
		}
		if m := mode(t, path); m != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", path, m)
		}
		got, err := s.GetBundle(account)
		if err != nil || !bytes.Equal(got, bundle) {
			t.Fatalf("GetBundle(%s) = %v; equal=%v", account, err, bytes.Equal(got, bundle))
		}
	}
	for _, d := range []string{dir, filepath.Join(dir, testService)} {
		if m := mode(t, d); m != 0o700 {
			t.Errorf("%s has mode %04o, want 0700", d, m)
		}
	}
	if n := len(keyring.items); n != 0 {
		t.Errorf("the keyring got %d item(s); the certificate items belong in files", n)
	}
	if err := s.DeleteBundle(testTenant + NextAccountSuffix); err != nil {
		t.Fatalf("DeleteBundle: %v", err)
	}
	if _, err := s.GetBundle(testTenant + NextAccountSuffix); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetBundle after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteBundle(testTenant + NextAccountSuffix); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteBundle = %v, want ErrNotFound", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, testService))
	for _, e := range entries {
		if strings.Contains(e.Name(), "tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestTPMFilesRefusePlainKey(t *testing.T) {
	s, _, dir := newFileStore(t)
	plain := testBundle(t) // certificate + PKCS#8 private key
	for name, value := range map[string][]byte{
		"private key":       plain,
		"no TPM key block":  bytes.Split(tpmBundle(t), []byte("-----BEGIN "+tpmKeyBlock))[0],
		"text outside PEM":  append([]byte("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"), tpmBundle(t)...),
		"TPM block and key": append(tpmBundle(t), plain...),
	} {
		t.Run(name, func(t *testing.T) {
			err := s.PutBundle(testTenant, value)
			var fe *FileError
			if !errors.Is(err, ErrPlainKey) || !errors.As(err, &fe) {
				t.Fatalf("PutBundle = %v, want a *FileError wrapping ErrPlainKey", err)
			}
			if strings.Contains(err.Error(), "MII") {
				t.Errorf("the error quotes the value: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, testService, testTenant+".pem")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a file was written: %v", err)
			}
		})
	}
}

func TestTPMFilesRefusePlantedPlainKey(t *testing.T) {
	s, _, dir := newFileStore(t)
	if err := s.PutBundle(testTenant, tpmBundle(t)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, testService, testTenant+".pem")
	if err := os.WriteFile(path, testBundle(t), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetBundle(testTenant)
	var fe *FileError
	if !errors.Is(err, ErrPlainKey) || !errors.As(err, &fe) || !strings.Contains(fe.Hint(), "shred -u "+path) {
		t.Fatalf("GetBundle of a planted plain key = %v, want a refusal whose hint shreds %s", err, path)
	}
}

func TestTPMFilesRefuseWhatOthersCanOpen(t *testing.T) {
	s, _, dir := newFileStore(t)
	if err := s.PutBundle(testTenant, tpmBundle(t)); err != nil {
		t.Fatal(err)
	}
	svcDir := filepath.Join(dir, testService)
	file := filepath.Join(svcDir, testTenant+".pem")
	cases := []struct {
		name, path string
		mode       os.FileMode
		fix        string
	}{
		{"file readable by others", file, 0o644, "chmod 600 " + file},
		{"file writable by the group", file, 0o620, "chmod 600 " + file},
		{"service directory open", svcDir, 0o755, "chmod 700 " + svcDir},
		{"key directory open", dir, 0o711, "chmod 700 " + dir},
		{"state root writable by others", filepath.Dir(dir), 0o777, "chmod 700 " + filepath.Dir(dir)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := mode(t, c.path)
			if err := os.Chmod(c.path, c.mode); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(c.path, before)
			for op, call := range map[string]func() error{
				"get": func() error { _, err := s.GetBundle(testTenant); return err },
				"put": func() error { return s.PutBundle(testTenant, tpmBundle(t)) },
			} {
				err := call()
				var fe *FileError
				if !errors.As(err, &fe) || fe.Path != c.path || fe.Hint() != c.fix {
					t.Errorf("%s = %v, want a *FileError for %s with the fix %q", op, err, c.path, c.fix)
				}
			}
		})
	}
}

func TestTPMFilesRefuseSymlinkAndStrangers(t *testing.T) {
	s, _, dir := newFileStore(t)
	if err := s.PutBundle(testTenant, tpmBundle(t)); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, testService, testTenant+".pem")
	elsewhere := filepath.Join(t.TempDir(), "other.pem")
	if err := os.Rename(file, elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, file); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBundle(testTenant); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("GetBundle through a symlink = %v, want a refusal", err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(elsewhere, file); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() != 0 {
		t.Skip("another user's file needs root to make (chown)")
	}
	if err := os.Chown(file, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetBundle(testTenant)
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "belongs to another user") || fe.Path != file {
		t.Errorf("GetBundle of another user's file = %v, want a refusal naming %s", err, file)
	}
}

func TestTPMFilesTokenCacheStaysInKeyring(t *testing.T) {
	s, keyring, dir := newFileStore(t)
	cache := s.TokenCache()
	if cache.KeyFile(testTenant) != "" || cache.BackendName() == NameTPMFiles {
		t.Errorf("the token cache claims the key files: KeyFile %q, BackendName %q", cache.KeyFile(testTenant), cache.BackendName())
	}
	if err := cache.PutCachedToken("k1", "eyJ.tok.en", time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("PutCachedToken: %v", err)
	}
	if _, ok := keyring.raw(TokenCacheService(testService), "k1"); !ok {
		t.Error("the token was not cached in the keyring")
	}
	if _, err := os.Stat(filepath.Join(dir, TokenCacheService(testService))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the token cache made a directory of key files: %v", err)
	}
}

func TestTPMFilesProbeAndMissingDirectory(t *testing.T) {
	s, _, dir := newFileStore(t)
	if _, err := s.GetBundle(testTenant); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetBundle without a directory = %v, want ErrNotFound", err)
	}
	if err := s.DeleteBundle(testTenant); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteBundle without a directory = %v, want ErrNotFound", err)
	}
	if err := s.Probe(); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, testService))
	if err != nil || len(entries) != 0 {
		t.Errorf("Probe left %d entries (%v)", len(entries), err)
	}
	if m := mode(t, filepath.Join(dir, testService)); m != 0o700 {
		t.Errorf("Probe made the directory %04o, want 0700", m)
	}
}

func TestEscapeNameStaysInItsDirectory(t *testing.T) {
	for _, name := range []string{"../../etc/passwd", "..", ".", "a/b", `a\b`, "", ".hidden", "x\x00y"} {
		got := escapeName(name)
		if strings.ContainsAny(got, `/\`+"\x00") || strings.HasPrefix(got, ".") || got == "" {
			t.Errorf("escapeName(%q) = %q: not one safe path element", name, got)
		}
	}
	if got := escapeName("72f988bf-86f1-41af-91ab-2d7cd011db47.next"); got != "72f988bf-86f1-41af-91ab-2d7cd011db47.next" {
		t.Errorf("a tenant account was changed: %q", got)
	}
}
