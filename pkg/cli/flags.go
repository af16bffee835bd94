package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
	"github.com/peterbourgon/ff/v3"

	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/token"
)

// EnvPrefix maps flag `tenant-id` to ENTRACLAW_TENANT_ID.
const EnvPrefix = "ENTRACLAW"

// OutputEnv is the variable of -o/-output. It is not ENTRACLAW_O: a variable someone
// exports on purpose, like az's AZURE_CORE_OUTPUT, and not one a stray export can hit.
const OutputEnv = "ENTRACLAW_OUTPUT"

// noEnv lists the flags that never come from the environment or a config file: help and
// -version change what a command does rather than how, so `TOKEN=$(entraclaw-provisioner-token)`
// cannot turn into a version string or a usage text because of an exported variable. -o is
// read from OutputEnv through its long name -output instead (and from no config file).
// -adopt overrides migrate's guard against taking over an app from the wrong directory:
// only someone typing it may lift that guard, not an export left in a shell. migrate's
// -renew, -schedule and -prune-expired choose what the run does (and the last removes
// certificates): a stray export must not turn every migrate into one of them.
// The federation flags widen who may sign in as the provisioner: typed, never inherited.
// -completion, like -version, prints something else instead of running the command.
var noEnv = map[string]bool{"h": true, "help": true, "version": true, "completion": true, "o": true, "adopt": true,
	"renew": true, "schedule": true, "prune-expired": true,
	"federate": true, "unfederate": true, "federate-issuer": true, "federate-subject": true, "federate-audience": true, "allow-subject-pattern": true}

// Common holds the flags every binary shares. Each has an ENTRACLAW_* env var; the
// per-machine ones (configKeys) can also come from the config file.
type Common struct {
	StateFile      string
	TenantID       string
	ClientID       string
	KeyringService string
	TokenCache     string
	Cloud          string
	AuthorityHost  string
	GraphEndpoint  string
	CAFile         string
	ConfigFile     string
	Output         string
	Verbose        bool
	Version        bool
	Completion     string // -completion: the shell whose completion script to print

	name    string
	summary string // what -h prints first (and a man page's DESCRIPTION)
	stdio   Stdio
	config  *configSource    // what the config file layer read (set by Parse)
	set     map[string]*bool // flag name -> set by some layer (set by Parse)
	// tokenCacheNote says why -token-cache auto chose no cache ("" otherwise).
	tokenCacheNote string
}

// IsSet reports whether the flag was given on the command line, in the environment or
// in the config file (as opposed to keeping its default).
func (c *Common) IsSet(name string) bool {
	mark := c.set[name]
	return mark != nil && *mark
}

// NewFlagSet returns a flag set with the shared flags registered and a usage text that lists
// every flag with its environment variable. summary is printed first by -h.
func NewFlagSet(name, summary string, stdio Stdio) (*flag.FlagSet, *Common) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// -h prints to stdout and exits 0, so `-h | less` works; errors are our own one-liners.
	fs.SetOutput(stdio.Out)
	c := &Common{name: name, summary: summary, stdio: stdio}
	fs.StringVar(&c.StateFile, "state-file", "", "`path` of .entraclaw-state.json (default: the nearest one walking up from the current directory)")
	fs.StringVar(&c.TenantID, "tenant-id", "", "Entra `tenant` id or domain (default: TENANT_ID from the state file)")
	fs.StringVar(&c.ClientID, "client-id", "", "provisioner app (client) `id` (default: PROVISIONER_CLIENT_ID from the state file)")
	fs.StringVar(&c.KeyringService, "keyring-service", keystore.DefaultService, "keyring service `name` holding the certificate bundle (account: the tenant id)")
	fs.StringVar(&c.TokenCache, "token-cache", token.CacheAuto, "where access tokens are cached: auto (Linux: the kernel keyring where keyctl works, else the Secret Service, else none; elsewhere the OS keyring), keyring, kernel (the Linux kernel keyring: no D-Bus, lost at reboot) or none")
	fs.StringVar(&c.Cloud, "cloud", "public", "Azure `cloud`: public, usgov or china")
	fs.StringVar(&c.AuthorityHost, "authority-host", "", "custom Entra ID authority host, an https:// `url` (turns instance discovery off)")
	fs.StringVar(&c.GraphEndpoint, "graph-endpoint", "", "custom Microsoft Graph endpoint, an https:// `url`")
	fs.StringVar(&c.CAFile, "ca-file", "", "PEM `file` of CA certificates to trust, added to the system roots, for Entra ID and Graph (a TLS-inspecting proxy, the fake)")
	fs.StringVar(&c.ConfigFile, "config", "", "config `file` of per-machine settings, `name value` lines (default: <user config dir>/entraclaw/config; a missing default is fine)")
	fs.StringVar(&c.Output, "o", "text", "output `format`: text or json")
	fs.Var(fs.Lookup("o").Value, "output", "output `format`: text or json (same as -o)")
	fs.BoolVar(&c.Verbose, "v", false, "verbose: log HTTP requests to stderr (secrets and tokens are redacted)")
	fs.BoolVar(&c.Version, "version", false, "print the version, commit, build date, Go version and platform (with -o json: as JSON) and exit")
	fs.StringVar(&c.Completion, "completion", "", "print the completion script for `shell` bash, zsh, fish or powershell and exit (see the operator guide)")
	fs.Usage = func() { c.printUsage(fs, summary) }
	return fs, c
}

func (c *Common) printUsage(fs *flag.FlagSet, summary string) {
	w := fs.Output()
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s [flags]\n", strings.TrimSpace(summary), fs.Name())
	if ex := examples[fs.Name()]; ex != "" {
		fmt.Fprintf(w, "\nExamples:\n%s\n", strings.TrimRight(ex, "\n"))
	}
	fmt.Fprintf(w, "\nFlags (each also read from the environment variable in brackets, the ones marked \"config\" also\nfrom the config file; a flag beats its variable, a variable beats the config file):\n")
	printFlags(w, fs, EnvPrefix, true)
	path, named := c.configPath()
	fmt.Fprintf(w, "\nConfig file: %s\n", describeConfigPath(path, named))
	fmt.Fprintf(w, "\nExit codes: %s.\n", exitCodes)
}

// exitCodes is what each exit code means, for -h and the man pages.
const exitCodes = "0 ok, 1 failed, 2 usage, 3 not set up (run entraclaw-migrate), 4 a check failed, 130 interrupted"

// PrintFlags lists fs's flags for -h: each name with its aliases and value type, its
// meaning and default, and the environment variable it is read from under envPrefix.
func PrintFlags(w io.Writer, fs *flag.FlagSet, envPrefix string) { printFlags(w, fs, envPrefix, false) }

// printFlags is PrintFlags; withConfig marks the flags a config file may set.
func printFlags(w io.Writer, fs *flag.FlagSet, envPrefix string, withConfig bool) {
	for _, group := range flagGroups(fs) {
		f := group[0]
		var names []string
		for _, g := range group {
			names = append(names, "-"+g.Name)
		}
		env := groupEnvVar(envPrefix, group)
		typ, usage := flagArg(f)
		head := strings.Join(names, ", ")
		if typ != "" {
			head += " " + typ
		}
		def := ""
		if shownDefault(f) {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		envText := " [never from the environment]"
		if env != "" {
			envText = " [$" + env + "]"
		}
		if withConfig && isConfigKey(f.Name) {
			envText = " [$" + env + "; config]"
		}
		fmt.Fprintf(w, "  %s\n        %s%s%s\n", head, usage, def, envText)
	}
}

// flagGroups is fs's flag table in -h order: each flag with its aliases (flags sharing one
// value, -o and -output), the first registered name first. -h, the completion scripts and
// the man pages are all made from it.
func flagGroups(fs *flag.FlagSet) [][]*flag.Flag {
	var all []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { all = append(all, f) })
	done := map[string]bool{}
	var groups [][]*flag.Flag
	for _, f := range all {
		if done[f.Name] {
			continue
		}
		group := []*flag.Flag{f}
		for _, g := range all {
			if g != f && sameValue(g.Value, f.Value) {
				done[g.Name] = true
				group = append(group, g)
			}
		}
		groups = append(groups, group)
	}
	return groups
}

// groupEnvVar is the variable an alias group is read from ("" for noEnv flags).
func groupEnvVar(envPrefix string, group []*flag.Flag) string {
	for _, g := range group {
		if !noEnv[g.Name] {
			return envVarName(envPrefix, g.Name)
		}
	}
	return ""
}

// flagArg is a flag's value name ("" for a bool flag) and its usage with the name unquoted.
func flagArg(f *flag.Flag) (typ, usage string) {
	typ, usage = flag.UnquoteUsage(f)
	if typ == "value" {
		typ = "string"
	}
	return typ, usage
}

// shownDefault reports whether -h states f's default (not for empty, false and zero ones).
func shownDefault(f *flag.Flag) bool {
	return f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s"
}

// Parse parses args, the ENTRACLAW_* environment and the config file into fs (ff/v3 does
// each layer), validates the shared flags, handles -version and sets up -v logging.
// Positional arguments are a usage error.
func (c *Common) Parse(fs *flag.FlagSet, args []string) error {
	if capture, ok := c.stdio.Out.(*flagCapture); ok { // describe: the flag table, not a run
		capture.fs, capture.summary = fs, c.summary
		return errCaptured
	}
	l := newLayers(fs)
	if err := l.parse(args, EnvPrefix); err != nil {
		return err
	}
	c.set = l.set
	switch c.Output {
	case "text", "json":
	default:
		return &Error{Code: ExitUsage, Msg: fmt.Sprintf("-o must be text or json, not %q", c.Output),
			Hint: "-o, -output and " + OutputEnv + " take text or json"}
	}
	if c.Version { // before the config file: -version works whatever the file holds
		return PrintVersion(c.stdio.Out, c.name, c.JSON())
	}
	if c.Completion != "" { // like -version: whatever the config file holds
		return printCompletion(c.stdio.Out, fs, c.Completion)
	}
	path, named := c.configPath()
	var err error
	if c.config, err = l.configFile(path, named); err != nil {
		return err
	}
	if c.KeyringService == "" {
		return UsageError("-keyring-service must not be empty")
	}
	if !token.ValidCacheSetting(c.TokenCache) {
		return &Error{Code: ExitUsage, Msg: fmt.Sprintf("-token-cache must be auto, keyring, kernel or none, not %q", c.TokenCache),
			Hint: "-token-cache and ENTRACLAW_TOKEN_CACHE take auto, keyring, kernel or none"}
	}
	if c.Verbose {
		enableVerboseLogging(c.stdio.Err, c.name)
	}
	return nil
}

// ParseFlags parses args, then the <envPrefix>_* environment variables, into fs.
// Each fallback prefix, in order, then sets the flags still unset from its own variables:
// ParseFlags(fs, args, "ENTRACLAW_FAKE", "ENTRACLAW") gives -keyring-service from the
// command line, else ENTRACLAW_FAKE_KEYRING_SERVICE, else ENTRACLAW_KEYRING_SERVICE, else
// its default. An empty variable counts as unset. -h, -help and -version are never read
// from the environment, and -o only as -output (ENTRACLAW_OUTPUT); flags that share one
// value (-o and -output) count as set when either is.
// A bad flag, a bad value (from the command line or the environment) or a positional
// argument is a one-line usage error (exit 2) instead of the flag package's message and
// usage text; -h prints the usage to the flag set's output and returns flag.ErrHelp.
func ParseFlags(fs *flag.FlagSet, args []string, envPrefix string, fallbackPrefixes ...string) error {
	return newLayers(fs).parse(args, append([]string{envPrefix}, fallbackPrefixes...)...)
}

// layers sets one flag set from its sources, highest precedence first: the command line,
// then environment prefixes, then a config file. ff/v3 reads each source; it is handed a
// view of fs (a second flag set over the same flag.Value objects) that holds only the flags
// the source may set, so -h, -version and -o are simply absent from it. A source sets only
// the flags no earlier one set, and the check is by value, not by name as in ff: aliases
// sharing one value (-o and -output) count as set when either name is.
type layers struct {
	fs  *flag.FlagSet
	set map[string]*bool // flag name -> the "already set" mark of its alias group
}

func newLayers(fs *flag.FlagSet) *layers {
	l := &layers{fs: fs, set: map[string]*bool{}}
	var all []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { all = append(all, f) })
	for _, f := range all {
		if l.set[f.Name] != nil {
			continue
		}
		mark := new(bool)
		for _, g := range all {
			if g == f || sameValue(g.Value, f.Value) {
				l.set[g.Name] = mark
			}
		}
	}
	return l
}

// parse reads the command line, then each environment prefix in order.
func (l *layers) parse(args []string, envPrefixes ...string) error {
	if err := l.commandLine(args); err != nil {
		return err
	}
	for _, prefix := range envPrefixes {
		if err := l.env(prefix); err != nil {
			return err
		}
	}
	return nil
}

// commandLine parses args with the full flag set. A bad flag or a positional argument is
// a one-line usage error; -h prints the usage and returns flag.ErrHelp.
func (l *layers) commandLine(args []string) error {
	fs := l.fs
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	case err != nil:
		return flagError(fs, err)
	case fs.NArg() > 0:
		return UsageError("unexpected argument %q (flags go before arguments; this command takes none)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { *l.set[f.Name] = true })
	return nil
}

// env sets the flags still unset from their non-empty <prefix>_* variables (not noEnv's).
func (l *layers) env(prefix string) error {
	err := ff.Parse(l.view(func(name string) bool { return !noEnv[name] }), nil, ff.WithEnvVarPrefix(prefix))
	var ve *valueError
	if errors.As(err, &ve) {
		envVar := envVarName(prefix, ve.flag)
		return &Error{Code: ExitUsage, Hint: flagHint(l.fs, ve.flag),
			Msg: fmt.Sprintf("invalid value %q for %s (-%s): %v", ve.value, envVar, ve.flag, ve.err)}
	}
	if err != nil {
		return UsageError("%v", err)
	}
	return nil
}

// view is a flag set over fs's values holding only the flags keep accepts.
func (l *layers) view(keep func(name string) bool) *flag.FlagSet {
	v := flag.NewFlagSet(l.fs.Name(), flag.ContinueOnError)
	v.SetOutput(io.Discard)
	l.fs.VisitAll(func(f *flag.Flag) {
		if keep(f.Name) {
			v.Var(&layerValue{Value: f.Value, name: f.Name, set: l.set[f.Name]}, f.Name, f.Usage)
		}
	})
	return v
}

// layerValue is one flag in a view: a Set on a flag already set by a higher source is a
// no-op, and a bad value is a valueError naming the flag.
type layerValue struct {
	flag.Value
	name string
	set  *bool
}

func (v *layerValue) Set(s string) error {
	if *v.set {
		return nil
	}
	if err := v.Value.Set(s); err != nil {
		return &valueError{flag: v.name, value: s, err: err}
	}
	*v.set = true
	return nil
}

// valueError is a value a flag refused, from the environment or a config file.
type valueError struct {
	flag, value string
	err         error
}

func (e *valueError) Error() string {
	return fmt.Sprintf("invalid value %q for -%s: %v", e.value, e.flag, e.err)
}

func (e *valueError) Unwrap() error { return e.err }

// sameValue reports whether two flags are aliases: the same pointer-typed flag.Value.
func sameValue(a, b flag.Value) (same bool) {
	defer func() {
		if recover() != nil { // incomparable dynamic types are never aliases
			same = false
		}
	}()
	return a == b
}

// envVarName is the variable ff reads for a flag: envVarName("ENTRACLAW", "tenant-id")
// is ENTRACLAW_TENANT_ID.
func envVarName(prefix, flagName string) string {
	return prefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_", "/", "_").Replace(flagName))
}

// flagValueName finds the flag in the flag package's "invalid value … for flag -name: …".
var flagValueName = regexp.MustCompile(`for (?:flag )?-([^\s:]+):`)

// notDefined starts the flag package's error for an unknown flag.
const notDefined = "flag provided but not defined: -"

// flagError turns a flag.Parse error into a usage error naming the flag; an unknown flag's
// hint names the closest defined one.
func flagError(fs *flag.FlagSet, err error) error {
	if unknown, ok := strings.CutPrefix(err.Error(), notDefined); ok {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if near := closest(unknown, names); near != "" {
			return &Error{Code: ExitUsage, Msg: err.Error(), Hint: "did you mean -" + near + "?"}
		}
	}
	name := ""
	if m := flagValueName.FindStringSubmatch(err.Error()); m != nil {
		name = m[1]
	}
	return &Error{Code: ExitUsage, Msg: err.Error(), Hint: flagHint(fs, name)}
}

// closest returns the candidate nearest to name: one that starts with "name-" (-tenant for
// -tenant-id), else the one at the smallest edit distance, if that is at most a third of
// the longer name; "" when none is near. Ties go to the first candidate.
func closest(name string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		if strings.HasPrefix(c, name+"-") {
			return c
		}
		d := editDistance(name, c)
		if d*3 <= max(len(name), len(c)) && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// flagHint says what a flag takes when its type says more than "see -h".
func flagHint(fs *flag.FlagSet, name string) string {
	if f := fs.Lookup(name); f != nil {
		if getter, ok := f.Value.(flag.Getter); ok {
			switch getter.Get().(type) {
			case time.Duration:
				return "-" + name + " takes a duration such as 30s, 5m or 720h"
			case bool:
				return "-" + name + " takes true or false"
			}
		}
	}
	return "run with -h for usage"
}

// JSON reports whether -o json was given.
func (c *Common) JSON() bool { return c.Output == "json" }

// enableVerboseLogging sends azcore's request/response/retry log to stderr. azcore redacts
// Authorization and all non-allow-listed headers and query values; bodies are never logged.
func enableVerboseLogging(w io.Writer, name string) {
	log.SetEvents(log.EventRequest, log.EventResponse, log.EventRetryPolicy, "Authentication")
	log.SetListener(func(ev log.Event, msg string) {
		fmt.Fprintf(w, "%s: [%s] %s\n", name, ev, strings.ReplaceAll(strings.TrimSpace(msg), "\n", " | "))
	})
}

// WriteJSON writes v as one indented JSON document and a newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// DurationFlag validates a duration flag value: it must be positive (or zero when allowed).
func DurationFlag(name string, d time.Duration, allowZero bool) error {
	if d < 0 || (!allowZero && d == 0) {
		return UsageError("-%s must be a positive duration such as 30s, 5m or 720h, not %s", name, d)
	}
	return nil
}

// workingDir is the directory state-file discovery starts from.
func workingDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	return wd
}

// days is a duration flag that also takes whole days ("365d"), the unit of
// certificate lifetimes.
type days time.Duration

func (d *days) String() string {
	if *d%days(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", time.Duration(*d)/(24*time.Hour))
	}
	return time.Duration(*d).String()
}

func (d *days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var v int
		if _, err := fmt.Sscanf(n, "%d", &v); err != nil || v <= 0 || fmt.Sprint(v) != n {
			return fmt.Errorf("want a positive number of days such as 180d, or a duration such as 4320h")
		}
		*d = days(time.Duration(v) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("want a positive number of days such as 180d, or a duration such as 4320h")
	}
	*d = days(v)
	return nil
}
