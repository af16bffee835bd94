package state

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const pythonStyle = "{\n  \"TENANT_ID\": \"tenant\",\n  \"BLUEPRINT_APP_ID\": \"bp\",\n  \"AGENT_CONFIG\": {\n    \"a\": [\n      1\n    ]\n  }\n}\n"

// skipSymlinksUnderWine skips a symlink test under Wine 8, where os.Symlink succeeds but the
// link does not resolve (a Wine gap; real Windows resolves it or refuses to create it).
func skipSymlinksUnderWine(t *testing.T) {
	t.Helper()
	if underWine() {
		t.Skip("Wine 8: os.Symlink reports success but the link does not resolve")
	}
}

// assertMode0600 checks the permission bits, or on Windows the owner-only ACL that stands
// in for them.
func assertMode0600(t *testing.T, path string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		assertOwnerOnly(t, path)
		return
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("%s has mode %#o, want 0600", path, mode)
	}
}

// assertNoTempFiles checks that no temporary file is left in dir.
func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestUpdateMissingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)

	called := false
	changed, err := Update(path, false, func(*Doc) error { called = true; return nil })
	if !errors.Is(err, ErrNotFound) || changed || called {
		t.Fatalf("Update(create=false) on a missing file = %v, %v, fn called %v; want ErrNotFound, false, not called", changed, err, called)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Update(create=false) created the file: %v", err)
	}

	changed, err = Update(path, true, func(d *Doc) error {
		if len(d.Keys()) != 0 {
			t.Errorf("new doc has keys %q", d.Keys())
		}
		d.Set(KeyTenantID, "t1")
		d.Set(KeyClientID, "c1")
		return nil
	})
	if err != nil || !changed {
		t.Fatalf("Update(create=true) = %v, %v; want true, nil", changed, err)
	}
	if got, want := readString(t, path), "{\n  \"TENANT_ID\": \"t1\",\n  \"PROVISIONER_CLIENT_ID\": \"c1\"\n}\n"; got != want {
		t.Fatalf("created file = %q, want %q", got, want)
	}
	assertMode0600(t, path)
	assertNoTempFiles(t, dir)
}

func TestUpdateChangesOnlyWhatFnChanges(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, strings.Replace(pythonStyle, "\"tenant\"", "\"tenant\",\n  \"PROVISIONER_CLIENT_SECRET\": \""+fakeSecret+"\"", 1))
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}

	changed, err := Update(path, false, func(d *Doc) error {
		d.Delete(KeyClientSecret)
		return nil
	})
	if err != nil || !changed {
		t.Fatalf("Update = %v, %v; want true, nil", changed, err)
	}
	if got := readString(t, path); got != pythonStyle {
		t.Fatalf("file after deleting the secret = %q, want %q", got, pythonStyle)
	}
	assertMode0600(t, path)
	assertNoTempFiles(t, dir)
}

func TestUpdateWithoutChangeDoesNotWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	writeFile(t, path, pythonStyle)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := Update(path, false, func(d *Doc) error {
		d.Set(KeyTenantID, "tenant") // same value
		return nil
	})
	if err != nil || changed {
		t.Fatalf("Update = %v, %v; want false, nil", changed, err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Fatal("an unchanged Update replaced the file")
	}
}

func TestUpdateFailedFnLeavesFileAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, pythonStyle)
	before, _ := os.Stat(path)
	errBoom := errors.New("boom")
	changed, err := Update(path, false, func(d *Doc) error {
		d.Set(KeyTenantID, "changed")
		d.Delete("BLUEPRINT_APP_ID")
		return errBoom
	})
	if !errors.Is(err, errBoom) || changed {
		t.Fatalf("Update = %v, %v; want false and fn's error", changed, err)
	}
	if got := readString(t, path); got != pythonStyle {
		t.Fatalf("file changed to %q", got)
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Fatal("failed Update replaced the file")
	}
	assertNoTempFiles(t, dir)
}

func TestUpdateCorruptFile(t *testing.T) {
	for _, content := range []string{"", "  \n", "{\"a\": ", "[]", "{\"a\": 1, \"a\": 2}", "{} {}"} {
		dir := t.TempDir()
		path := filepath.Join(dir, FileName)
		writeFile(t, path, content)
		called := false
		changed, err := Update(path, true, func(d *Doc) error { called = true; return nil })
		var formatErr *FormatError
		if !errors.As(err, &formatErr) || formatErr.Path != path || changed || called {
			t.Errorf("Update on %q = %v, %v, fn called %v; want a FormatError naming %s, false, not called", content, changed, err, called, path)
		}
		if got := readString(t, path); got != content {
			t.Errorf("corrupt file %q rewritten to %q", content, got)
		}
		assertNoTempFiles(t, dir)
	}
}

func TestUpdateRefusesToGrowPastLimit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	// Compact, under the limit; re-indented, one element per line, well over it.
	compact := `{"a":[` + strings.Repeat("1,", MaxFileSize/4) + "1]}"
	writeFile(t, path, compact)
	changed, err := Update(path, false, func(*Doc) error { return nil })
	if err == nil || changed || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("Update = %v, %v; want a size-limit error", changed, err)
	}
	if readString(t, path) != compact {
		t.Fatal("file changed")
	}
	assertNoTempFiles(t, dir)
}

func TestUpdateWritesThroughSymlink(t *testing.T) {
	skipSymlinksUnderWine(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "real", "state.json")
	writeFile(t, target, pythonStyle)
	if err := os.Chmod(target, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "project", FileName)
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..", "real", "state.json"), link); err != nil {
		t.Skipf("symlinks unavailable: %v", err)
	}
	if _, err := Update(link, false, func(d *Doc) error { d.Set(KeyThumbprint, "ab"); return nil }); err != nil {
		t.Fatal(err)
	}
	info, err := os.Lstat(link)
	if err != nil || info.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("%s is no longer a symlink (%v)", link, err)
	}
	if got := readString(t, target); !strings.Contains(got, `"PROVISIONER_CERT_THUMBPRINT": "ab"`) {
		t.Fatalf("target not updated: %q", got)
	}
	assertMode0600(t, target)
	assertNoTempFiles(t, filepath.Dir(link))
	assertNoTempFiles(t, filepath.Dir(target))
}

func TestUpdateReadOnlyDirectory(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("directory permission bits do not stop writes on windows")
	}
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	for _, withLockFile := range []bool{false, true} {
		t.Run(fmt.Sprintf("lock file exists %v", withLockFile), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ro")
			path := filepath.Join(dir, FileName)
			writeFile(t, path, pythonStyle)
			if withLockFile {
				lockPath, err := LockPath(path, WriteLock)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, lockPath, "")
			}
			if err := os.Chmod(dir, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o755) })
			_, err := Update(path, false, func(d *Doc) error { d.Set(KeyTenantID, "new"); return nil })
			if err == nil || !strings.Contains(err.Error(), "directory "+dir+" is not writable") {
				t.Fatalf("Update in a read-only directory: %v, want an error naming %s", err, dir)
			}
			if got := readString(t, path); got != pythonStyle {
				t.Fatalf("file changed to %q", got)
			}
			assertNoTempFiles(t, dir)
		})
	}
}

// TestConcurrentUpdates runs two helper processes (this test binary, see
// TestMain) and two goroutines that each add their own keys to one file, one
// Update per key. Without the lock, read-modify-write cycles would lose keys.
func TestConcurrentUpdates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, pythonStyle)
	prefixes := []string{"PROCESS_A", "PROCESS_B", "GOROUTINE_A", "GOROUTINE_B"}

	var helpers []*exec.Cmd
	var helperOutput []*bytes.Buffer
	for _, prefix := range prefixes[:2] {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperPathEnv+"="+path, helperPrefixEnv+"="+prefix)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		helpers = append(helpers, cmd)
		helperOutput = append(helperOutput, &out)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, prefix := range prefixes[2:] {
		wg.Go(func() { errs[i] = addKeys(path, prefix) })
	}
	wg.Wait()
	for i, cmd := range helpers {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %s: %v: %s", prefixes[i], err, helperOutput[i])
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %s: %v", prefixes[2+i], err)
		}
	}

	doc, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := doc.Keys()
	if got, want := len(keys), 3+len(prefixes)*updatesPerWriter; got != want {
		t.Errorf("file has %d keys, want %d", got, want)
	}
	if !slices.Equal(keys[:3], []string{"TENANT_ID", "BLUEPRINT_APP_ID", "AGENT_CONFIG"}) {
		t.Errorf("original keys moved: %q", keys[:3])
	}
	for _, prefix := range prefixes {
		for i := range updatesPerWriter {
			if key := fmt.Sprintf("%s_%d", prefix, i); !doc.Has(key) {
				t.Errorf("key %s lost", key)
			}
		}
	}
	assertMode0600(t, path)
	assertNoTempFiles(t, dir)
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, pythonStyle)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []string{"", "[]", "{\"a\": 1", "{\"a\": 1, \"a\": 1}"} {
		err := WriteFile(path, []byte(bad))
		var formatErr *FormatError
		if !errors.As(err, &formatErr) || formatErr.Path != path {
			t.Errorf("WriteFile(%q) = %v, want a FormatError naming %s", bad, err, path)
		}
		if got := readString(t, path); got != pythonStyle {
			t.Fatalf("WriteFile(%q) changed the file to %q", bad, got)
		}
	}

	// Written verbatim, not re-marshalled.
	restored := "{\"PROVISIONER_CLIENT_SECRET\":\"" + fakeSecret + "\",   \"TENANT_ID\": \"t\"}"
	if err := WriteFile(path, []byte(restored)); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, path); got != restored {
		t.Fatalf("file = %q, want %q", got, restored)
	}
	assertMode0600(t, path)

	fresh := filepath.Join(dir, "new.json")
	if err := WriteFile(fresh, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	assertMode0600(t, fresh)
	assertNoTempFiles(t, dir)
}

func TestWriteFileFailedRenameRemovesTempFile(t *testing.T) {
	dir := t.TempDir()
	// A non-empty directory where the file should be: the rename over it fails.
	path := filepath.Join(dir, FileName)
	writeFile(t, filepath.Join(path, "occupied"), "x")
	if err := WriteFile(path, []byte("{}\n")); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("WriteFile over a directory = %v, want an error naming %s", err, path)
	}
	if info, err := os.Stat(path); err != nil || !info.IsDir() {
		t.Fatalf("directory at %s disturbed: %v", path, err)
	}
	assertNoTempFiles(t, dir)
}

func TestBackup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	content := "{\n  \"PROVISIONER_CLIENT_SECRET\": \"" + fakeSecret + "\"\n}\n"
	writeFile(t, path, content)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)

	var made []string
	for _, suffix := range []string{"", ".1", ".2"} {
		name, err := Backup(path, now)
		if err != nil {
			t.Fatal(err)
		}
		dir, err := UserDir(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, "state.json.bak.1700000000"+suffix); name != want {
			t.Fatalf("Backup = %q, want %q", name, want)
		}
		if got := readString(t, name); got != content {
			t.Fatalf("backup content = %q, want %q", got, content)
		}
		assertMode0600(t, name)
		made = append(made, name)
	}
	if got := readString(t, made[0]); got != content {
		t.Fatal("a later backup overwrote the first")
	}
	if got := readString(t, path); got != content {
		t.Fatal("Backup changed the original")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the state file's directory holds %d entries, want only the state file", len(entries))
	}

	_, err := Backup(filepath.Join(dir, "missing.json"), now)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Backup of a missing file = %v, want ErrNotFound", err)
	}
}

func TestBackups(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, "{}")
	for _, name := range []string{
		".bak.1700000000", ".bak.1700000000.1", ".bak.1700000000.10", ".bak.1700000000.2",
		".bak.1800000000", ".bak.900000000", ".bak.1700000005",
		".bak.", ".bak.abc", ".bak.12.x", ".bak.12.3.4", ".bak.-5", ".lock",
	} {
		writeFile(t, path+name, "{}")
	}
	writeFile(t, filepath.Join(dir, "other.json.bak.1900000000"), "{}")
	if err := os.Mkdir(path+".bak.1950000000", 0o755); err != nil {
		t.Fatal(err)
	}

	made, err := Backup(path, time.Unix(1750000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Backups(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, suffix := range []string{"1800000000", "1750000000", "1700000005", "1700000000.10", "1700000000.2", "1700000000.1", "1700000000", "900000000"} {
		if suffix == "1750000000" {
			want = append(want, made)
			continue
		}
		want = append(want, path+".bak."+suffix)
	}
	for _, b := range got {
		if legacy := IsLegacyBackup(path, b); legacy == (b == made) {
			t.Errorf("IsLegacyBackup(%s) = %v", b, legacy)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Backups =\n%q\nwant\n%q", got, want)
	}

	empty := filepath.Join(t.TempDir(), FileName)
	if got, err := Backups(empty); err != nil || len(got) != 0 {
		t.Fatalf("Backups with none = %q, %v; want none", got, err)
	}
}

func TestBackupThenBackupsFindsIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	writeFile(t, path, "{}")
	older, err := Backup(path, time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	newer, err := Backup(path, time.Unix(200, 0))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Backups(path)
	if err != nil || !slices.Equal(got, []string{newer, older}) {
		t.Fatalf("Backups = %q, %v; want %q", got, err, []string{newer, older})
	}
}

// TestWorkTreeHoldsOnlyTheStateFile: updates, backups and locks leave nothing but
// the state file in its directory; the per-user directory is private.
func TestWorkTreeHoldsOnlyTheStateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if _, err := Update(path, true, func(d *Doc) error { d.Set(KeyTenantID, "t"); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(path, time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != FileName {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %q, want only %s", names, FileName)
	}
	userDir, err := UserDir(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		for _, d := range []string{userDir, filepath.Dir(userDir)} {
			info, err := os.Stat(d)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != 0o700 {
				t.Errorf("%s has mode %#o, want 0700", d, info.Mode().Perm())
			}
		}
	}
	if got := strings.TrimSpace(readString(t, filepath.Join(userDir, "state-file"))); got != mustResolve(t, path) {
		t.Errorf("state-file note = %q, want %q", got, mustResolve(t, path))
	}
}

func mustResolve(t *testing.T, path string) string {
	t.Helper()
	r, err := ResolvedPath(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestUserDirKeyedByResolvedPath: a symlink, a relative path and the target name
// one per-user directory (one lock); another file gets another.
func TestUserDirKeyedByResolvedPath(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need privileges on windows")
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "real", FileName)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, target, "{}")
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	linkedDir := filepath.Join(dir, "linkdir")
	if err := os.Symlink(filepath.Dir(target), linkedDir); err != nil {
		t.Fatal(err)
	}
	want, err := UserDir(target)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, filepath.Join(linkedDir, FileName), filepath.Join(dir, "real", ".", FileName)} {
		if got, err := UserDir(p); err != nil || got != want {
			t.Errorf("UserDir(%s) = %s, %v; want %s", p, got, err, want)
		}
	}
	if other, _ := UserDir(filepath.Join(dir, "other.json")); other == want {
		t.Error("another state file shares the per-user directory")
	}
}
