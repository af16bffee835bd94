package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
)

// The first signal cancels the run; the second exits at once, whatever the run waits for.
func TestHandleSignals(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	canceled, exited := make(chan struct{}), make(chan struct{})
	go handleSignals(sigs, func() { close(canceled) }, func() { close(exited) })
	sigs <- os.Interrupt
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the first signal did not cancel the run")
	}
	select {
	case <-exited:
		t.Fatal("the first signal already exited")
	case <-time.After(50 * time.Millisecond):
	}
	sigs <- syscall.SIGTERM
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the second signal did not exit")
	}
}

func TestHostWarning(t *testing.T) {
	for _, tc := range []struct{ cloud, auth, graph, want string }{
		{"public", "", "", ""},
		{"usgov", "", "", ""},
		{"china", "", "", ""},
		{"public", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us", ""},
		{"public", "https://sts.evil.example/", "", "-authority-host sts.evil.example is not a Microsoft cloud host: the certificate-signed client assertion goes to sts.evil.example"},
		{"public", "", "https://127.0.0.1:4443", "-graph-endpoint 127.0.0.1:4443 is not a Microsoft cloud host"},
		{"public", "https://127.0.0.1:4443", "https://127.0.0.1:4443", "-authority-host 127.0.0.1:4443 and -graph-endpoint 127.0.0.1:4443 are not Microsoft cloud hosts: the certificate-signed client assertion goes to 127.0.0.1:4443"},
	} {
		c, err := entra.ResolveCloud(tc.cloud, tc.auth, tc.graph)
		if err != nil {
			t.Fatal(err)
		}
		got := hostWarning(c)
		if tc.want == "" && got != "" || tc.want != "" && !strings.HasPrefix(got, tc.want) || strings.Contains(got, "\n") {
			t.Errorf("%s %q %q: %q, want %q", tc.cloud, tc.auth, tc.graph, got, tc.want)
		}
	}
}

// TestProductionTimings: the commands users run pause as documented: verify -wait polls
// every 3 s, and the token and Graph clients keep azcore's retry backoff (Resolve hands
// retryDelay to the cloud they are built for). Only the end-to-end tests' commands shorten
// them (export_test.go's UseTestTimings, called in those child processes only).
func TestProductionTimings(t *testing.T) {
	if verifyWaitInterval != 3*time.Second {
		t.Errorf("verify -wait polls every %s, want 3s", verifyWaitInterval)
	}
	if retryDelay != 0 {
		t.Errorf("retry backoff base %s, want 0 (azcore's default, 800 ms doubling)", retryDelay)
	}
	resolve := func() time.Duration {
		t.Helper()
		c := &Common{StateFile: filepath.Join(t.TempDir(), "state.json"), KeyringService: "entraclaw-test-timings"}
		env, err := c.Resolve(StateOptional)
		if err != nil {
			t.Fatal(err)
		}
		return env.Cloud.RetryDelay
	}
	if got := resolve(); got != 0 {
		t.Errorf("the resolved cloud's retry delay is %s, want 0", got)
	}
	defer func(d time.Duration) { retryDelay = d }(retryDelay)
	retryDelay = 7 * time.Millisecond
	if got := resolve(); got != retryDelay {
		t.Errorf("the resolved cloud's retry delay is %s, want retryDelay (%s)", got, retryDelay)
	}
}
