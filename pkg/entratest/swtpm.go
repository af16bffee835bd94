package entratest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// TB is the part of testing.TB that StartSoftwareTPM uses.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// SoftwareTPM is a swtpm (TPM 2.0 emulator) of one test: its own state directory, a
// unix socket, no privileges. Point pkg/tpmkey at it with Socket (or ENTRACLAW_TPM).
type SoftwareTPM struct {
	Socket string
	dir    string
	cmd    *exec.Cmd
	done   chan struct{}
}

// StartSoftwareTPM starts a swtpm for t (about 30 ms) and stops it when t ends. Without
// swtpm on PATH (apt-get install swtpm swtpm-tools) the test is skipped, except under
// CI=true, where it fails.
func StartSoftwareTPM(t TB) *SoftwareTPM {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("swtpm is required under CI=true (apt-get install swtpm swtpm-tools): %v", err)
		}
		t.Skipf("swtpm not installed (apt-get install swtpm swtpm-tools): %v", err)
	}
	// Not t.TempDir: a unix socket path must stay under ~100 bytes.
	dir, err := os.MkdirTemp("", "swtpm-")
	if err != nil {
		t.Fatalf("swtpm state dir: %v", err)
	}
	s := &SoftwareTPM{Socket: filepath.Join(dir, "sock"), dir: dir, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "socket", "--tpm2",
		"--tpmstate", "dir="+dir,
		"--server", "type=unixio,path="+s.Socket,
		"--ctrl", "type=unixio,path="+s.Socket+".ctrl",
		"--flags", "not-need-init,startup-clear",
		"--log", "file="+filepath.Join(dir, "log")+",level=1")
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start swtpm: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.Stop(); os.RemoveAll(dir) })
	if err := s.waitReady(5 * time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		t.Fatalf("swtpm: %v; log: %s", err, log)
	}
	return s
}

func (s *SoftwareTPM) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if fi, err := os.Stat(s.Socket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
		select {
		case <-s.done:
			return errors.New("exited before its socket appeared")
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no socket after %s", limit)
		}
	}
}

// Stop kills the swtpm (the TPM is gone: its socket refuses connections) and waits
// for it. Stopping twice is fine.
func (s *SoftwareTPM) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}
