package cli_test

// Headless Linux (issue 20 §2, §4): the token cache in the kernel keyring, which needs no
// D-Bus, and no binary that waits on a session bus that is missing, dead or has no Secret
// Service. The real binaries, the real kernel keyring (this user's user keyring, keyctl),
// a private dbus-daemon of the test's own.

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// kernelCache is f's token cache in the kernel keyring, cleared when the test ends.
func kernelCache(t *testing.T, f *fakeEnv) *keystore.Store {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the kernel keyring is Linux's")
	}
	if err := keystore.ProbeKernelKeyring(); err != nil {
		skipOutsideCI(t, "no kernel keyring: %v", err)
	}
	cache := keystore.New(f.Service).WithTokenCache(keystore.CacheKernel).TokenCache()
	t.Cleanup(func() { _ = cache.DeleteCachedTokens(f.Scenario.TenantID, f.Scenario.ClientID) })
	return cache
}

// envWith is a copy of f's environment with extra on top (a later entry wins).
func envWith(f *fakeEnv, extra ...string) []string {
	return append(append([]string(nil), f.Env...), extra...)
}

// headless is f's environment without any session bus: no DBUS_SESSION_BUS_ADDRESS, no
// XDG_RUNTIME_DIR, and extra on top.
func headless(f *fakeEnv, extra ...string) []string {
	return append(withoutEnv(f.Env, "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"), extra...)
}

// runIn runs a binary with exactly env and returns its result and wall time.
func runIn(t *testing.T, f *fakeEnv, env []string, name string, args ...string) (binaryResult, time.Duration) {
	t.Helper()
	cmd := f.command(name, args...)
	cmd.Env = env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if cmd.ProcessState == nil {
		t.Fatalf("running %s: %v", name, err)
	}
	return binaryResult{name: name, stdout: out.String(), stderr: withoutHostWarning(errb.String()), code: cmd.ProcessState.ExitCode()}, took
}

// privateBusWithoutSecretService starts a dbus-daemon of the test's own that activates
// nothing (no gnome-keyring), and returns its address.
func privateBusWithoutSecretService(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		skipOutsideCI(t, "no dbus-daemon: %v", err)
	}
	dir := t.TempDir()
	conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=` + dir + `</listen>
  <auth>EXTERNAL</auth>
  <servicedir>` + dir + `</servicedir>
  <policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>`
	if err := os.WriteFile(filepath.Join(dir, "session.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+filepath.Join(dir, "session.conf"), "--nofork", "--print-address=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return strings.TrimSpace(addr)
}

// deadSocket is the path of a unix socket nothing listens on any more.
func deadSocket(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bus")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the dead socket is gone: %v", err)
	}
	return path
}

// autolaunchTrap is a directory holding a dbus-launch that records being run in the file
// it returns, then hangs: any autolaunch shows, and would blow the time bound.
func autolaunchTrap(t *testing.T) (dir, ran string) {
	t.Helper()
	dir = t.TempDir()
	ran = filepath.Join(dir, "dbus-launch.ran")
	script := "#!/bin/sh\ntouch '" + ran + "'\nsleep 30\n"
	if err := os.WriteFile(filepath.Join(dir, "dbus-launch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, ran
}

// silentBus is the address of a unix socket whose owner accepts and never answers: a
// wedged dbus-daemon, or some other server at the bus's path.
func silentBus(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "silent")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // never read, never answered
		}
	}()
	t.Cleanup(func() { l.Close() })
	return "unix:path=" + path
}

// oneLineError checks a failed run: exit 1, nothing on stdout, the error line naming the
// unreachable Secret Service and the hint naming the real ways out, and nothing else.
func oneLineError(t *testing.T, r binaryResult) {
	t.Helper()
	r.wantExit(t, 1)
	r.wantNoStdout(t)
	r.wantError(t, `Secret Service is not reachable`)
	r.wantHint(t, "-key-store tpm-file")
	r.wantHint(t, "workload identity federation")
	if strings.Contains(r.hint(), "with-secret-service") {
		t.Errorf("%s: the hint points at the tests' throw-away keyring: %s", r.name, r.hint())
	}
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 2 {
		t.Errorf("%s: %d stderr lines, want the error and its hint:\n%s", r.name, len(lines), r.stderr)
	}
}

// The hang matrix (issue 20 §4): with the session bus unset, a dead socket, a missing
// path, a live bus without a Secret Service, or a bus that never answers, and with
// dbus-launch on PATH (a trap that records being run) or not, every binary decides within
// 2 s: no autolaunch, no wait. A token cached in the kernel keyring is served in all of
// them; everything that needs the certificate (still in the Secret Service) fails with
// one error line and one hint.
func TestHeadlessNoHang(t *testing.T) {
	t.Parallel()
	trap, ran := autolaunchTrap(t)
	t.Cleanup(func() { // after every bus's subtest
		if _, err := os.Stat(ran); err == nil {
			t.Error("a binary ran dbus-launch (autolaunch)")
		}
	})
	buses := []struct {
		name, addr string
		trapToo    bool // also with dbus-launch on PATH (godbus would autolaunch only without an address)
	}{
		{"unset", "", true},
		{"dead socket", "unix:path=" + deadSocket(t), true},
		{"missing path", "unix:path=" + filepath.Join(t.TempDir(), "no-such-bus"), true},
		{"bus without a Secret Service", privateBusWithoutSecretService(t), true},
		{"silent bus", silentBus(t), false},
	}
	for _, bus := range buses {
		t.Run(bus.name, func(t *testing.T) {
			t.Parallel() // each bus with its own fake: the request counts are its own
			paths := []string{binDir}
			if bus.trapToo {
				paths = append(paths, trap+string(os.PathListSeparator)+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
			}
			f := startFake(t, "migrated")
			cache := kernelCache(t, f)
			if r, _ := runIn(t, f, envWith(f, "ENTRACLAW_TOKEN_CACHE=kernel"), "entraclaw-provisioner-token"); r.code != 0 {
				t.Fatalf("warming the kernel cache: %s", r.stderr)
			}
			cached, _, err := cache.GetCachedToken(tokenCacheKey(t, f, ""))
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range paths {
				label := bus.name + map[bool]string{true: ", dbus-launch on PATH", false: ", no dbus-launch"}[path != binDir]
				extra := []string{"PATH=" + path, "ENTRACLAW_TOKEN_CACHE=auto"}
				if bus.addr != "" {
					extra = append(extra, "DBUS_SESSION_BUS_ADDRESS="+bus.addr)
				}
				checkHeadlessDecides(t, f, label, headless(f, extra...), cached)
			}
		})
	}
}

// checkHeadlessDecides runs every binary in env (a broken or absent session bus) and
// checks each decides within 2 s: the kernel-cached token is served with no request, and
// what needs the certificate in the unreachable Secret Service fails in one line.
func checkHeadlessDecides(t *testing.T, f *fakeEnv, label string, env []string, cached string) {
	t.Helper()
	const bound = 2 * time.Second
	timed := func(name string, args ...string) binaryResult {
		t.Helper()
		r, took := runIn(t, f, env, name, args...)
		if took >= bound {
			t.Errorf("%s: %s %v took %v, want < %v", label, name, args, took, bound)
		}
		return r
	}
	f.Server.ResetCounts()
	tok := timed("entraclaw-provisioner-token")
	if tok.code != 0 || strings.TrimSpace(tok.stdout) != cached || totalRequests(f) != 0 {
		t.Errorf("%s: the kernel-cached token: exit %d, %d requests, stderr %s", label, tok.code, totalRequests(f), tok.stderr)
	}
	for _, args := range [][]string{{"entraclaw-provisioner-token", "-no-cache"}, {"entraclaw-provisioner-token", "-token-cache", "none"},
		{"entraclaw-migrate"}, {"entraclaw-verify", "-offline"}} {
		oneLineError(t, timed(args[0], args[1:]...))
	}
	if v := timed("entraclaw-verify"); v.code == 0 || !strings.Contains(v.stdout, "Secret Service is not reachable") {
		t.Errorf("%s: verify exit %d:\n%s", label, v.code, v.stdout)
	}
	// As the provisioner (whose certificate is in the unreachable Secret Service): the
	// bus is the only thing this run waits on; an az sign-in would time the CLI instead.
	if rb := timed("entraclaw-rollback", "-yes", "-operator-auth", "provisioner"); rb.code == 0 || strings.Count(rb.stderr, "error: ") != 1 {
		t.Errorf("%s: rollback exit %d, want one error line:\n%s", label, rb.code, rb.stderr)
	}
}

// A token cached in the kernel keyring (issue 20 §2): minted once, then served with no
// session bus at all and no token request; verify -offline names the cache; and every
// clearing of the app's tokens (-remove-cached-tokens, rollback) empties the kernel
// cache whatever -token-cache the clearing run has.
func TestKernelTokenCacheEndToEnd(t *testing.T) {
	t.Parallel() // its own fake and keyring service: overlaps the other end-to-end tests
	f := startFake(t, "legacy")
	if _, stderr, code := f.run(t, "entraclaw-migrate"); code != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	cache := kernelCache(t, f)
	key := migratedCacheKey(t, f)
	kernel := envWith(f, "ENTRACLAW_TOKEN_CACHE=kernel")
	mint := func() string {
		t.Helper()
		f.Server.ResetCounts()
		r, _ := runIn(t, f, kernel, "entraclaw-provisioner-token")
		if r.code != 0 || totalRequests(f) == 0 {
			t.Fatalf("minting into the kernel cache: exit %d, %v: %s", r.code, f.Server.Counts(), r.stderr)
		}
		if _, err := cache.GetCachedTokenEntry(key); err != nil {
			t.Fatalf("the kernel keyring holds no token: %v", err)
		}
		return strings.TrimSpace(r.stdout)
	}
	first := mint()
	if _, _, err := tokenCache(f).GetCachedToken(key); err == nil {
		t.Error("-token-cache kernel also cached the token in the Secret Service")
	}

	f.Server.ResetCounts()
	r, _ := runIn(t, f, headless(f, "ENTRACLAW_TOKEN_CACHE=auto"), "entraclaw-provisioner-token")
	if r.code != 0 || strings.TrimSpace(r.stdout) != first || totalRequests(f) != 0 {
		t.Fatalf("without D-Bus, auto: exit %d, %d requests, same token %v: %s", r.code, totalRequests(f), strings.TrimSpace(r.stdout) == first, r.stderr)
	}

	st, _ := runIn(t, f, envWith(f, "ENTRACLAW_TOKEN_CACHE=auto"), "entraclaw-verify", "-offline")
	if !strings.Contains(st.stdout, "token cache:    kernel keyring (lost at reboot)") || !strings.Contains(st.stdout, "cached token:   valid until") {
		t.Errorf("verify -offline does not name the kernel cache and its token:\n%s", st.stdout)
	}

	rm, _ := runIn(t, f, envWith(f, "ENTRACLAW_TOKEN_CACHE=keyring"), "entraclaw-provisioner-token", "-remove-cached-tokens")
	if _, err := cache.GetCachedTokenEntry(key); rm.code != 0 || !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("-remove-cached-tokens -token-cache keyring left the kernel's token (exit %d, %v): %s", rm.code, err, rm.stderr)
	}

	mint()
	rb, _ := runIn(t, f, envWith(f, "ENTRACLAW_TOKEN_CACHE=none"), "entraclaw-rollback", "-yes")
	if _, err := cache.GetCachedTokenEntry(key); rb.code != 0 || !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("rollback -token-cache none left the kernel's token (exit %d, %v): %s", rb.code, err, rb.stderr)
	}
}

// migratedCacheKey is the cache key of the token of the certificate migrate made.
func migratedCacheKey(t *testing.T, f *fakeEnv) string {
	t.Helper()
	pem, err := keystore.New(f.Service).GetBundle(f.Scenario.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := certs.ParseBundle(pem)
	if err != nil {
		t.Fatal(err)
	}
	c, err := entra.ResolveCloud("", f.Server.AuthorityHost(), f.Server.GraphEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	return keystore.TokenCacheKey(f.Scenario.TenantID, f.Scenario.ClientID, c.GraphScope(), certs.Thumbprint(b.Cert), c.AuthorityHost)
}

// -token-cache takes auto, keyring, kernel or none, from the command line, the environment
// or the config file, in every binary; anything else is a usage error.
func TestTokenCacheFlagValues(t *testing.T) {
	t.Parallel() // its own fake and keyring service: overlaps the other end-to-end tests
	f := startFake(t, "migrated")
	r, _ := runIn(t, f, envWith(f, "ENTRACLAW_TOKEN_CACHE=disk"), "entraclaw-provisioner-token")
	r.wantExit(t, 2)
	r.wantError(t, `-token-cache must be auto, keyring, kernel or none, not "disk"`)
	for _, name := range []string{"entraclaw-migrate", "entraclaw-verify", "entraclaw-rollback"} {
		if r, _ := runIn(t, f, f.Env, name, "-h"); !strings.Contains(r.stdout, "-token-cache string") || !strings.Contains(r.stdout, "$ENTRACLAW_TOKEN_CACHE; config") {
			t.Errorf("%s -h does not list -token-cache with its variable and config key:\n%s", name, r.stdout)
		}
	}
}
