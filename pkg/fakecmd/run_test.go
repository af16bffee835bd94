package fakecmd

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
)

// -h groups the knobs (issue 22): every flag is in one of the named groups, none is left
// to "Other", and each group lists its flags.
func TestHelpGroupsTheKnobs(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), []string{"-h"}, cli.Stdio{Out: &out, Err: &out})
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	help := out.String()
	if strings.Contains(help, "\nOther:\n") {
		t.Errorf("a flag is in no group:\n%s", help[strings.Index(help, "\nOther:\n"):])
	}
	last := -1
	for _, g := range flagGroups {
		at := strings.Index(help, "\n"+g.title+":\n")
		if at < 0 || at < last {
			t.Errorf("group %q missing or out of order", g.title)
			continue
		}
		last = at
		for _, name := range g.flags {
			if !strings.Contains(help[at:], "-"+name) {
				t.Errorf("-%s not listed under %q", name, g.title)
			}
		}
	}
	for _, want := range []string{"-token-throttle", "-key-removal-delay", "-cae-token-lifetime", "(default 24h0m0s)"} {
		if !strings.Contains(help, want) {
			t.Errorf("-h does not show %s", want)
		}
	}
}

// TestParseFakeUsageErrors: the fake's exit-2 paths are decided by parseFake alone,
// before anything is served, written or stored in a keyring.
func TestParseFakeUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string // ENTRACLAW_KEYRING_SERVICE
		want string
	}{
		{nil, "", "-workdir is required"},
		{[]string{"-workdir", t.TempDir(), "-scenario", "prod"}, "", "-scenario must be legacy, migrated or empty"},
		{[]string{"-workdir", t.TempDir(), "-k8s-service-account", "nocolon"}, "", "-k8s-service-account must be NAMESPACE:NAME"},
		{[]string{"-workdir", t.TempDir(), "-fail-once", "GET /nowhere=500"}, "", "unknown route"},
		{[]string{"-workdir", t.TempDir(), "-fail-after-once", "POST /{tenant}/oauth2/v2.0/token=401:7000229"}, "", "works on Graph routes"},
		{[]string{"-workdir", t.TempDir()}, "entraclaw-provisioner-cert", "refusing to use the production keyring service"},
	} {
		t.Setenv("ENTRACLAW_KEYRING_SERVICE", tc.env)
		t.Setenv("ENTRACLAW_FAKE_KEYRING_SERVICE", "")
		var out bytes.Buffer
		_, err := parseFake(tc.args, cli.Stdio{Out: &out, Err: &out})
		var ce *cli.Error
		if !errors.As(err, &ce) || ce.Code != cli.ExitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFake(%q) = %v; want exit 2 saying %q", tc.args, err, tc.want)
		}
	}
	t.Setenv("ENTRACLAW_KEYRING_SERVICE", "")
	o, err := parseFake([]string{"-workdir", t.TempDir(), "-token-lifetime", "5m"}, cli.Stdio{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	if err != nil || o.setCAELifetime || o.service != defaultService {
		t.Errorf("-token-lifetime alone: %v, %+v; want CAE tokens to follow it and the fake's own keyring service", err, o)
	}
}
