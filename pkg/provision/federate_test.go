package provision_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/provision"
)

func TestParseFederation(t *testing.T) {
	for _, tc := range []struct {
		spec, issuer, subject, name, err string
		allowPattern                     bool
	}{
		{spec: "github:acme/app:environment:prod", issuer: provision.GitHubIssuer, subject: "repo:acme/app:environment:prod", name: "entraclaw-github-acme-app-environment-prod"},
		{spec: "github:acme/app:ref:refs/heads/main", issuer: provision.GitHubIssuer, subject: "repo:acme/app:ref:refs/heads/main", name: "entraclaw-github-acme-app-ref-refs-heads-main"},
		{spec: "github:acme/app:ref:refs/tags/v1.2", issuer: provision.GitHubIssuer, subject: "repo:acme/app:ref:refs/tags/v1.2", name: "entraclaw-github-acme-app-ref-refs-tags-v1-2"},
		{spec: "k8s:https://oidc.example.com/abc:ns:sa", issuer: "https://oidc.example.com/abc", subject: "system:serviceaccount:ns:sa", name: "entraclaw-k8s-system-serviceaccount-ns-sa"},
		{spec: "github:acme/app:pull_request", err: "pull_request"},
		{spec: "github:acme/app:environment:*", err: "pattern"},
		{spec: "github:acme/app:environment:*", allowPattern: true, issuer: provision.GitHubIssuer, subject: "repo:acme/app:environment:*", name: "entraclaw-github-acme-app-environment-"},
		{spec: "github:acme:environment:prod", err: "ORG/REPO"},
		{spec: "github:acme/app:branch:main", err: "environment:NAME"},
		{spec: "k8s:http://oidc.example.com:ns:sa", err: "https"},
		{spec: "k8s:https://eastus.oic.prod-aks.azure.com/t/c/:ns:sa", issuer: "https://eastus.oic.prod-aks.azure.com/t/c/", subject: "system:serviceaccount:ns:sa", name: "entraclaw-k8s-system-serviceaccount-ns-sa"}, // AKS issuers end in "/"
		{spec: "gitlab:acme/app", err: "unknown kind"},
	} {
		f, err := provision.ParseFederation(tc.spec, tc.allowPattern)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one saying %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.spec, err)
			continue
		}
		if f.Issuer != tc.issuer || f.Subject != tc.subject || f.Name != tc.name || f.Audience() != "api://AzureADTokenExchange" {
			t.Errorf("%s: got %s %s %s %v", tc.spec, f.Name, f.Issuer, f.Subject, f.Audiences)
		}
	}
	long, err := provision.ParseFederation("github:acme/"+strings.Repeat("r", 150)+":environment:prod", false)
	if err != nil || len(long.Name) > 120 {
		t.Errorf("a long subject gives name %q (%d chars), %v; want at most 120", long.Name, len(long.Name), err)
	}
}

// TestFederateRefusesA21stCredential: Graph holds at most 20 FICs per app; the 21st is
// refused before anything is written, naming the way out.
func TestFederateRefusesA21stCredential(t *testing.T) {
	f := newFixture(t, entratest.ScenarioMigrated)
	for i := range 20 {
		if err := f.srv.AddFIC(f.sc.TenantID, f.sc.ClientID, fmt.Sprintf("other-%d", i), "https://issuer.example.com", fmt.Sprintf("subject-%d", i), "api://AzureADTokenExchange"); err != nil {
			t.Fatal(err)
		}
	}
	fed, err := provision.ParseFederation("github:acme/app:environment:prod", false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.config()
	cfg.Federate = []*provision.Federation{fed}
	f.srv.ResetCounts()
	_, progress, err := f.migrate(cfg)
	if err == nil || !strings.Contains(err.Error(), "limit of 20") {
		t.Fatalf("Migrate = %v; want the 21st federated credential refused\n%s", err, progress)
	}
	if n := f.srv.Counts()[entratest.RouteCreateFIC]; n != 0 {
		t.Errorf("%d federated credentials created", n)
	}
}
