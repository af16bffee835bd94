package schedule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// lingerDir is where systemd-logind marks the users whose user manager starts at boot
// and keeps running without a session (`loginctl enable-linger`); tests point it
// elsewhere.
var lingerDir = "/var/lib/systemd/linger"

// Report receives what Install and Uninstall do, one line at a time.
type Report struct {
	Progress func(string) // a file written or removed, a command run
	Warn     func(string) // something the user should fix
}

func (r Report) progress(format string, args ...any) {
	if r.Progress != nil {
		r.Progress(fmt.Sprintf(format, args...))
	}
}

func (r Report) warn(format string, args ...any) {
	if r.Warn != nil {
		r.Warn(fmt.Sprintf(format, args...))
	}
}

// Done is what Install or Uninstall did: the files written or removed and the
// commands run, in order.
type Done struct {
	Files    []string
	Commands [][]string
}

// Install writes the plan's files and registers the job with the OS's scheduler,
// which must be the plan's OS. Running it again replaces the job with the plan.
func Install(ctx context.Context, p *Plan, rep Report) (*Done, error) {
	done := &Done{}
	var err error
	switch p.GOOS {
	case "linux":
		err = installSystemd(ctx, p, rep, done)
	case "darwin":
		err = installLaunchd(ctx, p, rep, done)
	case "windows":
		err = installTask(ctx, p, rep, done)
	default:
		err = fmt.Errorf("no scheduler for %s", p.GOOS)
	}
	return done, err
}

// Uninstall removes the job and its files. Removing a job that is not installed
// does nothing and is no error.
func Uninstall(ctx context.Context, p *Plan, rep Report) (*Done, error) {
	done := &Done{}
	var err error
	switch p.GOOS {
	case "linux", "darwin":
		err = uninstallFiles(ctx, p, rep, done)
	case "windows":
		err = uninstallTask(ctx, p, rep, done)
	default:
		err = fmt.Errorf("no scheduler for %s", p.GOOS)
	}
	return done, err
}

func installSystemd(ctx context.Context, p *Plan, rep Report, done *Done) error {
	if err := writeFiles(p, rep, done); err != nil {
		return err
	}
	for _, argv := range p.InstallCommands {
		if err := run(ctx, argv, rep, done); err != nil {
			return err
		}
	}
	if !Lingering(p.user) {
		rep.warn("lingering is off for %s, so the timer runs only while %s is logged in; to run it at any time: loginctl enable-linger $USER", p.user, p.user)
	}
	return nil
}

// Lingering reports whether systemd keeps user's manager (and its timers) running
// without a session. It reads logind's marker file; an unknown user is not lingering.
func Lingering(user string) bool {
	if user == "" || strings.ContainsAny(user, `/\`) {
		return false
	}
	_, err := os.Stat(filepath.Join(lingerDir, user))
	return err == nil
}

func installLaunchd(ctx context.Context, p *Plan, rep Report, done *Done) error {
	plist := p.Files[0].Path
	loaded := exists(plist)
	if err := writeFiles(p, rep, done); err != nil {
		return err
	}
	if loaded {
		// bootstrap refuses a label that is loaded: unload the old agent first (its
		// failure, when it was not loaded after all, is harmless).
		_ = run(ctx, p.UninstallCommands[0], rep, done)
	}
	return run(ctx, p.InstallCommands[0], rep, done)
}

func installTask(ctx context.Context, p *Plan, rep Report, done *Done) error {
	if err := writeFiles(p, rep, done); err != nil {
		return err
	}
	defer func() {
		for _, f := range p.Files {
			if f.Temporary {
				_ = os.Remove(f.Path)
			}
		}
	}()
	return run(ctx, p.InstallCommands[0], rep, done)
}

// uninstallFiles stops the job when its files are there, then removes them (Linux,
// macOS): with no file left, systemd and launchd have no job to run.
func uninstallFiles(ctx context.Context, p *Plan, rep Report, done *Done) error {
	var present []string
	for _, f := range p.Files {
		if exists(f.Path) {
			present = append(present, f.Path)
		}
	}
	if len(present) == 0 {
		rep.progress("No %s %s is installed: nothing to remove.", p.Kind, p.Name)
		return nil
	}
	stop, rest := p.UninstallCommands[0], p.UninstallCommands[1:]
	if err := run(ctx, stop, rep, done); err != nil {
		// It fails when the job is not loaded (launchd) or half its files are gone
		// (systemd): removing the files is still right.
		rep.warn("%v; removing the files anyway", err)
	}
	for _, file := range present {
		if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		rep.progress("Removed %s.", file)
		done.Files = append(done.Files, file)
	}
	for _, argv := range rest {
		if err := run(ctx, argv, rep, done); err != nil {
			return err
		}
	}
	return nil
}

// uninstallTask deletes the task when schtasks /Query finds it.
func uninstallTask(ctx context.Context, p *Plan, rep Report, done *Done) error {
	query, del := p.UninstallCommands[0], p.UninstallCommands[1]
	err := run(ctx, query, Report{}, done)
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		rep.progress("No %s %s is installed: nothing to remove.", p.Kind, p.Name)
		return nil
	}
	if err != nil {
		return err
	}
	return run(ctx, del, rep, done)
}

// writeFiles writes the plan's files, each atomically, 0644 (the scheduler reads
// them; they hold no secret), creating their directories.
func writeFiles(p *Plan, rep Report, done *Done) error {
	for _, f := range p.Files {
		data := []byte(f.Text)
		if f.UTF16 {
			data = encodeUTF16(f.Text)
		}
		if err := writeAtomic(f.Path, data); err != nil {
			return err
		}
		rep.progress("Wrote %s.", f.Path)
		done.Files = append(done.Files, f.Path)
	}
	return nil
}

// writeAtomic replaces path with data through a temporary file in its directory, so
// a scheduler never reads half a file.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// run runs argv, found on PATH, and records it in done. Its output is kept only for
// the error message: these tools print nothing worth showing on success.
func run(ctx context.Context, argv []string, rep Report, done *Done) error {
	done.Commands = append(done.Commands, argv)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		msg := strings.Join(strings.Fields(out.String()), " ")
		if msg != "" {
			return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
		}
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	rep.progress("Ran %s.", strings.Join(argv, " "))
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
