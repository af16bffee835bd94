package cli_test

import (
	"errors"
	"flag"
	"io"
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
