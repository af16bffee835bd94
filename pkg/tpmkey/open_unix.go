//go:build !windows

package tpmkey

import (
	"errors"
	"runtime"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// defaultDevice is the kernel's TPM resource manager: it flushes what a process left
// loaded when it exits, and lets several processes share the TPM.
var defaultDevice = func() string {
	if runtime.GOOS == "linux" {
		return "/dev/tpmrm0"
	}
	return ""
}()

func openDevice(path string) (transport.TPMCloser, error) { return linuxtpm.Open(path) }

func openTBS() (transport.TPMCloser, error) {
	return nil, noTPM("Windows TBS", errors.New("TBS exists only on Windows"), fixSoftwareTPM)
}
