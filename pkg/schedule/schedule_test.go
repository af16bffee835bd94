package schedule

import (
	"bytes"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the generator")

// goldenJobs are one job per OS, with the characters each scheduler's quoting must
// carry through: spaces, '%', '$', quotes, a trailing backslash.
var goldenJobs = map[string]Job{
	"linux": {
		Executable:  "/opt/entraclaw tools/bin/entraclaw-migrate",
		StatePath:   "/home/alice/src/my app/.entraclaw-state.json",
		Args:        []string{"-keyring-service", `team 100% "$cert"`, "-cloud", "usgov", "-ca-file", `/etc/ssl/proxy\ca.pem`},
		Home:        "/home/alice",
		Environment: []string{"XDG_STATE_HOME=/home/alice/state dir"},
		StateDir:    "/home/alice/state dir/entraclaw/0123456789abcdef0123456789abcdef",
		User:        "alice",
		UID:         1000,
	},
	"darwin": {
		Executable: "/usr/local/bin/entraclaw-migrate",
		StatePath:  "/Users/alice/src/R&D <app>/.entraclaw-state.json",
		Args:       []string{"-keyring-service", `team "cert"`},
		Home:       "/Users/alice",
		StateDir:   "/Users/alice/Library/Application Support/entraclaw/0123456789abcdef0123456789abcdef",
		User:       "alice",
		UID:        501,
	},
	"windows": {
		Executable: `C:\Program Files\entraclaw\entraclaw-migrate.exe`,
		StatePath:  `C:\Users\alice\src\my app\.entraclaw-state.json`,
		Args:       []string{"-keyring-service", `team "cert"`, "-ca-file", `C:\certs dir\`},
		StateDir:   `C:\Users\alice\AppData\Local\entraclaw\0123456789abcdef0123456789abcdef`,
		User:       `CONTOSO\alice`,
	},
}

// TestGolden: each OS's files and commands, as print shows them, are the reviewed ones
// in testdata/<goos>.golden (go test -run Golden -update rewrites them).
func TestGolden(t *testing.T) {
	for goos, job := range goldenJobs {
		t.Run(goos, func(t *testing.T) {
			plan, err := Generate(goos, job)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := Print(&out, plan); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", goos+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != string(want) {
				t.Errorf("print output differs from %s (run with -update after checking it):\n%s", golden, got)
			}
		})
	}
}

// TestNames: jobs are named after the first 8 hex digits of the SHA-256 of the state
// file's path, on every OS, and what the renewal record says names the job.
func TestNames(t *testing.T) {
	const hash = "d986a3c0" // sha256("/srv/app/.entraclaw-state.json")[:4]
	job := Job{Executable: "/bin/entraclaw-migrate", StatePath: "/srv/app/.entraclaw-state.json", Home: "/home/u", StateDir: "/s", UID: 7}
	if got := Hash8(job.StatePath); got != hash {
		t.Fatalf("Hash8 = %s, want %s", got, hash)
	}
	cases := []struct {
		goos, name, record string
	}{
		{"linux", "entraclaw-renew-" + hash, "systemd user timer /home/u/.config/systemd/user/entraclaw-renew-" + hash + ".timer"},
		{"darwin", "com.entraclaw.renew." + hash, "launchd agent /home/u/Library/LaunchAgents/com.entraclaw.renew." + hash + ".plist"},
		{"windows", `\entraclaw\renew-` + hash, `scheduled task \entraclaw\renew-` + hash},
	}
	for _, c := range cases {
		plan, err := Generate(c.goos, job)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Name != c.name || plan.Record != c.record {
			t.Errorf("%s: name %q record %q, want %q %q", c.goos, plan.Name, plan.Record, c.name, c.record)
		}
	}
	job.ConfigHome = "/cfg"
	if plan, _ := Generate("linux", job); !strings.HasPrefix(plan.Files[0].Path, "/cfg/systemd/user/") {
		t.Errorf("XDG_CONFIG_HOME is not used: %s", plan.Files[0].Path)
	}
	job.Executable = `/home/u/it's/entraclaw-migrate`
	if _, err := Generate("linux", job); err == nil || !strings.Contains(err.Error(), "refuses executables") {
		t.Errorf("an executable systemd refuses: %v", err)
	}
	if _, err := Generate("freebsd", job); err == nil || !strings.Contains(err.Error(), "cron") {
		t.Errorf("freebsd: %v, want an error that points to cron", err)
	}
}

// TestTimeOfDaySpreads: launchd and Task Scheduler start times differ between state
// files (a fleet does not renew at one minute) and stay within a day.
func TestTimeOfDaySpreads(t *testing.T) {
	seen := map[[2]int]bool{}
	for i := range 50 {
		h, m := timeOfDay("/home/u" + strings.Repeat("x", i) + "/.entraclaw-state.json")
		if h < 0 || h > 23 || m < 0 || m > 59 {
			t.Fatalf("time of day %d:%d", h, m)
		}
		seen[[2]int{h, m}] = true
	}
	if len(seen) < 40 {
		t.Errorf("50 state files start at only %d distinct times", len(seen))
	}
}

// TestWindowsArg: arguments survive the C runtime's command-line parsing.
func TestWindowsArg(t *testing.T) {
	cases := map[string]string{
		"plain":          "plain",
		"":               `""`,
		"two words":      `"two words"`,
		`C:\dir\`:        `C:\dir\`,
		`C:\a dir\`:      `"C:\a dir\\"`,
		`say "hi"`:       `"say \"hi\""`,
		`back\"quote`:    `"back\\\"quote"`,
		`tab	in`:         "\"tab\tin\"",
		`a\\b c`:         `"a\\b c"`,
		`ends\\ with  \`: `"ends\\ with  \\"`,
	}
	for in, want := range cases {
		if got := windowsArg(in); got != want {
			t.Errorf("windowsArg(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestSystemdQuote: words systemd would split, expand or unescape are quoted.
func TestSystemdQuote(t *testing.T) {
	cases := []struct {
		in        string
		expandVar bool
		want      string
	}{
		{"/usr/bin/x", true, "/usr/bin/x"},
		{"a b", true, `"a b"`},
		{"100%", true, "100%%"},
		{"$HOME", true, "$$HOME"},
		{"$HOME", false, "$HOME"},
		{`say "hi"`, true, `"say \"hi\""`},
		{`it's`, true, `"it's"`},
		{`c:\x`, true, `"c:\\x"`},
		{"line\nbreak", true, `"line\nbreak"`},
		{"bell\a", true, `"bell\x07"`},
		{"", true, `""`},
		{";", true, `\;`},
	}
	for _, c := range cases {
		if got := systemdQuote(c.in, c.expandVar); got != c.want {
			t.Errorf("systemdQuote(%q, %v) = %s, want %s", c.in, c.expandVar, got, c.want)
		}
	}
}

// TestEncodeUTF16: the task XML is UTF-16LE with a byte order mark.
func TestEncodeUTF16(t *testing.T) {
	got := encodeUTF16("a€\U0001F600")
	want := []byte{0xff, 0xfe, 'a', 0, 0xac, 0x20, 0x3d, 0xd8, 0x00, 0xde}
	if !bytes.Equal(got, want) {
		t.Errorf("encodeUTF16 = % x, want % x", got, want)
	}
}

// TestXMLWellFormed: the plist and the task XML parse, whatever the paths hold.
func TestXMLWellFormed(t *testing.T) {
	for _, goos := range []string{"darwin", "windows"} {
		job := goldenJobs[goos]
		job.StatePath += "\n<&>\"'--]]>"
		plan, err := Generate(goos, job)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(plan.Files[0].Text, `encoding="UTF-16"`, `encoding="UTF-8"`, 1)
		dec := xml.NewDecoder(strings.NewReader(text))
		for {
			_, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v\n%s", goos, err, text)
			}
		}
	}
}

// TestSystemdAnalyzeVerify: systemd itself accepts the units, and finds the executable
// through ExecStart's quoting of a path with spaces, '%' and '$'.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze on this machine")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, `bin 100% $HOME`, "entraclaw-migrate")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	job := goldenJobs["linux"]
	job.Executable, job.ConfigHome = exe, filepath.Join(dir, "config")
	plan, err := Generate("linux", job)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFiles(plan, Report{}, &Done{}); err != nil {
		t.Fatal(err)
	}
	units := []string{plan.Files[1].Path, plan.Files[0].Path}
	out, err := verifyUnits(analyze, "--user", units)
	if environmental(out) {
		// A user manager needs $XDG_RUNTIME_DIR (a login session): the system
		// manager's checks of the same files are the next best.
		t.Logf("systemd-analyze --user cannot run here (%s); verifying as system units", strings.TrimSpace(out))
		out, err = verifyUnits(analyze, "", units)
	}
	if environmental(out) {
		t.Skipf("systemd-analyze cannot run in this environment: %s", strings.TrimSpace(out))
	}
	if err != nil || out != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s\n%s", err, out, plan.Files[0].Text)
	}
}

func verifyUnits(analyze, mode string, units []string) (string, error) {
	args := []string{"verify"}
	if mode != "" {
		args = append(args, mode)
	}
	out, err := exec.Command(analyze, append(args, units...)...).CombinedOutput()
	return string(out), err
}

// environmental reports whether systemd-analyze's output is about the machine (no
// runtime directory, no manager, no bus) rather than about the units.
func environmental(out string) bool {
	for _, s := range []string{"Failed to initialize manager", "RuntimeDirectory", "Failed to connect to bus", "Failed to set up the root directory", "Operation not permitted"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}
