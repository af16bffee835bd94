package cli

import (
	"errors"
	"strings"
	"testing"
)

// usageCase is command-line arguments and the words their exit-2 error must hold.
type usageCase struct {
	args []string
	want string
}

// checkUsageErrors asserts that parse refuses each case's arguments with a usage error
// (exit 2) saying its words.
func checkUsageErrors(t *testing.T, name string, cases []usageCase, parse func([]string, Stdio) error) {
	t.Helper()
	for _, tc := range cases {
		var out strings.Builder
		err := parse(tc.args, Stdio{Out: &out, Err: &out})
		var ce *Error
		if !errors.As(err, &ce) || ce.Code != ExitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s(%q) = %v; want exit 2 saying %q", name, tc.args, err, tc.want)
		}
	}
}

// TestParseMigrateUsageErrors: every exit-2 path of entraclaw-migrate's flags is decided
// by parseMigrate alone, with no keyring and no network.
func TestParseMigrateUsageErrors(t *testing.T) {
	t.Setenv("ENTRACLAW_CONFIG", "") // no user config file
	checkUsageErrors(t, "parseMigrate", []usageCase{
		{[]string{"-renew-before", "0s"}, "-renew-before"},
		{[]string{"-propagation-timeout", "-1s"}, "-propagation-timeout"},
		{[]string{"-cert-lifetime", "400d"}, "longer than 365 days"},
		{[]string{"-cert-lifetime", "20d"}, "must be longer than -renew-before"},
		{[]string{"-key-store", "hsm"}, "-key-store must be keyring, tpm, tpm-file"},
		{[]string{"-operator-auth", "root"}, "-operator-auth must be"},
		{[]string{"-renew", "-operator-auth", "azcli"}, "does not take -operator-auth azcli"},
		{[]string{"-renew", "-rotate"}, "does not combine with -rotate"},
		{[]string{"-renew", "-prune-expired", "30d"}, "does not combine"},
		{[]string{"-renew", "-federate", "github:acme/app:environment:prod"}, "does not combine"},
		{[]string{"-federate", "github:acme/app:pull_request"}, "pull_request"},
		{[]string{"-federate", "github:acme/app:environment:prod", "-operator-auth", "provisioner"}, "refused with -operator-auth provisioner"},
		{[]string{"-federate-issuer", "https://issuer.example.com"}, "go together"},
		{[]string{"-schedule", "install", "-federate", "gitlab:x"}, "unknown kind"},
		{[]string{"-o", "yaml"}, "-o must be text or json"},
		{[]string{"extra"}, "unexpected argument"},
	}, func(args []string, stdio Stdio) error {
		_, _, err := parseMigrate(args, stdio)
		return err
	})
	o, _, err := parseMigrate([]string{"-renew"}, Stdio{Out: &strings.Builder{}, Err: &strings.Builder{}})
	if err != nil || o.operatorAuth != "provisioner" {
		t.Errorf("-renew: %v, operator %q; want the provisioner", err, o.operatorAuth)
	}
}

// TestParseRollbackUsageErrors: rollback's exit-2 paths, decided before the keyring or
// the network, including a missing -yes where no terminal can answer.
func TestParseRollbackUsageErrors(t *testing.T) {
	t.Setenv("ENTRACLAW_CONFIG", "")
	for _, tc := range []struct {
		args []string
		tty  bool
		want string
	}{
		{[]string{"-yes", "-secret-lifetime", "0s"}, false, "-secret-lifetime"},
		{[]string{"-yes", "-operator-auth", "root"}, false, "-operator-auth must be"},
		{nil, false, "refusing to roll back without -yes"},
		{[]string{"-yes", "-o", "yaml"}, false, "-o must be text or json"},
	} {
		var out strings.Builder
		_, _, err := parseRollback(tc.args, Stdio{Out: &out, Err: &out, InTTY: tc.tty})
		var ce *Error
		if !errors.As(err, &ce) || ce.Code != ExitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseRollback(%q) = %v; want exit 2 saying %q", tc.args, err, tc.want)
		}
	}
	if _, _, err := parseRollback(nil, Stdio{Out: &strings.Builder{}, Err: &strings.Builder{}, InTTY: true}); err != nil {
		t.Errorf("without -yes on a terminal: %v; want it to ask later", err)
	}
}

// TestParseTokenUsageErrors: the token binary's exit-2 paths, before any keyring read.
func TestParseTokenUsageErrors(t *testing.T) {
	t.Setenv("ENTRACLAW_CONFIG", "")
	checkUsageErrors(t, "parseToken", []usageCase{
		{[]string{"-scope", "User.Read"}, "-scope must be a single <resource>/.default scope"},
		{[]string{"-min-validity", "-1m"}, "-min-validity"},
		{[]string{"-credential", "password"}, "-credential must be auto, certificate or federated"},
		{[]string{"-federated-token-file", "f"}, "need -credential federated"},
		{[]string{"-credential", "federated", "-remove-cached-tokens"}, "does not combine with -credential federated"},
		{[]string{"-o", "xml"}, "-o must be text or json"},
	}, func(args []string, stdio Stdio) error {
		_, _, err := parseToken(args, stdio)
		return err
	})
}

// TestParseVerifyUsageErrors: every exit-2 path of entraclaw-verify's flags is decided by
// parseVerify alone, with no keyring and no network.
func TestParseVerifyUsageErrors(t *testing.T) {
	t.Setenv("ENTRACLAW_CONFIG", "") // no user config file
	checkUsageErrors(t, "parseVerify", []usageCase{
		{[]string{"-check", "nosuch"}, "-check:"},
		{[]string{"-wait", "-1s"}, "-wait must be a positive duration"},
		{[]string{"-expires-in", "0s"}, "-expires-in must be a positive duration"},
		{[]string{"-operator-auth", "root"}, "-operator-auth must be"},
		{[]string{"-credential", "password"}, "-credential must be"},
		{[]string{"-federated-token-file", "/tmp/t"}, "need -credential federated"},
		{[]string{"-credential", "federated", "-offline"}, "does not combine with -offline"},
		{[]string{"-max-app-keys", "0"}, "-max-app-keys must be a positive number"},
		{[]string{"-token", "-", "-decode", "-"}, "cannot be combined"},
		{[]string{"-token", "-", "-wait", "1m"}, "do not combine with -check or -wait"},
		{[]string{"-offline", "-check", "no-passwords"}, "-offline reads only"},
		{[]string{"-o", "yaml"}, "-o must be text or json"},
		{[]string{"extra"}, "unexpected argument"},
	}, func(args []string, stdio Stdio) error {
		_, _, err := parseVerify(args, stdio)
		return err
	})
	o, _, err := parseVerify([]string{"-check", "no-passwords", "-wait", "30s"}, Stdio{Out: &strings.Builder{}, Err: &strings.Builder{}})
	if err != nil || len(o.checks) != 1 || o.checks[0] != "no-passwords" || o.wait.Seconds() != 30 {
		t.Errorf("-check no-passwords -wait 30s: %v, %+v; want one check and a 30 s wait", err, o)
	}
}
