package keystore

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestIntegrationOSKeyring runs against the real OS keyring under a random
// service. On Linux run it under scripts/with-secret-service.sh. Without a
// usable keyring it skips, except with CI=true, where it fails.
func TestIntegrationOSKeyring(t *testing.T) {
	service := "entraclaw-test-" + strings.ToLower(rand.Text()) + "-cert"
	tenant := "tenant-" + strings.ToLower(rand.Text())
	store := New(service)
	if err := store.Probe(); err != nil {
		hint := ""
		var unavailable *UnavailableError
		if errors.As(err, &unavailable) {
			hint = unavailable.Hint()
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs a usable keyring: %v (%s)", err, hint)
		}
		t.Skipf("no usable keyring: %v (%s)", err, hint)
	}
	tokens := New(TokenCacheService(service))
	t.Cleanup(func() {
		// Best effort: a failed test must not leave items behind.
		_ = store.DeleteBundle(tenant)
		_ = tokens.DeleteCachedToken(tenant)
	})
	bundle := testBundle(t)

	t.Run("bundle", func(t *testing.T) {
		if err := store.PutBundle(tenant, bundle); err != nil {
			t.Fatalf("PutBundle: %v", err)
		}
		got, err := store.GetBundle(tenant)
		if err != nil || !bytes.Equal(got, bundle) {
			t.Fatalf("GetBundle: %v (equal=%v)", err, bytes.Equal(got, bundle))
		}
		if has, err := store.HasBundle(tenant); err != nil || !has {
			t.Errorf("HasBundle = %v, %v", has, err)
		}
		if err := store.DeleteBundle(tenant); err != nil {
			t.Fatalf("DeleteBundle: %v", err)
		}
		if _, err := store.GetBundle(tenant); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetBundle after delete: %v, want ErrNotFound", err)
		}
	})

	t.Run("split bundle", func(t *testing.T) {
		// Windows' size limit applied to the real keyring: two items.
		split := New(service, WithOS("windows"), WithLegacyDir(""))
		if err := split.PutBundle(tenant, bundle); err != nil {
			t.Fatalf("PutBundle: %v", err)
		}
		for _, s := range []*Store{split, store} {
			got, err := s.GetBundle(tenant)
			if err != nil || !bytes.Equal(got, bundle) {
				t.Fatalf("GetBundle: %v (equal=%v)", err, bytes.Equal(got, bundle))
			}
		}
		if err := store.PutBundle(tenant, bundle); err != nil {
			t.Fatalf("PutBundle with the OS's own rules: %v", err)
		}
		_, err := store.get(tenant + ".cert")
		switch {
		case runtime.GOOS == "windows":
			// Windows always splits (2560-byte limit), so there is no whole write to test:
			// the cert item is rewritten and the joined bundle reads back unchanged.
			if err != nil {
				t.Errorf("no cert item after a Windows write: %v", err)
			}
			if got, err := store.GetBundle(tenant); err != nil || !bytes.Equal(got, bundle) {
				t.Errorf("GetBundle after a Windows write: %v (equal=%v)", err, bytes.Equal(got, bundle))
			}
		case !errors.Is(err, ErrNotFound):
			t.Errorf("stale cert item after a whole write: %v", err)
		}
		if err := store.DeleteBundle(tenant); err != nil {
			t.Fatalf("DeleteBundle: %v", err)
		}
	})

	t.Run("token cache", func(t *testing.T) {
		expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		if err := tokens.PutCachedToken(tenant, "header.payload.signature", expires); err != nil {
			t.Fatalf("PutCachedToken: %v", err)
		}
		token, exp, err := tokens.GetCachedToken(tenant)
		if err != nil || token != "header.payload.signature" || !exp.Equal(expires) {
			t.Fatalf("GetCachedToken = %q, %v, %v", token, exp, err)
		}
		if err := tokens.DeleteCachedToken(tenant); err != nil {
			t.Fatalf("DeleteCachedToken: %v", err)
		}
		if _, _, err := tokens.GetCachedToken(tenant); !errors.Is(err, ErrNotFound) {
			t.Errorf("after delete: %v, want ErrNotFound", err)
		}
	})
}
