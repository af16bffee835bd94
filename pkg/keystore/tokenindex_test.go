package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const (
	idxTenant = "11111111-1111-4111-8111-111111111111"
	idxClient = "22222222-2222-4222-8222-222222222222"
)

func TestTokenCacheKeyHasAuthority(t *testing.T) {
	a := TokenCacheKey(idxTenant, idxClient, "https://graph.microsoft.com/.default", "AB", "https://login.microsoftonline.com/")
	b := TokenCacheKey(idxTenant, idxClient, "https://graph.microsoft.com/.default", "ab", "https://evil.example/")
	if a == b {
		t.Fatalf("keys for two authority hosts are equal: %q", a)
	}
	if !strings.HasPrefix(a, idxTenant+"|"+idxClient+"|") || !strings.Contains(a, "|ab|") {
		t.Errorf("key %q: want tenant|client first and a lowercase thumbprint", a)
	}
}

// DeleteCachedTokens removes every token of one app (any scope, thumbprint, authority)
// and leaves other apps' tokens alone, on every OS's item limits.
func TestDeleteCachedTokens(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	other := "33333333-3333-4333-8333-333333333333"
	for _, goos := range allOS {
		t.Run(goos, func(t *testing.T) {
			f := newFake(goos)
			s := New(TokenCacheService(testService), WithBackend(f), WithOS(goos))
			var mine []string
			for i, auth := range []string{"https://login.microsoftonline.com/", "https://127.0.0.1:4443/"} {
				for _, scope := range []string{"https://graph.microsoft.com/.default", "https://management.azure.com/.default"} {
					k := TokenCacheKey(idxTenant, idxClient, scope, fmt.Sprintf("%040d", i), auth)
					mine = append(mine, k)
					if err := s.PutCachedToken(k, "a.b.c", exp); err != nil {
						t.Fatal(err)
					}
				}
			}
			theirs := TokenCacheKey(idxTenant, other, "https://graph.microsoft.com/.default", "00", "https://login.microsoftonline.com/")
			if err := s.PutCachedToken(theirs, "a.b.c", exp); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteCachedTokens(idxTenant, idxClient); err != nil {
				t.Fatal(err)
			}
			for _, k := range mine {
				if _, _, err := s.GetCachedToken(k); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s still cached after DeleteCachedTokens (%v)", k, err)
				}
			}
			if _, err := f.Get(TokenCacheService(testService), indexAccount(idxTenant, idxClient)); err == nil {
				t.Error("the index item survived DeleteCachedTokens")
			}
			if _, _, err := s.GetCachedToken(theirs); err != nil {
				t.Errorf("another app's token was removed: %v", err)
			}
			// Nothing cached: not an error.
			if err := s.DeleteCachedTokens(idxTenant, idxClient); err != nil {
				t.Errorf("second DeleteCachedTokens: %v", err)
			}
		})
	}
}

// TokenCache shares the backend: what the cert Store's TokenCache() writes, a Store made
// with New(TokenCacheService(...)) reads, and DeleteCachedTokens through it clears it.
func TestTokenCacheFromCertStore(t *testing.T) {
	f := newFake("linux")
	certStore := New(testService, WithBackend(f), WithOS("linux"))
	cache := certStore.TokenCache()
	if cache.Service() != "entraclaw-provisioner-token-cache" {
		t.Fatalf("service %q", cache.Service())
	}
	k := TokenCacheKey(idxTenant, idxClient, "s/.default", "00", "https://login.microsoftonline.com/")
	if err := cache.PutCachedToken(k, "a.b.c", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	other := New(TokenCacheService(testService), WithBackend(f), WithOS("linux"))
	if _, _, err := other.GetCachedToken(k); err != nil {
		t.Fatalf("not in the shared backend: %v", err)
	}
	if err := certStore.TokenCache().DeleteCachedTokens(idxTenant, idxClient); err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.GetCachedToken(k); !errors.Is(err, ErrNotFound) {
		t.Errorf("after DeleteCachedTokens: %v", err)
	}
}

// With thumbprints, only the tokens of those certificates go (a rotation retiring one).
func TestDeleteCachedTokensOfOneCertificate(t *testing.T) {
	f := newFake("linux")
	s := New(TokenCacheService(testService), WithBackend(f), WithOS("linux"))
	oldKey := TokenCacheKey(idxTenant, idxClient, "s/.default", "AAAA", "https://login.microsoftonline.com/")
	newKey := TokenCacheKey(idxTenant, idxClient, "s/.default", "bbbb", "https://login.microsoftonline.com/")
	for _, k := range []string{oldKey, newKey} {
		if err := s.PutCachedToken(k, "a.b.c", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteCachedTokens(idxTenant, idxClient, "aaaa"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetCachedToken(oldKey); !errors.Is(err, ErrNotFound) {
		t.Errorf("the retired certificate's token survived: %v", err)
	}
	if _, _, err := s.GetCachedToken(newKey); err != nil {
		t.Errorf("the current certificate's token was removed: %v", err)
	}
	// The index still lists the kept key, so a later full delete finds it.
	if err := s.DeleteCachedTokens(idxTenant, idxClient); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetCachedToken(newKey); !errors.Is(err, ErrNotFound) {
		t.Errorf("after the full delete: %v", err)
	}
}

// Items no longer pile up: beyond maxIndexedTokens keys, the oldest items are deleted.
func TestTokenCacheIndexEvictsOldest(t *testing.T) {
	f := newFake("windows")
	s := New(TokenCacheService(testService), WithBackend(f), WithOS("windows"))
	exp := time.Now().Add(time.Hour)
	var keys []string
	for i := 0; i < maxIndexedTokens+3; i++ {
		k := TokenCacheKey(idxTenant, idxClient, "https://graph.microsoft.com/.default", fmt.Sprintf("%040x", i), "https://login.microsoftonline.com/")
		keys = append(keys, k)
		if err := s.PutCachedToken(k, "a.b.c", exp); err != nil {
			t.Fatal(err)
		}
	}
	present := 0
	for i, k := range keys {
		_, _, err := s.GetCachedToken(k)
		if err == nil {
			present++
		}
		if i < 3 && err == nil {
			t.Errorf("old key %d survived eviction", i)
		}
	}
	if present != maxIndexedTokens {
		t.Errorf("%d items cached, want %d", present, maxIndexedTokens)
	}
}

// A planted index cannot make DeleteCachedTokens delete another app's items.
func TestDeleteCachedTokensIgnoresForeignIndexEntries(t *testing.T) {
	f := newFake("linux")
	s := New(TokenCacheService(testService), WithBackend(f), WithOS("linux"))
	victim := TokenCacheKey("44444444-4444-4444-8444-444444444444", idxClient, "s/.default", "00", "https://login.microsoftonline.com/")
	if err := s.PutCachedToken(victim, "a.b.c", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.putForeign(TokenCacheService(testService), indexAccount(idxTenant, idxClient), `["`+victim+`"]`)
	if err := s.DeleteCachedTokens(idxTenant, idxClient); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetCachedToken(victim); err != nil {
		t.Errorf("a planted index entry deleted another app's token: %v", err)
	}
}

// A keyring call that hangs (a Secret Service waiting on an unlock prompt) ends as soon
// as the Store's context is cancelled, long before the timeout, with an error that is
// context.Canceled and not "keyring unavailable".
func TestKeyringCallsWatchTheContext(t *testing.T) {
	f := newFake("linux")
	f.blockAll = make(chan struct{})
	defer close(f.blockAll)
	ctx, cancel := context.WithCancel(context.Background())
	s := New(testService, WithBackend(f), WithOS("linux"), WithTimeout(time.Minute)).WithContext(ctx)
	calls := map[string]func() error{
		"GetBundle":      func() error { _, err := s.GetBundle(idxTenant); return err },
		"PutBundle":      func() error { return s.PutBundle(idxTenant, []byte("x")) },
		"DeleteBundle":   func() error { return s.DeleteBundle(idxTenant) },
		"GetCachedToken": func() error { _, _, err := s.GetCachedToken("a|b|c"); return err },
	}
	time.AfterFunc(100*time.Millisecond, cancel)
	for name, call := range calls {
		start := time.Now()
		err := call()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", name, err)
		}
		var unavailable *UnavailableError
		if errors.As(err, &unavailable) {
			t.Errorf("%s: an interrupt reported as %v", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %s after the cancel", name, d)
		}
	}
	// Without a context the timeout still applies.
	s2 := New(testService, WithBackend(f), WithOS("linux"), WithTimeout(50*time.Millisecond))
	if _, err := s2.GetBundle(idxTenant); errors.Is(err, context.Canceled) || err == nil {
		t.Errorf("timeout: %v", err)
	}
}
