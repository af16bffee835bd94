package keystore

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests use the real kernel keyring: this user's user keyring, through keyctl. Each
// uses a service of its own and removes what it made.

// requireKernelKeyring skips where keyctl is refused (a container's seccomp profile), or
// fails under CI=true.
func requireKernelKeyring(t *testing.T) {
	t.Helper()
	if err := ProbeKernelKeyring(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required under CI=true: %v", err)
		}
		t.Skipf("no kernel keyring: %v", err)
	}
}

// kernelTokenCache is a kernel-keyring token cache of a random service, deleted at the end.
func kernelTokenCache(t *testing.T) *Store {
	t.Helper()
	requireKernelKeyring(t)
	svc := "entraclaw-test-" + strings.ToLower(rand.Text()[:10]) + "-cert"
	cache := New(svc).WithTokenCache(CacheKernel).TokenCache()
	t.Cleanup(func() { _ = cache.deleteCachedTokens(idxTenant, idxClient, nil) })
	return cache
}

// describeKernelKey is KEYCTL_DESCRIBE of the key of svc/account: type;uid;gid;perm;description.
func describeKernelKey(t *testing.T, svc, account string) (perm uint64, description string, id int) {
	t.Helper()
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", kernelDescription(svc, account), 0)
	if err != nil {
		t.Fatalf("no key for %s/%s in the user keyring: %v", svc, account, err)
	}
	d, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, id)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.SplitN(d, ";", 5)
	perm, err = strconv.ParseUint(f[3], 16, 32)
	if err != nil {
		t.Fatalf("describe %q: %v", d, err)
	}
	return perm, f[4], id
}

// A token cached in the kernel keyring: a `user` key in the user keyring described
// entraclaw:<service>:<account>, for this user only, expiring with the token; read back
// with its certificate's NotAfter; deleted with the app's tokens.
func TestKernelTokenCacheRoundTrip(t *testing.T) {
	cache := kernelTokenCache(t)
	if cache.BackendName() != NameKernelKeyring || !cache.ApartFromCertificate() {
		t.Fatalf("backend %q, apart %v: want the kernel keyring, apart from the certificate", cache.BackendName(), cache.ApartFromCertificate())
	}
	key := TokenCacheKey(idxTenant, idxClient, "https://graph.microsoft.com/.default", "ab", "https://login.microsoftonline.com/")
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	notAfter := time.Now().Add(200 * 24 * time.Hour).Truncate(time.Second)
	token := strings.Repeat("t", 3000)
	if err := cache.PutCachedTokenEntry(key, CachedToken{AccessToken: token, ExpiresOn: exp, CertNotAfter: notAfter}); err != nil {
		t.Fatal(err)
	}
	got, err := cache.GetCachedTokenEntry(key)
	if err != nil || got.AccessToken != token || !got.ExpiresOn.Equal(exp) || !got.CertNotAfter.Equal(notAfter) {
		t.Fatalf("read back %d bytes, %v, %v, %v", len(got.AccessToken), got.ExpiresOn, got.CertNotAfter, err)
	}
	perm, desc, id := describeKernelKey(t, cache.Service(), key)
	if desc != "entraclaw:"+cache.Service()+":"+key {
		t.Errorf("description %q", desc)
	}
	if perm&0xffff != 0 || perm>>24 != 0x3f || perm>>16&0xff != 0x3f {
		t.Errorf("permissions %08x: want possessor and user all, nothing for group and other", perm)
	}
	if timeout := procKeysTimeout(t, id); timeout == "perm" || timeout == "" {
		t.Errorf("the token's key has no expiry (/proc/keys says %q)", timeout)
	}
	_, _, indexID := describeKernelKey(t, cache.Service(), indexAccount(idxTenant, idxClient))
	if timeout := procKeysTimeout(t, indexID); timeout == "perm" || timeout == "" {
		t.Errorf("the index key has no expiry (/proc/keys says %q)", timeout)
	}
	if err := cache.DeleteCachedTokens(idxTenant, idxClient); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.GetCachedTokenEntry(key); !errors.Is(err, ErrNotFound) {
		t.Errorf("after DeleteCachedTokens: %v, want a miss", err)
	}
	if _, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", kernelDescription(cache.Service(), indexAccount(idxTenant, idxClient)), 0); err == nil {
		t.Error("the index key is still in the user keyring")
	}
}

// procKeysTimeout is the expiry column of key id in /proc/keys ("perm" for none).
func procKeysTimeout(t *testing.T, id int) string {
	data, err := os.ReadFile("/proc/keys")
	if err != nil {
		t.Skipf("no /proc/keys: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[0] == fmt.Sprintf("%08x", id) {
			return f[4]
		}
	}
	return ""
}

// Possession is not ownership: a process in a session keyring that does not link the user
// keyring (a systemd service's private one, cron's new one) does not possess the cached key;
// it must still find and read it. The helper process joins a new anonymous session keyring.
func TestKernelTokenCacheFoundFromAnotherSessionKeyring(t *testing.T) {
	cache := kernelTokenCache(t)
	key := TokenCacheKey(idxTenant, idxClient, "https://graph.microsoft.com/.default", "cd", "https://login.microsoftonline.com/")
	if err := cache.PutCachedToken(key, "the-token", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKernelSessionHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ENTRACLAW_KERNEL_HELPER="+cache.Service()+"\n"+key)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `read: {"accessToken":"the-token"`) || !strings.Contains(string(out), "session search: not found") {
		t.Fatalf("from a new session keyring: %v\n%s", err, out)
	}
}

// TestKernelSessionHelper is the process of the test above (it does nothing otherwise).
func TestKernelSessionHelper(t *testing.T) {
	arg := os.Getenv("ENTRACLAW_KERNEL_HELPER")
	if arg == "" {
		t.Skip("helper process only")
	}
	svc, key, _ := strings.Cut(arg, "\n")
	runtime.LockOSThread() // the session keyring is the calling thread's
	if _, err := unix.KeyctlJoinSessionKeyring("entraclaw-test-" + rand.Text()); err != nil {
		t.Fatalf("join a new session keyring: %v", err)
	}
	// Through the new session keyring the key is out of reach: no possession.
	if _, err := unix.KeyctlSearch(unix.KEY_SPEC_SESSION_KEYRING, "user", kernelDescription(svc, key), 0); errors.Is(err, unix.ENOKEY) {
		fmt.Println("session search: not found")
	}
	// On this thread: a Store's calls run on goroutines of their own, which may be on threads
	// still in the old session keyring.
	tok, err := kernelBackend{}.Get(svc, key)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("read: " + tok)
}

// A rollback or rotation clears the app's tokens from the kernel keyring too, whatever
// cache its own -token-cache chose: DeleteCachedTokens of the OS keyring's token cache
// reaches the kernel keyring's.
func TestDeleteCachedTokensClearsTheKernelCacheToo(t *testing.T) {
	cache := kernelTokenCache(t)
	key := TokenCacheKey(idxTenant, idxClient, "https://graph.microsoft.com/.default", "ef", "https://login.microsoftonline.com/")
	if err := cache.PutCachedToken(key, "tok", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	certService := strings.TrimSuffix(cache.Service(), "-token-cache") + "-cert"
	for _, kind := range []string{CacheKeyring, CacheNone} {
		if err := cache.PutCachedToken(key, "tok", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		// Without a Secret Service the keyring's own part fails; the kernel's is cleared anyway.
		_ = New(certService, WithTimeout(2*time.Second)).WithTokenCache(kind).TokenCache().DeleteCachedTokens(idxTenant, idxClient)
		if _, err := cache.GetCachedTokenEntry(key); !errors.Is(err, ErrNotFound) {
			t.Errorf("-token-cache %s: the kernel keyring still holds the token after DeleteCachedTokens (%v)", kind, err)
		}
	}
	// A Store with a test's backend clears only its own.
	if err := cache.PutCachedToken(key, "tok", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := New(certService, WithBackend(NewMemoryBackend())).TokenCache().DeleteCachedTokens(idxTenant, idxClient); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.GetCachedTokenEntry(key); err != nil {
		t.Errorf("a memory-backed Store cleared the kernel keyring: %v", err)
	}
}

// -token-cache none keeps nothing.
func TestNoTokenCache(t *testing.T) {
	cache := New(testService, WithBackend(NewMemoryBackend())).WithTokenCache(CacheNone).TokenCache()
	key := TokenCacheKey(idxTenant, idxClient, "s/.default", "ab", "https://login.microsoftonline.com/")
	if err := cache.PutCachedToken(key, "tok", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cache.GetCachedToken(key); !errors.Is(err, ErrNotFound) || cache.BackendName() != NameNoTokenCache {
		t.Errorf("%s: %v, want a miss", cache.BackendName(), err)
	}
}
