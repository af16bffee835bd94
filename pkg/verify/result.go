// Package verify runs the migration runbook's four checks against the state file, the
// OS keyring, Microsoft Graph and a freshly minted token, and decodes access tokens
// (without verifying their signature) for diagnostics.
package verify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/entraclaw/entraclaw-cli/pkg/exit"
)

// Check names, in the order Run performs them.
const (
	NameSecretPurged = "secret-purged"
	NameNoPasswords  = "no-passwords"
	NameKeyringCert  = "keyring-cert"
	NameToken        = "token"
)

// CheckNames lists every check in the order Run performs them.
func CheckNames() []string {
	return []string{NameSecretPurged, NameNoPasswords, NameFederated, NameKeyringCert, NameToken}
}

// ParseChecks reads a comma-separated list of check names ("" selects all). Unknown
// names are an error that lists the valid ones.
func ParseChecks(list string) ([]string, error) {
	var names []string
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(CheckNames(), n) {
			return nil, fmt.Errorf("unknown check %q: valid checks are %s", n, strings.Join(CheckNames(), ", "))
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, nil
}

// Result is the outcome of one check. Detail and Warnings never hold a secret, a PEM
// body or a token.
type Result struct {
	Name     string   `json:"name"`
	OK       bool     `json:"ok"`
	Detail   string   `json:"detail"`
	Warnings []string `json:"warnings"`
	// CouldNotRun marks a failure to reach a verdict (keyring unavailable, network
	// or Graph down) as opposed to a check that ran and found a problem.
	CouldNotRun bool `json:"-"`
	// Throttled marks a check that could not run because Entra ID or Graph asked to slow
	// down (AADSTS50196, 429): "not yet", and Wait backs off.
	Throttled bool `json:"-"`
	// NotChecked marks a check that waits for another: Graph is read with the provisioner's
	// certificate, which Entra ID does not accept yet (AADSTS700027 right after an upload),
	// so what the app holds is not known. Not a failure, not a pass.
	NotChecked bool `json:"notChecked,omitempty"`
	// Strays are the certificates on the app named after this machine that no keyring
	// item of this machine holds (keyring-cert; also in Warnings).
	Strays []StrayCertificate `json:"strayCertificates,omitempty"`
	// notYet: Entra ID refused the certificate with a code that right after a change means
	// "not yet" (token); the fix may be to wait, not to migrate again.
	notYet bool
}

// StrayCertificate is a certificate on the app named after this machine
// (entra.MachineKeyName) that no keyring item of this machine holds: its private key is
// likely gone (a keyring thrown away, another keyring service, a tenant typo), yet it
// is a valid credential of the app until it expires.
type StrayCertificate struct {
	Thumbprint string `json:"thumbprint"`
	KeyID      string `json:"keyId"`
	Expires    string `json:"expires"`
}

func pass(name, detail string) Result {
	return Result{Name: name, OK: true, Detail: detail, Warnings: []string{}}
}

func fail(name, detail string) Result {
	return Result{Name: name, Detail: detail, Warnings: []string{}}
}

func couldNotRun(name, detail string) Result {
	return Result{Name: name, Detail: detail, Warnings: []string{}, CouldNotRun: true}
}

func notYetChecked(name, detail string) Result {
	return Result{Name: name, Detail: detail, Warnings: []string{}, NotChecked: true, notYet: true}
}

// Report is the outcome of a Run.
type Report struct {
	OK     bool     `json:"ok"`
	Checks []Result `json:"checks"`
	// Warnings are every check's warnings, in check order.
	Warnings []string `json:"warnings"`
}

// NewReport collects results into a report; OK when every result is.
func NewReport(results ...Result) *Report {
	r := &Report{OK: true, Checks: results, Warnings: []string{}}
	for _, c := range results {
		r.OK = r.OK && c.OK
		r.Warnings = append(r.Warnings, c.Warnings...)
	}
	return r
}

// NotChecked names the checks that were not checked yet (Result.NotChecked).
func (r *Report) NotChecked() []string {
	var names []string
	for _, c := range r.Checks {
		if c.NotChecked {
			names = append(names, c.Name)
		}
	}
	return names
}

// Passed counts the checks that passed.
func (r *Report) Passed() int {
	n := 0
	for _, c := range r.Checks {
		if c.OK {
			n++
		}
	}
	return n
}

// Err is nil when every check passed; a *FailedError (exit 4) naming every check that
// did not pass when at least one of them ran and failed; a *NotRunError (exit 1) when
// the only failures are checks that could not run or were not checked yet.
func (r *Report) Err() error {
	var notPassed []string
	ranAndFailed, notYet := false, false
	for _, c := range r.Checks {
		if !c.OK && !c.NotChecked {
			notPassed = append(notPassed, c.Name)
			ranAndFailed = ranAndFailed || !c.CouldNotRun
		}
		notYet = notYet || c.notYet
	}
	notChecked := r.NotChecked()
	switch {
	case len(notPassed) == 0 && len(notChecked) == 0:
		return nil
	case ranAndFailed:
		return &FailedError{Failed: notPassed, Total: len(r.Checks), NotChecked: notChecked, NotYet: notYet}
	}
	return &NotRunError{Checks: notPassed, NotChecked: notChecked}
}

// FailedError reports checks that ran and failed; entraclaw-verify exits 4.
type FailedError struct {
	Failed []string
	Total  int
	// NotChecked are the checks that wait for the certificate to be accepted.
	NotChecked []string
	// NotYet: Entra ID refused the certificate with a code that can mean "not yet".
	NotYet bool
}

func (e *FailedError) Error() string {
	msg := fmt.Sprintf("%d of %d checks failed: %s", len(e.Failed), e.Total, strings.Join(e.Failed, ", "))
	if len(e.NotChecked) > 0 {
		msg += "; not yet checked: " + strings.Join(e.NotChecked, ", ")
	}
	return msg
}

// ExitCode is 4, "a verify check failed".
func (e *FailedError) ExitCode() int { return exit.CheckFailed }

// Hint points at the fix for every failure the checks find.
func (e *FailedError) Hint() string {
	if e.NotYet {
		return "right after a migration Entra ID can take a few minutes to accept a new certificate: `entraclaw-verify -wait 3m` " +
			"(or `-operator-auth azcli` to read the app as yourself); if it still refuses it, run `entraclaw-migrate`"
	}
	return "run `entraclaw-migrate` to repair the setup, then `entraclaw-verify` again"
}

// NotRunError reports checks that could not reach a verdict; entraclaw-verify exits 1.
type NotRunError struct{ Checks, NotChecked []string }

func (e *NotRunError) Error() string {
	var parts []string
	if len(e.Checks) > 0 {
		parts = append(parts, "could not run check(s): "+strings.Join(e.Checks, ", "))
	}
	if len(e.NotChecked) > 0 {
		parts = append(parts, "not yet checked: "+strings.Join(e.NotChecked, ", ")+" (Entra ID does not accept the certificate yet)")
	}
	return strings.Join(parts, "; ")
}

// ExitCode is 1, "the operation failed".
func (e *NotRunError) ExitCode() int { return exit.Failure }

// Hint says what usually stops a check from running.
func (e *NotRunError) Hint() string {
	return "check the network and the keyring (see the details above), then retry; -wait retries for you"
}
