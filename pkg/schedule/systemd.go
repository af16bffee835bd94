package schedule

import (
	"fmt"
	"path"
	"strings"
)

// systemdPlan is a systemd user timer and its one-shot service in
// $XDG_CONFIG_HOME/systemd/user. A user timer runs only while the user has a session
// unless lingering is on (Install warns); Persistent=true runs a run missed while the
// machine was off (or the user away) at the next chance.
func systemdPlan(job Job) (*Plan, error) {
	if err := systemdExecutable(job.Executable); err != nil {
		return nil, err
	}
	name := "entraclaw-renew-" + Hash8(job.StatePath)
	configHome := job.ConfigHome
	if configHome == "" || !path.IsAbs(configHome) {
		configHome = joinUnix(job.Home, ".config")
	}
	dir := joinUnix(configHome, "systemd", "user")
	service := joinUnix(dir, name+".service")
	timer := joinUnix(dir, name+".timer")
	header := "# Written by `entraclaw-migrate -schedule install`; `entraclaw-migrate -schedule uninstall` removes it.\n"
	desc := "Description=" + systemdSpecifiers(job.description()) + "\n"

	var svc strings.Builder
	svc.WriteString(header + "[Unit]\n" + desc + "\n[Service]\nType=oneshot\n")
	for _, kv := range job.Environment {
		svc.WriteString("Environment=" + systemdQuote(kv, false) + "\n")
	}
	svc.WriteString("ExecStart=" + systemdCommandLine(job.command()) + "\n")

	tim := header + "[Unit]\n" + desc +
		"\n[Timer]\nOnCalendar=daily\nRandomizedDelaySec=1h\nPersistent=true\n" +
		"\n[Install]\nWantedBy=timers.target\n"

	return &Plan{
		GOOS:   "linux",
		Kind:   KindSystemd,
		Name:   name,
		Files:  []File{{Path: service, Text: svc.String()}, {Path: timer, Text: tim}},
		Record: KindSystemd + " " + timer,
		InstallCommands: [][]string{
			{"systemctl", "--user", "daemon-reload"},
			{"systemctl", "--user", "enable", "--now", name + ".timer"},
		},
		UninstallCommands: [][]string{
			{"systemctl", "--user", "disable", "--now", name + ".timer"},
			{"systemctl", "--user", "daemon-reload"},
		},
		user: job.User,
	}, nil
}

// systemdCommandLine is argv as an ExecStart= value: each word quoted for systemd's
// splitting, '%' doubled so none is taken for a specifier, and in the arguments (systemd
// expands variables there, not in the executable) '$' doubled so none is taken for a
// variable.
func systemdCommandLine(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = systemdQuote(a, i > 0)
	}
	return strings.Join(words, " ")
}

// systemdExecutable checks that systemd accepts exe as an ExecStart= executable: it
// refuses paths with quotes, backslashes or control characters, however quoted.
func systemdExecutable(exe string) error {
	if strings.ContainsAny(exe, "\"'") || hasControl(exe) {
		return fmt.Errorf("systemd cannot run %q: it refuses executables whose path holds quotes, backslashes or control characters; install entraclaw-migrate elsewhere (such as ~/.local/bin) and run -schedule from there", exe)
	}
	return nil
}

// systemdQuote quotes one word of a unit file setting. Words that systemd would split,
// unquote or unescape are put in double quotes with C-style escapes; '%' is always
// doubled, and '$' too when the setting expands variables (ExecStart=).
func systemdQuote(s string, expandsVariables bool) string {
	s = systemdSpecifiers(s)
	if expandsVariables {
		s = strings.ReplaceAll(s, "$", "$$")
	}
	if s == ";" { // a lone ';' would separate two commands
		return `\;`
	}
	if s != "" && !strings.ContainsAny(s, " \t\n\r\"'\\") && !hasControl(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteRune('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				b.WriteString(`\x`)
				b.WriteString(hex2(byte(r)))
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// systemdSpecifiers doubles '%', which systemd would expand as a specifier.
func systemdSpecifiers(s string) string { return strings.ReplaceAll(s, "%", "%%") }

func hasControl(s string) bool { return oneLine(s) != s }

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&0xf]})
}
