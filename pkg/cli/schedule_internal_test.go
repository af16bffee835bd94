package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/entraclaw/entraclaw-cli/pkg/schedule"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// fakeSystemctl records its arguments, tab-separated, one line per run, in $FAKE_LOG.
const fakeSystemctl = `#!/bin/sh
line=$(basename "$0")
for a in "$@"; do line="$line	$a"; done
printf '%s\n' "$line" >> "$FAKE_LOG"
`

// scheduleWorld is a user with a home, config and state directories of its own, a
// state file outside them, and a fake systemctl first on PATH.
type scheduleWorld struct {
	stateFile, configDir, log string
}

func newScheduleWorld(t *testing.T) *scheduleWorld {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("runs systemd's fake; pkg/schedule tests the other platforms' files")
	}
	tmp := t.TempDir()
	w := &scheduleWorld{
		stateFile: filepath.Join(tmp, "repo", ".entraclaw-state.json"),
		configDir: filepath.Join(tmp, "config"),
		log:       filepath.Join(tmp, "log"),
	}
	bin := filepath.Join(tmp, "bin")
	for _, dir := range []string{bin, filepath.Dir(w.stateFile)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(fakeSystemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_LOG", w.log)
	t.Setenv("HOME", filepath.Join(tmp, "home"))
	t.Setenv("XDG_CONFIG_HOME", w.configDir)
	t.Setenv("XDG_STATE_HOME", filepath.Join(tmp, "state"))
	return w
}

func (w *scheduleWorld) writeStateFile(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(w.stateFile, []byte(`{"TENANT_ID": "11111111-1111-4111-8111-111111111111"}`), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ran returns the commands the fake systemctl ran since the last call.
func (w *scheduleWorld) ran() [][]string {
	data, _ := os.ReadFile(w.log)
	os.Remove(w.log)
	var cmds [][]string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line != "" {
			cmds = append(cmds, strings.Split(line, "\t"))
		}
	}
	return cmds
}

// scheduleCommon parses args as entraclaw-migrate would, with output to out and errOut.
func scheduleCommon(t *testing.T, args []string, out, errOut *bytes.Buffer) (*Common, Stdio) {
	t.Helper()
	stdio := Stdio{In: strings.NewReader(""), Out: out, Err: errOut}
	fs, c := NewFlagSet("entraclaw-migrate", migrateSummary, stdio)
	if err := c.Parse(fs, args); err != nil {
		t.Fatal(err)
	}
	return c, stdio
}

// TestScheduleBadAction: an unknown action is a usage error naming the three.
func TestScheduleBadAction(t *testing.T) {
	var out, errOut bytes.Buffer
	c, stdio := scheduleCommon(t, nil, &out, &errOut)
	err := runSchedule(context.Background(), "instal", c, stdio)
	var e *Error
	if !errors.As(err, &e) || e.Code != ExitUsage || !strings.Contains(e.Msg, "install, uninstall or print") {
		t.Errorf("runSchedule(instal) = %v", err)
	}
}

// TestScheduleInstallNeedsStateFile: with no state file, install is "not set up" (3).
func TestScheduleInstallNeedsStateFile(t *testing.T) {
	w := newScheduleWorld(t)
	var out, errOut bytes.Buffer
	c, stdio := scheduleCommon(t, []string{"-state-file", w.stateFile}, &out, &errOut)
	err := runSchedule(context.Background(), scheduleInstall, c, stdio)
	var e *Error
	if !errors.As(err, &e) || e.Code != ExitNotSetUp || !strings.Contains(e.Hint, "entraclaw-migrate") {
		t.Errorf("install without a state file = %v", err)
	}
	if got := w.ran(); got != nil {
		t.Errorf("ran %q", got)
	}
}

// TestScheduleInstallUninstall: install writes a service that runs this binary with
// -renew for the resolved state file and the flags the job needs, enables the timer,
// and records it; uninstall disables it and clears the record. Nothing goes to stdout.
func TestScheduleInstallUninstall(t *testing.T) {
	w := newScheduleWorld(t)
	w.writeStateFile(t)
	writeConfig(t, w.configDir, "cloud usgov\n")
	var out, errOut bytes.Buffer
	c, stdio := scheduleCommon(t, []string{"-state-file", w.stateFile, "-keyring-service", "team cert"}, &out, &errOut)
	resolved, _ := state.ResolvedPath(w.stateFile)
	name := "entraclaw-renew-" + schedule.Hash8(resolved)
	unitDir := filepath.Join(w.configDir, "systemd", "user")

	if err := runSchedule(context.Background(), scheduleInstall, c, stdio); err != nil {
		t.Fatalf("install: %v\n%s", err, errOut.String())
	}
	wantRan(t, "install", w.ran(), [][]string{{"systemctl", "--user", "daemon-reload"}, {"systemctl", "--user", "enable", "--now", name + ".timer"}})
	service, err := os.ReadFile(filepath.Join(unitDir, name+".service"))
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	wantExec := "ExecStart=" + exe + " -renew -state-file " + resolved + ` -keyring-service "team cert"` + "\n"
	if !strings.Contains(string(service), wantExec) || !strings.Contains(string(service), "Environment=XDG_STATE_HOME=") {
		t.Errorf("service:\n%s\nwant the line %s", service, wantExec)
	}
	if rec, _ := state.LoadRenewal(resolved); rec == nil || rec.Schedule != "systemd user timer "+filepath.Join(unitDir, name+".timer") {
		t.Errorf("renewal record after install: %+v", rec)
	}
	if !strings.Contains(errOut.String(), "Installed systemd user timer") || out.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}

	if err := runSchedule(context.Background(), scheduleUninstall, c, stdio); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, errOut.String())
	}
	wantRan(t, "uninstall", w.ran(), [][]string{{"systemctl", "--user", "disable", "--now", name + ".timer"}, {"systemctl", "--user", "daemon-reload"}})
	if _, err := os.Stat(filepath.Join(unitDir, name+".service")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the service is still there: %v", err)
	}
	if rec, _ := state.LoadRenewal(resolved); rec == nil || rec.Schedule != "" {
		t.Errorf("renewal record after uninstall: %+v", rec)
	}
}

// TestSchedulePrintJSON: print -o json lists the files and commands install would write
// and run, and installs and records nothing.
func TestSchedulePrintJSON(t *testing.T) {
	w := newScheduleWorld(t)
	w.writeStateFile(t)
	var out, errOut bytes.Buffer
	c, stdio := scheduleCommon(t, []string{"-state-file", w.stateFile, "-o", "json"}, &out, &errOut)
	if err := runSchedule(context.Background(), schedulePrint, c, stdio); err != nil {
		t.Fatal(err)
	}
	var got scheduleResult
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	resolved, _ := state.ResolvedPath(w.stateFile)
	name := "entraclaw-renew-" + schedule.Hash8(resolved)
	unitDir := filepath.Join(w.configDir, "systemd", "user")
	want := scheduleResult{
		Action:   schedulePrint,
		Files:    []string{filepath.Join(unitDir, name+".service"), filepath.Join(unitDir, name+".timer")},
		Commands: [][]string{{"systemctl", "--user", "daemon-reload"}, {"systemctl", "--user", "enable", "--now", name + ".timer"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("print -o json = %+v, want %+v", got, want)
	}
	if _, err := os.Stat(unitDir); !errors.Is(err, os.ErrNotExist) || w.ran() != nil {
		t.Errorf("print installed something: %v", err)
	}
	if rec, _ := state.LoadRenewal(resolved); rec != nil {
		t.Errorf("print recorded %+v", rec)
	}
}

// TestScheduleArgs: the job gets the keyring and cloud settings given by flag or
// environment, not those of the config file (the job reads it) nor defaults, and a
// named config file.
func TestScheduleArgs(t *testing.T) {
	w := newScheduleWorld(t)
	writeConfig(t, w.configDir, "authority-host https://login.example.test\n")
	t.Setenv("ENTRACLAW_CLOUD", "usgov")
	t.Setenv("ENTRACLAW_CA_FILE", "proxy.pem")
	var out, errOut bytes.Buffer
	c, _ := scheduleCommon(t, []string{"-keyring-service", "team", "-graph-endpoint", "https://graph.example.test"}, &out, &errOut)
	wd, _ := os.Getwd()
	want := []string{"-keyring-service", "team", "-cloud", "usgov", "-graph-endpoint", "https://graph.example.test", "-ca-file", filepath.Join(wd, "proxy.pem")}
	if got := scheduleArgs(c); !reflect.DeepEqual(got, want) {
		t.Errorf("scheduleArgs = %q, want %q", got, want)
	}

	named := filepath.Join(t.TempDir(), "team.conf")
	if err := os.WriteFile(named, []byte("cloud china\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENTRACLAW_CLOUD", "")
	t.Setenv("ENTRACLAW_CA_FILE", "")
	c, _ = scheduleCommon(t, []string{"-config", named, "-keyring-service", "entraclaw-provisioner-cert"}, &out, &errOut)
	if got, want := scheduleArgs(c), []string{"-config", named}; !reflect.DeepEqual(got, want) {
		t.Errorf("scheduleArgs with a named config file = %q, want %q", got, want)
	}
}

func writeConfig(t *testing.T, configDir, text string) {
	t.Helper()
	path := filepath.Join(configDir, "entraclaw", "config")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func wantRan(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s ran %q, want %q", what, got, want)
	}
}
