package provision_test

import (
	"strings"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
)

// The token endpoint throttles with HTTP 429 and Retry-After: 60 (issue 22; MSAL.NET
// "Client and server throttling"), not only AADSTS50196. The propagation poll keeps to its
// budget under it: the rotation stops waiting at PropagationTimeout, not after azcore's
// minute-long retries, and a short burst is waited out.
func TestPropagationPollWithinBudgetUnderToken429(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	f.srv.ThrottleTokens(1000, 60*time.Second)
	cfg := f.config()
	cfg.Rotate = true
	cfg.PropagationTimeout = 2 * time.Second
	start := time.Now()
	sum, progress := f.mustMigrate(cfg)
	if took := time.Since(start); took > cfg.PropagationTimeout+5*time.Second {
		t.Errorf("the rotation took %s under 429s, beyond its %s propagation budget", took, cfg.PropagationTimeout)
	}
	if sum.Propagated || !strings.Contains(progress, "had not accepted the new certificate") {
		t.Errorf("propagated=%v under constant 429s; progress:\n%s", sum.Propagated, progress)
	}

	// A burst of two 429s of a second each: the poll waits them out and finishes.
	f.srv.ThrottleTokens(2, time.Second)
	cfg.PropagationTimeout = 20 * time.Second
	sum, progress = f.mustMigrate(cfg)
	if !sum.Propagated {
		t.Errorf("the rotation did not finish after a short 429 burst: %+v\n%s", sum, progress)
	}
}

// Removing a certificate reaches the token service after a delay, like adding one
// (WithKeyRemovalDelay). A rotation that removed the previous certificate from the app
// must not claim it stopped working: right after, it still gets a token.
func TestRotationDoesNotAssumeRemovedKeyDead(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated, entratest.WithKeyRemovalDelay(time.Minute))
	old := f.sc.Bundle
	cfg := f.config()
	cfg.Rotate = true
	sum, progress := f.mustMigrate(cfg)
	if !sum.PreviousCertRemoved || !strings.Contains(progress, "may accept it for a few more minutes") {
		t.Fatalf("removed=%v; progress does not say the token service may still accept the old certificate:\n%s", sum.PreviousCertRemoved, progress)
	}
	cred, err := entra.NewCertificateCredential(f.cloud, f.sc.TenantID, f.sc.ClientID, old, entra.CredentialOptions{Transport: f.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := entra.FetchToken(t.Context(), cred, f.cloud.GraphScope()); err != nil {
		t.Errorf("the removed certificate was refused at once (%v); the real token service learns of a removal late", err)
	}
}
