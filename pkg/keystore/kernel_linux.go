//go:build linux

package keystore

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/zalando/go-keyring"
	"golang.org/x/sys/unix"
)

// The kernel keyring backend of the token cache (-token-cache kernel): one `user`-type key
// per item in this user's user keyring, described entraclaw:<service>:<account>. No D-Bus,
// no daemon, no unlock; the keys are gone at reboot, which costs one token request.
//
// Possession is not ownership: a key's possessor permissions apply only to a process that
// reaches it through its own thread, process or session keyring, and which session keyring a
// process has differs between a login shell (the user session keyring, which links the user
// keyring), cron (pam_keyinit: a new session keyring) and a systemd service (a private session
// keyring that links nothing). Instead of linking the user keyring into the session keyring
// (which changes the session of the caller's shell or service for good, and fails where the
// session keyring is not ours to change), every lookup searches the user keyring itself, by
// its special id, and every key also grants its permissions to the owning user: a read by
// serial number then works whether or not the caller possesses the key. The user permissions
// open nothing to anyone who could not read the key anyway: only processes of this uid (or
// root) match them, and those can already read the Secret Service item or ptrace us.

const (
	kernelKeyType = "user"
	// kernelKeyPerm: view, read, write, search, link and setattr for the possessor and for
	// the owning user; nothing for the group or others.
	kernelKeyPerm uint32 = 0x3f3f0000
	// kernelMaxPayload is the largest payload of a `user` key.
	kernelMaxPayload = 32767
	// kernelExpirySlack keeps a token's key a minute past the token's expiry, so the cache
	// read sees (and reports) an expired token rather than a vanished one at the boundary.
	kernelExpirySlack = time.Minute
	// kernelIndexLifetime: no token lives longer than a day (pkg/token's maxTokenLifetime).
	kernelIndexLifetime = 25 * time.Hour
)

const kernelKeyringSupported = true

// kernelBackend is the kernel keyring as a Backend.
type kernelBackend struct{}

func (kernelBackend) backendName() string { return NameKernelKeyring }

func kernelDescription(svc, user string) string {
	return kernelDescriptionPrefix + svc + ":" + user
}

// find returns the serial of the key svc/user in the user keyring.
func (kernelBackend) find(svc, user string) (int, error) {
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, kernelKeyType, kernelDescription(svc, user), 0)
	if err != nil {
		return 0, kernelError("search", err)
	}
	return id, nil
}

func (b kernelBackend) Get(svc, user string) (string, error) {
	id, err := b.find(svc, user)
	if err != nil {
		return "", err
	}
	return readKernelKey(id)
}

// readKernelKey returns the payload of key id, reading again with a larger buffer when the
// first one was too small (KEYCTL_READ returns the payload's full length).
func readKernelKey(id int) (string, error) {
	buf := make([]byte, 8<<10)
	for {
		n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
		if err != nil {
			return "", kernelError("read", err)
		}
		if n <= len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, n)
	}
}

func (b kernelBackend) Set(svc, user, v string) error {
	if len(v) > kernelMaxPayload {
		return keyring.ErrSetDataTooBig
	}
	// add_key replaces the payload of an existing key with this description in place, so
	// a reader sees the old value or the new one, never a mix or nothing.
	id, err := unix.AddKey(kernelKeyType, kernelDescription(svc, user), []byte(v), unix.KEY_SPEC_USER_KEYRING)
	if errors.Is(err, unix.EDQUOT) {
		return keyring.ErrSetDataTooBig // this user's key quota is full: nothing is cached
	}
	if err != nil {
		return kernelError("add_key", err)
	}
	if err := unix.KeyctlSetperm(id, kernelKeyPerm); err != nil {
		_, _ = unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0)
		return kernelError("setperm", err)
	}
	// The kernel drops the key itself once it is useless, so stale entries do not fill the
	// user's key quota (20000 bytes by default) when nothing reads them: a token at its
	// expiry; an index (rewritten with every token) when every token it lists has expired.
	until, ok := tokenEntryExpiry(v)
	if !ok {
		until = time.Now().Add(kernelIndexLifetime)
	}
	secs := int(time.Until(until.Add(kernelExpirySlack)) / time.Second)
	_, _ = unix.KeyctlInt(unix.KEYCTL_SET_TIMEOUT, id, max(secs, 1), 0, 0)
	return nil
}

func (b kernelBackend) Delete(svc, user string) error {
	id, err := b.find(svc, user)
	if err != nil {
		return err
	}
	if _, err := unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return keyring.ErrNotFound // unlinked meanwhile
		}
		return kernelError("unlink", err)
	}
	return nil
}

// tokenEntryExpiry is the expiry of a token cache entry (cachedToken JSON); ok is false for
// other items (the index), which do not expire.
func tokenEntryExpiry(v string) (time.Time, bool) {
	if !strings.HasPrefix(v, "{") {
		return time.Time{}, false
	}
	var entry cachedToken
	if json.Unmarshal([]byte(v), &entry) != nil || entry.ExpiresOn == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, entry.ExpiresOn)
	return t, err == nil
}

// kernelError maps a keyctl error: an absent, expired or revoked key is go-keyring's
// ErrNotFound (the Store's miss); anything else is a *kernelKeyringError.
func kernelError(op string, err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.ENOKEY, unix.EKEYEXPIRED, unix.EKEYREVOKED:
			return keyring.ErrNotFound
		}
	}
	return &kernelKeyringError{op: op, err: err}
}

// kernelKeyringError is a keyctl call that failed; refused says the system does not let this
// process use the kernel keyring at all (a seccomp filter, no keyrings in the kernel, WSL1).
type kernelKeyringError struct {
	op  string
	err error
}

func (e *kernelKeyringError) Error() string {
	msg := fmt.Sprintf("keyctl %s: %v", e.op, e.err)
	if e.refused() {
		msg += " (keyctl is refused here: a container's seccomp profile blocks it, or the kernel has no keyrings, as on WSL1)"
	}
	return msg
}

func (e *kernelKeyringError) Unwrap() error { return e.err }

func (e *kernelKeyringError) refused() bool {
	// EACCES from add_key: the user keyring itself is not ours to write (a seccomp
	// profile may also answer EACCES); from a later call it is an ordinary permission error.
	return errors.Is(e.err, unix.EPERM) || errors.Is(e.err, unix.ENOSYS) || errors.Is(e.err, unix.EOPNOTSUPP) ||
		e.op == "add_key" && errors.Is(e.err, unix.EACCES)
}

// probeKernelKeyring adds, reads back and unlinks a probe key: three syscalls, once per
// process.
var probeKernelKeyring = sync.OnceValue(func() error {
	b := kernelBackend{}
	account := probeAccountPrefix + strings.ToLower(rand.Text())
	value := rand.Text()
	if err := b.Set("probe", account, value); err != nil {
		return err
	}
	got, getErr := b.Get("probe", account)
	delErr := b.Delete("probe", account)
	switch {
	case getErr != nil:
		return getErr
	case got != value:
		return errors.New("the probe key read back with a different value")
	}
	return delErr
})
