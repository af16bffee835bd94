package entratest

import (
	"errors"
	"fmt"
	"net"
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
// unix socket (or TCP), no privileges. Point pkg/tpmkey at it with Socket (or ENTRACLAW_TPM).
type SoftwareTPM struct {
	// Socket is the unix socket path, or host:port with StartSoftwareTPMOnTCP.
	Socket string
	dir    string
	cmd    *exec.Cmd
	done   chan struct{}
	ready  func() bool
}

// StartSoftwareTPM starts a swtpm for t (about 30 ms) and stops it when t ends. Without
// swtpm on PATH (apt-get install swtpm swtpm-tools) the test is skipped, except under
// CI=true, where it fails.
func StartSoftwareTPM(t TB) *SoftwareTPM {
	t.Helper()
	return startSoftwareTPM(t, false)
}

// StartSoftwareTPMOnTCP is StartSoftwareTPM listening on 127.0.0.1 (swtpm --server
// type=tcp): Socket is host:port. Windows binaries under Wine can reach it.
func StartSoftwareTPMOnTCP(t TB) *SoftwareTPM {
	t.Helper()
	return startSoftwareTPM(t, true)
}

func startSoftwareTPM(t TB, tcp bool) *SoftwareTPM {
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
	server := []string{"--server", "type=unixio,path=" + s.Socket, "--ctrl", "type=unixio,path=" + s.Socket + ".ctrl"}
	network := "unix"
	if tcp {
		port, err := freePortPair()
		if err != nil {
			os.RemoveAll(dir)
			t.Fatalf("swtpm ports: %v", err)
		}
		s.Socket = fmt.Sprintf("127.0.0.1:%d", port)
		server = []string{"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
			"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1)}
		network = "tcp"
	}
	// Ready when it accepts a connection: its socket file appears (bind) before it listens.
	s.ready = func() bool {
		c, err := net.DialTimeout(network, s.Socket, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	args := append([]string{"socket", "--tpm2", "--tpmstate", "dir=" + dir}, server...)
	s.cmd = exec.Command(bin, append(args,
		"--flags", "not-need-init,startup-clear",
		"--log", "file="+filepath.Join(dir, "log")+",level=1")...)
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
		if s.ready() {
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

// freePortPair finds a port p such that p and p+1 (swtpm's data and control ports) are free.
func freePortPair() (int, error) {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		l.Close()
		if err == nil {
			l2.Close()
			return port, nil
		}
	}
	return 0, errors.New("no two adjacent free ports")
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
