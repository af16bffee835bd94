package keystore

import (
	"errors"

	"github.com/zalando/go-keyring"
)

// Where a Store's TokenCache keeps tokens (-token-cache; "auto" is the caller's choice
// among these).
const (
	// CacheKeyring: the Store's own keyring, beside the certificate (the default).
	CacheKeyring = "keyring"
	// CacheKernel: the Linux kernel keyring (keyctl): no D-Bus, lost at reboot.
	CacheKernel = "kernel"
	// CacheNone: no cache; every token is requested from Entra ID.
	CacheNone = "none"
)

// Names of the token-only backends, as BackendName returns them.
const (
	NameKernelKeyring = "kernel keyring"
	NameNoTokenCache  = "no token cache"
)

// kernelDescriptionPrefix starts the description of every kernel keyring key we make.
const kernelDescriptionPrefix = "entraclaw:"

// namedBackend is a backend that is not go-keyring's OS keyring and names itself.
type namedBackend interface{ backendName() string }

// WithTokenCache returns a copy of s whose TokenCache keeps its tokens in kind (CacheKeyring,
// CacheKernel or CacheNone). The certificate items stay where they are.
func (s *Store) WithTokenCache(kind string) *Store {
	c := *s
	c.tokenCache = kind
	return &c
}

// TokenCacheKind is where s's TokenCache keeps tokens: CacheKeyring unless WithTokenCache
// said otherwise.
func (s *Store) TokenCacheKind() string {
	if s.tokenCache == "" {
		return CacheKeyring
	}
	return s.tokenCache
}

// ApartFromCertificate reports whether s (a TokenCache) keeps its tokens outside the keyring
// that holds the certificate: reading a token then costs no keyring call at all.
func (s *Store) ApartFromCertificate() bool {
	_, named := s.backend.(namedBackend)
	return named
}

// tokenBackend is the backend of kind's tokens for a Store whose own backend is own.
func tokenBackend(kind string, own Backend) Backend {
	switch kind {
	case CacheKernel:
		return kernelBackend{}
	case CacheNone:
		return noneBackend{}
	}
	return own
}

// ProbeKernelKeyring checks, once per process, that this process may use the kernel keyring:
// it adds, reads back and unlinks a probe key. It returns an *UnavailableError naming why
// not (keyctl refused by a seccomp profile, no keyrings in the kernel, not Linux).
func ProbeKernelKeyring() error {
	if err := probeKernelKeyring(); err != nil {
		var unavailable *UnavailableError
		if errors.As(err, &unavailable) {
			return unavailable
		}
		return &UnavailableError{Backend: NameKernelKeyring, Err: err}
	}
	return nil
}

// noneBackend is CacheNone: it holds nothing and forgets every write.
type noneBackend struct{}

func (noneBackend) backendName() string                  { return NameNoTokenCache }
func (noneBackend) Get(svc, user string) (string, error) { return "", keyring.ErrNotFound }
func (noneBackend) Set(svc, user, v string) error        { return nil }
func (noneBackend) Delete(svc, user string) error        { return keyring.ErrNotFound }
