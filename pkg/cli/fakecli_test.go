package cli_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// TestFakeEntraCLI runs the issue's own recipe: `entraclaw-fake-entra -workdir D -scenario
// migrated`, then `. D/env; cd D; entraclaw-provisioner-token` prints exactly one line, a JWT
// whose appid, tid, aud and roles are right. On SIGTERM the fake removes its keyring item.
func TestFakeEntraCLI(t *testing.T) {
	requireKeyring(t)
	dir := t.TempDir()
	service := randomService()
	fake := exec.Command(filepath.Join(binDir, "entraclaw-fake-entra"), "-workdir", dir, "-scenario", "migrated", "-keyring-service", service)
	stdout, err := fake.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	fake.Stderr = &stderr
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	defer fake.Process.Kill()

	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	var line string
	select {
	case line = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("no ready line; stderr: %s", stderr.String())
	}
	fields := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			fields[k] = v
		}
	}
	if !strings.HasPrefix(line, "entraclaw-fake-entra ready:") || fields["tenant"] == "" || fields["client"] == "" {
		t.Fatalf("ready line %q", line)
	}

	sh := exec.Command("bash", "-c", `. "$1/env"; cd "$1"; entraclaw-provisioner-token`, "bash", dir)
	sh.Env = append(minimalEnv(), "PATH="+binDir+":/usr/bin:/bin")
	var out, errb bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &errb
	if err := sh.Run(); err != nil {
		t.Fatalf("token: %v\n%s", err, errb.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 1 || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("stdout is not exactly one line: %q", out.String())
	}
	if errb.Len() != 0 {
		t.Errorf("stderr not empty: %q", errb.String())
	}
	parts := strings.Split(lines[0], ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AppID string   `json:"appid"`
		TID   string   `json:"tid"`
		Aud   string   `json:"aud"`
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.AppID != fields["client"] || claims.TID != fields["tenant"] || claims.Aud != fields["url"] || len(claims.Roles) != 25 {
		t.Errorf("claims appid=%s tid=%s aud=%s roles=%d; want %s %s %s 25", claims.AppID, claims.TID, claims.Aud, len(claims.Roles), fields["client"], fields["tenant"], fields["url"])
	}

	if err := fake.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := fake.Wait(); err != nil {
		t.Errorf("fake exited with %v: %s", err, stderr.String())
	}
	if has, err := keystore.New(service).HasBundle(fields["tenant"]); err != nil || has {
		t.Errorf("keyring item left behind after the fake stopped: has=%v err=%v", has, err)
	}
}

// minimalEnv keeps what the keyring needs, nothing of the developer's ENTRACLAW_* setup.
func minimalEnv() []string { return passThrough() }
