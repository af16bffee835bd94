package cli

import (
	"fmt"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
	"github.com/entraclaw/entraclaw-cli/pkg/verify"
)

// Renewal is meant to run unattended, and an unattended failure is one nobody sees: the
// offline status shows the renewal record and fails (exit 4) while there is still time to
// act, so a cron line running `entraclaw-verify -offline` is the alarm.
const (
	// renewalFailuresAlarm failed renewal attempts in a row fail the status: one can be a
	// passing outage, two in a row need someone to look.
	renewalFailuresAlarm = 2
	// unscheduledExpiryWindow: a certificate this close to its expiry with no renewal
	// job installed fails the status, whatever -expires-in says: nothing will renew it.
	unscheduledExpiryWindow = verify.DefaultExpiresIn
)

// renewalHint* are the status error's hints for the renewal problems.
const (
	renewalFailingHint = "`entraclaw-migrate -renew` shows why the renewal fails and tries again"
	noScheduleHint     = "`entraclaw-migrate -renew` renews the certificate now; `entraclaw-migrate -schedule install` installs a job that renews it before it expires"
)

// readRenewal reads the state file's renewal record into the report, with its problems.
// No record is fine (nothing attempted yet); one that cannot be read or parsed is a
// warning and counts as none.
func (st *statusReport) readRenewal(statePath string, now time.Time) {
	rec, err := state.LoadRenewal(statePath)
	if err != nil {
		st.Warnings = append(st.Warnings, "ignoring the renewal record: "+oneLine(err.Error())+"; the next `entraclaw-migrate -renew` writes a new one")
		rec = nil
	}
	if rec != nil {
		st.Renewal = statusRenewal{
			Recorded: true, Attempted: rfc3339OrEmpty(rec.Attempted), Outcome: rec.Outcome, Error: oneLine(rec.Error),
			NextDue: rfc3339OrEmpty(rec.NextDue), ConsecutiveFailures: rec.ConsecutiveFailures, Schedule: rec.Schedule,
		}
	}
	r := st.Renewal
	if r.ConsecutiveFailures >= renewalFailuresAlarm {
		last := r.Error
		if last == "" {
			last = "no error recorded"
		}
		st.problem(ExitCheckFailed, "the last %d renewal attempts failed (the last at %s: %s)", r.ConsecutiveFailures, orNone(r.Attempted), last)
		st.hints = append(st.hints, renewalFailingHint)
	}
	if c := st.Certificate; r.Schedule == "" && c != nil && !c.Expired && certs.ExpiresWithin(c.cert, now, unscheduledExpiryWindow) {
		st.problem(ExitCheckFailed, "certificate %s expires on %s (in %d days) and no renewal job is installed",
			c.Thumbprint, c.cert.NotAfter.UTC().Format(time.DateOnly), c.DaysLeft)
		st.hints = append(st.hints, noScheduleHint)
	}
}

// print writes the renewal lines of the text status.
func (r statusRenewal) print(line func(label, format string, args ...any), p painter) {
	if r.Attempted == "" {
		line("renewal", "no renewal attempted yet")
	} else {
		what := r.Outcome
		if r.Error != "" {
			what += ": " + r.Error
		}
		if r.Outcome == state.RenewalFailed || r.Outcome == state.RenewalExpired {
			what = p.red(what)
		}
		if r.ConsecutiveFailures > 0 {
			what += fmt.Sprintf(" (%d consecutive failure(s))", r.ConsecutiveFailures)
		}
		line("renewal", "last attempt %s: %s", r.Attempted, what)
	}
	if r.NextDue != "" {
		line("next renewal", "due %s", r.NextDue)
	}
	if r.Schedule == "" {
		line("renewal job", "none installed")
	} else {
		line("renewal job", "%s", r.Schedule)
	}
}

// rfc3339OrEmpty is t in UTC as RFC 3339, "" for the zero time.
func rfc3339OrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
