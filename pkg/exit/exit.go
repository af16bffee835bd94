// Package exit holds the exit codes every entraclaw binary shares (README "Exit codes"),
// so that the packages which decide a failure's code and the command line which exits
// with it agree on one list. It imports nothing.
package exit

const (
	OK          = 0   // done
	Failure     = 1   // the operation failed (remote or local error)
	Usage       = 2   // bad flag, argument or configuration value
	NotSetUp    = 3   // no state file, no provisioner app, no certificate, or certificate expired
	CheckFailed = 4   // entraclaw-verify ran and a check failed
	Interrupted = 130 // Ctrl-C (SIGINT) or SIGTERM; the message says what is done and what is pending
)

// Coder is an error that carries its exit code.
type Coder interface{ ExitCode() int }
