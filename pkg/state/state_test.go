package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Environment of the helper process that TestConcurrentUpdates starts from this test binary.
const (
	helperPathEnv   = "ENTRACLAW_STATE_TEST_HELPER_PATH"
	helperPrefixEnv = "ENTRACLAW_STATE_TEST_HELPER_PREFIX"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(helperPathEnv); path != "" {
		if err := addKeys(path, os.Getenv(helperPrefixEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// Locks and backups go to the per-user state directory: keep this run's out of
	// the real one. Helper processes inherit it, so they share the test's locks.
	stateHome, err := os.MkdirTemp("", "entraclaw-state-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_STATE_HOME", stateHome)
	os.Setenv("LOCALAPPDATA", stateHome)
	code := m.Run()
	os.RemoveAll(stateHome)
	os.Exit(code)
}

// updatesPerWriter is how many keys each concurrent writer adds, one Update each.
const updatesPerWriter = 50

// addKeys adds prefix_0 ... prefix_49 to the state file, one Update per key.
func addKeys(path, prefix string) error {
	for i := range updatesPerWriter {
		key := fmt.Sprintf("%s_%d", prefix, i)
		if _, err := Update(path, true, func(d *Doc) error {
			d.Set(key, "value")
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, FileName), "{}")
	writeFile(t, filepath.Join(root, "a", FileName), "{}")
	// A directory with the state file's name is not a state file.
	if err := os.Mkdir(filepath.Join(root, "a", "b", FileName), 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, explicit, start, want string
	}{
		{"explicit wins", filepath.Join(root, "elsewhere.json"), deep, filepath.Join(root, "elsewhere.json")},
		{"explicit relative kept as given", "state.json", deep, "state.json"},
		{"nearest parent", "", deep, filepath.Join(root, "a", FileName)},
		{"in start dir", "", filepath.Join(root, "a"), filepath.Join(root, "a", FileName)},
		{"grandparent", "", root, filepath.Join(root, FileName)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Find(tt.explicit, tt.start)
			if err != nil || got != tt.want {
				t.Fatalf("Find(%q, %q) = %q, %v; want %q", tt.explicit, tt.start, got, err, tt.want)
			}
		})
	}
}

func TestFindUsesWorkingDirectory(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, FileName), "{}")
	sub := filepath.Join(root, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	got, err := Find("", "")
	if err != nil {
		t.Fatal(err)
	}
	if same, _ := sameFile(got, filepath.Join(root, FileName)); !same {
		t.Fatalf("Find(\"\", \"\") = %q, want %q", got, filepath.Join(root, FileName))
	}
}

func TestFindNotFound(t *testing.T) {
	start := filepath.Join(t.TempDir(), "x", "y")
	if err := os.MkdirAll(start, 0o755); err != nil {
		t.Fatal(err)
	}
	for dir := start; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, FileName)); err == nil {
			t.Skipf("a real %s exists in %s", FileName, dir)
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	_, err := Find("", start)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Find error = %v, want one wrapping ErrNotFound and fs.ErrNotExist", err)
	}
	for _, want := range []string{start, FileName, "-state-file", "ENTRACLAW_STATE_FILE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func sameFile(a, b string) (bool, error) {
	ia, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	ib, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(ia, ib), nil
}
