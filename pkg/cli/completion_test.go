package cli_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/completion and testdata/man from the code")

// checkGolden compares got with testdata/name (or rewrites it under -update-golden).
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run 'Completion|Man' ./pkg/cli -args -update-golden)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the code's output (-update-golden rewrites it after review):\n%s", path, got)
	}
}

// completionFile is the script a shell reads, as gendocs names it.
func completionFile(t *testing.T, tool cli.Tool, shell string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := cli.WriteCompletion(&b, tool, shell); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCompletionGolden: each tool's script for each shell is the reviewed one.
func TestCompletionGolden(t *testing.T) {
	for _, tool := range cli.Tools {
		for _, shell := range cli.CompletionShells() {
			checkGolden(t, "completion/"+tool.Name+"."+shell, completionFile(t, tool, shell))
		}
	}
}

// bashComplete sources the tools' bash completion in a non-interactive bash and returns,
// for each command line (the last word is completed, "" for a new word), the sorted
// candidates, as a tab pressed there would list them. bash runs in a directory holding
// one file, state.json.bak.
func bashComplete(t *testing.T, lines ...string) []string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir, work := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "state.json.bak"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	script := "set -u\n"
	for _, tool := range cli.Tools {
		path := filepath.Join(dir, tool.Name)
		if err := os.WriteFile(path, completionFile(t, tool, "bash"), 0o644); err != nil {
			t.Fatal(err)
		}
		script += "source " + path + "\n"
	}
	// complete -p names the function bash would call; COMP_WORDS/COMP_CWORD are what
	// bash hands it for the line.
	script += `complete_line() {
    COMP_WORDS=($1); [[ $1 == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
    local spec; spec=$(complete -p "${COMP_WORDS[0]}") || return 1
    set -- $spec; "${@: -2:1}" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort | tr '\n' ' '; echo
}
`
	for _, line := range lines {
		script += "complete_line " + shellWord(line) + "\n"
	}
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script)
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(got) != len(lines) {
		t.Fatalf("bash printed %d lines for %d command lines:\n%s", len(got), len(lines), out)
	}
	for i := range got {
		got[i] = strings.TrimSpace(got[i])
	}
	return got
}

func shellWord(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestCompletionBash: the bash script completes flags, their values and file names.
func TestCompletionBash(t *testing.T) {
	cases := []struct{ line, want string }{
		{"entraclaw-migrate -ro", "-rotate"},
		{"entraclaw-verify -o ", "json text"},
		{"entraclaw-verify -output js", "json"},
		{"entraclaw-migrate --ro", "--rotate"},
		{"entraclaw-migrate -key-store ", "keyring tpm tpm-file"},
		{"entraclaw-migrate -schedule ", "install print uninstall"},
		{"entraclaw-provisioner-token -cloud ", "china public usgov"},
		{"entraclaw-provisioner-token -token-cache k", "kernel keyring"},
		{"entraclaw-provisioner-token -credential ", "auto certificate federated"},
		{"entraclaw-rollback -completion ", "bash fish powershell zsh"},
		{"entraclaw-rollback -backup state", "state.json.bak"},
		{"entraclaw-verify -state-file ", "state.json.bak"},
		{"entraclaw-verify -ca-file st", "state.json.bak"},
		{"entraclaw-verify -config s", "state.json.bak"},
		{"entraclaw-verify -federated-token-file s", "state.json.bak"},
		{"entraclaw-verify -tenant-id ", ""},
		{"entraclaw-rollback -ye", "-yes"},
	}
	var lines []string
	for _, c := range cases {
		lines = append(lines, c.line)
	}
	got := bashComplete(t, lines...)
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("%q<TAB> = %q, want %q", c.line, got[i], c.want)
		}
	}
}

// helpFlags are the flags a binary's -h lists.
func helpFlags(t *testing.T, tool cli.Tool) []string {
	t.Helper()
	var out bytes.Buffer
	isolateConfig(t)
	if code := cli.Run(context.Background(), tool.Name, tool.Run, []string{"-h"}, cli.Stdio{Out: &out, Err: &out}); code != 0 {
		t.Fatalf("%s -h: exit %d\n%s", tool.Name, code, out.String())
	}
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^  (-.*)$`).FindAllStringSubmatch(out.String(), -1) {
		for _, name := range strings.Split(m[1], ", ") {
			flags = append(flags, strings.Fields(name)[0])
		}
	}
	if len(flags) < 15 {
		t.Fatalf("%s -h lists %d flags: %v", tool.Name, len(flags), flags)
	}
	slices.Sort(flags)
	return flags
}

// TestCompletionHasEveryHelpFlag: each script offers exactly the flags -h lists.
func TestCompletionHasEveryHelpFlag(t *testing.T) {
	for _, tool := range cli.Tools {
		want := helpFlags(t, tool)
		got := strings.Fields(bashComplete(t, tool.Name+" -")[0])
		if !slices.Equal(got, want) {
			t.Errorf("%s -<TAB> = %v\n-h lists %v", tool.Name, got, want)
		}
		for _, shell := range []string{"zsh", "fish", "powershell"} {
			script := string(completionFile(t, tool, shell))
			for _, f := range want {
				pattern := map[string]string{"zsh": `'(\(.*\))?` + f + `\[`, "fish": ` -o ` + f[1:] + ` `, "powershell": `'` + f + `' = `}[shell]
				if !regexp.MustCompile(pattern).MatchString(script) {
					t.Errorf("%s's %s completion lacks %s", tool.Name, shell, f)
				}
			}
		}
	}
}

// TestCompletionFlag: `<binary> -completion SHELL` prints the script and exits 0; another
// shell is a usage error; ENTRACLAW_COMPLETION changes nothing (it chooses what runs).
func TestCompletionFlag(t *testing.T) {
	for _, shell := range cli.CompletionShells() {
		out, err := exec.Command(filepath.Join(binDir, "entraclaw-migrate"), "-completion", shell).Output()
		if err != nil {
			t.Fatalf("entraclaw-migrate -completion %s: %v", shell, err)
		}
		checkGolden(t, "completion/entraclaw-migrate."+shell, out)
	}
	cmd := exec.Command(filepath.Join(binDir, "entraclaw-verify"), "-completion", "tcsh")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "-completion must be bash, zsh, fish or powershell") {
		t.Errorf("-completion tcsh: exit %d (%v)\n%s", code, err, out)
	}
	t.Setenv("ENTRACLAW_COMPLETION", "bash")
	c, _, printed, err := parseCommon(t)
	if err != nil || c.Completion != "" || printed != "" {
		t.Errorf("with ENTRACLAW_COMPLETION=bash: -completion %q, printed %q, err %v", c.Completion, printed, err)
	}
}
