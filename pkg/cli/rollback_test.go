//go:build linux

package cli_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// openPTY returns the controller and the terminal end of a new pseudo-terminal.
func openPTY(t *testing.T) (controller, terminal *os.File) {
	t.Helper()
	controller, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		skipOutsideCI(t, "no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { controller.Close() })
	if err := unix.IoctlSetPointerInt(int(controller.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		skipOutsideCI(t, "unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(controller.Fd()), unix.TIOCGPTN)
	if err != nil {
		skipOutsideCI(t, "naming the pseudo-terminal: %v", err)
	}
	terminal, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		skipOutsideCI(t, "opening the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { terminal.Close() })
	return controller, terminal
}

// rollbackOnTerminal runs entraclaw-rollback with a terminal as stdin on which answer
// is typed, and returns its stderr and exit code.
func rollbackOnTerminal(t *testing.T, f *fakeEnv, answer string) (string, int) {
	t.Helper()
	controller, terminal := openPTY(t)
	cmd := f.command("entraclaw-rollback")
	cmd.Stdin = terminal
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := controller.WriteString(answer + "\n"); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	return stderr.String(), cmd.ProcessState.ExitCode()
}

func TestRollbackAsksOnATerminal(t *testing.T) {
	f := startFake(t, entratest.ScenarioLegacy)
	if _, stderr, code := f.run(t, "entraclaw-migrate"); code != 0 {
		t.Fatalf("migrate exited %d:\n%s", code, stderr)
	}
	statePath := f.Dir + "/" + state.FileName
	migrated, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}

	// Any answer but "rollback" cancels: exit 1, nothing changed.
	f.Server.ResetCounts()
	stderr, code := rollbackOnTerminal(t, f, "yes")
	if code != 1 || !strings.Contains(stderr, "Type 'rollback' to continue: ") || !strings.Contains(stderr, "rollback cancelled; nothing was changed") {
		t.Errorf("answer yes: exit %d:\n%s", code, stderr)
	}
	if n := f.Server.WriteCalls(); n != 0 {
		t.Errorf("a cancelled rollback made %d Graph writes", n)
	}
	if data, _ := os.ReadFile(statePath); !bytes.Equal(data, migrated) {
		t.Error("a cancelled rollback changed the state file")
	}

	// "rollback" goes ahead.
	stderr, code = rollbackOnTerminal(t, f, "rollback")
	if code != 0 || !strings.Contains(stderr, "entraclaw-rollback: warning: ROLLED BACK TO SECRET AUTH") {
		t.Fatalf("answer rollback: exit %d:\n%s", code, stderr)
	}
	doc, err := state.Load(statePath)
	if err != nil {
		t.Fatal(err)
	}
	secret, ok, _ := doc.String(state.KeyClientSecret)
	if !ok || secret == "" || secret == f.Scenario.ClientSecret {
		t.Fatal("no new secret in the state file")
	}
	if strings.Contains(stderr, secret) {
		t.Fatal("the secret was printed")
	}
	app, _ := f.Server.App(f.Scenario.TenantID, f.Scenario.ClientID)
	if len(app.PasswordCredentials) != 1 {
		t.Errorf("%d passwords on the app, want the rollback's one", len(app.PasswordCredentials))
	}
}

func TestRollbackWithoutTerminalNeedsYes(t *testing.T) {
	f := startFake(t, entratest.ScenarioMigrated)
	// Even the right answer on a pipe is refused: without a terminal only -yes will do.
	cmd := f.command("entraclaw-rollback")
	cmd.Stdin = strings.NewReader("rollback\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), "refusing to roll back without -yes when stdin is not a terminal") {
		t.Errorf("exit %d:\n%s", code, stderr.String())
	}
	if n := f.Server.WriteCalls(); n != 0 {
		t.Errorf("%d Graph writes", n)
	}
}
