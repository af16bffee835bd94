// Package state reads and writes .entraclaw-state.json, the JSON object that the
// EntraClaw tools share. It keeps every key it does not own, with its value and
// its position, byte for byte, writes the file in the format the Python tools
// used (json.dumps with indent=2 and a trailing newline), and makes every write
// atomic and serialised by a lock in the user's own per-user state directory (see
// UserDir), where the backups live too: nothing but the state file is written to
// the work tree.
package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FileName is the name of the state file looked for by Find.
const FileName = ".entraclaw-state.json"

// Keys this project owns. Every other key belongs to other tools and is kept untouched.
const (
	KeyTenantID     = "TENANT_ID"
	KeyClientID     = "PROVISIONER_CLIENT_ID"
	KeyThumbprint   = "PROVISIONER_CERT_THUMBPRINT"
	KeyClientSecret = "PROVISIONER_CLIENT_SECRET"
	// KeyKeyStore records where this machine's certificate items are, as chosen by
	// entraclaw-migrate -key-store: "keyring", "tpm" (both in the OS keyring) or
	// "tpm-file" (TPM-wrapped key files). Every binary uses the recorded store; a
	// missing key means the keyring.
	KeyKeyStore = "PROVISIONER_KEY_STORE"
)

// Values of KeyKeyStore.
const (
	KeyStoreKeyring = "keyring"
	KeyStoreTPM     = "tpm"
	KeyStoreTPMFile = "tpm-file"
)

// MaxFileSize is the largest state file accepted, in bytes. A real state file
// holds a few dozen short strings; anything bigger is not one.
const MaxFileSize = 1 << 20

// MaxDepth is how deeply values in a state file may nest, counting the top-level
// object as 1. It bounds the work and memory of re-indenting a file; real state
// files nest three levels at most.
const MaxDepth = 32

// ErrNotFound reports that there is no state file. errors.Is(err, fs.ErrNotExist)
// is also true for every error that wraps it.
var ErrNotFound error = notFoundError{}

type notFoundError struct{}

func (notFoundError) Error() string { return "state file not found" }

func (notFoundError) Is(target error) bool { return target == fs.ErrNotExist }

// ErrBrokenLink reports a state file that is a symlink to a file that does not exist.
// It is not ErrNotFound: the link says where the state should be, so nothing may start afresh.
var ErrBrokenLink = errors.New("state file is a broken symlink")

// brokenLink returns the error for path, a symlink whose target does not exist,
// naming the file as display.
func brokenLink(path, display string) error {
	target, err := os.Readlink(path)
	if err != nil {
		target = "a missing file"
	}
	return fmt.Errorf("%w: %s points to %s, which does not exist", ErrBrokenLink, display, target)
}

// isSymlink reports whether path itself (not its target) is a symlink.
func isSymlink(path string) bool {
	info, err := os.Lstat(path)
	return err == nil && info.Mode()&fs.ModeSymlink != 0
}

// ErrCorrupt is wrapped by every *FormatError.
var ErrCorrupt = errors.New("corrupt state file")

// FormatError reports a state file whose content is not a single JSON object
// with unique keys. Reason says what is wrong and where, but never quotes the
// content, which may hold a secret.
type FormatError struct {
	Path   string // the file, when known
	Reason string
}

// Error says which file is invalid and why.
func (e *FormatError) Error() string {
	if e.Path == "" {
		return "invalid state file: " + e.Reason
	}
	return fmt.Sprintf("invalid state file %s: %s", e.Path, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *FormatError) Unwrap() error { return ErrCorrupt }

// Find returns the state file to use. A non-empty explicit path is returned as
// is, whether or not it exists: the caller decides whether a missing file is an
// error. Otherwise Find walks up from startDir (the working directory when empty)
// to the filesystem root and returns the first FileName that exists and is not a
// directory. When there is none the error wraps ErrNotFound.
func Find(explicit, startDir string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if startDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("look for %s: %w", FileName, err)
		}
		startDir = wd
	}
	start, err := filepath.Abs(startDir)
	if err != nil {
		return "", fmt.Errorf("look for %s: %w", FileName, err)
	}
	for dir := start; ; {
		candidate := filepath.Join(dir, FileName)
		info, err := os.Stat(candidate)
		switch {
		case err == nil && !info.IsDir():
			return candidate, nil
		case errors.Is(err, fs.ErrNotExist) && isSymlink(candidate):
			return "", brokenLink(candidate, candidate)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("look for %s: %w", FileName, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("%w: no %s in %s or any parent directory (pass -state-file or set ENTRACLAW_STATE_FILE)",
		ErrNotFound, FileName, start)
}
