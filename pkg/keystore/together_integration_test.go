package keystore

import (
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestIntegrationReadTogether: on Linux with the real Secret Service, ReadTogether reads
// both items in one session (they are answered from memory, once), matches go-keyring's
// values exactly, and leaves an absent item to the normal read.
func TestIntegrationReadTogether(t *testing.T) {
	service := "entraclaw-test-" + strings.ToLower(rand.Text()) + "-cert"
	tenant := "tenant-" + strings.ToLower(rand.Text())
	store := New(service)
	if err := store.Probe(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs a usable keyring: %v", err)
		}
		t.Skipf("no usable keyring: %v", err)
	}
	tokens := store.TokenCache()
	key := TokenCacheKey(tenant, "client", "scope/.default", "AB12", "https://login.example")
	t.Cleanup(func() {
		_ = store.DeleteBundle(tenant)
		_ = tokens.DeleteCachedTokens(tenant, "client")
	})
	bundle := testBundle(t)
	if err := store.PutBundle(tenant, bundle); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if err := tokens.PutCachedToken(key, "tok.en.value", exp); err != nil {
		t.Fatal(err)
	}

	s1, c1 := ReadTogether(store, tenant, tokens, key)
	memo, ok := s1.backend.(*memoBackend)
	if secretsTogetherSupported {
		if !ok || len(memo.items) != 2 || memo.items[[2]string{service, tenant}].err != nil {
			t.Fatalf("not both items read in one session: %#v", s1.backend)
		}
	}
	got, err := s1.GetBundle(tenant)
	if err != nil || string(got) != string(bundle) {
		t.Fatalf("GetBundle through ReadTogether: %v (equal=%v)", err, string(got) == string(bundle))
	}
	tok, gotExp, err := c1.GetCachedToken(key)
	if err != nil || tok != "tok.en.value" || !gotExp.Equal(exp) {
		t.Fatalf("GetCachedToken through ReadTogether: %q %s %v", tok, gotExp, err)
	}
	if ok && len(memo.items) != 0 {
		t.Errorf("items still remembered after one read: %d", len(memo.items))
	}
	// A second read goes to the keyring: it sees a change made meanwhile.
	if err := tokens.DeleteCachedToken(key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c1.GetCachedToken(key); !errors.Is(err, ErrNotFound) {
		t.Errorf("second read after a delete: %v, want ErrNotFound", err)
	}
	// An absent item is not remembered: the normal read reports it.
	s2, c2 := ReadTogether(store, tenant, tokens, key)
	if m, ok := s2.backend.(*memoBackend); ok && len(m.items) != 1 {
		t.Errorf("remembered %d items, want only the bundle", len(m.items))
	}
	if _, _, err := c2.GetCachedToken(key); !errors.Is(err, ErrNotFound) {
		t.Errorf("absent item: %v, want ErrNotFound", err)
	}
}
