package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
	"github.com/entraclaw/entraclaw-cli/pkg/token"
	"github.com/entraclaw/entraclaw-cli/pkg/verify"
)

// Tool is one of the binaries a release ships: its name and what it runs.
type Tool struct {
	Name string
	Run  Command
}

// Tools are the four binaries of a release (the fake is not shipped).
var Tools = []Tool{
	{"entraclaw-provisioner-token", RunToken},
	{"entraclaw-migrate", RunMigrate},
	{"entraclaw-verify", RunVerify},
	{"entraclaw-rollback", RunRollback},
}

// completionShells are the shells -completion writes a script for.
var completionShells = []string{"bash", "zsh", "fish", "powershell"}

// commandSpec is a binary's -h as data: its summary and flag table. The completion
// scripts and the man pages are made from it, so they cannot drift from -h.
type commandSpec struct {
	name, summary string
	flags         []flagSpec
}

// flagSpec is one row of the flag table: a flag and its aliases.
type flagSpec struct {
	names  []string // without the dash, in -h order
	arg    string   // the value's name in -h ("" for a bool flag)
	usage  string
	def    string // the default -h states, if any
	env    string // the environment variable ("" for flags never read from it)
	config bool   // the config file may set it too
	values []string
	files  bool // the value is a file name
}

// takesValue reports whether the flag needs a value after it (all but bool flags).
func (f flagSpec) takesValue() bool { return f.arg != "" }

// fileFlags are the flags whose value is a file name (-token and -decode also take "-").
var fileFlags = map[string]bool{"state-file": true, "ca-file": true, "config": true, "backup": true,
	"federated-token-file": true, "token": true, "decode": true}

// flagValues is what a flag's value completes to: the words its validation accepts.
func flagValues(name string) []string {
	switch name {
	case "o", "output":
		return []string{"json", "text"}
	case "cloud":
		return entra.CloudNames()
	case "key-store":
		return []string{state.KeyStoreKeyring, state.KeyStoreTPM, state.KeyStoreTPMFile}
	case "token-cache":
		return []string{token.CacheAuto, keystore.CacheKeyring, keystore.CacheKernel, keystore.CacheNone}
	case "credential":
		return []string{CredentialAuto, CredentialCertificate, CredentialFederated}
	case "schedule":
		return []string{scheduleInstall, scheduleUninstall, schedulePrint}
	case "operator-auth":
		return []string{entra.OperatorAzureCLI, entra.OperatorDeviceCode, entra.OperatorProvisioner}
	case "check":
		return verify.CheckNames()
	case "completion":
		return completionShells
	}
	return nil
}

// errCaptured ends a run that describe started once its flag table is built.
var errCaptured = errors.New("flag table captured")

// flagCapture is the output describe hands a command: Parse sees it and returns the flag
// set instead of parsing, so nothing else of the command runs.
type flagCapture struct {
	fs      *flag.FlagSet
	summary string
}

func (*flagCapture) Write(p []byte) (int, error) { return len(p), nil }

// describe builds tool's flag table by running it up to Parse.
func describe(tool Tool) (commandSpec, error) {
	capture := &flagCapture{}
	err := tool.Run(context.Background(), nil, Stdio{In: strings.NewReader(""), Out: capture, Err: io.Discard})
	if !errors.Is(err, errCaptured) || capture.fs == nil {
		return commandSpec{}, fmt.Errorf("%s: its flag table could not be read (%v)", tool.Name, err)
	}
	return specOf(capture.fs, capture.summary), nil
}

// specOf turns fs's flag table (flagGroups, the one -h prints) into a commandSpec.
func specOf(fs *flag.FlagSet, summary string) commandSpec {
	spec := commandSpec{name: fs.Name(), summary: strings.TrimSpace(summary)}
	for _, group := range flagGroups(fs) {
		f := group[0]
		row := flagSpec{env: groupEnvVar(EnvPrefix, group), config: isConfigKey(f.Name)}
		for _, g := range group {
			row.names = append(row.names, g.Name)
		}
		row.arg, row.usage = flagArg(f)
		if isBoolFlag(f) {
			row.arg = ""
		}
		if shownDefault(f) {
			row.def = f.DefValue
		}
		row.values = flagValues(f.Name)
		row.files = fileFlags[f.Name]
		spec.flags = append(spec.flags, row)
	}
	return spec
}

// isBoolFlag reports whether f takes no value (-rotate, not -rotate true).
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// printCompletion is -completion: fs's completion script for shell on w.
func printCompletion(w io.Writer, fs *flag.FlagSet, shell string) error {
	if !slices.Contains(completionShells, shell) {
		return &Error{Code: ExitUsage, Msg: fmt.Sprintf("-completion must be bash, zsh, fish or powershell, not %q", shell),
			Hint: "for example: source <(" + fs.Name() + " -completion bash)"}
	}
	if err := writeCompletion(w, specOf(fs, ""), shell); err != nil {
		return err
	}
	return errVersionPrinted // printed instead of running: exit 0
}

// WriteCompletion writes tool's completion script for shell (bash, zsh, fish or powershell).
func WriteCompletion(w io.Writer, tool Tool, shell string) error {
	spec, err := describe(tool)
	if err != nil {
		return err
	}
	if !slices.Contains(completionShells, shell) {
		return fmt.Errorf("no completion for shell %q (want bash, zsh, fish or powershell)", shell)
	}
	return writeCompletion(w, spec, shell)
}

// CompletionShells are the shells WriteCompletion writes for.
func CompletionShells() []string { return slices.Clone(completionShells) }

func writeCompletion(w io.Writer, spec commandSpec, shell string) error {
	var script string
	switch shell {
	case "bash":
		script = bashCompletion(spec)
	case "zsh":
		script = zshCompletion(spec)
	case "fish":
		script = fishCompletion(spec)
	case "powershell":
		script = powershellCompletion(spec)
	}
	_, err := io.WriteString(w, script)
	return err
}

// shortUsage is a flag's usage for a completion menu: without its parenthetical remarks,
// up to the first "; ", and at most 70 characters.
func shortUsage(f flagSpec) string {
	var b strings.Builder
	depth := 0
	for _, r := range f.usage {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	s := strings.Join(strings.Fields(b.String()), " ")
	s = strings.NewReplacer(" ,", ",", " ;", ";").Replace(s)
	if i := strings.Index(s, "; "); i > 0 {
		s = s[:i]
	}
	if r := []rune(s); len(r) > 70 {
		cut := strings.LastIndex(string(r[:67]), " ")
		s = strings.TrimRight(string(r[:max(cut, 40)]), ",:") + "..."
	}
	if s == "" {
		s = "-" + f.names[0]
	}
	return s
}
