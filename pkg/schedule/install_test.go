package schedule

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unicode/utf16"
)

// fakeTool is a stand-in for systemctl, launchctl and schtasks: it appends its name and
// arguments, tab-separated, as one line to $FAKE_LOG; schtasks /Create copies the XML it
// is given to $FAKE_LOG.xml; it fails when "<name> <first argument>" is $FAKE_FAIL.
const fakeTool = `#!/bin/sh
name=$(basename "$0")
line=$name
for a in "$@"; do line="$line	$a"; done
printf '%s\n' "$line" >> "$FAKE_LOG"
if [ "$name $1" = "schtasks /Create" ]; then cp "$5" "$FAKE_LOG.xml"; fi
if [ "$name $1" = "$FAKE_FAIL" ]; then echo "$name: failing as told" >&2; exit 1; fi
exit 0
`

// fakeTools puts fake systemctl, launchctl and schtasks first on PATH and returns
// a function giving the commands they ran since the last call.
func fakeTools(t *testing.T) func() [][]string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake tools are shell scripts")
	}
	dir := t.TempDir()
	for _, name := range []string{"systemctl", "launchctl", "schtasks"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fakeTool), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(dir, "log")
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_LOG", log)
	t.Setenv("FAKE_FAIL", "")
	return func() [][]string {
		data, _ := os.ReadFile(log)
		os.Remove(log)
		var cmds [][]string
		for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if line != "" {
				cmds = append(cmds, strings.Split(line, "\t"))
			}
		}
		return cmds
	}
}

// testJob is a job whose files all go under a temporary home.
func testJob(t *testing.T) Job {
	home := t.TempDir()
	return Job{
		Executable: "/opt/entraclaw/entraclaw-migrate",
		StatePath:  filepath.Join(home, "repo", ".entraclaw-state.json"),
		Args:       []string{"-keyring-service", "team cert"},
		Home:       home,
		StateDir:   filepath.Join(home, "state"),
		User:       "alice",
		UID:        501,
	}
}

// recorder collects Report lines.
type recorder struct{ progress, warnings []string }

func (r *recorder) report() Report {
	return Report{
		Progress: func(s string) { r.progress = append(r.progress, s) },
		Warn:     func(s string) { r.warnings = append(r.warnings, s) },
	}
}

func wantCommands(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s ran %q, want %q", what, got, want)
	}
}

// TestInstallSystemd: install writes both units 0644, reloads and enables the timer,
// and warns about lingering only when it is off; uninstall disables the timer, removes
// the units and reloads; a second uninstall does nothing.
func TestInstallSystemd(t *testing.T) {
	ran := fakeTools(t)
	lingerDir = t.TempDir()
	t.Cleanup(func() { lingerDir = "/var/lib/systemd/linger" })
	job := testJob(t)
	plan, err := Generate("linux", job)
	if err != nil {
		t.Fatal(err)
	}
	timer := plan.Name + ".timer"
	var rec recorder
	done, err := Install(context.Background(), plan, rec.report())
	if err != nil {
		t.Fatal(err)
	}
	install := [][]string{{"systemctl", "--user", "daemon-reload"}, {"systemctl", "--user", "enable", "--now", timer}}
	wantCommands(t, "install", ran(), install)
	wantCommands(t, "Done of install", done.Commands, install)
	for _, f := range plan.Files {
		info, err := os.Stat(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(f.Path)
		if info.Mode().Perm() != 0o644 || string(data) != f.Text {
			t.Errorf("%s: mode %v, content %q", f.Path, info.Mode().Perm(), data)
		}
	}
	if len(rec.warnings) != 1 || !strings.Contains(rec.warnings[0], "loginctl enable-linger $USER") || !strings.Contains(rec.warnings[0], "only while alice is logged in") {
		t.Errorf("lingering off: warnings %q", rec.warnings)
	}

	if err := os.WriteFile(filepath.Join(lingerDir, "alice"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rec = recorder{}
	if _, err := Install(context.Background(), plan, rec.report()); err != nil {
		t.Fatal(err)
	}
	wantCommands(t, "reinstall", ran(), install)
	if len(rec.warnings) != 0 {
		t.Errorf("lingering on: warnings %q", rec.warnings)
	}

	if _, err := Uninstall(context.Background(), plan, rec.report()); err != nil {
		t.Fatal(err)
	}
	wantCommands(t, "uninstall", ran(), [][]string{{"systemctl", "--user", "disable", "--now", timer}, {"systemctl", "--user", "daemon-reload"}})
	for _, f := range plan.Files {
		if exists(f.Path) {
			t.Errorf("%s is still there", f.Path)
		}
	}
	if _, err := Uninstall(context.Background(), plan, rec.report()); err != nil {
		t.Fatal(err)
	}
	wantCommands(t, "second uninstall", ran(), nil)
}

// TestInstallSystemdFails: a failing systemctl fails the install with its message.
func TestInstallSystemdFails(t *testing.T) {
	fakeTools(t)
	t.Setenv("FAKE_FAIL", "systemctl --user")
	plan, err := Generate("linux", testJob(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Install(context.Background(), plan, Report{})
	if err == nil || !strings.Contains(err.Error(), "systemctl --user daemon-reload") || !strings.Contains(err.Error(), "failing as told") {
		t.Errorf("install with a failing systemctl: %v", err)
	}
}

// TestInstallLaunchd: install writes the plist and bootstraps it; a reinstall boots the
// loaded agent out first; uninstall boots it out and removes the plist.
func TestInstallLaunchd(t *testing.T) {
	ran := fakeTools(t)
	plan, err := Generate("darwin", testJob(t))
	if err != nil {
		t.Fatal(err)
	}
	plist := plan.Files[0].Path
	bootstrap := []string{"launchctl", "bootstrap", "gui/501", plist}
	bootout := []string{"launchctl", "bootout", "gui/501/" + plan.Name}
	if _, err := Install(context.Background(), plan, Report{}); err != nil {
		t.Fatal(err)
	}
	wantCommands(t, "install", ran(), [][]string{bootstrap})
	if data, _ := os.ReadFile(plist); string(data) != plan.Files[0].Text {
		t.Errorf("plist holds %q", data)
	}
	if _, err := Install(context.Background(), plan, Report{}); err != nil {
		t.Fatal(err)
	}
	wantCommands(t, "reinstall", ran(), [][]string{bootout, bootstrap})
	if _, err := Uninstall(context.Background(), plan, Report{}); err != nil {
		t.Fatal(err)
	}
	wantCommands(t, "uninstall", ran(), [][]string{bootout})
	if exists(plist) {
		t.Error("the plist is still there")
	}
}

// TestInstallTask: install gives schtasks the task as UTF-16LE XML with a byte order
// mark and removes the file; uninstall deletes the task only when /Query finds it.
func TestInstallTask(t *testing.T) {
	ran := fakeTools(t)
	job := testJob(t)
	plan, err := Generate("windows", job)
	if err != nil {
		t.Fatal(err)
	}
	xmlFile := plan.Files[0].Path
	if _, err := Install(context.Background(), plan, Report{}); err != nil {
		t.Fatal(err)
	}
	wantCommands(t, "install", ran(), [][]string{{"schtasks", "/Create", "/TN", plan.Name, "/XML", xmlFile, "/F"}})
	if exists(xmlFile) {
		t.Error("the task XML was not removed")
	}
	given, err := os.ReadFile(os.Getenv("FAKE_LOG") + ".xml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(given, []byte{0xff, 0xfe}) || len(given)%2 != 0 {
		t.Fatalf("the XML is not UTF-16LE with a BOM: % x", given[:min(8, len(given))])
	}
	units := make([]uint16, len(given)/2-1)
	for i := range units {
		units[i] = uint16(given[2+2*i]) | uint16(given[3+2*i])<<8
	}
	if text := string(utf16.Decode(units)); text != plan.Files[0].Text || !strings.Contains(text, "<LogonType>InteractiveToken</LogonType>") {
		t.Errorf("schtasks was given:\n%s", text)
	}

	query := []string{"schtasks", "/Query", "/TN", plan.Name}
	if _, err := Uninstall(context.Background(), plan, Report{}); err != nil {
		t.Fatal(err)
	}
	wantCommands(t, "uninstall", ran(), [][]string{query, {"schtasks", "/Delete", "/TN", plan.Name, "/F"}})
	t.Setenv("FAKE_FAIL", "schtasks /Query")
	if _, err := Uninstall(context.Background(), plan, Report{}); err != nil {
		t.Fatal(err)
	}
	wantCommands(t, "uninstall of no task", ran(), [][]string{query})
}
