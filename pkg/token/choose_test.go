package token

import (
	"testing"

	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// TestChooseCacheExplicit: keyring and none are taken as they are; federated tokens are
// never cached in the keyring (only the kernel keyring, under auto or kernel).
func TestChooseCacheExplicit(t *testing.T) {
	for _, setting := range []string{keystore.CacheKeyring, keystore.CacheNone} {
		kind, why, err := ChooseCache(setting)
		if kind != setting || why != "" || err != nil {
			t.Errorf("ChooseCache(%q) = %q, %q, %v", setting, kind, why, err)
		}
		if FederatedCache(setting) {
			t.Errorf("FederatedCache(%q) = true: federated tokens go only to the kernel keyring", setting)
		}
	}
	kind, _, err := ChooseCache(CacheAuto)
	if err != nil || !ValidCacheSetting(kind) || kind == CacheAuto {
		t.Errorf("ChooseCache(auto) = %q, %v: want a concrete cache and no error", kind, err)
	}
	if ValidCacheSetting("disk") {
		t.Error(`ValidCacheSetting("disk") = true`)
	}
}
