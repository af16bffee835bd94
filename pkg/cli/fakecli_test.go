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

	"github.com/zalando/go-keyring"

	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// TestFakeEntraCLI runs the issue's own recipe: `entraclaw-fake-entra -workdir D -scenario
// migrated`, then `. D/env; cd D; entraclaw-provisioner-token` prints exactly one line, a JWT
// whose appid, tid, aud and roles are right. On SIGTERM the fake removes its keyring item.
func TestFakeEntraCLI(t *testing.T) {
	t.Parallel() // its own fake and keyring service: overlaps the other end-to-end tests
	requireKeyring(t)
	dir := t.TempDir()
	service := randomService()
	fake, fields, stderr := startFakeCLI(t, "-workdir", dir, "-scenario", "migrated", "-keyring-service", service)
	t.Cleanup(func() { _ = keyring.DeleteAll(keystore.TokenCacheService(service)) })

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
	if w := withoutHostWarning(errb.String()); w != "" || errb.Len() == 0 {
		t.Errorf("stderr is not just the warning about the fake's loopback host: %q", errb.String())
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

// startFakeCLI starts entraclaw-fake-entra with args and returns it once it printed its
// ready line, with that line's key=value fields.
func startFakeCLI(t *testing.T, args ...string) (*exec.Cmd, map[string]string, *bytes.Buffer) {
	t.Helper()
	fake := exec.Command(filepath.Join(binDir, "entraclaw-fake-entra"), args...)
	fake.Env = append(minimalEnv(), "PATH=/usr/bin:/bin")
	stdout, err := fake.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	fake.Stderr = &stderr
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = fake.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { fake.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			fake.Process.Kill()
		}
	})
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
	if !strings.HasPrefix(line, "entraclaw-fake-entra ready:") || fields["tenant"] == "" {
		t.Fatalf("ready line %q; stderr: %s", line, stderr.String())
	}
	return fake, fields, &stderr
}

// TestFakeEntraCLIFaults: -throttle and -fail-once work from the command line: the token
// request fails once with AADSTS7000229, then works; Graph reads ride out two 429s.
func TestFakeEntraCLIFaults(t *testing.T) {
	t.Parallel() // its own fake and keyring service: overlaps the other end-to-end tests
	requireKeyring(t)
	dir := t.TempDir()
	service := randomService()
	startFakeCLI(t, "-workdir", dir, "-scenario", "migrated", "-keyring-service", service,
		"-throttle", "2", "-retry-after", "10ms", "-fail-once", "POST /{tenant}/oauth2/v2.0/token=401:7000229")
	t.Cleanup(func() { _ = keyring.DeleteAll(keystore.TokenCacheService(service)) })
	run := func(script string) (string, string, int) {
		sh := exec.Command("bash", "-c", `. "$1/env"; cd "$1"; `+script, "bash", dir)
		sh.Env = append(minimalEnv(), "PATH="+binDir+":/usr/bin:/bin")
		var out, errb bytes.Buffer
		sh.Stdout, sh.Stderr = &out, &errb
		_ = sh.Run()
		return out.String(), errb.String(), sh.ProcessState.ExitCode()
	}
	if out, errs, code := run("entraclaw-provisioner-token"); code != 1 || out != "" || !strings.Contains(errs, "AADSTS7000229") {
		t.Errorf("first token call: exit %d, stdout %q, stderr %q; want exit 1 with AADSTS7000229", code, out, errs)
	}
	if out, errs, code := run("entraclaw-provisioner-token"); code != 0 || !strings.HasPrefix(out, "eyJ") {
		t.Errorf("second token call: exit %d, stderr %q", code, errs)
	}
	if out, errs, code := run("entraclaw-verify"); code != 0 || !strings.Contains(out, "4/4 checks passed") {
		t.Errorf("verify through two 429s: exit %d\n%s%s", code, out, errs)
	}
	out, _, _ := run(`curl -s --cacert ca.pem "$ENTRACLAW_FAKE_URL/_fake/state"`)
	if !strings.Contains(out, `"GET /v1.0/applications/{id}"`) {
		t.Errorf("/_fake/state has no request counters: %s", out)
	}
}

// minimalEnv keeps what the keyring needs, nothing of the developer's ENTRACLAW_* setup.
func minimalEnv() []string { return passThrough() }
