package tpmkey

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/google/go-tpm/tpm2"
)

// Error is a TPM failure on one line: what failed, on which TPM, why, and the fix.
// It never holds key material (there is none to hold).
type Error struct {
	Op     string // "no usable TPM", "cannot sign with the TPM", ...
	Device string // the TPM as the user knows it: /dev/tpmrm0, Windows TBS, a swtpm socket
	Err    error
	Fix    string
}

func (e *Error) Error() string {
	msg := e.Op
	if e.Device != "" {
		msg += " (" + e.Device + ")"
	}
	if e.Err != nil {
		msg += ": " + oneLine(e.Err.Error())
	}
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ErrNoTPM is matched (errors.Is) by every error that says there is no usable TPM.
var ErrNoTPM = errors.New("no usable TPM")

// ErrForeignKey is matched by the error of a key this TPM cannot load: it was made by
// another TPM (a copied keyring item), or this TPM was cleared since.
var ErrForeignKey = errors.New("key not made by this TPM")

// Is makes errors.Is(err, ErrNoTPM) and errors.Is(err, ErrForeignKey) work.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNoTPM:
		return strings.HasPrefix(e.Op, "no usable TPM")
	case ErrForeignKey:
		return strings.HasPrefix(e.Op, "this TPM cannot load the key")
	}
	return false
}

const (
	fixSoftwareTPM = "for a software TPM set " + EnvTPM + " to a swtpm socket or host:port; or keep the key in the keyring (-key-store keyring)"
	fixRotate      = "create a new key on this machine with `entraclaw-migrate -rotate`"
)

// noTPM is the error of a TPM that cannot be opened.
func noTPM(device string, err error, fix string) error {
	return &Error{Op: "no usable TPM", Device: device, Err: err, Fix: fix}
}

// openError explains why the TPM at device could not be opened.
func openError(device string, err error) error {
	switch {
	case errors.Is(err, os.ErrPermission):
		return noTPM(device, errors.New("permission denied"),
			"add your user to the group that owns it (usually tss: `sudo usermod -aG tss $USER`, then log in again)")
	case errors.Is(err, os.ErrNotExist):
		return noTPM(device, errors.New("it does not exist (no TPM 2.0, or it is off in the firmware setup)"),
			"turn the TPM on in the firmware setup; "+fixSoftwareTPM)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
		return noTPM(device, errors.New("nothing is listening there"),
			"start the software TPM, or unset "+EnvTPM+" to use this machine's TPM")
	}
	return noTPM(device, err, fixSoftwareTPM)
}

// fail explains a TPM command that failed while trying to <what> the TPM.
func (s *session) fail(what string, err error) error {
	op := "cannot " + what + " the TPM"
	var rc tpm2.TPMRC
	switch {
	case errors.Is(err, tpm2.TPMRCObjectMemory), errors.Is(err, tpm2.TPMRCSessionMemory), errors.Is(err, tpm2.TPMRCMemory),
		errors.Is(err, tpm2.TPMRCSessionHandles), errors.Is(err, tpm2.TPMRCObjectHandles):
		return &Error{Op: op, Device: s.device, Err: errors.New("the TPM is full (no room to load another object)"),
			Fix: "other programs hold objects in it: close them and retry (a software TPM keeps what killed programs left loaded: restart it); nothing was changed"}
	case errors.Is(err, tpm2.TPMRCLockout):
		return &Error{Op: op, Device: s.device, Err: errors.New("the TPM is in dictionary-attack lockout"),
			Fix: "wait for the lockout to expire, or reset it with the lockout authorization (tpm2_dictionarylockout -c)"}
	case errors.Is(err, tpm2.TPMRCHierarchy), errors.Is(err, tpm2.TPMRCBadAuth), errors.Is(err, tpm2.TPMRCAuthFail):
		return &Error{Op: op, Device: s.device, Err: fmt.Errorf("the owner hierarchy refused: %w", err),
			Fix: "entraclaw needs the TPM's owner hierarchy enabled with an empty owner password; or keep the key in the keyring (-key-store keyring)"}
	case errors.As(err, &rc):
		return &Error{Op: op, Device: s.device, Err: err, Fix: "nothing was changed"}
	case isGone(err):
		return &Error{Op: op, Device: s.device, Err: errors.New("the TPM stopped answering"),
			Fix: "check that it is still there (a software TPM: that it still runs) and retry; nothing was changed"}
	}
	return &Error{Op: op, Device: s.device, Err: err}
}

// loadError explains a key the TPM would not load.
func (s *session) loadError(err error) error {
	var rc tpm2.TPMRC
	if errors.As(err, &rc) && !rc.IsWarning() && !errors.Is(err, tpm2.TPMRCLockout) {
		return &Error{Op: "this TPM cannot load the key", Device: s.device,
			Err: errors.New("it was created by another TPM (a copied keyring item is useless elsewhere), or this TPM was cleared since"),
			Fix: fixRotate}
	}
	return s.fail("load the key into", err)
}

func isGone(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}
