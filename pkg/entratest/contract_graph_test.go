package entratest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Drivers of the Graph fixtures (testdata/contract/graph.json).
var graphContractDrivers = map[string]contractDriver{
	"graph-list-applications": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		return call(t, srv, "GET", "/v1.0/applications?$filter=appId%20eq%20'"+sc.ClientID+"'", adminToken(t, srv, sc.TenantID), nil)
	},
	"graph-get-application": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		return call(t, srv, "GET", "/v1.0/applications/"+sc.AppObjectID, adminToken(t, srv, sc.TenantID), nil)
	},
	"graph-not-found": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		return call(t, srv, "GET", "/v1.0/applications/"+newGUID(), adminToken(t, srv, sc.TenantID), nil)
	},
	"graph-patch-application": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		return call(t, srv, "PATCH", "/v1.0/applications/"+sc.AppObjectID, adminToken(t, srv, sc.TenantID), map[string]any{"displayName": "renamed"})
	},
	"graph-create-application": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		return call(t, srv, "POST", "/v1.0/applications", adminToken(t, srv, sc.TenantID), map[string]any{"displayName": "new", "signInAudience": "AzureADMyOrg"})
	},
	"graph-upsert-create": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioEmpty)
		return contractUpsert(t, srv, adminToken(t, srv, sc.TenantID))
	},
	"graph-upsert-in-lag": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioEmpty, WithReplicationLag(time.Minute))
		admin := adminToken(t, srv, sc.TenantID)
		if r := contractUpsert(t, srv, admin); r.status != http.StatusCreated {
			t.Fatalf("first upsert: %d %s", r.status, r.body)
		}
		return contractUpsert(t, srv, admin)
	},
	"graph-add-password": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		return call(t, srv, "POST", "/v1.0/applications/"+sc.AppObjectID+"/addPassword", adminToken(t, srv, sc.TenantID),
			map[string]any{"passwordCredential": map[string]any{"displayName": "rollback"}})
	},
	"graph-remove-password": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		app, _ := srv.App(sc.TenantID, sc.ClientID)
		return call(t, srv, "POST", "/v1.0/applications/"+sc.AppObjectID+"/removePassword", adminToken(t, srv, sc.TenantID),
			map[string]any{"keyId": app.PasswordCredentials[0].KeyID})
	},
	"graph-add-key": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioMigrated)
		return call(t, srv, "POST", "/v1.0/applications/"+sc.AppObjectID+"/addKey", selfToken(t, srv, sc, false),
			addKeyBody(generateBundle(t), proofBy(t, sc.Bundle, sc.AppObjectID, time.Now())))
	},
	"graph-remove-key": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioMigrated)
		self := selfToken(t, srv, sc, false)
		added := call(t, srv, "POST", "/v1.0/applications/"+sc.AppObjectID+"/addKey", self,
			addKeyBody(generateBundle(t), proofBy(t, sc.Bundle, sc.AppObjectID, time.Now())))
		keyID, _ := added.json(t)["keyId"].(string)
		return call(t, srv, "POST", "/v1.0/applications/"+sc.AppObjectID+"/removeKey", self,
			map[string]any{"keyId": keyID, "proof": proofBy(t, sc.Bundle, sc.AppObjectID, time.Now())})
	},
	"graph-sp-not-replicated": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy, WithReplicationLag(time.Minute))
		appID, _ := createApp(t, srv, sc.TenantID, "lagging")
		return call(t, srv, "POST", "/v1.0/servicePrincipals", adminToken(t, srv, sc.TenantID), map[string]any{"appId": appID})
	},
	"graph-sp-exists": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		return call(t, srv, "POST", "/v1.0/servicePrincipals", adminToken(t, srv, sc.TenantID), map[string]any{"appId": sc.ClientID})
	},
	"graph-grant": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		admin := adminToken(t, srv, sc.TenantID)
		return grant(t, srv, sc.TenantID, admin, graphSP(t, srv, sc.TenantID), sc.ServicePrincipalID, "Mail.Read")
	},
	"graph-grant-duplicate": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		admin := adminToken(t, srv, sc.TenantID)
		return grant(t, srv, sc.TenantID, admin, graphSP(t, srv, sc.TenantID), sc.ServicePrincipalID, "Application.ReadWrite.All")
	},
	"graph-throttled": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		srv.Throttle(1, 1500*time.Millisecond)
		return call(t, srv, "GET", "/v1.0/applications/"+sc.AppObjectID, adminToken(t, srv, sc.TenantID), nil)
	},
	"graph-cae-challenge": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioMigrated)
		r := contractCertToken2(t, srv, sc)
		if err := srv.SetServicePrincipalEnabled(sc.TenantID, sc.ClientID, false); err != nil {
			t.Fatal(err)
		}
		return call(t, srv, "GET", "/v1.0/applications/"+sc.AppObjectID, r, nil)
	},
	"graph-fic-create": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioMigrated)
		return call(t, srv, "POST", "/v1.0/applications/"+sc.AppObjectID+"/federatedIdentityCredentials", adminToken(t, srv, sc.TenantID),
			ficBody("prod", "repo:acme/app:environment:prod"))
	},
}

// contractUpsert is the provisioner's upsert of its app.
func contractUpsert(t *testing.T, srv *Server, token string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPatch, srv.URL+"/v1.0/applications(uniqueName='entraclaw-contract')",
		strings.NewReader(`{"displayName":"contract","signInAudience":"AzureADMyOrg"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Prefer", "create-if-missing")
	return doContract(t, srv, req)
}

// contractCertToken2 is a CAE access token of the migrated app (asked for with cp1).
func contractCertToken2(t *testing.T, srv *Server, sc *Scenario) string {
	t.Helper()
	form := assertionForm(sc.ClientID, contractAssertion(t, srv, sc, sc.Bundle, time.Now()))
	form.Set("claims", `{"access_token":{"xms_cc":{"values":["CP1"]}}}`)
	r := postForm(t, srv, sc.TenantID, form)
	tok, _ := r.json(t)["access_token"].(string)
	if tok == "" {
		t.Fatalf("no CAE token: %d %s", r.status, r.body)
	}
	return tok
}
