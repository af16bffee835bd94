package cli

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/schedule"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// Actions of entraclaw-migrate -schedule.
const (
	scheduleInstall   = "install"
	scheduleUninstall = "uninstall"
	schedulePrint     = "print"
)

// scheduleResult is the -o json output of -schedule: the files written or removed (print:
// that install would write) and the commands run (print: that install would run).
type scheduleResult struct {
	Action   string     `json:"action"`
	Files    []string   `json:"files"`
	Commands [][]string `json:"commands"`
}

// runSchedule is entraclaw-migrate -schedule ACTION: install, remove or print the daily
// job that runs `entraclaw-migrate -renew` for the state file of c as this user, and
// record the installed job in the state file's renewal record.
func runSchedule(ctx context.Context, action string, c *Common, stdio Stdio) error {
	switch action {
	case scheduleInstall, scheduleUninstall, schedulePrint:
	default:
		return UsageError("-schedule must be %s, %s or %s, not %q", scheduleInstall, scheduleUninstall, schedulePrint, action)
	}
	env, err := c.Resolve(StateOptional)
	if err != nil {
		return err
	}
	if action == scheduleInstall && env.State == nil {
		return Errorf(ExitNotSetUp, migrateHint+"; then schedule its renewal",
			"no state file at %s: there is no certificate to renew", env.StatePath)
	}
	statePath, err := state.ResolvedPath(env.StatePath)
	if err != nil {
		return err
	}
	job, err := scheduleJob(c, statePath)
	if err != nil {
		return err
	}
	plan, err := schedule.Generate(runtime.GOOS, job)
	if err != nil {
		return err
	}
	if action == schedulePrint {
		if c.JSON() {
			return WriteJSON(stdio.Out, scheduleResult{Action: action, Files: planFiles(plan), Commands: plan.InstallCommands})
		}
		return schedule.Print(stdio.Out, plan)
	}
	if action == scheduleInstall && isTemporaryBuild(job.Executable) {
		warnLine(stdio, c.name)(fmt.Sprintf("the job runs %s, which looks like a temporary build (go run, go test): install entraclaw-migrate and run -schedule install from the installed binary", job.Executable))
	}
	done, err := applySchedule(ctx, action, plan, statePath, c, stdio)
	if err != nil {
		return err
	}
	if c.JSON() {
		return WriteJSON(stdio.Out, scheduleResult{Action: action, Files: nonNil(done.Files), Commands: nonNilCommands(done.Commands)})
	}
	return nil
}

// applySchedule installs or uninstalls plan and records it in the renewal record.
func applySchedule(ctx context.Context, action string, plan *schedule.Plan, statePath string, c *Common, stdio Stdio) (*schedule.Done, error) {
	rep := schedule.Report{
		Progress: func(line string) { fmt.Fprintln(stdio.Err, line) },
		Warn:     warnLine(stdio, c.name),
	}
	if action == scheduleUninstall {
		done, err := schedule.Uninstall(ctx, plan, rep)
		if err != nil {
			return nil, Wrap(ExitFailure, "nothing was recorded; fix the error and run -schedule uninstall again", err)
		}
		if err := state.UpdateRenewal(statePath, func(r *state.Renewal) { r.Schedule = "" }); err != nil {
			return nil, err
		}
		fmt.Fprintf(stdio.Err, "Renewal schedule removed for %s.\n", statePath)
		return done, nil
	}
	// The per-user directory holds launchd's log and the task XML.
	if _, err := state.EnsureUserDir(statePath); err != nil {
		return nil, err
	}
	done, err := schedule.Install(ctx, plan, rep)
	if err != nil {
		return nil, Wrap(ExitFailure, installHint(plan), err)
	}
	if err := state.UpdateRenewal(statePath, func(r *state.Renewal) { r.Schedule = plan.Record }); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdio.Err, "Installed %s: it runs `entraclaw-migrate -renew` for %s daily; check it with %s.\n",
		plan.Record, statePath, checkCommand(plan))
	return done, nil
}

// installHint is the hint of a failed install.
func installHint(plan *schedule.Plan) string {
	if plan.GOOS == "linux" {
		return "systemctl --user needs this user's systemd manager (a login session, or `loginctl enable-linger $USER`); `entraclaw-migrate -schedule print` shows the units to install by hand"
	}
	return "`entraclaw-migrate -schedule print` shows what to install by hand"
}

// checkCommand is how to see the installed job.
func checkCommand(plan *schedule.Plan) string {
	switch plan.GOOS {
	case "linux":
		return "`systemctl --user list-timers " + plan.Name + ".timer`"
	case "darwin":
		return "`launchctl print gui/" + fmt.Sprint(os.Getuid()) + "/" + plan.Name + "`"
	}
	return "`schtasks /Query /TN " + plan.Name + " /V /FO LIST`"
}

// scheduleJob is the job for the state file at statePath (resolved): this binary, as
// this user, with the settings of c that the job would not find on its own.
func scheduleJob(c *Common, statePath string) (schedule.Job, error) {
	exe, err := os.Executable()
	if err != nil {
		return schedule.Job{}, fmt.Errorf("find this program's path for the job: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	home, err := os.UserHomeDir()
	if err != nil && runtime.GOOS != "windows" {
		return schedule.Job{}, err
	}
	stateDir, err := state.UserDir(statePath)
	if err != nil {
		return schedule.Job{}, err
	}
	job := schedule.Job{
		Executable: exe,
		StatePath:  statePath,
		Args:       scheduleArgs(c),
		Home:       home,
		ConfigHome: os.Getenv("XDG_CONFIG_HOME"),
		StateDir:   stateDir,
		User:       loginName(),
		UID:        os.Getuid(),
	}
	if runtime.GOOS == "linux" {
		// A user service does not get the login shell's environment: the directories
		// that place the per-user state (locks, the renewal record) and the config file
		// go with it.
		for _, name := range []string{"XDG_STATE_HOME", "XDG_CONFIG_HOME"} {
			if v := os.Getenv(name); filepath.IsAbs(v) {
				job.Environment = append(job.Environment, name+"="+v)
			}
		}
	}
	return job, nil
}

// scheduleArgs are the flags the job passes after -renew -state-file: the settings that
// find the keyring item and the cloud, when this run has them from a flag or the
// environment (a scheduler's job has neither); settings from the config file are left to
// the job's own reading of it, and a named config file is passed on. Never a secret: no
// flag holds one. A setting given with its default value is not passed on.
func scheduleArgs(c *Common) []string {
	fromConfig := map[string]bool{}
	if c.config != nil {
		for _, line := range c.config.Values {
			name, _, _ := strings.Cut(line, " ")
			fromConfig[name] = true
		}
	}
	var args []string
	add := func(name, value, defaultValue string) {
		if value != defaultValue && !fromConfig[name] {
			args = append(args, "-"+name, value)
		}
	}
	add("keyring-service", c.KeyringService, keystore.DefaultService)
	add("cloud", c.Cloud, "public")
	add("authority-host", c.AuthorityHost, "")
	add("graph-endpoint", c.GraphEndpoint, "")
	add("ca-file", absPath(c.CAFile), "")
	if path, named := c.configPath(); named {
		args = append(args, "-config", absPath(path))
	}
	return args
}

// absPath is path made absolute ("" stays "": no path).
func absPath(path string) string {
	if path == "" {
		return ""
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// loginName is this user's login name (Windows: DOMAIN\name).
func loginName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if name := os.Getenv("USER"); name != "" {
		return name
	}
	return os.Getenv("USERNAME")
}

// isTemporaryBuild reports whether exe lives in the temporary directory, where go run
// and go test build: a job running it would fail once the build is cleaned up.
func isTemporaryBuild(exe string) bool {
	tmp, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		tmp = os.TempDir()
	}
	rel, err := filepath.Rel(tmp, exe)
	return err == nil && !strings.HasPrefix(rel, "..")
}

func planFiles(plan *schedule.Plan) []string {
	files := make([]string, len(plan.Files))
	for i, f := range plan.Files {
		files[i] = f.Path
	}
	return files
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilCommands(c [][]string) [][]string {
	if c == nil {
		return [][]string{}
	}
	return c
}
