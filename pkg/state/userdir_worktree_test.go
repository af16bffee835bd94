package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUserDirInsideTheWorkTreeIsRefused: XDG_STATE_HOME (LOCALAPPDATA, HOME on macOS)
// inside the state file's work tree would put backups holding the secret where
// `git add -A` stages them.
func TestUserDirInsideTheWorkTreeIsRefused(t *testing.T) {
	repo := t.TempDir()
	if err := os.Mkdir(filepath.Join(repo, ".git"), 0o700); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(repo, "services", "provisioner")
	if err := os.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sub, FileName)
	if err := os.WriteFile(path, []byte("{\n  \"PROVISIONER_CLIENT_SECRET\": \"s\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stateHome string
		refused         bool
	}{
		{"in the repository root", filepath.Join(repo, ".state"), true},
		{"next to the state file", filepath.Join(sub, "state"), true},
		{"outside", t.TempDir(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(RootVariable(), tc.stateHome)
			_, err := UserDir(path)
			if got := errors.Is(err, ErrUserDirInWorkTree); got != tc.refused {
				t.Fatalf("UserDir with XDG_STATE_HOME=%s: %v, refused %v, want %v", tc.stateHome, err, got, tc.refused)
			}
			if tc.refused && (!strings.Contains(err.Error(), "set "+RootVariable()) || strings.Contains(err.Error(), "\n")) {
				t.Errorf("error %q does not say what to do in one line", err)
			}
			if _, err := Backup(path, time.Now()); tc.refused && !errors.Is(err, ErrUserDirInWorkTree) {
				t.Errorf("Backup: %v, want it refused", err)
			}
			if entries, _ := os.ReadDir(tc.stateHome); tc.refused && len(entries) > 0 {
				t.Errorf("%s was written to: %v", tc.stateHome, entries)
			}
		})
	}
}
