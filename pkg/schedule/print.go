package schedule

import (
	"fmt"
	"io"
	"strings"
)

// Print writes the plan for people: each file under a comment line naming it, then
// the commands install would run. It installs nothing.
func Print(w io.Writer, p *Plan) error {
	var b strings.Builder
	for i, f := range p.Files {
		if i > 0 {
			b.WriteString("\n")
		}
		note := ""
		switch {
		case f.Temporary && f.UTF16:
			note = " (written as UTF-16 for the command below, then removed)"
		case f.Temporary:
			note = " (given to the command below, then removed)"
		}
		fmt.Fprintf(&b, "# %s%s\n", oneLine(f.Path), note)
		b.WriteString(strings.ReplaceAll(f.Text, "\r\n", "\n"))
	}
	b.WriteString("\n# install runs:\n")
	for _, argv := range p.InstallCommands {
		b.WriteString("#   " + oneLine(strings.Join(argv, " ")) + "\n")
	}
	b.WriteString("# uninstall runs:\n")
	for _, argv := range p.UninstallCommands {
		b.WriteString("#   " + oneLine(strings.Join(argv, " ")) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
