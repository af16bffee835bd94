package keystore

import (
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

// cachedToken is the JSON value of a token cache item.
type cachedToken struct {
	AccessToken string `json:"accessToken"`
	ExpiresOn   string `json:"expiresOn"` // RFC 3339
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
	if err := checkCacheKey(key); err != nil {
		return "", time.Time{}, err
	}
	v, err := s.get(key)
	switch {
	case errors.Is(err, ErrNotFound):
		return "", time.Time{}, fmt.Errorf("no cached token under %s/%s: %w", s.service, key, err)
	case err != nil:
		return "", time.Time{}, s.itemError("read", key, err)
	}
	var entry cachedToken
	if json.Unmarshal([]byte(v), &entry) != nil || entry.AccessToken == "" {
		return "", time.Time{}, fmt.Errorf("cached token under %s/%s is unreadable: %w", s.service, key, ErrNotFound)
	}
	expiresOn, err = time.Parse(time.RFC3339, entry.ExpiresOn)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("cached token under %s/%s has no valid expiry: %w", s.service, key, ErrNotFound)
	}
	return entry.AccessToken, expiresOn, nil
}

// PutCachedToken caches token under key. It stores nothing and returns nil
// when the entry would not fit in one item of the backend.
func (s *Store) PutCachedToken(key, token string, expiresOn time.Time) error {
	if err := checkCacheKey(key); err != nil {
		return err
	}
	value, err := json.Marshal(cachedToken{AccessToken: token, ExpiresOn: expiresOn.UTC().Format(time.RFC3339)})
	if err != nil {
		return fmt.Errorf("encode token cache entry: %w", err)
	}
	if !s.fits(key, len(value)) {
		return nil
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

// DeleteCachedToken removes the entry under key; a missing entry is not an
// error.
func (s *Store) DeleteCachedToken(key string) error {
	if err := checkCacheKey(key); err != nil {
		return err
	}
	if err := s.del(key); err != nil && !errors.Is(err, ErrNotFound) {
		return s.itemError("delete", key, err)
	}
	return nil
}
