package cli

import (
	"fmt"
	"io"
	"strings"
)

// manNames is the NAME line of each tool's man page: what it does, in a few words.
var manNames = map[string]string{
	"entraclaw-provisioner-token": "print a Microsoft Graph access token of the provisioner app, minted with its certificate",
	"entraclaw-migrate":           "move the provisioner app from a client secret to a certificate in the OS keyring",
	"entraclaw-verify":            "run the migration runbook's checks, or print this machine's status",
	"entraclaw-rollback":          "return the provisioner app to a short-lived client secret in an emergency",
}

// WriteManPage writes tool's man page (section 1, troff -man) made from what its -h prints:
// the summary, the flag table and the examples. version and date (YYYY-MM-DD) go in the
// page's header; a release passes its own, so two builds of one commit are identical.
func WriteManPage(w io.Writer, tool Tool, version, date string) error {
	spec, err := describe(tool)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, manPage(spec, version, date))
	return err
}

func manPage(spec commandSpec, version, date string) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".\\\" %s(1): generated from its -h by scripts/packaging/gendocs; do not edit.\n", spec.name)
	fmt.Fprintf(&b, ".TH %s 1 %s %s \"User Commands\"\n", roff(strings.ToUpper(spec.name)),
		roffQuoted(date), roffQuoted("entraclaw "+version))
	// Ragged right and no hyphenation: flag values such as github:ORG/REPO:ref:… cannot be
	// spread, and a hyphen added to entraclaw-rollback would read as part of its name.
	b.WriteString(".ad l\n.nh\n")
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", roff(spec.name), roff(manNames[spec.name]))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n[\\fIflags\\fR]\n", roff(spec.name))
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString(roffText(spec.summary))
	b.WriteString(".SH OPTIONS\n")
	b.WriteString(".PP\nMost flags are also read from the environment variable named below them, some also from\n" +
		"the config file (a \\fIname value\\fR line). A flag beats its variable, a variable beats the config file.\n" +
		"Go's flag syntax: \\fB\\-flag value\\fR, \\fB\\-flag=value\\fR, and \\fB\\-\\-flag\\fR alike.\n")
	for _, f := range spec.flags {
		b.WriteString(manFlag(f))
	}
	if ex := examples[spec.name]; ex != "" {
		fmt.Fprintf(&b, ".SH EXAMPLES\n.nf\n.RS 2\n%s.RE\n.fi\n", roffLines(strings.TrimRight(ex, "\n")))
	}
	b.WriteString(".SH FILES\n.TP\n.I <user config dir>/entraclaw/config\n" +
		"Per-machine settings, \\fIname value\\fR lines (\\fB\\-config\\fR names another file).\n" +
		".TP\n.I .entraclaw\\-state.json\nThe state file: the nearest one walking up from the current directory (\\fB\\-state\\-file\\fR).\n")
	fmt.Fprintf(&b, ".SH EXIT STATUS\n%s.\n", roff(exitCodes))
	b.WriteString(".SH SEE ALSO\n")
	var see []string
	for _, t := range Tools {
		if t.Name != spec.name {
			see = append(see, fmt.Sprintf(".BR %s (1)", roff(t.Name)))
		}
	}
	b.WriteString(strings.Join(see, ",\n") + "\n")
	b.WriteString(".PP\nThe README and docs/operator\\-guide.md of https://github.com/entraclaw/entraclaw\\-cli.\n")
	return b.String()
}

// manFlag is one flag of OPTIONS: its names and value, then its usage, default and source.
func manFlag(f flagSpec) string {
	var names []string
	for _, n := range f.names {
		names = append(names, "\\fB\\-"+roff(n)+"\\fR")
	}
	head := strings.Join(names, ", ")
	if f.takesValue() {
		head += " \\fI" + roff(f.arg) + "\\fR"
	}
	text := f.usage
	if f.def != "" {
		text += " (default " + f.def + ")"
	}
	source := "Never read from the environment."
	if f.env != "" {
		source = "Environment: " + f.env + "."
		if f.config {
			source = "Environment: " + f.env + "; config file: " + f.names[0] + "."
		}
	}
	return fmt.Sprintf(".TP\n%s\n%s\n.br\n%s\n", head, roff(text), roff(source))
}

// roffText is a -h summary as man text: paragraphs at blank lines, indented lines (a
// list, a command) kept as they are.
func roffText(summary string) string {
	var b strings.Builder
	verbatim := false
	b.WriteString(".PP\n")
	for _, line := range strings.Split(summary, "\n") {
		indented := strings.HasPrefix(line, "  ")
		switch {
		case strings.TrimSpace(line) == "":
			if verbatim {
				b.WriteString(".fi\n.RE\n")
				verbatim = false
			}
			b.WriteString(".PP\n")
			continue
		case indented && !verbatim:
			b.WriteString(".RS 2\n.nf\n")
			verbatim = true
		case !indented && verbatim:
			b.WriteString(".fi\n.RE\n")
			verbatim = false
		}
		if verbatim {
			line = strings.TrimPrefix(line, "    ")
		}
		b.WriteString(roffLine(line) + "\n")
	}
	if verbatim {
		b.WriteString(".fi\n.RE\n")
	}
	return b.String()
}

// roffLines escapes each line of s and ends each with a newline.
func roffLines(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		b.WriteString(roffLine(line) + "\n")
	}
	return b.String()
}

// roffLine is roff of one input line, which must not start a request (. or ').
func roffLine(line string) string {
	s := roff(line)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = "\\&" + s
	}
	return s
}

// roff escapes text for troff: backslashes, hyphens as the minus sign that command lines
// need (so copied flags work), and any non-ASCII character by its Unicode name.
func roff(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r > 0x7e:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// roffQuoted is s as one quoted macro argument.
func roffQuoted(s string) string { return `"` + strings.ReplaceAll(roff(s), `"`, `\(dq`) + `"` }
