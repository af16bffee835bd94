//go:build unix

package entra

import (
	"path/filepath"
	"syscall"
	"testing"
)

// fifo makes a named pipe nobody writes to: reading it would wait for ever.
func fifo(t *testing.T, dir string) string {
	p := filepath.Join(dir, "ca.fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
