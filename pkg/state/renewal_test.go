package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRenewalRecordRoundTrip(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	path := filepath.Join(t.TempDir(), ".entraclaw-state.json")
	if r, err := LoadRenewal(path); err != nil || r != nil {
		t.Fatalf("LoadRenewal with no record = %v, %v; want nil, nil", r, err)
	}
	due := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 2; i++ {
		if err := UpdateRenewal(path, func(r *Renewal) {
			r.Outcome, r.Error, r.NextDue = RenewalFailed, "HTTP 503", due
			r.ConsecutiveFailures++
		}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := LoadRenewal(path)
	if err != nil || r == nil {
		t.Fatalf("LoadRenewal = %v, %v", r, err)
	}
	if r.ConsecutiveFailures != 2 || r.Outcome != RenewalFailed || !r.NextDue.Equal(due) {
		t.Errorf("record = %+v; want 2 consecutive failures due %s", r, due)
	}
	dir, _ := UserDir(path)
	assertMode0600(t, filepath.Join(dir, RenewalFile)) // an owner-only ACL on Windows
	if err := os.WriteFile(filepath.Join(dir, RenewalFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRenewal(path); err == nil {
		t.Error("a record that does not parse loaded without an error")
	}
}
