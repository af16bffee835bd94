package keystore

import (
	"bytes"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"
)

const (
	testService = "entraclaw-provisioner-cert"
	testTenant  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
)

var allOS = []string{"linux", "darwin", "windows"}

func newTestStore(t *testing.T, goos string, f *fakeBackend, opts ...Option) *Store {
	t.Helper()
	base := []Option{WithBackend(f), WithOS(goos), WithLegacyDir(t.TempDir())}
	return New(testService, append(base, opts...)...)
}

func TestBackendName(t *testing.T) {
	want := map[string]string{
		"linux":   "Secret Service",
		"freebsd": "Secret Service",
		"darwin":  "macOS Keychain",
		"windows": "Windows Credential Manager",
	}
	for goos, name := range want {
		if got := New("", WithOS(goos)).BackendName(); got != name {
			t.Errorf("BackendName on %s = %q, want %q", goos, got, name)
		}
	}
	if got := New("").Service(); got != DefaultService {
		t.Errorf("default service = %q", got)
	}
}

func TestBundleRoundTripPerOS(t *testing.T) {
	bundle := testBundle(t)
	for _, goos := range allOS {
		t.Run(goos, func(t *testing.T) {
			f := newFake(goos)
			s := newTestStore(t, goos, f)
			if err := s.PutBundle(testTenant, bundle); err != nil {
				t.Fatalf("PutBundle: %v", err)
			}
			got, err := s.GetBundle(testTenant)
			if err != nil {
				t.Fatalf("GetBundle: %v", err)
			}
			if !bytes.Equal(got, bundle) {
				t.Fatal("GetBundle differs from what PutBundle stored")
			}
			if has, err := s.HasBundle(testTenant); err != nil || !has {
				t.Errorf("HasBundle = %v, %v", has, err)
			}
			keyItem, _ := f.raw(testService, testTenant)
			_, certItem := f.raw(testService, testTenant+".cert")
			if goos == "windows" {
				if strings.Contains(keyItem, "CERTIFICATE") || !certItem {
					t.Error("windows bundle was not split into <tenant> (key) and <tenant>.cert")
				}
				if order := f.setOrder(); len(order) != 2 || order[0] != testTenant+".cert" || order[1] != testTenant {
					t.Errorf("split write order = %v, want cert item then key item", order)
				}
			} else if certItem {
				t.Errorf("%s bundle was split although it fits", goos)
			}
			if goos == "darwin" && !strings.HasPrefix(keyItem, "go-keyring-base64:") {
				t.Error("darwin fake did not store the go-keyring encoding")
			}
			if err := s.DeleteBundle(testTenant); err != nil {
				t.Fatalf("DeleteBundle: %v", err)
			}
			for _, account := range []string{testTenant, testTenant + ".cert"} {
				if _, ok := f.raw(testService, account); ok {
					t.Errorf("item %s left after DeleteBundle", account)
				}
			}
			if _, err := s.GetBundle(testTenant); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetBundle after delete: %v, want ErrNotFound", err)
			}
			if has, err := s.HasBundle(testTenant); err != nil || has {
				t.Errorf("HasBundle after delete = %v, %v", has, err)
			}
			if err := s.DeleteBundle(testTenant); !errors.Is(err, ErrNotFound) {
				t.Errorf("second DeleteBundle: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestDarwinLimitMatchesGoKeyring(t *testing.T) {
	cases := []struct{ service, account string }{
		{testService, testTenant},
		{"svc with spaces", "o'brien"},
		{"x", ""},
		{"ünïcode", "tenant.cert"},
		{strings.Repeat("s", 300), testTenant},
	}
	for _, tc := range cases {
		s := New(tc.service, WithOS("darwin"))
		limit, limited := s.maxValueLen(tc.account)
		if !limited {
			t.Fatal("darwin has no limit")
		}
		if n := len(macCommand(tc.service, tc.account, strings.Repeat("a", limit))); n > 4095 {
			t.Errorf("%q/%q: a %d-byte value makes a %d-byte command line", tc.service, tc.account, limit, n)
		}
		if n := len(macCommand(tc.service, tc.account, strings.Repeat("a", limit+1))); n <= 4095 {
			t.Errorf("%q/%q: limit %d is too low, %d bytes make only %d", tc.service, tc.account, limit, limit+1, n)
		}
	}
}

func TestDarwinSplitsWhenTheCommandLineIsTooLong(t *testing.T) {
	bundle := testBundle(t)
	service := strings.Repeat("s", 400)
	f := newFake("darwin")
	s := New(service, WithBackend(f), WithOS("darwin"))
	if len(macCommand(service, testTenant, string(bundle))) <= 4095 {
		t.Fatal("test setup: bundle still fits in one command line")
	}
	if err := s.PutBundle(testTenant, bundle); err != nil {
		t.Fatalf("PutBundle: %v", err)
	}
	if _, ok := f.raw(service, testTenant+".cert"); !ok {
		t.Error("no <tenant>.cert item")
	}
	got, err := s.GetBundle(testTenant)
	if err != nil || !bytes.Equal(got, bundle) {
		t.Fatalf("GetBundle = %v; equal=%v", err, bytes.Equal(got, bundle))
	}
}

func TestWholeWriteRemovesStaleCertItem(t *testing.T) {
	bundle := testBundle(t)
	f := newFake("linux")
	splitting := New(testService, WithBackend(f), WithOS("windows"), WithLegacyDir(""))
	if err := splitting.PutBundle(testTenant, bundle); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.raw(testService, testTenant+".cert"); !ok {
		t.Fatal("test setup: no split write")
	}
	whole := New(testService, WithBackend(f), WithOS("linux"))
	if err := whole.PutBundle(testTenant, bundle); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.raw(testService, testTenant+".cert"); ok {
		t.Error("stale <tenant>.cert item survived a whole-bundle write")
	}
	if v, _ := f.raw(testService, testTenant); v != string(bundle) {
		t.Error("whole bundle not stored under <tenant>")
	}
}

func TestSplitWriteKeyFailureKeepsCertFirst(t *testing.T) {
	f := newFake("windows")
	f.errFor = func(op, user string) error {
		if op == "set" && user == testTenant {
			return errors.New("failed to unlock correct collection '/org/freedesktop/secrets/collection/login'")
		}
		return nil
	}
	s := newTestStore(t, "windows", f)
	err := s.PutBundle(testTenant, testBundle(t))
	var unavailable *UnavailableError
	if !errors.As(err, &unavailable) {
		t.Fatalf("err = %v, want *UnavailableError", err)
	}
	if order := f.setOrder(); len(order) != 2 || order[0] != testTenant+".cert" {
		t.Errorf("set order = %v", order)
	}
}

func TestPutBundleTooLarge(t *testing.T) {
	bigKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: bytes.Repeat([]byte{7}, 3000)})
	normal := testBundle(t)
	bundle := append(normal[:bytes.Index(normal, []byte("-----BEGIN PRIVATE KEY"))], bigKey...)
	f := newFake("windows")
	s := newTestStore(t, "windows", f)
	err := s.PutBundle(testTenant, bundle)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	for _, want := range []string{"2560", fmt.Sprint(len(bigKey)), "Windows Credential Manager"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if len(f.setOrder()) != 0 {
		t.Error("something was written although the key cannot fit")
	}

	refusing := newFake("linux")
	refusing.errFor = func(op, _ string) error {
		if op == "set" {
			return keyring.ErrSetDataTooBig
		}
		return nil
	}
	err = newTestStore(t, "linux", refusing).PutBundle(testTenant, testBundle(t))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprint(len(testBundle(t)))) {
		t.Errorf("backend refusal: err = %v, want ErrTooLarge naming the size", err)
	}
}

func TestPutBundleRejectsNonPEMWhenSplitting(t *testing.T) {
	s := newTestStore(t, "windows", newFake("windows"))
	if err := s.PutBundle(testTenant, bytes.Repeat([]byte("x"), 3000)); err == nil || strings.Contains(err.Error(), "xxx") {
		t.Errorf("err = %v", err)
	}
	if err := s.PutBundle("", testBundle(t)); err == nil {
		t.Error("empty tenant accepted")
	}
	if err := s.PutBundle(testTenant, nil); err == nil {
		t.Error("empty bundle accepted")
	}
}

func TestDarwinHexFromOtherPrograms(t *testing.T) {
	bundle := testBundle(t)
	f := newFake("darwin")
	f.putForeign(testService, testTenant, string(bundle))
	if v, _ := f.Get(testService, testTenant); !strings.HasPrefix(v, "2d2d2d2d2d424547494e") {
		t.Fatalf("test setup: fake did not print hex, got %.20q", v)
	}
	s := newTestStore(t, "darwin", f)
	got, err := s.GetBundle(testTenant)
	if err != nil || !bytes.Equal(got, bundle) {
		t.Fatalf("GetBundle = %v, equal=%v", err, bytes.Equal(got, bundle))
	}

	linux := newFake("linux")
	hexBundle := hex.EncodeToString(bundle)
	linux.putForeign(testService, testTenant, hexBundle)
	got, err = newTestStore(t, "linux", linux).GetBundle(testTenant)
	if err != nil || string(got) != hexBundle {
		t.Error("hex decoded outside macOS")
	}
}

func TestDecodeSecurityHex(t *testing.T) {
	begin := hex.EncodeToString([]byte("-----BEGIN X-----\n"))
	cases := map[string]string{
		begin:                     "-----BEGIN X-----\n",
		"616263":                  "616263", // hex, but not PEM
		strings.ToUpper(begin):    strings.ToUpper(begin),
		begin + "0":               begin + "0",
		"":                        "",
		"-----BEGIN CERTIFICATE-": "-----BEGIN CERTIFICATE-",
	}
	for in, want := range cases {
		if got := decodeSecurityHex(in); got != want {
			t.Errorf("decodeSecurityHex(%.30q) = %.30q, want %.30q", in, got, want)
		}
	}
}

func writeLegacyFile(t *testing.T, s *Store, data []byte) string {
	t.Helper()
	path := s.LegacyFile(testTenant)
	if path == "" {
		t.Fatal("no legacy file path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestLegacyWindowsFileMigration(t *testing.T) {
	bundle := testBundle(t)
	crlf := bytes.ReplaceAll(bundle, []byte("\n"), []byte("\r\n"))
	f := newFake("windows")
	s := newTestStore(t, "windows", f)
	path := writeLegacyFile(t, s, crlf)
	if filepath.Base(path) != "provisioner-cert-"+testTenant+".pem" {
		t.Errorf("legacy file name = %s", filepath.Base(path))
	}

	got, err := s.GetBundle(testTenant)
	if err != nil || !bytes.Equal(got, crlf) {
		t.Fatalf("GetBundle from legacy file: %v", err)
	}
	if has, err := s.HasBundle(testTenant); err != nil || !has {
		t.Errorf("HasBundle with legacy file = %v, %v", has, err)
	}

	migrated, err := s.MigrateLegacy(testTenant)
	if err != nil || !migrated {
		t.Fatalf("MigrateLegacy = %v, %v", migrated, err)
	}
	if fileExists(path) {
		t.Error("legacy file kept after a successful migration")
	}
	got, err = s.GetBundle(testTenant)
	if err != nil || !bytes.Equal(got, bundle) {
		t.Fatalf("GetBundle after migration: %v", err)
	}
	if _, ok := f.raw(testService, testTenant+".cert"); !ok {
		t.Error("migration did not write the split items")
	}
	if migrated, err := s.MigrateLegacy(testTenant); err != nil || migrated {
		t.Errorf("second MigrateLegacy = %v, %v; want false, nil", migrated, err)
	}
}

func TestLegacyMigrationKeepsFileOnFailure(t *testing.T) {
	bundle := testBundle(t)
	t.Run("readback differs", func(t *testing.T) {
		f := newFake("windows")
		f.onGet = func(user, v string) string {
			if user == testTenant+".cert" {
				return strings.Replace(v, "M", "N", 1)
			}
			return v
		}
		s := newTestStore(t, "windows", f)
		path := writeLegacyFile(t, s, bundle)
		if migrated, err := s.MigrateLegacy(testTenant); err == nil || migrated {
			t.Fatalf("MigrateLegacy = %v, %v; want an error", migrated, err)
		}
		if !fileExists(path) {
			t.Error("legacy file removed although the readback differed")
		}
	})
	t.Run("write fails", func(t *testing.T) {
		f := newFake("windows")
		f.errFor = func(op, _ string) error {
			if op == "set" {
				return errors.New("A specified logon session does not exist.")
			}
			return nil
		}
		s := newTestStore(t, "windows", f)
		path := writeLegacyFile(t, s, bundle)
		if _, err := s.MigrateLegacy(testTenant); err == nil {
			t.Fatal("no error")
		}
		if !fileExists(path) {
			t.Error("legacy file removed although the write failed")
		}
	})
	t.Run("keyring holds another bundle", func(t *testing.T) {
		f := newFake("windows")
		s := newTestStore(t, "windows", f)
		other := bytes.Replace(bundle, []byte("M"), []byte("N"), 1)
		if err := s.PutBundle(testTenant, other); err != nil {
			t.Fatal(err)
		}
		path := writeLegacyFile(t, s, bundle)
		if migrated, err := s.MigrateLegacy(testTenant); err == nil || migrated {
			t.Fatalf("MigrateLegacy = %v, %v; want an error", migrated, err)
		}
		if !fileExists(path) {
			t.Error("legacy file removed although the keyring holds a different bundle")
		}
	})
	t.Run("keyring holds the same bundle", func(t *testing.T) {
		f := newFake("windows")
		s := newTestStore(t, "windows", f)
		if err := s.PutBundle(testTenant, bundle); err != nil {
			t.Fatal(err)
		}
		path := writeLegacyFile(t, s, bundle)
		if migrated, err := s.MigrateLegacy(testTenant); err != nil || !migrated {
			t.Fatalf("MigrateLegacy = %v, %v", migrated, err)
		}
		if fileExists(path) {
			t.Error("legacy file kept although the keyring already holds it")
		}
	})
}

func TestLegacyFileOnlyOnWindows(t *testing.T) {
	dir := t.TempDir()
	legacy := New(testService, WithOS("windows"), WithLegacyDir(dir))
	path := filepath.Join(dir, "provisioner-cert-"+testTenant+".pem")
	if err := os.WriteFile(path, testBundle(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if legacy.LegacyFile(testTenant) != path {
		t.Errorf("LegacyFile = %q", legacy.LegacyFile(testTenant))
	}
	for _, tenant := range []string{"", "..", "../x", `a\b`} {
		if p := legacy.LegacyFile(tenant); p != "" {
			t.Errorf("LegacyFile(%q) = %q, want none", tenant, p)
		}
	}
	linux := New(testService, WithBackend(newFake("linux")), WithOS("linux"), WithLegacyDir(dir))
	if linux.LegacyFile(testTenant) != "" {
		t.Error("legacy file consulted on linux")
	}
	if _, err := linux.GetBundle(testTenant); !errors.Is(err, ErrNotFound) {
		t.Errorf("linux GetBundle = %v, want ErrNotFound", err)
	}
	if migrated, err := linux.MigrateLegacy(testTenant); err != nil || migrated {
		t.Errorf("linux MigrateLegacy = %v, %v", migrated, err)
	}
}

func TestDeleteBundleRemovesLegacyFile(t *testing.T) {
	s := newTestStore(t, "windows", newFake("windows"))
	path := writeLegacyFile(t, s, testBundle(t))
	if err := s.DeleteBundle(testTenant); err != nil {
		t.Fatalf("DeleteBundle: %v", err)
	}
	if fileExists(path) {
		t.Error("legacy file survived DeleteBundle")
	}
}

func TestDeleteBundlePartial(t *testing.T) {
	f := newFake("linux")
	s := newTestStore(t, "linux", f)
	if err := f.Set(testService, testTenant+".cert", "cert"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBundle(testTenant); err != nil {
		t.Errorf("DeleteBundle with only the cert item: %v", err)
	}
	if _, ok := f.raw(testService, testTenant+".cert"); ok {
		t.Error("cert item left")
	}
}

func TestKeyItemWithoutCertIsReturnedAsIs(t *testing.T) {
	f := newFake("linux")
	key := "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
	f.putForeign(testService, testTenant, key)
	got, err := newTestStore(t, "linux", f).GetBundle(testTenant)
	if err != nil || string(got) != key {
		t.Errorf("GetBundle = %q, %v", got, err)
	}
}

func TestErrorClassification(t *testing.T) {
	serviceUnknown := dbus.Error{
		Name: "org.freedesktop.DBus.Error.ServiceUnknown",
		Body: []any{"The name org.freedesktop.secrets was not provided by any .service files"},
	}
	cases := []struct {
		name      string
		goos      string
		err       error
		wantState string
		wantHint  string
	}{
		{"no secret service", "linux", serviceUnknown, "Secret Service is not reachable", "`entraclaw-migrate -key-store tpm-file`; in CI use workload identity federation"},
		{"no login keyring", "linux", errors.New("failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'"), "Secret Service is locked", "unlock the login keyring"},
		{"locked", "linux", errors.New("failed to unlock correct collection '/org/freedesktop/secrets/collection/login'"), "Secret Service is locked", "`gnome-keyring-daemon --unlock` inside `dbus-run-session`; not a throw-away keyring"},
		{"no dbus-launch", "linux", &exec.Error{Name: "dbus-launch", Err: exec.ErrNotFound}, "Secret Service is not reachable", "systemd user session run gnome-keyring-daemon"},
		{"no session bus", "linux", fmt.Errorf("%w (x)", errNoSessionBus), "Secret Service is not reachable", "systemd user session run gnome-keyring-daemon"},
		{"bus socket gone", "linux", &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: "/run/user/1000/bus", Net: "unix"}, Err: syscall.ENOENT}, "Secret Service is not reachable: dial unix /run/user/1000/bus", "systemd user session run gnome-keyring-daemon"},
		{"unsupported", "plan9", keyring.ErrUnsupportedPlatform, "OS keyring is unavailable", "no keyring for this platform"},
		{"bsd without cgo", "freebsd", keyring.ErrUnsupportedPlatform, "Secret Service is unavailable", "BSD builds need cgo"},
		{"macos", "darwin", errors.New("exit status 36"), "macOS Keychain is unavailable", "security unlock-keychain"},
		{"windows", "windows", syscall.Errno(1312), "Windows Credential Manager is unavailable", "Credential Manager"},
		{"multi-line cause", "linux", errors.New("first\nsecond"), "Secret Service is unavailable: first second", "systemd user session run gnome-keyring-daemon"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(tc.goos)
			f.errFor = func(string, string) error { return tc.err }
			s := newTestStore(t, tc.goos, f)
			checks := map[string]error{}
			_, checks["GetBundle"] = s.GetBundle(testTenant)
			checks["PutBundle"] = s.PutBundle(testTenant, testBundle(t))
			checks["DeleteBundle"] = s.DeleteBundle(testTenant)
			checks["Probe"] = s.Probe()
			_, _, checks["GetCachedToken"] = s.GetCachedToken("k")
			for op, err := range checks {
				var unavailable *UnavailableError
				if !errors.As(err, &unavailable) {
					t.Fatalf("%s: err = %v, want *UnavailableError", op, err)
				}
				if errors.Is(err, ErrNotFound) {
					t.Errorf("%s: unavailable keyring reported as not found", op)
				}
				msg := err.Error()
				if !strings.Contains(msg, tc.wantState) || strings.ContainsAny(msg, "\r\n") {
					t.Errorf("%s: message %q, want one line containing %q", op, msg, tc.wantState)
				}
				if strings.Contains(msg, "PRIVATE KEY") || strings.Contains(msg, "MII") {
					t.Errorf("%s: message shows the value: %q", op, msg)
				}
				if !strings.Contains(unavailable.Hint(), tc.wantHint) {
					t.Errorf("%s: hint %q lacks %q", op, unavailable.Hint(), tc.wantHint)
				}
				// The tests' wrapper throws its keyring away on exit: followed outside tests,
				// it left certificates on the app whose keys no longer existed.
				if strings.Contains(unavailable.Hint(), "with-secret-service") {
					t.Errorf("%s: hint %q suggests the tests' throw-away keyring", op, unavailable.Hint())
				}
			}
		})
	}
}

func TestNotFoundIsNotUnavailable(t *testing.T) {
	s := newTestStore(t, "linux", newFake("linux"))
	_, err := s.GetBundle(testTenant)
	var unavailable *UnavailableError
	if !errors.Is(err, ErrNotFound) || errors.As(err, &unavailable) {
		t.Errorf("err = %v, want only ErrNotFound", err)
	}
}

func TestErrorWithholdsEchoedValue(t *testing.T) {
	f := newFake("linux")
	bundle := testBundle(t)
	f.errFor = func(op, _ string) error {
		if op == "set" {
			return fmt.Errorf("cannot store %q", bundle)
		}
		return nil
	}
	err := newTestStore(t, "linux", f).PutBundle(testTenant, bundle)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(string(bundle), "\n")
	if strings.Contains(err.Error(), lines[1]) {
		t.Errorf("error repeats the value: %.200s", err)
	}
	var unavailable *UnavailableError
	if !errors.As(err, &unavailable) {
		t.Errorf("err = %v, want *UnavailableError", err)
	}
}

func TestTimeout(t *testing.T) {
	f := newFake("linux")
	f.blockAll = make(chan struct{})
	defer close(f.blockAll)
	s := newTestStore(t, "linux", f, WithTimeout(20*time.Millisecond))
	_, err := s.GetBundle(testTenant)
	var unavailable *UnavailableError
	if !errors.As(err, &unavailable) || unavailable.cause() != causeTimedOut {
		t.Fatalf("err = %v, want a timed-out *UnavailableError", err)
	}
	if !strings.Contains(err.Error(), "did not answer") || !strings.Contains(unavailable.Hint(), "prompt") {
		t.Errorf("message %q / hint %q", err, unavailable.Hint())
	}
}

func TestProbe(t *testing.T) {
	f := newFake("linux")
	s := newTestStore(t, "linux", f)
	if err := s.Probe(); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	order := f.setOrder()
	if len(order) != 1 || !strings.HasPrefix(order[0], "entraclaw-probe-") || len(order[0]) <= len("entraclaw-probe-") {
		t.Errorf("probe account = %v", order)
	}
	if _, ok := f.raw(testService, order[0]); ok {
		t.Error("probe item left behind")
	}

	f.onGet = func(_, v string) string { return v + "x" }
	err := s.Probe()
	var unavailable *UnavailableError
	if !errors.As(err, &unavailable) {
		t.Errorf("Probe with a corrupting backend = %v, want *UnavailableError", err)
	}
}

func TestTokenCacheService(t *testing.T) {
	cases := map[string]string{
		DefaultService:    "entraclaw-provisioner-token-cache",
		"my-cert":         "my-token-cache",
		"custom":          "custom-token-cache",
		"entraclaw-certs": "entraclaw-certs-token-cache",
	}
	for in, want := range cases {
		if got := TokenCacheService(in); got != want {
			t.Errorf("TokenCacheService(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTokenCacheRoundTripPerOS(t *testing.T) {
	expires := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	token := "eyJ0eXAiOiJKV1QifQ." + strings.Repeat("a", 1200) + ".sig"
	for _, goos := range allOS {
		t.Run(goos, func(t *testing.T) {
			f := newFake(goos)
			s := New(TokenCacheService(testService), WithBackend(f), WithOS(goos))
			if _, _, err := s.GetCachedToken("k1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("empty cache: %v, want ErrNotFound", err)
			}
			if err := s.PutCachedToken("k1", token, expires); err != nil {
				t.Fatal(err)
			}
			got, exp, err := s.GetCachedToken("k1")
			if err != nil || got != token || !exp.Equal(expires) {
				t.Fatalf("GetCachedToken = %.20q, %v, %v", got, exp, err)
			}
			stored, _ := f.Get("entraclaw-provisioner-token-cache", "k1")
			if !strings.Contains(stored, `"expiresOn":"2026-01-02T03:04:05Z"`) || !strings.Contains(stored, `"accessToken":`) {
				t.Errorf("stored entry %.80q is not the documented JSON", stored)
			}
			if err := s.DeleteCachedToken("k1"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.GetCachedToken("k1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("after delete: %v", err)
			}
			if err := s.DeleteCachedToken("k1"); err != nil {
				t.Errorf("deleting a missing entry: %v", err)
			}
		})
	}
}

func TestTokenCacheGarbageIsAMiss(t *testing.T) {
	for _, garbage := range []string{"not json", `{"accessToken":""}`, `{"accessToken":"t","expiresOn":"yesterday"}`, `[]`} {
		f := newFake("linux")
		f.putForeign("svc-token-cache", "k", garbage)
		s := New("svc-token-cache", WithBackend(f), WithOS("linux"))
		_, _, err := s.GetCachedToken("k")
		var unavailable *UnavailableError
		if !errors.Is(err, ErrNotFound) || errors.As(err, &unavailable) {
			t.Errorf("%q: err = %v, want a miss", garbage, err)
		}
		if err != nil && strings.Contains(err.Error(), garbage) {
			t.Errorf("%q: error repeats the value", garbage)
		}
	}
}

// A token beyond maxTokenParts items of the OS is not cached (4 KB ones are split:
// TestPutCachedTokenSplitsWhatDoesNotFit); Secret Service takes it in one item.
func TestTokenCacheSkipsWhenTooLarge(t *testing.T) {
	huge := strings.Repeat("t", 50<<10)
	for _, goos := range []string{"windows", "darwin"} {
		f := newFake(goos)
		s := New(TokenCacheService(testService), WithBackend(f), WithOS(goos))
		if err := s.PutCachedToken("k", huge, time.Now()); err != nil {
			t.Errorf("%s: PutCachedToken = %v, want a silent skip", goos, err)
		}
		if len(f.setOrder()) != 0 {
			t.Errorf("%s: oversized token written", goos)
		}
	}
	f := newFake("linux")
	s := New(TokenCacheService(testService), WithBackend(f), WithOS("linux"))
	if err := s.PutCachedToken("k", huge, time.Now()); err != nil || len(f.setOrder()) != 1 {
		t.Errorf("linux: PutCachedToken = %v, writes %d", err, len(f.setOrder()))
	}
}

func TestSystemBackendWithoutSessionBus(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("D-Bus session bus check is for linux")
	}
	runDir := fmt.Sprintf("/run/user/%d", os.Getuid())
	if fileExists(runDir+"/bus") || fileExists(runDir+"/dbus-session") {
		t.Skip("this machine has a per-user session bus")
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	err := New("entraclaw-test-nobus").Probe()
	var unavailable *UnavailableError
	if !errors.As(err, &unavailable) || unavailable.cause() != causeNoService {
		t.Fatalf("Probe = %v, want Secret Service not reachable", err)
	}
	if !errors.Is(err, errNoSessionBus) {
		t.Errorf("err = %v, want the session bus check (no dbus-launch)", err)
	}
}
