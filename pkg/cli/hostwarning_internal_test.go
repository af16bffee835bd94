package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWarnOnceADay: once a day per stamp (here a pair of hosts); a stamp older than a
// day, or dated in the future, warns again; a stamp that cannot be written means warning
// every time.
func TestWarnOnceADay(t *testing.T) {
	base := t.TempDir()
	t.Setenv("XDG_STATE_HOME", base) // Linux, BSD
	t.Setenv("LOCALAPPDATA", base)   // Windows
	t.Setenv("HOME", base)           // macOS
	root, err := userStateDir()
	if err != nil {
		t.Fatal(err)
	}
	const a, b = "https://127.0.0.1:1/ https://127.0.0.1:1", "https://127.0.0.1:2/ https://127.0.0.1:2"
	now := time.Now()
	steps := []struct {
		key  string
		at   time.Time
		want bool
	}{
		{a, now, true},
		{a, now.Add(time.Minute), false},
		{b, now.Add(time.Minute), true}, // other hosts: their own stamp
		{a, now.Add(23 * time.Hour), false},
		{a, now.Add(25 * time.Hour), true}, // a day later: again, and stamped anew
		{a, now.Add(26 * time.Hour), false},
		{a, now.Add(-time.Hour), true}, // a clock set back: the stamp is in the future
	}
	for i, s := range steps {
		if got := warnOnceADay(hostWarningStamp(s.key), s.at); got != s.want {
			t.Errorf("step %d: due = %v, want %v", i, got, s.want)
		}
	}
	fi, err := os.Stat(filepath.Join(root, hostWarningStamp(a)))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 0 || (os.PathSeparator == '/' && fi.Mode().Perm() != 0o600) {
		t.Errorf("stamp: %d bytes, mode %v; want empty, 0600", fi.Size(), fi.Mode().Perm())
	}

	// A stamp that cannot be written: warn every time.
	if err := os.Remove(filepath.Join(root, hostWarningStamp(a))); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, hostWarningStamp(a)), 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if !warnOnceADay(hostWarningStamp(a), now) {
			t.Errorf("unwritable stamp, run %d: not due", i+1)
		}
	}
	// No per-user state directory at all: warn every time.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_STATE_HOME", file)
	t.Setenv("LOCALAPPDATA", file)
	t.Setenv("HOME", file)
	for i := range 2 {
		if !warnOnceADay(hostWarningStamp(b), now) {
			t.Errorf("no state directory, run %d: not due", i+1)
		}
	}
}
