// Package cli is the composition root shared by the entraclaw binaries: flags with their
// ENTRACLAW_* environment variables, configuration resolution (flags > env > state file >
// defaults), output modes, and the mapping of errors to exit codes and one-line messages.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/exit"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// Exit codes shared by every binary: the one list in pkg/exit, under the names the
// command line has always used.
const (
	ExitOK          = exit.OK
	ExitFailure     = exit.Failure
	ExitUsage       = exit.Usage
	ExitNotSetUp    = exit.NotSetUp
	ExitCheckFailed = exit.CheckFailed
	ExitInterrupted = exit.Interrupted
)

// Error is an error with an exit code and an optional hint line.
type Error struct {
	Code int
	Msg  string
	Hint string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Msg == "" {
		return e.Err.Error()
	}
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given exit code and hint.
func Errorf(code int, hint, format string, args ...any) *Error {
	return &Error{Code: code, Hint: hint, Msg: fmt.Sprintf(format, args...)}
}

// Wrap attaches an exit code and a hint to err, keeping it for errors.Is/As.
func Wrap(code int, hint string, err error) *Error {
	return &Error{Code: code, Hint: hint, Err: err}
}

// UsageError reports a bad flag or argument (exit 2).
func UsageError(format string, args ...any) *Error {
	return &Error{Code: ExitUsage, Msg: fmt.Sprintf(format, args...), Hint: "run with -h for usage"}
}

// exitCoder and hinter are implemented by errors from pkg/provision, pkg/verify,
// pkg/keystore and pkg/entra without those packages importing this one.
type exitCoder = exit.Coder
type hinter interface{ Hint() string }

const migrateHint = "run `entraclaw-migrate` to set up certificate authentication"

// Classify returns the exit code, the one-line message and the hint for err.
func Classify(err error) (code int, msg, hint string) {
	msg = oneLine(err.Error())
	var (
		ce *Error
		ec exitCoder
	)
	switch {
	case errors.As(err, &ce):
		code, hint = ce.Code, ce.Hint
	case errors.Is(err, entra.ErrInvalidArgument):
		// Before exitCoder: a bad flag value is a usage error even when another
		// package's error, with its own exit code, wraps it. Its hint is kept.
		code = ExitUsage
	case errors.As(err, &ec):
		code = ec.ExitCode()
	case errors.Is(err, context.Canceled):
		// Only Main's signal handler cancels the context: an interrupt, not a failure.
		// (Errors that say more, with their own exit code, such as migrate's "done/pending"
		// message, are matched above.)
		code, msg = ExitInterrupted, "interrupted"
	case errors.Is(err, state.ErrNotFound):
		code, hint = ExitNotSetUp, "pass -state-file or set ENTRACLAW_STATE_FILE, or run from the repository that holds .entraclaw-state.json; "+migrateHint
	case errors.Is(err, state.ErrCorrupt):
		code, hint = ExitFailure, "fix or restore the file (backups: .entraclaw-state.json.bak.*); nothing was changed"
	case errors.Is(err, state.ErrBrokenLink):
		code, hint = ExitFailure, "restore the file the link points to, or pass -state-file; nothing was changed"
	case errors.Is(err, fs.ErrPermission):
		code, hint = ExitFailure, "check the owner and permissions: the state file must be readable, and its directory writable, by the user running entraclaw"
	case errors.Is(err, keystore.ErrNotFound):
		code, hint = ExitNotSetUp, migrateHint
	default:
		code = ExitFailure
	}
	// The hint of the outermost error that has one: a wrapper's advice (what to do about
	// this step) comes before that of the typed error inside it (entra.AuthError, typed
	// where the SDK's error entered, says what to do about the sign-in or the network).
	if hint == "" {
		hint = firstHint(err)
	}
	if hint == "" && code == ExitUsage && errors.Is(err, entra.ErrInvalidArgument) {
		hint = "run with -h for usage"
	}
	return code, msg, hint
}

// firstHint is the hint of the outermost error in err's chain that has a non-empty one.
// errors.As would stop at the first error with a Hint method even when it has nothing to
// say (a Graph error that is no tenant policy), and the advice of an error inside it would
// be lost unless every such type passed it on.
func firstHint(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if h, ok := e.(hinter); ok && h.Hint() != "" {
			return h.Hint()
		}
	}
	return ""
}

// oneLine keeps the first line of a message: errors are typed with one-line texts where
// they enter the project, and a multi-line one that slipped through never reaches the
// user whole.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

// warnLine is where the warnings of pkg/provision go: one line each, with the prefix
// every binary uses, `name: warning: …`.
func warnLine(stdio Stdio, name string) func(string) {
	p := newPainter(stdio)
	return func(msg string) {
		fmt.Fprintf(stdio.Err, "%s: %s %s\n", name, p.yellow("warning:"), msg)
	}
}
