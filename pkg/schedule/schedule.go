// Package schedule generates, installs and removes the daily job that runs
// `entraclaw-migrate -renew` for one state file as the current user: a systemd user
// timer on Linux, a launchd agent on macOS, a Task Scheduler task on Windows.
//
// The generator takes the OS as a parameter, so every platform's files are tested on
// any machine; installing runs the platform's own tools (systemctl, launchctl,
// schtasks) found on PATH.
package schedule

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
)

// Job is what the scheduled job runs, and where the files about it go. Paths are
// absolute paths of the target OS.
type Job struct {
	// Executable is the entraclaw-migrate binary the job runs.
	Executable string
	// StatePath is the state file, absolute and with its symlinks resolved: it names
	// the job, so two paths to one state file get one job.
	StatePath string
	// Args are the flags passed through after `-renew -state-file StatePath`: what the
	// job needs to find the same keyring and cloud and is in no config file.
	Args []string
	// Home is the user's home directory (Linux, macOS).
	Home string
	// ConfigHome is $XDG_CONFIG_HOME (Linux); "" or a relative path means Home/.config.
	ConfigHome string
	// Environment holds NAME=value pairs the job must run with (Linux: the XDG
	// directories that place the per-user state and config, when set).
	Environment []string
	// StateDir is the state file's per-user directory: the launchd log and the
	// temporary Task Scheduler XML go there.
	StateDir string
	// User is the login name: systemd's lingering file (Linux) and the task's
	// principal (Windows, DOMAIN\name).
	User string
	// UID is the user id of launchd's gui/<uid> domain (macOS).
	UID int
}

// Kinds of job, the first word(s) of Plan.Record.
const (
	KindSystemd = "systemd user timer"
	KindLaunchd = "launchd agent"
	KindTask    = "scheduled task"
)

// File is a file install writes.
type File struct {
	Path string
	// Text is its content as text (what print shows).
	Text string
	// UTF16 says the file is written as UTF-16LE with a byte order mark
	// (schtasks /XML reads that); otherwise it is written as Text.
	UTF16 bool
	// Temporary says install removes it once the scheduler has read it.
	Temporary bool
}

// Plan is the job for one state file on one OS: its files and the commands that
// install and remove it.
type Plan struct {
	GOOS string
	Kind string
	// Name is the systemd unit name (without suffix), the launchd label or the
	// Task Scheduler path.
	Name  string
	Files []File
	// Record describes the installed job for the renewal record: "<kind> <where>".
	Record string
	// InstallCommands and UninstallCommands are the commands install and uninstall
	// run (some only when there is something to act on; see Install and Uninstall).
	InstallCommands   [][]string
	UninstallCommands [][]string

	user string // for the lingering check
}

// Generate returns the plan of job on goos (linux, darwin or windows; the BSDs get
// nothing: they have neither systemd nor launchd).
func Generate(goos string, job Job) (*Plan, error) {
	if job.Executable == "" || job.StatePath == "" {
		return nil, fmt.Errorf("schedule: the job needs the executable and the state file")
	}
	switch goos {
	case "linux":
		return systemdPlan(job)
	case "darwin":
		return launchdPlan(job)
	case "windows":
		return taskPlan(job)
	}
	return nil, fmt.Errorf("no scheduler is supported on %s (systemd on Linux, launchd on macOS, Task Scheduler on Windows): run `entraclaw-migrate -renew` daily from cron instead", goos)
}

// Hash8 is the first 8 hex digits of the SHA-256 of the state file's path: the
// part of the job's name that tells the jobs of two state files apart.
func Hash8(statePath string) string {
	sum := sha256.Sum256([]byte(statePath))
	return hex.EncodeToString(sum[:4])
}

// timeOfDay is the hour and minute, spread over the day by the state file's path,
// at which launchd and Task Scheduler start the job: a fleet installed at once does
// not renew at once (systemd spreads its runs with RandomizedDelaySec instead).
func timeOfDay(statePath string) (hour, minute int) {
	sum := sha256.Sum256([]byte(statePath))
	m := int(binary.BigEndian.Uint16(sum[4:6]) % (24 * 60))
	return m / 60, m % 60
}

// command is the job's command line: the executable, -renew, the state file, then
// the pass-through flags.
func (j Job) command() []string {
	return append([]string{j.Executable, "-renew", "-state-file", j.StatePath}, j.Args...)
}

// description is a one-line description of the job for the scheduler's listing.
func (j Job) description() string {
	return "Renew the entraclaw provisioner certificate of " + oneLine(j.StatePath) + " (entraclaw-migrate -renew)"
}

// oneLine replaces control characters (a newline in a path) with '?' so that text
// cannot end the line it is put on.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// joinWindows joins Windows path elements (path.Join would use '/').
func joinWindows(elem ...string) string {
	for i := range elem[:len(elem)-1] {
		elem[i] = strings.TrimRight(elem[i], `\`)
	}
	return strings.Join(elem, `\`)
}

// joinUnix joins Unix path elements whatever OS generates them.
func joinUnix(elem ...string) string { return path.Join(elem...) }
