package cli_test

// End-to-end tests of the token binary's cache (issue 8 §2) and interrupts (§6): the real
// binary, the real Secret Service, the in-process fake, and a hostile token service.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
	"github.com/entraclaw/entraclaw-cli/pkg/token"
)

// tokenCacheKey is the keyring account the token binary caches f's Graph token under
// when it talks to authority (the fake's own authority host when "").
func tokenCacheKey(t testing.TB, f *fakeEnv, authority string) string {
	t.Helper()
	if authority == "" {
		authority = f.Server.AuthorityHost()
	}
	c, err := entra.ResolveCloud("", authority, f.Server.GraphEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	return keystore.TokenCacheKey(f.Scenario.TenantID, f.Scenario.ClientID, c.GraphScope(), certs.Thumbprint(f.Scenario.Bundle.Cert), c.AuthorityHost)
}

func tokenCache(f *fakeEnv) *keystore.Store {
	return keystore.New(keystore.TokenCacheService(f.Service))
}

// hostileSTS is a token service on another host that answers whatever the test tells it to.
type hostileSTS struct {
	*httptest.Server
	mu       sync.Mutex
	token    string
	expires  any  // expires_in
	huge     bool // stream an endless token response instead
	written  atomic.Int64
	requests atomic.Int32
	caFile   string // the fake's CA plus this server's certificate
}

func startHostileSTS(t *testing.T, f *fakeEnv) *hostileSTS {
	t.Helper()
	h := &hostileSTS{}
	h.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := "https://" + r.Host
		if strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
			tenant := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")[0]
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{
				"token_endpoint":         base + "/" + tenant + "/oauth2/v2.0/token",
				"authorization_endpoint": base + "/" + tenant + "/oauth2/v2.0/authorize",
				"issuer":                 base + "/" + tenant + "/v2.0",
			})
			return
		}
		h.requests.Add(1)
		h.mu.Lock()
		token, expires, huge := h.token, h.expires, h.huge
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if huge {
			chunk := []byte(strings.Repeat("A", 32<<10))
			_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":3600,"access_token":"`))
			for h.written.Load() < 2<<30 {
				n, err := w.Write(chunk)
				h.written.Add(int64(n))
				if err != nil {
					return
				}
			}
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": expires, "access_token": token})
	}))
	t.Cleanup(h.Close)
	ca, err := os.ReadFile(filepath.Join(f.Dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ca = append(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.Certificate().Raw})...)
	h.caFile = filepath.Join(t.TempDir(), "ca-with-hostile.pem")
	if err := os.WriteFile(h.caFile, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *hostileSTS) answer(token string, expiresIn any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.token, h.expires, h.huge = token, expiresIn, false
}

// env points the token binary at the hostile service (ENTRACLAW_AUTHORITY_HOST, as in the
// issue's repro).
func (h *hostileSTS) env() []string {
	return []string{"ENTRACLAW_AUTHORITY_HOST=" + h.URL, "SSL_CERT_FILE=" + h.caFile}
}

// jwtFor builds an unsigned-looking JWT (the binary never verifies signatures) for f's app.
func jwtFor(f *fakeEnv, change func(map[string]any)) string {
	claims := map[string]any{
		"tid": f.Scenario.TenantID, "appid": f.Scenario.ClientID, "aud": f.Server.GraphEndpoint(),
		"exp": time.Now().Add(time.Hour).Unix(), "appidacr": "2", "jti": "hostile-" + fmt.Sprint(time.Now().UnixNano()),
	}
	if change != nil {
		change(claims)
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims) + ".c2lnbmF0dXJlLW5vdC1jaGVja2Vk"
}

type badToken struct {
	name      string
	token     string
	expiresIn int64
}

func badTokens(f *fakeEnv) []badToken {
	tenYears := int64(10 * 365 * 24 * 3600)
	return []badToken{
		{"not a JWT, 10-year expiry", "EVIL-TOKEN-NOT-A-JWT", tenYears},
		{"multi-line with escape sequences", jwtFor(f, nil) + "\n\x1b[2J\x1b[31mEVIL\x1b[0m", 3600},
		{"already expired (expires_in -100)", jwtFor(f, nil), -100},
		{"exp in the past", jwtFor(f, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }), 3600},
		{"exp 10 years", jwtFor(f, func(c map[string]any) { c["exp"] = time.Now().Unix() + tenYears }), tenYears},
		{"wrong tid", jwtFor(f, func(c map[string]any) { c["tid"] = "0badc0de-0000-4000-8000-000000000000" }), 3600},
		{"wrong appid", jwtFor(f, func(c map[string]any) { c["appid"] = "0badc0de-0000-4000-8000-000000000000" }), 3600},
	}
}

// assertNoTokenLeak fails when out or errOut holds the token or a recognisable part of it.
func assertNoTokenLeak(t *testing.T, token, out, errOut string) {
	t.Helper()
	lines := strings.SplitN(token, "\n", 2)
	parts := strings.Split(lines[0], ".")
	if len(lines) == 2 {
		parts = append(parts, lines[1]) // what follows the newline, escape sequences and all
	}
	for _, part := range parts {
		if len(part) >= 4 && (strings.Contains(out, part) || strings.Contains(errOut, part)) {
			t.Errorf("the output echoes the token (%.20q…)\nstdout: %q\nstderr: %q", part, out, errOut)
		}
	}
	// The marker in stderr, which never holds a token. (Not in stdout: a freshly minted
	// token's random claims and signature hold "EVIL" now and then, as base64url.)
	if strings.Contains(errOut, "EVIL") {
		t.Errorf("stderr echoes the planted token: %q", errOut)
	}
	if strings.Contains(errOut, "\x1b") {
		t.Errorf("an escape sequence reached stderr: %q", errOut)
	}
}

// §2: whatever a token service returns is printed or cached only if it is a sane JWT for
// this tenant and app; anything else is one error line (exit 1) that does not echo it.
func TestTokenRefusesBadTokensFromTheTokenService(t *testing.T) {
	t.Parallel() // its own fake and keyring service: overlaps the other end-to-end tests
	f := startFake(t, "migrated")
	h := startHostileSTS(t, f)
	hostileKey := tokenCacheKey(t, f, h.URL)
	for _, bt := range badTokens(f) {
		t.Run(bt.name, func(t *testing.T) {
			h.answer(bt.token, bt.expiresIn)
			res := runBinary(t, f, h.env(), "entraclaw-provisioner-token")
			res.wantExit(t, 1)
			res.wantNoStdout(t)
			res.wantError(t, `^the token service at 127\.0\.0\.1:[0-9]+ returned an access token that cannot be used: .+; nothing was printed or cached$`)
			if !strings.Contains(res.stderr, "entraclaw-provisioner-token: hint: check -authority-host") {
				t.Errorf("no hint:\n%s", res.stderr)
			}
			assertNoTokenLeak(t, bt.token, res.stdout, res.stderr)
			if _, _, err := tokenCache(f).GetCachedToken(hostileKey); !errors.Is(err, keystore.ErrNotFound) {
				t.Errorf("the refused token was cached (%v)", err)
			}
		})
	}
	if h.requests.Load() != int32(len(badTokens(f))) {
		t.Errorf("%d token requests reached the hostile service, want %d", h.requests.Load(), len(badTokens(f)))
	}
	// Later normal runs are not poisoned: a fresh token from the fake.
	f.Server.ResetCounts()
	stdout, stderr, code := f.run(t, "entraclaw-provisioner-token")
	if code != 0 || !strings.HasPrefix(stdout, "eyJ") || f.Server.TokenRequests() != 1 {
		t.Fatalf("normal run after the hostile ones: exit %d, %d token requests, stdout %.20q, stderr %s", code, f.Server.TokenRequests(), stdout, stderr)
	}
}

// §2: the repro. One run against another token service must not poison later
// normal runs, even when what it returned looks like a valid token for this app.
func TestTokenCacheKeyedByAuthorityHost(t *testing.T) {
	t.Parallel() // its own fake and keyring service: overlaps the other end-to-end tests
	f := startFake(t, "migrated")
	h := startHostileSTS(t, f)
	evil := jwtFor(f, nil)
	h.answer(evil, 36000)
	cmd := f.command("entraclaw-provisioner-token")
	cmd.Env = append(cmd.Env, h.env()...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("the run against the other service: %v\n%s", err, errb.String())
	}
	res := interrupted{stdout: out.String(), stderr: errb.String()}
	if strings.TrimSpace(res.stdout) != evil {
		t.Fatalf("the run against the other service printed %.30q", res.stdout)
	}
	if !strings.Contains(res.stderr, "warning: -authority-host "+strings.TrimPrefix(h.URL, "https://")+" and -graph-endpoint") ||
		!strings.Contains(res.stderr, "the certificate-signed client assertion goes to "+strings.TrimPrefix(h.URL, "https://")) {
		t.Errorf("no warning naming the host the assertion went to:\n%s", res.stderr)
	}
	if strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("stderr is not exactly the warning line:\n%s", res.stderr)
	}
	f.Server.ResetCounts()
	for i := 0; i < 2; i++ {
		stdout, stderr, code := f.run(t, "entraclaw-provisioner-token")
		if code != 0 || strings.TrimSpace(stdout) == evil || !strings.HasPrefix(stdout, "eyJ") {
			t.Fatalf("normal run %d: exit %d, poisoned=%v\n%s", i, code, strings.TrimSpace(stdout) == evil, stderr)
		}
	}
	if n := f.Server.TokenRequests(); n != 1 {
		t.Errorf("%d token requests to the real service, want 1 (then the cache)", n)
	}
}

// §2: a planted (or stale) cache item that fails the checks is ignored and deleted, and a
// fresh token is minted instead.
func TestTokenRefusesPlantedCacheItems(t *testing.T) {
	t.Parallel() // its own fake and keyring service: overlaps the other end-to-end tests
	f := startFake(t, "migrated")
	key := tokenCacheKey(t, f, "")
	for _, bt := range badTokens(f) {
		t.Run(bt.name, func(t *testing.T) {
			if err := tokenCache(f).PutCachedToken(key, bt.token, time.Now().Add(time.Duration(bt.expiresIn)*time.Second)); err != nil {
				t.Fatal(err)
			}
			f.Server.ResetCounts()
			stdout, stderr, code := f.run(t, "entraclaw-provisioner-token")
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, stderr)
			}
			assertNoTokenLeak(t, bt.token, stdout, stderr)
			if !strings.HasPrefix(stdout, "eyJ") || f.Server.TokenRequests() != 1 {
				t.Errorf("want a freshly minted token: %d token requests, stdout %.20q", f.Server.TokenRequests(), stdout)
			}
			cached, _, err := tokenCache(f).GetCachedToken(key)
			if err != nil || cached != strings.TrimSpace(stdout) {
				t.Errorf("the cache does not hold the fresh token (%v)", err)
			}
		})
	}
}

// §2: a token service streaming a 2 GiB token: one line, exit 1, and the binary read about
// the 64 KiB cap, not the body.
func TestTokenResponseBodyCapped(t *testing.T) {
	t.Parallel() // its own fake and keyring service: overlaps the other end-to-end tests
	f := startFake(t, "migrated")
	h := startHostileSTS(t, f)
	h.mu.Lock()
	h.huge = true
	h.mu.Unlock()
	res := runBinary(t, f, h.env(), "entraclaw-provisioner-token")
	res.wantExit(t, 1)
	res.wantNoStdout(t)
	res.wantError(t, `the response from 127\.0\.0\.1:[0-9]+/[^ ]+/oauth2/v2\.0/token is larger than 64 KiB; refusing to read it`)
	if n := h.written.Load(); n > 32<<20 {
		t.Errorf("the hostile service wrote %d bytes before the binary hung up", n)
	}
	if strings.Contains(res.stderr, "AAAAAAAA") {
		t.Error("stderr echoes the body")
	}
}

// §2: a cold cache under 100 parallel callers makes one token request; all get the same
// token. (Before the per-user lock: 85 requests for 100 calls on this machine.)
func TestTokenColdCacheParallelCallsMakeOneRequest(t *testing.T) {
	t.Parallel() // its own fake and keyring service: overlaps the other end-to-end tests
	f := startFake(t, "migrated")
	n := 100
	if testing.Short() {
		n = 50
	}
	f.Server.ResetCounts()
	outs := make([]string, n)
	codes := make([]int, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := f.command("entraclaw-provisioner-token")
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			_ = cmd.Run()
			outs[i], errs[i], codes[i] = out.String(), errb.String(), cmd.ProcessState.ExitCode()
		}()
	}
	wg.Wait()
	for i := range n {
		if codes[i] != 0 || outs[i] != outs[0] || !strings.HasPrefix(outs[i], "eyJ") {
			t.Fatalf("call %d: exit %d, same token %v:\n%s", i, codes[i], outs[i] == outs[0], errs[i])
		}
	}
	if got := f.Server.TokenRequests(); got != 1 {
		t.Errorf("%d parallel cold calls made %d token requests, want 1", n, got)
	}
	t.Logf("%d parallel cold calls: %d token request(s)", n, f.Server.TokenRequests())
	lock := token.LockPath(filepath.Join(f.StateHome, "entraclaw"), tokenCacheKey(t, f, ""))
	for _, p := range []string{lock, filepath.Dir(lock)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]os.FileMode{true: 0o700, false: 0o600}[fi.IsDir()]; fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
}

// §6: while another process holds the per-user token lock, the binary waits; Ctrl-C ends
// the wait at once with exit 130 and nothing on stdout.
func TestTokenInterruptWhileWaitingForTheLock(t *testing.T) {
	t.Parallel() // its own fake and keyring service: overlaps the other end-to-end tests
	f := startFake(t, "migrated")
	lockPath := token.LockPath(filepath.Join(f.StateHome, "entraclaw"), tokenCacheKey(t, f, ""))
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o700); err != nil {
		t.Fatal(err)
	}
	unlock, err := state.LockFile(context.Background(), lockPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	res, elapsed := runAndInterrupt(t, f.command("entraclaw-provisioner-token", "-v"), "waiting for another entraclaw-provisioner-token", 1)
	if res.code != 130 {
		t.Errorf("exit %d, want 130\n%s", res.code, res.stderr)
	}
	if elapsed > 3*time.Second {
		t.Errorf("exited %s after the signal", elapsed)
	}
	if res.stdout != "" || !strings.Contains(res.stderr, "entraclaw-provisioner-token: error: interrupted") {
		t.Errorf("stdout %q, stderr:\n%s", res.stdout, res.stderr)
	}
	if n := f.Server.TokenRequests(); n != 0 {
		t.Errorf("%d token requests while the lock was held", n)
	}
}

// §6: a keyring call that hangs (here a session bus that never answers, as a Secret Service
// waiting on an unlock prompt does) no longer swallows Ctrl-C until the 10 s keyring
// timeout: SIGINT ends the run at once with exit 130.
func TestTokenInterruptWhileKeyringHangs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and never answer
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			go func() { _, _ = bufio.NewReader(c).ReadString(0xff) }()
		}
	}()
	statePath := filepath.Join(dir, ".entraclaw-state.json")
	if err := os.WriteFile(statePath, []byte(`{"TENANT_ID": "11111111-1111-4111-8111-111111111111", "PROVISIONER_CLIENT_ID": "22222222-2222-4222-8222-222222222222"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, run := range []struct {
		sig  syscall.Signal
		args []string
	}{
		{syscall.SIGINT, []string{"entraclaw-provisioner-token"}},
		{syscall.SIGTERM, []string{"entraclaw-provisioner-token"}},
		{syscall.SIGINT, []string{"entraclaw-verify", "-check", "keyring-cert"}},
	} {
		sig := run.sig
		cmd := exec.Command(filepath.Join(binDir, run.args[0]), run.args[1:]...)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + dir, "DBUS_SESSION_BUS_ADDRESS=unix:path=" + sock, "PATH=/usr/bin:/bin", "NO_COLOR=1"}
		start := time.Now()
		res, elapsed := runAndInterruptAfter(t, cmd, 700*time.Millisecond, sig, 1)
		if res.code != 130 || elapsed > 3*time.Second {
			t.Errorf("%s %v: exit %d %s after the signal (%s in all), want 130 at once\n%s", run.args[0], sig, res.code, elapsed, time.Since(start), res.stderr)
		}
		if res.stdout != "" || !strings.Contains(res.stderr, "error: interrupted") {
			t.Errorf("%s %v: stdout %q, stderr:\n%s", run.args[0], sig, res.stdout, res.stderr)
		}
	}
}

// §6: `entraclaw-provisioner-token >&-` is an error (exit 1, one line and a hint), not
// exit 0 with the token gone nowhere; `>/dev/null` is still fine.
func TestTokenClosedStdout(t *testing.T) {
	t.Parallel() // its own fake and keyring service: overlaps the other end-to-end tests
	f := startFake(t, "migrated")
	cmd := exec.Command("bash", "-c", `entraclaw-provisioner-token >&-`)
	cmd.Dir, cmd.Env = f.Dir, f.Env
	var errb bytes.Buffer
	cmd.Stderr = &errb
	_ = cmd.Run()
	stderr := withoutHostWarning(errb.String())
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf(">&-: exit %d, want 1\n%s", code, errb.String())
	}
	if !strings.HasPrefix(stderr, "entraclaw-provisioner-token: error: writing the token to stdout failed: stdout is closed\nentraclaw-provisioner-token: hint: ") || strings.Count(stderr, "\n") != 2 {
		t.Errorf(">&-: stderr:\n%s", errb.String())
	}
	if n := f.Server.TokenRequests(); n != 0 {
		t.Errorf(">&-: %d token requests for a token nobody can receive", n)
	}
	cmd = exec.Command("bash", "-c", `entraclaw-provisioner-token >/dev/null`)
	cmd.Dir, cmd.Env = f.Dir, f.Env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf(">/dev/null: %v\n%s", err, out)
	}
}

type interrupted struct {
	stdout, stderr string
	code           int
}

// runAndInterrupt starts cmd, waits for a stderr line containing marker, sends SIGINT n
// times and returns the result and how long the process took to exit after the signal.
func runAndInterrupt(t *testing.T, cmd *exec.Cmd, marker string, n int) (interrupted, time.Duration) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout = &out
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	seen := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pipe)
		once := sync.Once{}
		for sc.Scan() {
			errb.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), marker) {
				once.Do(func() { close(seen) })
			}
		}
	}()
	select {
	case <-seen:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		t.Fatalf("never saw %q on stderr:\n%s", marker, errb.String())
	}
	sent := time.Now()
	for range n {
		_ = cmd.Process.Signal(syscall.SIGINT)
	}
	<-done
	_ = cmd.Wait()
	return interrupted{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}, time.Since(sent)
}

// runAndInterruptAfter starts cmd, sends sig n times after d, and waits for it to exit.
func runAndInterruptAfter(t *testing.T, cmd *exec.Cmd, d time.Duration, sig syscall.Signal, n int) (interrupted, time.Duration) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	select {
	case <-exited:
		t.Fatalf("exited before the signal: %d\n%s", cmd.ProcessState.ExitCode(), errb.String())
	case <-time.After(d):
	}
	sent := time.Now()
	for range n {
		_ = cmd.Process.Signal(sig)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	return interrupted{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}, time.Since(sent)
}

// TestCachedTokenCreatesNothing: a call served from the cache takes no lock, so it does
// not create the per-user state directory (the lock's home) either.
func TestCachedTokenCreatesNothing(t *testing.T) {
	t.Parallel() // its own fake and keyring service: overlaps the other end-to-end tests
	f := startFake(t, "migrated")
	if _, stderr, code := f.run(t, "entraclaw-provisioner-token"); code != 0 { // warm the cache
		t.Fatalf("token: exit %d: %s", code, stderr)
	}
	root := filepath.Join(f.StateHome, "entraclaw")
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := f.run(t, "entraclaw-provisioner-token"); code != 0 {
		t.Fatalf("cached token: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a cached call created %s (err %v)", root, err)
	}
}
