package cli

import (
	"errors"
	"strings"
	"testing"
)

// TestParseVerifyUsageErrors: every exit-2 path of entraclaw-verify's flags is decided by
// parseVerify alone, with no keyring and no network.
func TestParseVerifyUsageErrors(t *testing.T) {
	t.Setenv("ENTRACLAW_CONFIG", "") // no user config file
	for _, tc := range []struct {
		args []string
		want string
	}{
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
	} {
		var out strings.Builder
		_, _, err := parseVerify(tc.args, Stdio{Out: &out, Err: &out})
		var ce *Error
		if !errors.As(err, &ce) || ce.Code != ExitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseVerify(%q) = %v; want exit 2 saying %q", tc.args, err, tc.want)
		}
	}
	o, _, err := parseVerify([]string{"-check", "no-passwords", "-wait", "30s"}, Stdio{Out: &strings.Builder{}, Err: &strings.Builder{}})
	if err != nil || len(o.checks) != 1 || o.checks[0] != "no-passwords" || o.wait.Seconds() != 30 {
		t.Errorf("-check no-passwords -wait 30s: %v, %+v; want one check and a 30 s wait", err, o)
	}
}
