package entratest

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteWorkdirWindowsFiles checks what the Windows binaries need from a workdir (run for
// real under Wine by scripts/test-windows.sh): ENTRACLAW_CA_FILE in env, and bin/az.cmd, a
// batch file answering for every operator kind with the fake's delegated tokens, like bin/az.
func TestWriteWorkdirWindowsFiles(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, "legacy")
	w, err := WriteWorkdir(t.TempDir(), srv, sc)
	if err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(w.EnvFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := "export ENTRACLAW_CA_FILE=" + shellQuote(w.CAFile) + "\n"; !strings.Contains(string(env), want) {
		t.Errorf("env lacks %q:\n%s", want, env)
	}
	cmd, err := os.ReadFile(filepath.Join(w.BinDir, "az.cmd"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(cmd)
	if strings.Contains(strings.ReplaceAll(text, "\r\n", ""), "\n") {
		t.Error("az.cmd has a line not ended by CRLF")
	}
	for _, want := range []string{"@echo off\r\n", `if "%1 %2"=="account get-access-token" (`, `if "%1 %2"=="account show" (`,
		`"tenantId":"` + sc.TenantID + `"`, "Please run 'az login'", "exit /b 1\r\n",
		`if /i "%~1 %~2 %~3"=="ad app show" (`, `if /i "%~1 %~2 %~3 %~4"=="ad app credential reset" (`,
		`"` + srv.URL + `/_fake/az/%route%"`, `set "ca=` + w.CAFile + `"`, "echo " + azCredentialWarning + " 1>&2\r\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("az.cmd lacks %q", want)
		}
	}
	for kind := range operatorKinds {
		i := strings.Index(text, `if "%account%"=="`+kind+`" (`)
		if i < 0 {
			t.Errorf("az.cmd does not answer for %s", kind)
			continue
		}
		line := text[i:]
		line = line[strings.Index(line, `set "tok=`)+len(`set "tok=`):]
		tok := line[:strings.Index(line, `"`)]
		parts := strings.Split(tok, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[min(1, len(parts)-1)])
		var claims struct{ Tid, Upn string }
		if len(parts) != 3 || err != nil || json.Unmarshal(payload, &claims) != nil ||
			claims.Tid != sc.TenantID || !strings.HasPrefix(claims.Upn, kind+"@") {
			t.Errorf("az.cmd's %s token is not the fake's delegated token for %s in tenant %s (%+v)", kind, kind, sc.TenantID, claims)
		}
	}
}

// TestWriteWorkdirToolsOnPath: a "PATH=DIR" entry (the fake CLI passes the directory the tools
// were built into) is put on PATH after the workdir's bin (the fake az), ahead of the shell's
// own PATH, instead of replacing PATH; other entries are exported as they are.
func TestWriteWorkdirToolsOnPath(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, "legacy")
	tools := filepath.Join(t.TempDir(), "my tools")
	w, err := WriteWorkdir(t.TempDir(), srv, sc, "PATH="+tools, "ENTRACLAW_KEYRING_SERVICE=svc")
	if err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(w.EnvFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := "export ENTRACLAW_KEYRING_SERVICE='svc'\n"; !strings.Contains(string(env), want) {
		t.Errorf("env lacks %q:\n%s", want, env)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	cmd := exec.Command(sh, "-c", `. "$1" && printf %s "$PATH"`, "sh", w.EnvFile)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sourcing env: %v", err)
	}
	if want := w.BinDir + ":" + tools + ":/usr/bin:/bin"; string(out) != want {
		t.Errorf("PATH after . env = %q, want %q", out, want)
	}
}
