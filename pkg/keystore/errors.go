package keystore

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"time"

	"github.com/zalando/go-keyring"
)

// ErrNotFound reports that the keyring holds no such item (go-keyring's
// keyring.ErrNotFound); errors.Is(err, ErrNotFound) holds for wrapped forms.
var ErrNotFound = errors.New("keyring item not found")

// ErrTooLarge reports a value the backend cannot hold in one item.
var ErrTooLarge = errors.New("value too large for the keyring")

// UnavailableError reports a keyring that cannot be used: no Secret Service,
// a locked collection, a call that timed out, an unsupported platform. Its
// message never contains an item's value.
type UnavailableError struct {
	Backend string // BackendName of the Store
	Err     error
}

type unavailableCause int

const (
	causeOther unavailableCause = iota
	causeLocked
	causeNoService
	causeTimedOut
	causeUnsupported
)

func (e *UnavailableError) cause() unavailableCause {
	var timeout *timeoutError
	var execErr *exec.Error
	var dialErr *net.OpError
	msg := e.Err.Error()
	switch {
	case errors.As(e.Err, &timeout):
		return causeTimedOut
	case errors.Is(e.Err, keyring.ErrUnsupportedPlatform) || e.Backend == NameKernelKeyring:
		return causeUnsupported
	case strings.Contains(msg, "failed to unlock"):
		return causeLocked
	case errors.As(e.Err, &execErr), errors.Is(e.Err, errNoSessionBus), errors.As(e.Err, &dialErr),
		strings.Contains(msg, "org.freedesktop.secrets"), strings.Contains(msg, "session bus"):
		return causeNoService
	}
	return causeOther
}

// Error names the backend and what is wrong with it, on one line.
func (e *UnavailableError) Error() string {
	var state string
	switch e.cause() {
	case causeLocked:
		state = "is locked"
	case causeNoService:
		state = "is not reachable"
	case causeTimedOut:
		state = "did not answer"
	default:
		state = "is unavailable"
	}
	return e.Backend + " " + state + ": " + oneLine(e.Err.Error())
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// Hint says how to make the keyring usable.
func (e *UnavailableError) Hint() string {
	cause := e.cause()
	if cause == causeUnsupported && e.Backend != NameKernelKeyring {
		return unsupportedHint
	}
	switch e.Backend {
	case NameSecretService:
		// Never a throw-away keyring (a private D-Bus session with its own keyring, like the
		// tests' scripts/with-secret-service.sh): the key goes with it when it exits, while
		// its certificate stays valid on the app for a year.
		switch cause {
		case causeLocked:
			return "unlock the login keyring: log in to the desktop, or on a headless box feed its password to `gnome-keyring-daemon --unlock` inside `dbus-run-session`; " + throwAwayKeyring
		case causeTimedOut:
			return "the Secret Service may be waiting for an unlock prompt: answer it or unlock the login keyring, then retry"
		}
		return noSecretServiceHint
	case NameKernelKeyring:
		return "the kernel keyring cannot be used here: use -token-cache auto (it falls back to the Secret Service, or to no cache) or -token-cache none"
	case NameMacOSKeychain:
		return "unlock the login keychain (`security unlock-keychain ~/Library/Keychains/login.keychain-db`) and allow access if macOS asks, then retry"
	case NameCredentialManager:
		return "make sure Windows Credential Manager is available to this user (it is not in some service or network logon sessions), then retry"
	}
	return unsupportedHint
}

// noSecretServiceHint names the real ways to a keyring on a machine without a Secret Service:
// one in the user's own session, the TPM-wrapped key file, or no stored key at all in CI.
// Never the tests' throw-away keyring (scripts/with-secret-service.sh).
const noSecretServiceHint = "start a Secret Service: log in to a desktop session, or have your systemd user session run gnome-keyring-daemon " +
	"(`loginctl enable-linger` keeps it for cron and timers); on a server without one, keep the key in this machine's TPM with " +
	"`entraclaw-migrate -key-store tpm-file`; in CI use workload identity federation instead of a stored key; " + throwAwayKeyring

// throwAwayKeyring ends the Secret Service hints: the keyring must outlive the run.
const throwAwayKeyring = "not a throw-away keyring (a private dbus-run-session): it loses the key when it ends"

const unsupportedHint = "this build has no keyring for this platform: use macOS, Windows, or Linux (BSD builds need cgo) with a Secret Service"

// timeoutError is the cause of an UnavailableError for a call that did not
// return in time.
type timeoutError struct{ after time.Duration }

func (e *timeoutError) Error() string { return fmt.Sprintf("no answer within %s", e.after) }

// classify maps a backend error to ErrNotFound, ErrTooLarge or
// *UnavailableError. value is the item value being written, if any; a
// backend message that repeats it is withheld.
func (s *Store) classify(err error, value string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyring.ErrNotFound):
		return ErrNotFound
	}
	return &UnavailableError{Backend: s.BackendName(), Err: withholdSecret(err, value)}
}

// tooLarge describes a value over the backend's item size limit.
func (s *Store) tooLarge(account string, size int) error {
	if limit, limited := s.maxValueLen(account); limited {
		return fmt.Errorf("%w: %s holds at most %d bytes under service %q account %q, the value has %d",
			ErrTooLarge, s.BackendName(), max(limit, 0), s.service, account, size)
	}
	return fmt.Errorf("%w: %s refused %d bytes under service %q account %q", ErrTooLarge, s.BackendName(), size, s.service, account)
}

var errSecretWithheld = errors.New("keyring error message withheld because it repeated the stored value")

// secretProbeLen is the shortest line of a value looked for in error messages.
const secretProbeLen = 16

func withholdSecret(err error, value string) error {
	msg := err.Error()
	for line := range strings.Lines(value) {
		line = strings.TrimSpace(line)
		if len(line) >= secretProbeLen && strings.Contains(msg, line) {
			return errSecretWithheld
		}
	}
	return err
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
