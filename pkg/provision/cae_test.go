package provision_test

import (
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/provision"
)

// CAE (issue 22): migrate's Graph client holds a 24-hour CAE token of the provisioner
// (-operator-auth provisioner). Once the app's service principal is disabled, Graph
// answers that token with a claims challenge and the token service refuses a new one
// (AADSTS7000112): the run stops there, naming the refusal, and changes nothing, instead
// of rotating on the long-lived token.
func TestMigrateHandlesCAEChallenge(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	cred, err := entra.NewCertificateCredential(f.cloud, f.sc.TenantID, f.sc.ClientID, f.sc.Bundle, entra.CredentialOptions{Transport: f.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{f.cloud.GraphScope()}, EnableCAE: true})
	if err != nil || time.Until(tok.ExpiresOn) < 23*time.Hour {
		t.Fatalf("CAE token: %v, lives %s; want about 24h", err, time.Until(tok.ExpiresOn))
	}
	if err := f.srv.SetServicePrincipalEnabled(f.sc.TenantID, f.sc.ClientID, false); err != nil {
		t.Fatal(err)
	}
	deps := f.deps()
	deps.OperatorCredential = func(string) (azcore.TokenCredential, error) { return cred, nil }
	cfg := f.config()
	cfg.Rotate = true
	before := f.app(f.sc.ClientID)
	cfg.OperatorAuth = provision.OperatorProvisioner
	_, err = provision.Migrate(t.Context(), cfg, deps)
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000112") {
		t.Fatalf("migrate with a disabled service principal: %v; want it to stop on AADSTS7000112", err)
	}
	if after := f.app(f.sc.ClientID); len(after.KeyCredentials) != len(before.KeyCredentials) {
		t.Errorf("the app's certificates changed from %d to %d on a revoked token", len(before.KeyCredentials), len(after.KeyCredentials))
	}
}
