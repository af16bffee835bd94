package cli_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
)

// parseWithFallback parses a flag set like the fake's, with ENTRACLAW_TEST_* falling back
// to ENTRACLAW_TESTBASE_*.
func parseWithFallback(t *testing.T, args ...string) (service string, latency time.Duration, err error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := fs.String("keyring-service", "default-service", "")
	l := fs.Duration("latency", 0, "")
	err = cli.ParseFlags(fs, args, "ENTRACLAW_TEST", "ENTRACLAW_TESTBASE")
	return *s, *l, err
}

func TestParseFlagsFallbackPrefix(t *testing.T) {
	for _, c := range []struct {
		name        string
		env         map[string]string
		args        []string
		wantService string
	}{
		{"default", nil, nil, "default-service"},
		{"fallback", map[string]string{"ENTRACLAW_TESTBASE_KEYRING_SERVICE": "base"}, nil, "base"},
		{"primary over fallback", map[string]string{"ENTRACLAW_TEST_KEYRING_SERVICE": "primary", "ENTRACLAW_TESTBASE_KEYRING_SERVICE": "base"}, nil, "primary"},
		{"empty primary is unset", map[string]string{"ENTRACLAW_TEST_KEYRING_SERVICE": "", "ENTRACLAW_TESTBASE_KEYRING_SERVICE": "base"}, nil, "base"},
		{"flag over both", map[string]string{"ENTRACLAW_TEST_KEYRING_SERVICE": "primary", "ENTRACLAW_TESTBASE_KEYRING_SERVICE": "base"}, []string{"-keyring-service", "flag"}, "flag"},
		{"flag over fallback", map[string]string{"ENTRACLAW_TESTBASE_KEYRING_SERVICE": "base"}, []string{"-keyring-service", "flag"}, "flag"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			got, _, err := parseWithFallback(t, c.args...)
			if err != nil || got != c.wantService {
				t.Errorf("-keyring-service = %q, %v; want %q", got, err, c.wantService)
			}
		})
	}
}

func TestParseFlagsFallbackBadValue(t *testing.T) {
	t.Setenv("ENTRACLAW_TESTBASE_LATENCY", "banana")
	_, _, err := parseWithFallback(t)
	var ce *cli.Error
	if !errors.As(err, &ce) || ce.Code != cli.ExitUsage || !strings.Contains(ce.Msg, `"banana" for ENTRACLAW_TESTBASE_LATENCY (-latency)`) {
		t.Fatalf("err = %v, want a usage error naming the variable", err)
	}
	// A value on the command line means the fallback variable is never read.
	if _, l, err := parseWithFallback(t, "-latency", "2s"); err != nil || l != 2*time.Second {
		t.Errorf("-latency 2s with a bad fallback: %v, %v", l, err)
	}
}

// isolateConfig points the default config file into an empty temporary directory (every
// OS's variable for os.UserConfigDir) and returns that file's path.
func isolateConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"XDG_CONFIG_HOME", "AppData"} {
		t.Setenv(k, dir)
	}
	t.Setenv("HOME", dir)
	base, err := os.UserConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(base, "entraclaw", "config")
}

// parseCommon parses args with a shared flag set plus migrate's -dry-run, -key-store and
// (as a duration) -cert-lifetime and returns the result, what was printed and the error.
func parseCommon(t *testing.T, args ...string) (c *cli.Common, keyStore, out string, err error) {
	t.Helper()
	var b strings.Builder
	fs, c := cli.NewFlagSet("entraclaw-test", "a test", cli.Stdio{Out: &b, Err: &b})
	fs.Bool("dry-run", false, "")
	ks := fs.String("key-store", "", "")
	fs.Duration("cert-lifetime", time.Hour, "")
	err = c.Parse(fs, args)
	return c, *ks, b.String(), err
}

// usageError asserts err is one line, exit 2, and its message contains want.
func usageError(t *testing.T, err error, want string) *cli.Error {
	t.Helper()
	var ce *cli.Error
	if !errors.As(err, &ce) || ce.Code != cli.ExitUsage {
		t.Fatalf("err = %v, want a usage error (exit 2)", err)
	}
	if msg := ce.Error(); !strings.Contains(msg, want) || strings.Contains(msg, "\n") || strings.Contains(ce.Hint, "\n") {
		t.Fatalf("err = %q (hint %q), want one line containing %q", msg, ce.Hint, want)
	}
	return ce
}

// TestEnvironmentNeverChoosesWhatRuns: -version, -h and -o never come from the
// environment; -output's variable is ENTRACLAW_OUTPUT, and a flag beats it under either
// name (by value: ff alone tracks "set" by name and would let the variable win over -o).
func TestEnvironmentNeverChoosesWhatRuns(t *testing.T) {
	isolateConfig(t)
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"ENTRACLAW_O is not -o", map[string]string{"ENTRACLAW_O": "json"}, nil, "text"},
		{"ENTRACLAW_OUTPUT sets -output", map[string]string{"ENTRACLAW_OUTPUT": "json"}, nil, "json"},
		{"-o beats ENTRACLAW_OUTPUT", map[string]string{"ENTRACLAW_OUTPUT": "json"}, []string{"-o", "text"}, "text"},
		{"-output beats ENTRACLAW_OUTPUT", map[string]string{"ENTRACLAW_OUTPUT": "json"}, []string{"-output=text"}, "text"},
		{"empty ENTRACLAW_OUTPUT is unset", map[string]string{"ENTRACLAW_OUTPUT": ""}, nil, "text"},
		{"ENTRACLAW_VERSION, _H, _HELP are nothing", map[string]string{"ENTRACLAW_VERSION": "1", "ENTRACLAW_H": "true", "ENTRACLAW_HELP": "true"}, nil, "text"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			got, _, out, err := parseCommon(t, c.args...)
			if err != nil || got.Output != c.want || got.Version || out != "" {
				t.Errorf("-o %q, -version %v, printed %q, err %v; want -o %q and nothing printed", got.Output, got.Version, out, err, c.want)
			}
		})
	}
	t.Run("a flag beats its variable", func(t *testing.T) {
		t.Setenv("ENTRACLAW_CLOUD", "china")
		if c, _, _, err := parseCommon(t, "-cloud", "usgov"); err != nil || c.Cloud != "usgov" {
			t.Errorf("-cloud = %q, %v; want usgov", c.Cloud, err)
		}
	})
	t.Run("a bad value names the flag and the variable", func(t *testing.T) {
		t.Setenv("ENTRACLAW_V", "maybe")
		_, _, _, err := parseCommon(t)
		ce := usageError(t, err, `invalid value "maybe" for ENTRACLAW_V (-v)`)
		if ce.Hint != "-v takes true or false" {
			t.Errorf("hint %q", ce.Hint)
		}
	})
}

// TestUnknownFlagSuggestsClosest: an unknown flag's hint names the nearest defined flag.
func TestUnknownFlagSuggestsClosest(t *testing.T) {
	isolateConfig(t)
	for arg, want := range map[string]string{
		"-dryrun":      "did you mean -dry-run?",
		"--dryrun=1":   "did you mean -dry-run?",
		"-tenant":      "did you mean -tenant-id?",
		"-keyring":     "did you mean -keyring-service?",
		"-ca_file":     "did you mean -ca-file?",
		"-cloudd":      "did you mean -cloud?",
		"-bogus":       "run with -h for usage",
		"-x":           "run with -h for usage",
		"-frobnicator": "run with -h for usage",
	} {
		_, _, _, err := parseCommon(t, arg)
		name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if ce := usageError(t, err, "flag provided but not defined: -"+name); ce.Hint != want {
			t.Errorf("%s: hint %q, want %q", arg, ce.Hint, want)
		}
	}
	// the real binaries' flag sets: migrate has -dry-run; the others have nothing near it
	for _, b := range []struct {
		name string
		run  cli.Command
		hint string
	}{
		{"migrate", cli.RunMigrate, "did you mean -dry-run?"},
		{"verify", cli.RunVerify, "run with -h for usage"},
		{"token", cli.RunToken, "run with -h for usage"},
		{"rollback", cli.RunRollback, "run with -h for usage"},
	} {
		err := b.run(context.Background(), []string{"-dryrun"}, cli.Stdio{Out: io.Discard, Err: io.Discard})
		if ce := usageError(t, err, "flag provided but not defined: -dryrun"); ce.Hint != b.hint {
			t.Errorf("%s -dryrun: hint %q, want %q", b.name, ce.Hint, b.hint)
		}
	}
}
