package verify

import (
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
)

// CAE (issue 22): a credential kept across Runs (verify -wait with a federated or other
// long-lived credential) holds a 24-hour CAE token. Once the app's service principal is
// disabled, Graph answers that token with a claims challenge, the token service refuses a
// new one (AADSTS7000112), and the token check fails on that refusal instead of passing on
// the cached token.
func TestRunHandlesCAEChallenge(t *testing.T) {
	f := newFixture(t)
	cred, err := entra.NewCertificateCredential(f.cfg.Cloud, f.sc.TenantID, f.sc.ClientID, f.sc.Bundle, f.deps.Credential)
	if err != nil {
		t.Fatal(err)
	}
	f.deps.TokenCredential = cred
	f.cfg.Checks = []string{NameToken}
	if r := result(t, f.run(t), NameToken); !r.OK {
		t.Fatalf("token check before the SP was disabled: %s", r.Detail)
	}
	// The credential now holds a CAE token good for 24 hours.
	if _, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{f.cfg.Cloud.GraphScope()}, EnableCAE: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.SetServicePrincipalEnabled(f.sc.TenantID, f.sc.ClientID, false); err != nil {
		t.Fatal(err)
	}
	r := result(t, f.run(t), NameToken)
	// A verdict (the app is refused), not "could not run" (an outage).
	if r.OK || r.CouldNotRun || !strings.Contains(r.Detail, "AADSTS7000112") {
		t.Errorf("token check after the SP was disabled: ok=%v couldNotRun=%v %q; want a failure naming AADSTS7000112", r.OK, r.CouldNotRun, r.Detail)
	}
}
