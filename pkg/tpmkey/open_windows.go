//go:build windows

package tpmkey

import (
	"errors"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/windowstpm"
)

// defaultDevice is the TPM Base Services, which share the TPM between processes.
// Untested here: CI cannot run TBS (Wine has none).
const defaultDevice = DeviceTBS

func openDevice(string) (transport.TPMCloser, error) {
	return nil, errors.New("device paths are not supported on Windows (the TPM is reached through TBS)")
}

func openTBS() (transport.TPMCloser, error) {
	t, err := windowstpm.Open()
	if err != nil {
		if t != nil {
			_ = t.Close()
		}
		return nil, noTPM("Windows TBS", err, "check that the TPM is on and ready (tpm.msc); or keep the key in the keyring (-key-store keyring)")
	}
	return t, nil
}
