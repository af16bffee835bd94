package entra

import (
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
)

// Tests of the client against the behaviours issue 22 added to the fake (docs/fake-fidelity.md).

// fakeCertCredential is the migrated scenario's provisioner certificate credential.
func fakeCertCredential(t *testing.T, srv *entratest.Server, sc *entratest.Scenario) azcore.TokenCredential {
	t.Helper()
	cred, err := NewCertificateCredential(fakeCloud(t, srv), sc.TenantID, sc.ClientID, sc.Bundle, CredentialOptions{Transport: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// Graph's Retry-After is whole seconds: a 429 asking 200 ms costs the client a full
// second, as against real Graph (the old fake's x-ms-retry-after-ms let it retry at 200 ms).
func TestGraphRetryAfterIsWholeSeconds(t *testing.T) {
	srv := newFake(t)
	sc := fakeSeed(t, srv, entratest.ScenarioLegacy)
	g := fakeGraph(t, srv, sc.TenantID, "admin")
	srv.Throttle(1, 200*time.Millisecond)
	start := time.Now()
	if _, err := g.GetApplication(testContext(t), sc.AppObjectID); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("the 429 was retried after %s; real Graph's Retry-After is whole seconds (at least 1s)", took)
	}
}

// A Retry-After longer than the client's retry budget (real write quotas reset over 150 s
// windows) ends the retries at once, with an error naming the wait.
func TestGraphRetryAfterBeyondBudgetNamesTheWait(t *testing.T) {
	srv := newFake(t)
	sc := fakeSeed(t, srv, entratest.ScenarioLegacy)
	g := fakeGraph(t, srv, sc.TenantID, "admin")
	srv.Throttle(1, 150*time.Second)
	start := time.Now()
	_, err := g.GetApplication(testContext(t), sc.AppObjectID)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the client sat in a 150s Retry-After for %s", took)
	}
	if err == nil || !IsThrottled(err) || ThrottleDelay(err) != 150*time.Second {
		t.Fatalf("err = %v (throttled %v, delay %s), want the 429 with its 150s", err, IsThrottled(err), ThrottleDelay(err))
	}
	for _, want := range []string{"429", "2m30s", "1m0s this client waits", "run the command again after 2m30s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// The token endpoint throttles a client_credentials client with 429, Retry-After and a
// plain-text body (no AADSTS JSON): the client sees it as throttling with its wait.
func TestTokenEndpoint429IsThrottling(t *testing.T) {
	srv := newFake(t)
	sc := fakeSeed(t, srv, entratest.ScenarioMigrated)
	srv.ThrottleTokens(1, 61*time.Second) // above azcore's 60 s MaxRetryDelay: not retried
	_, err := FetchToken(testContext(t), fakeCertCredential(t, srv, sc), fakeCloud(t, srv).GraphScope())
	if err == nil || !IsThrottled(err) || ThrottleDelay(err) != 61*time.Second {
		t.Fatalf("err = %v (throttled %v, delay %s), want a throttled token request waiting 61s", err, IsThrottled(err), ThrottleDelay(err))
	}
	if _, ok := AsSTSError(err); ok {
		t.Errorf("a plain-text 429 was read as an AADSTS error: %v", err)
	}
	// One 429 of a second is retried by azcore after that second.
	srv.ThrottleTokens(1, time.Second)
	start := time.Now()
	if _, err := FetchToken(testContext(t), fakeCertCredential(t, srv, sc), fakeCloud(t, srv).GraphScope()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("the token 429 was retried after %s, before its Retry-After of 1s", took)
	}
}

// A token asked for with the cp1 capability (as azcore's bearer policy asks for every
// Graph request) lives 24 hours; one without it an hour.
func TestCAETokensAreLongLived(t *testing.T) {
	srv := newFake(t)
	sc := fakeSeed(t, srv, entratest.ScenarioMigrated)
	scope := fakeCloud(t, srv).GraphScope()
	cae, err := fakeCertCredential(t, srv, sc).GetToken(testContext(t), policy.TokenRequestOptions{Scopes: []string{scope}, EnableCAE: true})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := FetchToken(testContext(t), fakeCertCredential(t, srv, sc), scope)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(cae.ExpiresOn); left < 23*time.Hour {
		t.Errorf("a CAE token lives %s, want about 24h", left.Round(time.Minute))
	}
	if left := time.Until(plain.ExpiresOn); left > 2*time.Hour {
		t.Errorf("a token without the cp1 capability lives %s, want about 1h", left.Round(time.Minute))
	}
}

// CAE: once the app's service principal is disabled, Graph answers the client's
// 24-hour token with a claims challenge; azcore asks the STS again, which refuses
// (AADSTS7000112), and the Graph call fails saying so instead of succeeding on the
// cached token.
func TestGraphHandlesCAEChallenge(t *testing.T) {
	srv := newFake(t)
	sc := fakeSeed(t, srv, entratest.ScenarioMigrated)
	g, err := NewGraph(fakeCloud(t, srv), fakeCertCredential(t, srv, sc), GraphOptions{Transport: srv.Client(), RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	if _, err := g.GetApplication(ctx, sc.AppObjectID); err != nil {
		t.Fatal(err)
	}
	tokens := srv.TokenRequests()
	if err := srv.SetServicePrincipalEnabled(sc.TenantID, sc.ClientID, false); err != nil {
		t.Fatal(err)
	}
	_, err = g.GetApplication(ctx, sc.AppObjectID)
	sts, ok := AsSTSError(err)
	if !ok || !sts.HasCode(7000112) {
		t.Fatalf("Graph call after the SP was disabled: %v; want the STS's AADSTS7000112 (the challenge was not followed)", err)
	}
	if srv.TokenRequests() != tokens+1 {
		t.Errorf("%d token requests after the challenge, want 1 (azcore's claims request)", srv.TokenRequests()-tokens)
	}
	if ae := asAuthError(t, err); !strings.Contains(ae.Hint(), "disabled") || strings.Contains(err.Error(), ae.Hint()) {
		t.Errorf("%q, hint %q: want the hint to say the app is disabled, and the message without it", err, ae.Hint())
	}
	// Enabled again: the next call gets a new token and works.
	if err := srv.SetServicePrincipalEnabled(sc.TenantID, sc.ClientID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := g.GetApplication(ctx, sc.AppObjectID); err != nil {
		t.Errorf("after enabling the SP again: %v", err)
	}
}
