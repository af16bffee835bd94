package keystore

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// realSizeToken is shaped like an Entra access token with many roles: three base64url
// parts, about 3.1 KB, more than one Windows Credential Manager item holds.
func realSizeToken(fill byte) string {
	return "eyJ" + strings.Repeat("A", 60) + "." + strings.Repeat(string(fill), 2700) + "." + strings.Repeat("s", 342)
}

// On Windows and macOS a token cache entry larger than one item is split over several
// items, each within the OS's limit, and read back whole; on Linux it stays one item.
func TestPutCachedTokenSplitsWhatDoesNotFit(t *testing.T) {
	token := realSizeToken('p')
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	key := TokenCacheKey(idxTenant, idxClient, "https://graph.microsoft.com/.default", strings.Repeat("ab", 20), "https://login.microsoftonline.com/")
	for _, tc := range []struct {
		goos      string
		wantParts bool
	}{{"windows", true}, {"darwin", true}, {"linux", false}} {
		t.Run(tc.goos, func(t *testing.T) {
			f := newFake(tc.goos)
			s := New(TokenCacheService(testService), WithBackend(f), WithOS(tc.goos))
			if err := s.PutCachedToken(key, token, exp); err != nil {
				t.Fatal(err)
			}
			got, gotExp, err := s.GetCachedToken(key)
			if err != nil || got != token || !gotExp.Equal(exp) {
				t.Fatalf("GetCachedToken = %d bytes, %v, %v; want the %d-byte token back", len(got), gotExp, err, len(token))
			}
			_, split := f.raw(TokenCacheService(testService), partAccount(key, 2))
			if split != tc.wantParts {
				t.Fatalf("part 2 stored: %v, want %v", split, tc.wantParts)
			}
			// The head is written last, after its parts.
			sets := f.setOrder()
			if sets[len(sets)-1] != key {
				t.Errorf("writes in order %q: the head is not the last", sets)
			}
			if err := s.DeleteCachedTokens(idxTenant, idxClient); err != nil {
				t.Fatal(err)
			}
			for i := 2; i <= maxTokenParts; i++ {
				if _, ok := f.raw(TokenCacheService(testService), partAccount(key, i)); ok {
					t.Errorf("part %d survived DeleteCachedTokens", i)
				}
			}
			if _, ok := f.raw(TokenCacheService(testService), key); ok {
				t.Error("the head survived DeleteCachedTokens")
			}
		})
	}
}

// A split entry whose parts do not belong together (a concurrent refresh rewrote one of
// them, or one is missing) is a miss, never a spliced token.
func TestSplitCachedTokenWithForeignPartIsAMiss(t *testing.T) {
	f := newFake("windows")
	s := New(TokenCacheService(testService), WithBackend(f), WithOS("windows"))
	key := TokenCacheKey(idxTenant, idxClient, "s/.default", "00", "https://login.microsoftonline.com/")
	exp := time.Now().Add(time.Hour)
	if err := s.PutCachedToken(key, realSizeToken('p'), exp); err != nil {
		t.Fatal(err)
	}
	_, parts, ok := s.splitToken(key, cachedToken{AccessToken: realSizeToken('q'), ExpiresOn: exp.UTC().Format(time.RFC3339)})
	if !ok {
		t.Fatal("a 3.1 KB token was not split for Windows")
	}
	f.putForeign(TokenCacheService(testService), partAccount(key, 2), parts[0])
	if tok, _, err := s.GetCachedToken(key); !errors.Is(err, ErrNotFound) {
		t.Errorf("spliced parts: %d bytes, %v; want a miss", len(tok), err)
	}
	if err := f.Delete(TokenCacheService(testService), partAccount(key, 2)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetCachedToken(key); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "misses part 2") {
		t.Errorf("missing part: %v; want a miss naming it", err)
	}
	// A planted head claiming too many parts is a miss without reading them.
	f.putForeign(TokenCacheService(testService), key, `{"accessToken":"a","expiresOn":"`+exp.UTC().Format(time.RFC3339)+`","parts":999,"sum":"x"}`)
	if _, _, err := s.GetCachedToken(key); !errors.Is(err, ErrNotFound) {
		t.Errorf("a head with 999 parts: %v; want a miss", err)
	}
}
