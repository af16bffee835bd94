// Package keystore keeps the provisioner's certificate bundle and its token
// cache in the OS keyring (Secret Service, macOS Keychain, Windows Credential
// Manager) through go-keyring; with -key-store tpm-file the bundle in private files
// that may hold only a certificate and a TPM-wrapped key, and the token cache in the
// Linux kernel keyring when -token-cache picks it. It never falls back to a file, and
// never writes a private key in the clear.
package keystore

import (
	"context"
	"crypto/rand"
	"errors"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/zalando/go-keyring"
)

// DefaultService is the keyring service of the certificate bundle items.
const DefaultService = "entraclaw-provisioner-cert"

// Suffixes of the tenant id that name this machine's other certificate items during a
// rotation: NextAccountSuffix holds the new certificate until it has produced a token,
// PreviousAccountSuffix the replaced one until it is off the app. The account of the
// current certificate is the tenant id itself.
const (
	NextAccountSuffix     = ".next"
	PreviousAccountSuffix = ".previous"
)

// DefaultTimeout bounds every keyring call; a Secret Service unlock prompt
// would otherwise block forever.
const DefaultTimeout = 10 * time.Second

// Backend names as BackendName returns them.
const (
	NameSecretService     = "Secret Service"
	NameMacOSKeychain     = "macOS Keychain"
	NameCredentialManager = "Windows Credential Manager"
	NameUnsupported       = "OS keyring"
)

const probeAccountPrefix = "entraclaw-probe-"

// Backend is the keyring the Store talks to; go-keyring's package functions
// by default. Get and Delete report an absent item with keyring.ErrNotFound,
// Set a value over the backend's limit with keyring.ErrSetDataTooBig.
type Backend interface {
	Get(svc, user string) (string, error)
	Set(svc, user, v string) error
	Delete(svc, user string) error
}

// Store reads and writes the items of one keyring service.
type Store struct {
	ctx       context.Context
	service   string
	backend   Backend
	timeout   time.Duration
	goos      string
	legacyDir string
	// tokenCache is where TokenCache keeps tokens (WithTokenCache); "" is CacheKeyring.
	tokenCache string
	// certBackend is, in a TokenCache, the backend of the certificate's Store (its keyring
	// token cache, cleared by DeleteCachedTokens whatever the cache in use).
	certBackend Backend
}

// Option configures a Store.
type Option func(*Store)

// WithBackend replaces the OS keyring, for tests.
func WithBackend(b Backend) Option { return func(s *Store) { s.backend = b } }

// WithTimeout bounds each keyring call (DefaultTimeout if not given); d <= 0
// disables the bound.
func WithTimeout(d time.Duration) Option { return func(s *Store) { s.timeout = d } }

// WithOS makes the Store apply the size limits, value encodings, legacy
// sources and messages of another operating system ("linux", "darwin",
// "windows", ...) instead of runtime.GOOS, so tests can emulate it.
func WithOS(goos string) Option { return func(s *Store) { s.goos = goos } }

// WithLegacyDir sets the directory of the Python era's Windows bundle files,
// by default %LOCALAPPDATA%\entraclaw. It is only consulted on Windows.
func WithLegacyDir(dir string) Option { return func(s *Store) { s.legacyDir = dir } }

// New returns a Store for service (DefaultService if empty) backed by the OS
// keyring, each call bounded by DefaultTimeout.
func New(service string, opts ...Option) *Store {
	if service == "" {
		service = DefaultService
	}
	s := &Store{
		ctx:       context.Background(),
		service:   service,
		backend:   systemBackend{},
		timeout:   DefaultTimeout,
		goos:      runtime.GOOS,
		legacyDir: defaultLegacyDir(),
	}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// WithContext returns a copy of s whose keyring calls also end when ctx is done
// (Ctrl-C): the call then returns an error wrapping ctx.Err() at once, while the
// abandoned go-keyring call, which cannot be cancelled, finishes in the background.
func (s *Store) WithContext(ctx context.Context) *Store {
	c := *s
	if ctx == nil {
		ctx = context.Background()
	}
	c.ctx = ctx
	return &c
}

// Service returns the keyring service the Store uses.
func (s *Store) Service() string { return s.service }

// BackendName names the keyring for messages: "Secret Service", "macOS
// Keychain" or "Windows Credential Manager"; a backend that names itself
// (NameTPMFiles) is asked first.
func (s *Store) BackendName() string {
	if named, ok := s.backend.(namedBackend); ok { // a TokenCache's kernel keyring or none
		return named.backendName()
	}
	if named, ok := s.backend.(interface{ serviceBackendName(svc string) string }); ok { // tpm-file
		if name := named.serviceBackendName(s.service); name != "" {
			return name
		}
	}
	switch s.goos {
	case "darwin":
		return NameMacOSKeychain
	case "windows":
		return NameCredentialManager
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly":
		return NameSecretService
	}
	return NameUnsupported
}

// Probe writes, reads back and deletes a random probe item. It returns an
// *UnavailableError when the keyring cannot be used. A backend with a probe of its
// own (the key files, which hold nothing but certificates) runs that instead.
func (s *Store) Probe() error {
	if p, ok := s.backend.(interface{ probe(svc string) error }); ok {
		_, err := callWithTimeout(s.ctx, s.timeout, func() (struct{}, error) { return struct{}{}, p.probe(s.service) })
		if fe, ok := asFileError(err); ok {
			return fe
		}
		if err != nil && !isCancel(err) {
			return s.asUnavailable(err)
		}
		return err
	}
	account := probeAccountPrefix + strings.ToLower(rand.Text())
	value := rand.Text()
	if err := s.set(account, value); err != nil {
		return s.asUnavailable(err)
	}
	got, getErr := s.get(account)
	delErr := s.del(account)
	switch {
	case getErr != nil:
		return s.asUnavailable(getErr)
	case got != value:
		return &UnavailableError{Backend: s.BackendName(), Err: errors.New("probe item read back with a different value")}
	case delErr != nil:
		return s.asUnavailable(delErr)
	}
	return nil
}

func (s *Store) asUnavailable(err error) error {
	var unavailable *UnavailableError
	if errors.As(err, &unavailable) {
		return unavailable
	}
	return &UnavailableError{Backend: s.BackendName(), Err: err}
}

// get reads an item; errors are ErrNotFound or *UnavailableError. On macOS a
// PEM value another program stored comes back as bare hex and is decoded.
func (s *Store) get(account string) (string, error) {
	v, err := callWithTimeout(s.ctx, s.timeout, func() (string, error) { return s.backend.Get(s.service, account) })
	if isCancel(err) {
		return "", err
	}
	if fe, ok := asFileError(err); ok {
		return "", fe
	}
	if err != nil {
		return "", s.classify(err, "")
	}
	if s.goos == "darwin" {
		v = decodeSecurityHex(v)
	}
	return v, nil
}

// set writes an item; errors are ErrTooLarge (with sizes) or *UnavailableError.
func (s *Store) set(account, value string) error {
	_, err := callWithTimeout(s.ctx, s.timeout, func() (struct{}, error) {
		return struct{}{}, s.backend.Set(s.service, account, value)
	})
	if isCancel(err) {
		return err
	}
	if fe, ok := asFileError(err); ok {
		return fe
	}
	if errors.Is(err, keyring.ErrSetDataTooBig) {
		return s.tooLarge(account, len(value))
	}
	return s.classify(err, value)
}

// del deletes an item; errors are ErrNotFound or *UnavailableError.
func (s *Store) del(account string) error {
	_, err := callWithTimeout(s.ctx, s.timeout, func() (struct{}, error) {
		return struct{}{}, s.backend.Delete(s.service, account)
	})
	if isCancel(err) {
		return err
	}
	if fe, ok := asFileError(err); ok {
		return fe
	}
	return s.classify(err, "")
}

// CanceledError is a keyring call abandoned because its context was done
// (Ctrl-C, SIGTERM). errors.Is(err, context.Canceled) holds for it.
type CanceledError struct{ Err error }

func (e *CanceledError) Error() string { return "keyring call interrupted: " + e.Err.Error() }
func (e *CanceledError) Unwrap() error { return e.Err }

func isCancel(err error) bool {
	var ce *CanceledError
	return errors.As(err, &ce)
}

// callWithTimeout runs f in a goroutine and gives up after d or when ctx is
// done. A call given up on keeps running in the background: go-keyring offers
// no way to cancel it.
func callWithTimeout[T any](ctx context.Context, d time.Duration, f func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, &CanceledError{Err: err}
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	inFlight.Add(1)
	go func() {
		defer inFlight.Done()
		v, err := f()
		done <- result{v, err}
	}()
	var timeout <-chan time.Time
	if d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, &CanceledError{Err: ctx.Err()}
	case <-timeout:
		return zero, &timeoutError{after: d}
	}
}

// NotReachable reports a keyring that is not there at all (no D-Bus session bus, no
// Secret Service on it), as opposed to one that is locked or slow.
func (e *UnavailableError) NotReachable() bool { return e.cause() == causeNoService }

// inFlight counts keyring calls still running, including those a caller gave up on
// (timeout, Ctrl-C): Settle waits for them.
var inFlight sync.WaitGroup

// Settle waits up to d for keyring calls still in flight to finish, so that a process
// does not leave the Secret Service in the middle of one: gnome-keyring-daemon has been
// seen to abort when a client it is opening a session for is gone (an upstream bug:
// gkd_secret_service_get_pkcs11_session "assertion 'client' failed"), which takes every
// other client's keyring down with it. It reports whether all of them finished.
func Settle(d time.Duration) bool {
	done := make(chan struct{})
	go func() { inFlight.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
