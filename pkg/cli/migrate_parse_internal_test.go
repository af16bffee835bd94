package cli

import (
	"errors"
	"strings"
	"testing"
)

// TestParseMigrateUsageErrors: every exit-2 path of entraclaw-migrate's flags is decided
// by parseMigrate alone, with no keyring and no network.
func TestParseMigrateUsageErrors(t *testing.T) {
	t.Setenv("ENTRACLAW_CONFIG", "") // no user config file
	for _, tc := range []struct {
		args []string
		want string
	}{
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
	} {
		var out strings.Builder
		_, _, err := parseMigrate(tc.args, Stdio{Out: &out, Err: &out})
		var ce *Error
		if !errors.As(err, &ce) || ce.Code != ExitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseMigrate(%q) = %v; want exit 2 saying %q", tc.args, err, tc.want)
		}
	}
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
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-scope", "User.Read"}, "-scope must be a single <resource>/.default scope"},
		{[]string{"-min-validity", "-1m"}, "-min-validity"},
		{[]string{"-credential", "password"}, "-credential must be auto, certificate or federated"},
		{[]string{"-federated-token-file", "f"}, "need -credential federated"},
		{[]string{"-credential", "federated", "-remove-cached-tokens"}, "does not combine with -credential federated"},
		{[]string{"-o", "xml"}, "-o must be text or json"},
	} {
		var out strings.Builder
		_, _, err := parseToken(tc.args, Stdio{Out: &out, Err: &out})
		var ce *Error
		if !errors.As(err, &ce) || ce.Code != ExitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseToken(%q) = %v; want exit 2 saying %q", tc.args, err, tc.want)
		}
	}
}
