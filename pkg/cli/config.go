package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/peterbourgon/ff/v3"
)

// ConfigEnv names the config file, like -config.
const ConfigEnv = "ENTRACLAW_CONFIG"

// maxConfigSize bounds the config file: a few `name value` lines, never megabytes.
const maxConfigSize = 64 << 10

// configKeys are the settings a config file may hold: values set once per machine (which
// cloud, which hosts and CA a proxy needs, where keys live, the tenant's lifetime cap),
// never what a command does (-version, -o, -dry-run, -yes) nor which app or state file
// it works on (-tenant-id, -client-id, -state-file: the state file's job). A binary
// without one of these flags ignores its line.
var configKeys = []string{"cloud", "authority-host", "graph-endpoint", "ca-file", "keyring-service", "key-store", "cert-lifetime", "token-cache"}

func isConfigKey(name string) bool { return slices.Contains(configKeys, name) }

// configSource is what the config file layer did, for -h and `entraclaw-verify -offline`.
type configSource struct {
	Path   string   // the file in effect; "" when there is none (no user config directory)
	Named  bool     // from -config or ENTRACLAW_CONFIG: it must exist
	Read   bool     // it existed and was read
	Values []string // its "name value" lines that set a flag of this binary
}

// configPath is the config file in effect: -config, else ENTRACLAW_CONFIG (named: it must
// exist), else <os.UserConfigDir()>/entraclaw/config. It is also right before the
// environment layer ran (for -h), since it reads ENTRACLAW_CONFIG itself.
func (c *Common) configPath() (path string, named bool) {
	if c.ConfigFile != "" {
		return c.ConfigFile, true
	}
	if v := os.Getenv(ConfigEnv); v != "" {
		return v, true
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", false
	}
	return filepath.Join(dir, "entraclaw", "config"), false
}

// describeConfigPath is the -h line for the config file in effect.
func describeConfigPath(path string, named bool) string {
	if path == "" {
		return "none (no user config directory; -config or $" + ConfigEnv + " names one)"
	}
	how := "the default"
	if named {
		how = "from -config or $" + ConfigEnv
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		how += "; not present"
	}
	return fmt.Sprintf("%s (%s)\n  Lines of `name value` (# starts a comment) for the flags marked config: %s.",
		path, how, strings.Join(configKeys, ", "))
}

// configFile sets the flags still unset from the config file at path, through ff's plain
// `name value` format. A missing file is fine unless named; anything but a regular file of
// at most maxConfigSize bytes, a line that sets a flag no config file may set, an unknown
// name, a repeated name or a bad value is a usage error naming the file (and line).
func (l *layers) configFile(path string, named bool) (*configSource, error) {
	src := &configSource{Path: path, Named: named}
	if path == "" {
		return src, nil
	}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !named:
		return src, nil
	case err != nil:
		return nil, configError(path, fmt.Errorf("cannot read it: %w", unwrapPath(err)))
	case !info.Mode().IsRegular():
		return nil, configError(path, errors.New("not a regular file"))
	case info.Size() > maxConfigSize:
		return nil, configError(path, fmt.Errorf("%d bytes is more than the %d-byte limit", info.Size(), maxConfigSize))
	}
	src.Read = true
	view := l.view(func(name string) bool { return isConfigKey(name) })
	err = ff.Parse(view, nil, ff.WithConfigFile(path), ff.WithConfigFileParser(l.configParser(src)))
	if err != nil {
		return nil, configError(path, err)
	}
	return src, nil
}

// configParser is ff.PlainParser applied one line at a time, so that an error names its
// line, with our rules on names; set is ff's (it sets the flag through the view).
func (l *layers) configParser(src *configSource) ff.ConfigFileParser {
	return func(r io.Reader, set func(name, value string) error) error {
		data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
		if err != nil {
			return fmt.Errorf("cannot read it: %w", unwrapPath(err))
		}
		if len(data) > maxConfigSize {
			return fmt.Errorf("more than the %d-byte limit", maxConfigSize)
		}
		seen := map[string]int{}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for n := 1; sc.Scan(); n++ {
			err := ff.PlainParser(strings.NewReader(sc.Text()), func(name, value string) error {
				if err := l.configName(name); err != nil {
					return err
				}
				if first, ok := seen[name]; ok {
					return fmt.Errorf("%s is already set on line %d", name, first)
				}
				seen[name] = n
				if l.fs.Lookup(name) == nil {
					return nil // another binary's setting
				}
				was := *l.set[name]
				if err := set(name, value); err != nil {
					return err
				}
				if !was && *l.set[name] {
					src.Values = append(src.Values, name+" "+value)
				}
				return nil
			})
			if err != nil {
				return &lineError{line: n, err: err}
			}
		}
		return sc.Err()
	}
}

// configName checks a name on a config file line.
func (l *layers) configName(name string) error {
	switch {
	case isConfigKey(name):
		return nil
	case noEnv[name] || name == "output":
		return fmt.Errorf("%s is a command-line flag only; a config file cannot set it", name)
	case l.fs.Lookup(name) != nil:
		return fmt.Errorf("%s is not a per-machine setting; pass -%s or set %s instead", name, name, envVarName(EnvPrefix, name))
	}
	if near := closest(name, configKeys); near != "" {
		return fmt.Errorf("unknown setting %q (did you mean %s?)", name, near)
	}
	return fmt.Errorf("unknown setting %q", name)
}

// lineError is an error on one line of the config file.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

// configError is the one-line usage error for the config file at path: "config file
// PATH:LINE: what is wrong".
func configError(path string, err error) error {
	where := path
	var le *lineError
	if errors.As(err, &le) {
		where, err = fmt.Sprintf("%s:%d", path, le.line), le.err
	} else {
		err = unwrapPath(err) // ff's "open PATH: …": the message names the file already
	}
	var ve *valueError
	if errors.As(err, &ve) {
		err = ve // not ff's "error setting flag … from config file" around it
	}
	return &Error{Code: ExitUsage, Msg: fmt.Sprintf("config file %s: %v", where, err),
		Hint: fmt.Sprintf("a config file holds `name value` lines for %s; -config or %s names another file", strings.Join(configKeys, ", "), ConfigEnv)}
}

// unwrapPath drops the "stat PATH: " of a *fs.PathError, whose path the message names already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
