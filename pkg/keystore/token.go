package keystore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TokenCacheService returns the keyring service of the token cache that goes
// with a certificate service: "entraclaw-provisioner-cert" gives
// "entraclaw-provisioner-token-cache".
func TokenCacheService(certService string) string {
	return strings.TrimSuffix(certService, "-cert") + "-token-cache"
}

// TokenCache returns a Store for the token cache that goes with s's certificate
// service (TokenCacheService), with s's timeout, OS and context, and the backend
// WithTokenCache chose (s's own by default):
// deps.Store.TokenCache().DeleteCachedTokens(tenant, client).
func (s *Store) TokenCache() *Store {
	c := *s
	c.service = TokenCacheService(s.service)
	c.backend = tokenBackend(s.TokenCacheKind(), s.backend)
	c.certBackend = s.backend
	return &c
}

// cachedToken is the JSON value of a token cache item. A token whose entry does not fit
// in one item of the backend (Windows Credential Manager holds 2560 bytes, a macOS
// `security` line about 2.9 KB after base64; Entra access tokens are 1-4 KB) is split:
// the head item under the key holds the first part of the token, Parts (the number of
// parts, at least 2) and Sum (partSum of the whole token); the other parts are items of
// their own under partAccount(key, i), i = 2..Parts, each holding a slice of the token as
// it is. Sum makes a read that met a half-finished rewrite a miss, not a spliced token.
//
// CertNotAfter (RFC 3339) is when the certificate the token was minted with expires: a cache
// that lives apart from the certificate (the kernel keyring) can serve the token, and warn
// about the certificate's expiry, without reading the certificate. Entries written before it
// was recorded have none and are still read.
type cachedToken struct {
	AccessToken  string `json:"accessToken"`
	ExpiresOn    string `json:"expiresOn"` // RFC 3339
	Parts        int    `json:"parts,omitempty"`
	Sum          string `json:"sum,omitempty"`
	CertNotAfter string `json:"certNotAfter,omitempty"`
}

// CachedToken is one token cache entry.
type CachedToken struct {
	AccessToken string
	ExpiresOn   time.Time
	// CertNotAfter is the NotAfter of the certificate the token was minted with; zero when
	// the entry does not say (written by an older version, or put without it).
	CertNotAfter time.Time
}

// maxTokenParts bounds how many items one token may span (and how many a read or delete
// follows): 16 parts of 2.5 KB hold a 40 KB token, beyond any real access token.
const maxTokenParts = 16

// partAccount is the account of part i (2, 3, ...) of a split token cache entry: the key
// with "|part<i>" appended, so it lies under the key's app prefix like the key itself.
func partAccount(key string, i int) string { return fmt.Sprintf("%s|part%d", key, i) }

// partSum is the hex SHA-256 of a split token, first 16 bytes.
func partSum(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:16])
}

// splitToken returns the head entry and the other parts of token for key, sized to the
// backend's item limit; ok is false when it cannot be split into at most maxTokenParts.
func (s *Store) splitToken(key string, entry cachedToken) (head []byte, parts []string, ok bool) {
	headRoom, limited := s.maxValueLen(key)
	if !limited {
		return nil, nil, false
	}
	token := entry.AccessToken
	entry.AccessToken, entry.Parts, entry.Sum = "", maxTokenParts, partSum(token)
	empty, _ := json.Marshal(entry)
	headRoom -= len(empty)
	partRoom, _ := s.maxValueLen(partAccount(key, maxTokenParts))
	if headRoom <= 0 || partRoom <= 0 || len(token) <= headRoom {
		return nil, nil, false
	}
	entry.AccessToken, token = token[:headRoom], token[headRoom:]
	for len(token) > 0 {
		n := min(partRoom, len(token))
		parts, token = append(parts, token[:n]), token[n:]
	}
	if len(parts)+1 > maxTokenParts {
		return nil, nil, false
	}
	entry.Parts = len(parts) + 1
	head, _ = json.Marshal(entry)
	return head, parts, true
}

// TokenCacheKey is the account of a token cache item:
// tenant|client|scope|thumbprint|authority. The authority host is part of it so
// that a token from another token service (ENTRACLAW_AUTHORITY_HOST pointing
// elsewhere once) is never served to a run against the real one. Tenant and
// client come first: PutCachedToken records every key under the index of its
// tenant|client, which DeleteCachedTokens reads.
func TokenCacheKey(tenant, client, scope, thumbprint, authorityHost string) string {
	return strings.Join([]string{tenant, client, scope, strings.ToLower(thumbprint), strings.ToLower(authorityHost)}, "|")
}

// maxIndexedTokens bounds the token items of one app: when a new key would make
// more, the oldest items are deleted. 8 keys of about 200 bytes fit the
// smallest backend item (Windows, 2560 bytes) with room to spare.
const maxIndexedTokens = 8

// indexAccount is the account of the index item of tenant|client: a JSON array
// of the token cache keys written for that app, oldest first. It has two
// fields, so it can never equal a token key (five fields).
func indexAccount(tenant, client string) string { return tenant + "|" + client }

// appOfKey returns the tenant and client a TokenCacheKey starts with; ok is
// false for keys of another shape, which are cached without an index.
func appOfKey(key string) (tenant, client string, ok bool) {
	parts := strings.Split(key, "|")
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	return parts[0], parts[1], true
}

func (s *Store) readIndex(tenant, client string) ([]string, error) {
	v, err := s.get(indexAccount(tenant, client))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, s.itemError("read", indexAccount(tenant, client), err)
	}
	var keys []string
	if json.Unmarshal([]byte(v), &keys) != nil {
		return nil, nil // unreadable: start a new one
	}
	prefix := indexAccount(tenant, client) + "|"
	kept := keys[:0]
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) { // a planted index cannot make us delete other apps' items
			kept = append(kept, k)
		}
	}
	return kept, nil
}

// addToIndex records key in its app's index, deleting the oldest items beyond
// maxIndexedTokens (or beyond what fits in one item).
func (s *Store) addToIndex(key string) error {
	tenant, client, ok := appOfKey(key)
	if !ok {
		return nil
	}
	keys, err := s.readIndex(tenant, client)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k == key {
			return nil
		}
	}
	keys = append(keys, key)
	account := indexAccount(tenant, client)
	for {
		value, _ := json.Marshal(keys)
		if len(keys) <= 1 || len(keys) <= maxIndexedTokens && s.fits(account, len(value)) {
			if err := s.set(account, string(value)); err != nil && !errors.Is(err, ErrTooLarge) {
				return s.itemError("write", account, err)
			}
			return nil
		}
		if err := s.DeleteCachedToken(keys[0]); err != nil {
			return err
		}
		keys = keys[1:]
	}
}

// DeleteCachedTokens removes the cached tokens of the app client in tenant that this
// or an earlier run recorded in the app's index item: all of them (any scope,
// certificate thumbprint or authority host, and the index itself), or, when
// thumbprints are given, only those minted with one of these certificates. Call it
// whenever tokens may have become stale: after a rollback, when a certificate is
// purged from the keyring or removed from the app, and (with the old thumbprint)
// when a rotation retires a certificate. Nothing cached is not an error.
//
// On a Store made by New, the tokens are deleted from every cache this machine may hold them
// in, not only the one WithTokenCache chose: the OS keyring's and, on Linux, the kernel
// keyring's. A token cached under one -token-cache setting must not outlive a rollback or
// a rotation run under another. A cache that cannot be used (no Secret Service, keyctl
// refused) cannot serve a token either and is skipped; the error is the first other failure.
func (s *Store) DeleteCachedTokens(tenant, client string, thumbprints ...string) error {
	if tenant == "" || client == "" {
		return errors.New("DeleteCachedTokens: empty tenant or client id")
	}
	err := s.deleteCachedTokens(tenant, client, thumbprints)
	for _, other := range s.otherTokenCaches() {
		oerr := other.deleteCachedTokens(tenant, client, thumbprints)
		var unavailable *UnavailableError
		if oerr != nil && err == nil && !errors.As(oerr, &unavailable) {
			err = oerr
		}
	}
	return err
}

// otherTokenCaches are copies of s (a TokenCache of a Store made by New) on the other token
// cache backends of this machine; none for a Store with a test's backend.
func (s *Store) otherTokenCaches() []*Store {
	if !osBacked(s.certBackend) {
		return nil
	}
	backends := []Backend{s.certBackend}
	if kernelKeyringSupported {
		backends = append(backends, kernelBackend{})
	}
	var others []*Store
	for _, b := range backends {
		if b != s.backend {
			c := *s
			c.backend = b
			others = append(others, &c)
		}
	}
	return others
}

// deleteCachedTokens is DeleteCachedTokens on s's own backend.
func (s *Store) deleteCachedTokens(tenant, client string, thumbprints []string) error {
	keys, err := s.readIndex(tenant, client)
	if err != nil {
		return err
	}
	drop := func(key string) bool {
		if len(thumbprints) == 0 {
			return true
		}
		parts := strings.Split(key, "|")
		for _, t := range thumbprints {
			if len(parts) > 3 && strings.EqualFold(parts[3], t) {
				return true
			}
		}
		return false
	}
	var kept []string
	for _, k := range keys {
		if !drop(k) {
			kept = append(kept, k)
			continue
		}
		if err := s.DeleteCachedToken(k); err != nil {
			return err
		}
	}
	account := indexAccount(tenant, client)
	if len(kept) > 0 {
		value, _ := json.Marshal(kept)
		if err := s.set(account, string(value)); err != nil {
			return s.itemError("write", account, err)
		}
		return nil
	}
	if err := s.del(account); err != nil && !errors.Is(err, ErrNotFound) {
		return s.itemError("delete", account, err)
	}
	return nil
}

func checkCacheKey(key string) error {
	if key == "" {
		return errors.New("empty token cache key")
	}
	return nil
}

// GetCachedToken returns the access token cached under key and when it
// expires. A missing or unreadable entry is a miss: an error wrapping
// ErrNotFound. Other errors are keyring failures.
func (s *Store) GetCachedToken(key string) (token string, expiresOn time.Time, err error) {
	e, err := s.GetCachedTokenEntry(key)
	return e.AccessToken, e.ExpiresOn, err
}

// GetCachedTokenEntry is GetCachedToken with everything the entry records.
func (s *Store) GetCachedTokenEntry(key string) (CachedToken, error) {
	miss := func(format string, args ...any) (CachedToken, error) {
		return CachedToken{}, fmt.Errorf("cached token under %s/%s %s: %w", s.service, key, fmt.Sprintf(format, args...), ErrNotFound)
	}
	if err := checkCacheKey(key); err != nil {
		return CachedToken{}, err
	}
	v, err := s.get(key)
	switch {
	case errors.Is(err, ErrNotFound):
		return CachedToken{}, fmt.Errorf("no cached token under %s/%s: %w", s.service, key, err)
	case err != nil:
		return CachedToken{}, s.itemError("read", key, err)
	}
	var entry cachedToken
	if json.Unmarshal([]byte(v), &entry) != nil || entry.AccessToken == "" {
		return miss("is unreadable")
	}
	expiresOn, err := time.Parse(time.RFC3339, entry.ExpiresOn)
	if err != nil {
		return miss("has no valid expiry")
	}
	got := CachedToken{AccessToken: entry.AccessToken, ExpiresOn: expiresOn}
	if entry.CertNotAfter != "" {
		if got.CertNotAfter, err = time.Parse(time.RFC3339, entry.CertNotAfter); err != nil {
			return miss("has no valid certificate expiry")
		}
	}
	if entry.Parts == 0 && entry.Sum == "" {
		return got, nil
	}
	if entry.Parts < 2 || entry.Parts > maxTokenParts {
		return miss("is unreadable")
	}
	for i := 2; i <= entry.Parts; i++ {
		part, err := s.get(partAccount(key, i))
		switch {
		case errors.Is(err, ErrNotFound):
			return CachedToken{}, fmt.Errorf("cached token under %s/%s misses part %d: %w", s.service, key, i, err)
		case err != nil:
			return CachedToken{}, s.itemError("read", partAccount(key, i), err)
		}
		got.AccessToken += part
	}
	if partSum(got.AccessToken) != entry.Sum {
		// Parts of two writes (a concurrent refresh): a miss, rewritten by this run.
		return miss("has parts that do not belong together")
	}
	return got, nil
}

// PutCachedToken caches token under key. It stores nothing and returns nil
// when the entry would not fit in one item of the backend. A key made by
// TokenCacheKey is also recorded in its app's index (see DeleteCachedTokens).
func (s *Store) PutCachedToken(key, token string, expiresOn time.Time) error {
	return s.PutCachedTokenEntry(key, CachedToken{AccessToken: token, ExpiresOn: expiresOn})
}

// PutCachedTokenEntry is PutCachedToken with everything e holds (a zero CertNotAfter is
// left out).
func (s *Store) PutCachedTokenEntry(key string, e CachedToken) error {
	if err := checkCacheKey(key); err != nil {
		return err
	}
	entry := cachedToken{AccessToken: e.AccessToken, ExpiresOn: e.ExpiresOn.UTC().Format(time.RFC3339)}
	if !e.CertNotAfter.IsZero() {
		entry.CertNotAfter = e.CertNotAfter.UTC().Format(time.RFC3339)
	}
	value, err := json.Marshal(entry)
	if err != nil {
		return fmt.Errorf("encode token cache entry: %w", err)
	}
	var parts []string
	if !s.fits(key, len(value)) {
		head, rest, ok := s.splitToken(key, entry)
		if !ok {
			return nil
		}
		value, parts = head, rest
	}
	// Index first: an item is never written without a record of it. Then the parts, then
	// the head that points at them.
	if err := s.addToIndex(key); err != nil {
		return err
	}
	for i, part := range parts {
		if err := s.set(partAccount(key, i+2), part); err != nil {
			if errors.Is(err, ErrTooLarge) {
				return nil
			}
			return s.itemError("write", partAccount(key, i+2), err)
		}
	}
	err = s.set(key, string(value))
	switch {
	case errors.Is(err, ErrTooLarge):
		return nil
	case err != nil:
		return s.itemError("write", key, err)
	}
	return nil
}

// DeleteCachedToken removes the entry under key, with its parts where the backend's
// items are small enough to have needed them; a missing entry is not an error.
func (s *Store) DeleteCachedToken(key string) error {
	if err := checkCacheKey(key); err != nil {
		return err
	}
	if err := s.del(key); err != nil && !errors.Is(err, ErrNotFound) {
		return s.itemError("delete", key, err)
	}
	if _, limited := s.maxValueLen(key); !limited {
		return nil // Secret Service: never split
	}
	// Parts are numbered from 2 without gaps; the first missing one ends them.
	for i := 2; i <= maxTokenParts; i++ {
		err := s.del(partAccount(key, i))
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return s.itemError("delete", partAccount(key, i), err)
		}
	}
	return nil
}

// osBacked reports whether b is this machine's own store (go-keyring's OS keyring, or the
// TPM-wrapped key files in front of it) rather than a test's backend.
func osBacked(b Backend) bool {
	switch v := b.(type) {
	case systemBackend:
		return true
	case *tpmFiles:
		return osBacked(v.other)
	}
	return false
}
