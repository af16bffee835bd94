package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
)

func manPage(t *testing.T, tool cli.Tool) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := cli.WriteManPage(&b, tool, "v1.2.0", "2026-01-31"); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestManPageGolden: each tool's man page is the reviewed one, and it documents every
// flag -h lists, the examples and the exit codes.
func TestManPageGolden(t *testing.T) {
	for _, tool := range cli.Tools {
		page := manPage(t, tool)
		checkGolden(t, "man/"+tool.Name+".1", page)
		text := string(page)
		for _, f := range helpFlags(t, tool) {
			if !strings.Contains(text, `\fB`+strings.ReplaceAll(f, "-", `\-`)+`\fR`) {
				t.Errorf("%s(1) does not document %s", tool.Name, f)
			}
		}
		for _, want := range []string{".TH ENTRACLAW", ".SH NAME\n" + strings.ReplaceAll(tool.Name, "-", `\-`) + ` \- `,
			".SH EXAMPLES", ".SH EXIT STATUS\n0 ok", ".SH SEE ALSO"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s(1) lacks %q", tool.Name, want)
			}
		}
	}
}

// TestManPageRenders: groff (what man uses) and man -l render each page without a
// warning, whatever -ww finds.
func TestManPageRenders(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff is not installed")
	}
	dir := t.TempDir()
	for _, tool := range cli.Tools {
		path := filepath.Join(dir, tool.Name+".1")
		if err := os.WriteFile(path, manPage(t, tool), 0o644); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", path)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Errorf("groff -man %s: %v\n%s", tool.Name, err, stderr.String())
		}
		// Plain text: no SGR or overstrike bold, and \- (U+2212 on a UTF-8 terminal) as -.
		plain := regexp.MustCompile("\x1b\\[[0-9;]*m|.\b").ReplaceAllString(string(out), "")
		plain = strings.ReplaceAll(plain, "\u2212", "-")
		if !strings.Contains(plain, "SYNOPSIS") || !strings.Contains(plain, "-state-file path") {
			t.Errorf("groff -man %s rendered:\n%s", tool.Name, out)
		}
		if man, err := exec.LookPath("man"); err == nil {
			cmd := exec.Command(man, "-l", path)
			cmd.Env = append(os.Environ(), "MANWIDTH=80", "MAN_KEEP_FORMATTING=", "PAGER=cat", "MANPAGER=cat")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if out, err := cmd.Output(); err != nil || stderr.Len() > 0 || !strings.Contains(string(out), "EXIT STATUS") {
				t.Errorf("man -l %s: %v\n%s", tool.Name, err, stderr.String())
			}
		}
	}
}
