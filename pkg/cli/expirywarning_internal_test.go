package cli

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

// isolatedStateRoot points the per-user state root at a fresh directory and returns it.
func isolatedStateRoot(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	t.Setenv("XDG_STATE_HOME", base) // Linux, BSD
	t.Setenv("LOCALAPPDATA", base)   // Windows
	t.Setenv("HOME", base)           // macOS
	t.Setenv("GITHUB_ACTIONS", "")
	return base
}

// bundleExpiringIn is a certificate whose NotAfter is now+left.
func bundleExpiringIn(t *testing.T, now time.Time, left time.Duration) *certs.Bundle {
	t.Helper()
	b, err := certs.GenerateWithLifetime(now.Add(left-48*time.Hour), 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWarnExpiryOnceADay: a certificate within 30 days of its expiry is warned about once
// a day per certificate; another certificate has its own stamp; a day later it warns again.
func TestWarnExpiryOnceADay(t *testing.T) {
	isolatedStateRoot(t)
	now := time.Now()
	soon, other := bundleExpiringIn(t, now, 10*24*time.Hour), bundleExpiringIn(t, now, 20*24*time.Hour)
	line := regexp.MustCompile(`^entraclaw-provisioner-token: warning: provisioner certificate [0-9a-f]{40} expires on \d{4}-\d\d-\d\d \(in (9|10) days\); run ` +
		"`entraclaw-migrate -renew` to renew it, and `entraclaw-migrate -schedule install` to have it renewed before it expires\n$")
	steps := []struct {
		b    *certs.Bundle
		at   time.Time
		want bool
	}{
		{soon, now, true},
		{soon, now.Add(time.Minute), false},
		{soon, now.Add(23 * time.Hour), false},
		{other, now.Add(23 * time.Hour), true}, // another certificate: its own stamp
		{soon, now.Add(25 * time.Hour), true},
	}
	for i, s := range steps {
		var stderr bytes.Buffer
		warnExpiry(Stdio{Err: &stderr}, s.b, s.at, false)
		if got := stderr.Len() > 0; got != s.want {
			t.Errorf("step %d: warned = %v, want %v: %q", i, got, s.want, stderr.String())
		}
		if i == 0 && !line.MatchString(stderr.String()) {
			t.Errorf("warning line: %q", stderr.String())
		}
	}
}

// TestWarnExpiryGitHubActions: under GITHUB_ACTIONS=true the line is a ::warning:: workflow
// command (plain text, one line).
func TestWarnExpiryGitHubActions(t *testing.T) {
	isolatedStateRoot(t)
	now := time.Now()
	b := bundleExpiringIn(t, now, 10*24*time.Hour)
	var stderr bytes.Buffer
	warnExpiry(Stdio{Err: &stderr}, b, now, true)
	want := fmt.Sprintf("::warning::entraclaw: certificate %s expires on %s (in %d days); run entraclaw-migrate -renew to renew it, "+
		"and entraclaw-migrate -schedule install to have it renewed before it expires\n",
		certs.Thumbprint(b.Cert), b.Cert.NotAfter.UTC().Format(time.DateOnly), int(b.Cert.NotAfter.Sub(now).Hours()/24))
	if got := stderr.String(); got != want {
		t.Errorf("stderr = %q\nwant     %q", got, want)
	}
}

// TestWarnExpiryFarOff: a certificate far from its expiry warns nothing and creates
// nothing (the cached-token path stays free of file system work).
func TestWarnExpiryFarOff(t *testing.T) {
	base := isolatedStateRoot(t)
	now := time.Now()
	var stderr bytes.Buffer
	warnExpiry(Stdio{Err: &stderr}, bundleExpiringIn(t, now, 200*24*time.Hour), now, false)
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q", stderr.String())
	}
	if entries, err := os.ReadDir(base); err != nil || len(entries) != 0 {
		t.Errorf("the state root holds %v (%v), want nothing", entries, err)
	}
}
