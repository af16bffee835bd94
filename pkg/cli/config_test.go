package cli_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
)

// writeConfig writes a config file with lines and returns its path.
func writeConfig(t *testing.T, path string, lines ...string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigFilePrecedence: flag > environment > config file > default, for the default
// file, a -config file and an ENTRACLAW_CONFIG file; a line for a flag this binary does
// not have is ignored.
func TestConfigFilePrecedence(t *testing.T) {
	def := isolateConfig(t)
	writeConfig(t, def,
		"# per-machine settings",
		"cloud china",
		"ca-file /etc/proxy ca.pem  # the proxy's CA",
		"keyring-service from-file",
		"key-store tpm",
		"cert-lifetime 90h",
		"authority-host https://login.example.test")
	c, keyStore, _, err := parseCommon(t)
	if err != nil || c.Cloud != "china" || c.CAFile != "/etc/proxy ca.pem" || c.KeyringService != "from-file" || keyStore != "tpm" {
		t.Fatalf("from the default file: cloud %q, ca-file %q, service %q, key-store %q, %v", c.Cloud, c.CAFile, c.KeyringService, keyStore, err)
	}

	t.Setenv("ENTRACLAW_KEYRING_SERVICE", "from-env")
	t.Setenv("ENTRACLAW_CLOUD", "")
	c, _, _, err = parseCommon(t, "-authority-host", "https://flag.example.test")
	if err != nil || c.KeyringService != "from-env" || c.Cloud != "china" || c.AuthorityHost != "https://flag.example.test" {
		t.Errorf("flag > env > file: service %q, cloud %q, authority %q, %v", c.KeyringService, c.Cloud, c.AuthorityHost, err)
	}

	named := writeConfig(t, filepath.Join(t.TempDir(), "named"), "cloud usgov")
	t.Setenv(cli.ConfigEnv, named)
	if c, _, _, err = parseCommon(t); err != nil || c.Cloud != "usgov" || c.CAFile != "" {
		t.Errorf("ENTRACLAW_CONFIG: cloud %q, ca-file %q, %v; want only the named file read", c.Cloud, c.CAFile, err)
	}
	if c, _, _, err = parseCommon(t, "-config", def); err != nil || c.Cloud != "china" {
		t.Errorf("-config beats ENTRACLAW_CONFIG: cloud %q, %v", c.Cloud, err)
	}

	// a binary without -key-store (verify, token, rollback) ignores that line
	fs, common := cli.NewFlagSet("entraclaw-test", "", cli.Stdio{Out: os.Stderr, Err: os.Stderr})
	if err := common.Parse(fs, []string{"-config", def}); err != nil || common.Cloud != "china" {
		t.Errorf("without -key-store: cloud %q, %v", common.Cloud, err)
	}
}

// TestConfigFileErrors: every problem with the file is one line, exit 2, naming the file
// and, for a line, its number; a missing default file is fine.
func TestConfigFileErrors(t *testing.T) {
	def := isolateConfig(t)
	if _, _, _, err := parseCommon(t); err != nil {
		t.Fatalf("no default file: %v", err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"version", []string{"cloud china", "version"}, ":2: version is a command-line flag only"},
		{"h", []string{"h true"}, ":1: h is a command-line flag only"},
		{"help", []string{"", "# help", "help"}, ":3: help is a command-line flag only"},
		{"o", []string{"o json"}, ":1: o is a command-line flag only"},
		{"output", []string{"output json"}, ":1: output is a command-line flag only"},
		{"not per machine", []string{"tenant-id contoso.onmicrosoft.com"}, ":1: tenant-id is not a per-machine setting; pass -tenant-id or set ENTRACLAW_TENANT_ID instead"},
		{"config", []string{"config /etc/other"}, ":1: config is not a per-machine setting"},
		{"unknown", []string{"clod china"}, `:1: unknown setting "clod" (did you mean cloud?)`},
		{"unknown far", []string{"colour blue"}, `:1: unknown setting "colour"`},
		{"environment name", []string{"ENTRACLAW_CLOUD china"}, `:1: unknown setting "ENTRACLAW_CLOUD"`},
		{"repeated", []string{"cloud china", "cloud usgov"}, ":2: cloud is already set on line 1"},
		{"bad value", []string{"cloud china", "", "cert-lifetime banana"}, `:3: invalid value "banana" for -cert-lifetime`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeConfig(t, filepath.Join(dir, c.name), c.lines...)
			_, _, _, err := parseCommon(t, "-config", path)
			ce := usageError(t, err, "config file "+path+c.want)
			if !strings.Contains(ce.Hint, "cloud, authority-host") {
				t.Errorf("hint %q", ce.Hint)
			}
		})
	}
	// the bad-value case through the real flag type (days) of migrate
	t.Run("migrate's days flag", func(t *testing.T) {
		path := writeConfig(t, filepath.Join(dir, "days"), "cert-lifetime 0d")
		err := cli.RunMigrate(t.Context(), []string{"-config", path}, cli.Stdio{Out: os.Stderr, Err: os.Stderr})
		usageError(t, err, `config file `+path+`:1: invalid value "0d" for -cert-lifetime: want a positive number of days`)
	})
	t.Run("a flag or variable never checks the line it hides", func(t *testing.T) {
		path := writeConfig(t, filepath.Join(dir, "hidden"), "cert-lifetime banana")
		t.Setenv("ENTRACLAW_CERT_LIFETIME", "2h")
		if _, _, _, err := parseCommon(t, "-config", path); err != nil {
			t.Errorf("ENTRACLAW_CERT_LIFETIME over a bad line: %v", err)
		}
		t.Setenv("ENTRACLAW_CERT_LIFETIME", "")
		if _, _, _, err := parseCommon(t, "-config", path, "-cert-lifetime", "1h"); err != nil {
			t.Errorf("-cert-lifetime over a bad line: %v", err)
		}
	})
	t.Run("-version works whatever the file holds", func(t *testing.T) {
		writeConfig(t, def, "version")
		if _, _, out, err := parseCommon(t, "-version"); !strings.HasPrefix(out, "entraclaw-test ") || err == nil || usageIs(err) {
			t.Errorf("-version with a bad config file: %q, %v", out, err)
		}
		if err := os.Remove(def); err != nil {
			t.Fatal(err)
		}
	})
}

func usageIs(err error) bool {
	var ce *cli.Error
	return errors.As(err, &ce) && ce.Code == cli.ExitUsage
}

// TestConfigFileNotRegular: a missing named file, a directory, /dev/zero, a FIFO and a
// file over the size limit are each exit 2 at once (nothing waits on a FIFO's writer or
// reads an endless device).
func TestConfigFileNotRegular(t *testing.T) {
	def := isolateConfig(t)
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("# padding\n", 10000)), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		filepath.Join(dir, "missing"): "no such file or directory",
		dir:                           "not a regular file",
		big:                           "100000 bytes is more than the 65536-byte limit",
	}
	if runtime.GOOS != "windows" {
		cases["/dev/zero"] = "not a regular file"
		fifo := filepath.Join(dir, "fifo")
		if err := exec.Command("mkfifo", fifo).Run(); err != nil {
			t.Fatalf("mkfifo: %v", err)
		}
		cases[fifo] = "not a regular file"
	}
	for path, want := range cases {
		for _, how := range []string{"flag", "variable"} {
			t.Run(fmt.Sprintf("%s %s", how, filepath.Base(path)), func(t *testing.T) {
				args := []string{"-config", path}
				if how == "variable" {
					args = nil
					t.Setenv(cli.ConfigEnv, path)
				}
				done := make(chan error, 1)
				go func() { _, _, _, err := parseCommon(t, args...); done <- err }()
				select {
				case err := <-done:
					usageError(t, err, "config file "+path+": ")
					usageError(t, err, want)
				case <-time.After(5 * time.Second):
					t.Fatal("still reading after 5s")
				}
			})
		}
	}
	// the same file as the default is no error when missing, but is when it is a directory
	if err := os.MkdirAll(def, 0o700); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := parseCommon(t)
	usageError(t, err, "config file "+def+": not a regular file")
}

// TestHelpNamesConfigFile: -h lists the config file in effect and marks the flags it sets.
func TestHelpNamesConfigFile(t *testing.T) {
	def := isolateConfig(t)
	_, _, out, err := parseCommon(t, "-h")
	if err == nil || !strings.Contains(out, "\nConfig file: "+def+" (the default; not present)\n") {
		t.Errorf("-h without a file: %v\n%s", err, out)
	}
	if !strings.Contains(out, "[$ENTRACLAW_CA_FILE; config]") || !strings.Contains(out, "[$ENTRACLAW_TENANT_ID]\n") {
		t.Errorf("-h does not mark the config settings:\n%s", out)
	}
	named := writeConfig(t, filepath.Join(t.TempDir(), "named"), "cloud china")
	t.Setenv(cli.ConfigEnv, named)
	if _, _, out, _ = parseCommon(t, "-h"); !strings.Contains(out, "\nConfig file: "+named+" (from -config or $ENTRACLAW_CONFIG)\n") {
		t.Errorf("-h with ENTRACLAW_CONFIG:\n%s", out)
	}
	other := filepath.Join(t.TempDir(), "other")
	if _, _, out, _ = parseCommon(t, "-config", other, "-h"); !strings.Contains(out, "\nConfig file: "+other+" (from -config or $ENTRACLAW_CONFIG; not present)\n") {
		t.Errorf("-h with -config:\n%s", out)
	}
}
