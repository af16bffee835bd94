package tpmkey

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestSilentTPMGivesWayToCtrlC: a TPM that accepts the connection and never answers
// held a run for its 2-minute command timeout, ignoring the first Ctrl-C. Every TPM
// call now ends when its context does.
func TestSilentTPMGivesWayToCtrlC(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "silent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // read nothing, answer nothing
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = Check(ctx, "unix:"+sock)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Check on a silent TPM = %v, want the context's error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Check returned after %s, want about 300ms", d)
	}
	// The TPM is usable again by the next caller once the silent one is closed.
	if err := Check(context.Background(), "unix:"+filepath.Join(t.TempDir(), "none")); !errors.Is(err, ErrNoTPM) {
		t.Errorf("next Check = %v, want ErrNoTPM (the lock was released)", err)
	}
}
