package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// RenewalFile is the name, in a state file's per-user directory, of the record of its
// certificate's renewals (entraclaw-migrate -renew) and of the job that runs them
// (entraclaw-migrate -schedule). It holds no secret; it is 0600 like everything there.
const RenewalFile = "renewal.json"

// Outcomes of a renewal attempt (Renewal.Outcome).
const (
	RenewalRenewed = "renewed" // a new certificate is current, the old one is off the app
	RenewalNotDue  = "not-due" // nothing to do until NextDue
	RenewalPending = "pending" // the new certificate is on the app, not proven yet: the next run finishes it
	RenewalFailed  = "failed"  // the attempt failed (Error says why); the current certificate keeps serving
	RenewalExpired = "expired" // the certificate expired: only an operator's entraclaw-migrate can fix it
)

// Renewal is what the last renewal attempt of a state file's certificate did, and the
// job that runs the attempts.
type Renewal struct {
	// Attempted is when the last attempt ran; zero when none has.
	Attempted time.Time `json:"attempted,omitzero"`
	// Outcome is one of the Renewal* outcomes ("" when no attempt ran).
	Outcome string `json:"outcome,omitempty"`
	// Error is the failed attempt's one-line error.
	Error string `json:"error,omitempty"`
	// Thumbprint is the certificate current after the attempt.
	Thumbprint string `json:"thumbprint,omitempty"`
	// NotAfter is when that certificate expires.
	NotAfter time.Time `json:"notAfter,omitzero"`
	// NextDue is when the next renewal is due.
	NextDue time.Time `json:"nextDue,omitzero"`
	// ConsecutiveFailures counts the failed attempts since the last success.
	ConsecutiveFailures int `json:"consecutiveFailures"`
	// Replaced is the certificate the last rotation replaced (kept as <tenant>.previous
	// until it is off the app): a .previous item with any other certificate was not
	// written by this machine's rotation and is never trusted to be removed.
	Replaced string `json:"replaced,omitempty"`
	// Schedule describes the installed job that runs the renewal ("" when none is
	// installed): what it is and where, e.g. "systemd user timer ~/.config/systemd/user/x.timer".
	Schedule string `json:"schedule,omitempty"`
}

// maxRenewalSize bounds the record read: it is a few hundred bytes.
const maxRenewalSize = 64 << 10

// LoadRenewal reads the renewal record of the state file at path. No record is
// (nil, nil): nothing was attempted or scheduled. It creates nothing.
func LoadRenewal(path string) (*Renewal, error) {
	dir, err := UserDir(path)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, RenewalFile)
	info, err := os.Lstat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("renewal record %s: %w", file, err)
	}
	if !info.Mode().IsRegular() || info.Size() > maxRenewalSize {
		return nil, fmt.Errorf("renewal record %s is not a regular file of at most %d bytes", file, maxRenewalSize)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("renewal record %s: %w", file, err)
	}
	var r Renewal
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("renewal record %s does not parse: %w", file, err)
	}
	return &r, nil
}

// UpdateRenewal changes the renewal record of the state file at path with fn (which
// starts from an empty record when there is none, or when the one there does not
// parse) and writes it atomically, 0600, creating the per-user directory. Runs of
// entraclaw-migrate hold the state file's run lock, so writers do not race.
func UpdateRenewal(path string, fn func(*Renewal)) error {
	dir, err := EnsureUserDir(path)
	if err != nil {
		return err
	}
	r, err := LoadRenewal(path)
	if err != nil || r == nil {
		r = &Renewal{}
	}
	fn(r)
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	file := filepath.Join(dir, RenewalFile)
	if err := writeAtomic(file, file, append(data, '\n')); err != nil {
		return fmt.Errorf("renewal record: %w", err)
	}
	return nil
}
