package cli_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVerifyWaitInterrupt: Ctrl-C during `entraclaw-verify -wait` exits 130 at once and
// says what passed, what it was still waiting for, and that nothing was changed.
func TestVerifyWaitInterrupt(t *testing.T) {
	f := startFake(t, "migrated")
	path := filepath.Join(f.Dir, ".entraclaw-state.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("{\n"), []byte("{\n  \"PROVISIONER_CLIENT_SECRET\": \"hunter2-not-a-real-secret\",\n"), 1)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := f.command("entraclaw-verify", "-wait", "1m")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	sc := bufio.NewScanner(errPipe)
	waiting := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		signalled := false
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), "waiting for secret-purged") {
				signalled = true
				close(waiting)
			}
		}
	}()
	select {
	case <-waiting:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("no progress line; stderr:\n%s", stderr.String())
	}
	start := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-done
	_ = cmd.Wait()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s to stop after Ctrl-C", took)
	}
	errs := stderr.String()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d, want 130\n%s", code, errs)
	}
	for _, want := range []string{
		"entraclaw-verify: error: interrupted after ",
		": 3 of 4 checks passed (no-passwords, keyring-cert, token); still waiting for secret-purged\n",
		"entraclaw-verify: hint: verify only reads, so nothing was changed; run `entraclaw-verify -wait 2m` again",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if !strings.Contains(stdout.String(), "FAIL  secret-purged") {
		t.Errorf("stdout lacks the last report:\n%s", stdout.String())
	}
	if strings.Contains(errs+stdout.String(), "hunter2") {
		t.Error("the secret was printed")
	}
}
