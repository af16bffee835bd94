// Package token gets the provisioner's access token: from the token cache while it has
// time left, else minted with this machine's certificate and cached. It owns the cache
// protocol every caller shares (the speculative read beside the certificate, or before it
// when the cache lives apart from the certificate's keyring, the per-user lock, the
// re-read, the mint, the retry when a rotation retired the certificate meanwhile, the
// check of every token before it is used).
package token

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/machinecert"
)

// Source is one app's token for one scope, and where it comes from.
type Source struct {
	// Store is the certificate's keyring; its TokenCache holds the tokens (in the same
	// keyring, or apart from it: the kernel keyring, or none).
	Store                                *keystore.Store
	Tenant, Client, Scope, AuthorityHost string
	// StateThumbprint is PROVISIONER_CERT_THUMBPRINT: the cache item read beside the
	// certificate, used only if the certificate turns out to have that thumbprint.
	StateThumbprint string
	// LoadBundle reads this machine's certificate from store (Store, or a copy of it
	// that answers the first read from the read made together with the cache's); nil is
	// machinecert.Current. Credential makes the certificate's credential.
	LoadBundle func(store *keystore.Store, now time.Time) (*certs.Bundle, error)
	Credential func(*certs.Bundle) (azcore.TokenCredential, error)
	// MinValidity: a cached token is served while it has at least this long left.
	MinValidity time.Duration
	// NoCache mints a token whatever the cache holds (and caches it).
	NoCache bool
	// LockRoot returns the per-user state directory of the mint lock, asked only on a
	// cache miss (a cached call creates nothing); nil, or an error, goes without the lock.
	LockRoot func() (string, error)
	// Loaded is told the certificate in use as soon as it is known (expiry warnings): read
	// from the keyring, or as the cache entry served without reading it records it.
	Loaded func(Cert)
	// Note receives diagnostics for -v; nil drops them.
	Note func(string)
}

// Token is an access token that passed Check.
type Token struct {
	Value      string
	ExpiresOn  time.Time
	Thumbprint string // of the certificate it was minted with
	FromCache  bool
}

// Cert is what Loaded learns of the certificate in use.
type Cert struct {
	Thumbprint string
	NotAfter   time.Time
}

func certOf(b *certs.Bundle) Cert {
	return Cert{Thumbprint: certThumbprint(b), NotAfter: b.Cert.NotAfter}
}

func certThumbprint(b *certs.Bundle) string { return certs.Thumbprint(b.Cert) }

// MintedError is a minted token that Check refused: the token service is not what it
// should be. Nothing was cached.
type MintedError struct{ *BadTokenError }

// codeKeyNotFound is AADSTS700027: the certificate that signed the assertion is not
// (or no longer) registered on the app.
const codeKeyNotFound = 700027

// cached is one read of the token cache.
type cached struct {
	token string
	exp   time.Time
	err   error
}

// Get returns the token: cached when one with MinValidity left is there, else minted.
func (s *Source) Get(ctx context.Context) (*Token, error) {
	s.setDefaults()
	cache := s.Store.TokenCache()
	stateThumb := strings.ToLower(s.StateThumbprint)
	speculative := make(chan cached, 1)
	store := s.Store
	switch {
	case s.NoCache || stateThumb == "":
		speculative <- cached{err: keystore.ErrNotFound}
	case cache.ApartFromCertificate():
		// The kernel keyring (or no cache): the entry under the state file's thumbprint is
		// read first and served without touching the certificate's keyring at all. The
		// entry records the certificate's NotAfter; an expired certificate, or an entry
		// without it, goes the long way (the certificate is read and decides).
		hit := s.readEntry(cache, stateThumb)
		if hit.err == nil && hit.certNotAfter.After(time.Now()) {
			if t, ok := s.usable(cache, stateThumb, hit.cached); ok {
				s.Loaded(Cert{Thumbprint: stateThumb, NotAfter: hit.certNotAfter})
				return t, nil
			}
			hit.cached = cached{err: keystore.ErrNotFound} // judged (and deleted if bad)
		}
		speculative <- hit.cached
	default:
		// The certificate and the cache item under the state file's thumbprint are read
		// together (on Linux over one Secret Service session): the two reads are what a
		// cached call costs. The hit is served only when the certificate in the keyring
		// has that thumbprint: for a moment during a rotation (and for good after a crash
		// or an item replaced by hand) it may not, and a token minted with another
		// certificate would skip the checks of the one in use.
		store, cache = keystore.ReadTogether(s.Store, s.Tenant, cache, s.key(stateThumb))
		go func() { speculative <- s.readEntry(cache, stateThumb).cached }()
	}
	bundle, err := s.LoadBundle(store, time.Now())
	hit := <-speculative
	if err != nil {
		return nil, err
	}
	s.Loaded(certOf(bundle))
	if s.NoCache {
		return s.mint(ctx, store, cache, bundle)
	}
	thumb := certs.Thumbprint(bundle.Cert)
	if thumb != stateThumb {
		hit = s.readEntry(cache, thumb).cached
	}
	if t, ok := s.usable(cache, thumb, hit); ok {
		return t, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A cold (or stale) cache: one process mints, the others wait on the per-user lock
	// and then find its token.
	unlock, err := lock(ctx, s.lockRoot(), s.key(thumb), s.Note)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if t, ok := s.usable(cache, thumb, s.readEntry(cache, thumb).cached); ok {
		return t, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.mint(ctx, store, cache, bundle)
}

// setDefaults fills the optional fields left nil.
func (s *Source) setDefaults() {
	if s.Note == nil {
		s.Note = func(string) {}
	}
	if s.Loaded == nil {
		s.Loaded = func(Cert) {}
	}
	if s.LoadBundle == nil {
		s.LoadBundle = func(store *keystore.Store, now time.Time) (*certs.Bundle, error) {
			return machinecert.Current(store, s.Tenant, now)
		}
	}
}

// entry is one read of the token cache with the certificate expiry it records.
type entry struct {
	cached
	certNotAfter time.Time
}

func (s *Source) readEntry(cache *keystore.Store, thumb string) entry {
	e, err := cache.GetCachedTokenEntry(s.key(thumb))
	return entry{cached{e.AccessToken, e.ExpiresOn, err}, e.CertNotAfter}
}

// lockRoot is LockRoot's directory, "" when there is none.
func (s *Source) lockRoot() string {
	if s.LockRoot == nil {
		return ""
	}
	root, err := s.LockRoot()
	if err != nil {
		s.Note("token lock skipped: " + err.Error())
		return ""
	}
	return root
}

// key is the cache key of this source's token minted with the certificate thumb.
func (s *Source) key(thumb string) string {
	return cacheKey(s.Tenant, s.Client, s.Scope, thumb, s.AuthorityHost)
}

// usable checks a cache read: a token that fails Check (planted, or cached by an older
// version) is deleted and ignored; one with less than MinValidity left is ignored.
func (s *Source) usable(cache *keystore.Store, thumb string, h cached) (*Token, bool) {
	if h.err != nil {
		if !errors.Is(h.err, keystore.ErrNotFound) && !errors.Is(h.err, context.Canceled) {
			s.Note("token cache not read: " + h.err.Error())
		}
		return nil, false
	}
	exp, err := Check(h.token, s.Tenant, s.Client, h.exp, time.Now())
	if err != nil {
		s.Note("cached token ignored and deleted: " + err.Error())
		if derr := cache.DeleteCachedToken(s.key(thumb)); derr != nil {
			s.Note("token cache item not deleted: " + derr.Error())
		}
		return nil, false
	}
	if exp.Sub(time.Now()) < s.MinValidity {
		return nil, false
	}
	return &Token{Value: h.token, ExpiresOn: exp, Thumbprint: thumb, FromCache: true}, true
}

// mint asks Entra ID for a token with bundle's certificate, checks it and caches it. A
// rotation may have made a new certificate current, and removed this one from the app,
// between the keyring read and the request (AADSTS700027): the keyring is read again.
func (s *Source) mint(ctx context.Context, store, cache *keystore.Store, bundle *certs.Bundle) (*Token, error) {
	at, err := s.request(ctx, bundle)
	if sts, ok := entra.AsSTSError(err); ok && sts.HasCode(codeKeyNotFound) {
		if again, loadErr := s.LoadBundle(store, time.Now()); loadErr == nil && certs.Thumbprint(again.Cert) != certs.Thumbprint(bundle.Cert) {
			s.Note("certificate " + certs.Thumbprint(bundle.Cert) + " was retired meanwhile; using the current one")
			bundle = again
			at, err = s.request(ctx, bundle)
		}
	}
	if err != nil {
		return nil, err
	}
	exp, err := Check(at.Token, s.Tenant, s.Client, at.ExpiresOn, time.Now())
	if err != nil {
		var bad *BadTokenError
		if errors.As(err, &bad) {
			return nil, &MintedError{bad}
		}
		return nil, err
	}
	thumb := certs.Thumbprint(bundle.Cert)
	if err := s.put(cache, thumb, at.Token, exp, bundle.Cert.NotAfter); err != nil {
		s.Note("token cache not updated: " + err.Error())
	}
	return &Token{Value: at.Token, ExpiresOn: exp, Thumbprint: thumb}, nil
}

// put caches value, a token that passed Check with expiry exp, minted with the certificate
// thumb that expires at certNotAfter (zero: none).
func (s *Source) put(cache *keystore.Store, thumb, value string, exp, certNotAfter time.Time) error {
	return cache.PutCachedTokenEntry(s.key(thumb), keystore.CachedToken{AccessToken: value, ExpiresOn: exp, CertNotAfter: certNotAfter})
}

func (s *Source) request(ctx context.Context, b *certs.Bundle) (azcore.AccessToken, error) {
	cred, err := s.Credential(b)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{s.Scope}})
}
