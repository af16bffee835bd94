package provision_test

import (
	"errors"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// plantTokens caches one token per thumbprint for the fixture's app and returns the keys.
func (f *fixture) plantTokens(thumbprints ...string) map[string]string {
	f.t.Helper()
	keys := map[string]string{}
	for _, th := range thumbprints {
		k := keystore.TokenCacheKey(f.sc.TenantID, f.sc.ClientID, f.cloud.GraphScope(), th, f.cloud.AuthorityHost)
		if err := f.store.TokenCache().PutCachedToken(k, "a.b.c", time.Now().Add(time.Hour)); err != nil {
			f.t.Fatal(err)
		}
		keys[th] = k
	}
	return keys
}

func (f *fixture) cached(key string) bool {
	f.t.Helper()
	_, _, err := f.store.TokenCache().GetCachedToken(key)
	if err != nil && !errors.Is(err, keystore.ErrNotFound) {
		f.t.Fatal(err)
	}
	return err == nil
}

// Issue 8 §2: a rollback (here with -purge-cert -remove-app-cert) leaves no cached token of
// the app, whatever certificate or authority it was minted with.
func TestRollbackClearsTokenCache(t *testing.T) {
	for _, purge := range []bool{false, true} {
		f := newFixture(t, entratest.ScenarioMigrated)
		keys := f.plantTokens(certs.Thumbprint(f.sc.Bundle.Cert), "00000000000000000000000000000000000000aa")
		cfg := f.rollbackConfig()
		cfg.PurgeCert, cfg.RemoveAppCert = purge, purge
		cfg.SecretLifetime = time.Hour
		if _, progress, err := f.rollback(cfg); err != nil {
			t.Fatalf("Rollback: %v\n%s", err, progress)
		}
		for th, k := range keys {
			if f.cached(k) {
				t.Errorf("purge=%v: the token cached with %s survived the rollback", purge, th)
			}
		}
	}
}

// Issue 8 §2: a rotation removes the tokens of the certificate it retires, and keeps the
// others.
func TestRotationClearsRetiredCertificateTokens(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	oldThumb := certs.Thumbprint(f.sc.Bundle.Cert)
	other := "00000000000000000000000000000000000000bb"
	keys := f.plantTokens(oldThumb, other)
	cfg := f.config()
	cfg.Rotate = true
	sum, progress := f.mustMigrate(cfg)
	if !sum.PreviousCertRemoved {
		t.Fatalf("the rotation did not retire the old certificate:\n%s", progress)
	}
	if f.cached(keys[oldThumb]) {
		t.Error("the retired certificate's cached token survived the rotation")
	}
	if !f.cached(keys[other]) {
		t.Error("the rotation removed a token of another certificate")
	}
}
