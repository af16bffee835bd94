package entratest

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Tests of the real-tenant behaviours (docs/fake-fidelity.md).

// Item 7: a provisioner token with its 25 roles is about 3.1 KB, as a real one.
func TestTokenSizeIsRealistic(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	tok := mustToken(t, srv, certCredential(t, srv, sc.TenantID, sc.ClientID, sc.Bundle))
	if n := len(tok); n < 2950 || n > 3350 {
		t.Errorf("token is %d bytes, want about 3,100 (real-tenant-findings §7)", n)
	}
	t.Logf("provisioner token: %d bytes", len(tok))
	claims, header := claimsOf(t, srv, tok)
	for _, c := range []string{"aio", "rh", "wids", "xms_idrel", "xms_ftd", "xms_rd", "xms_tcdt", "tenant_region_scope"} {
		if claims[c] == nil {
			t.Errorf("claim %s missing", c)
		}
	}
	if header["nonce"] == nil {
		t.Error("no nonce header")
	}
	if len(rolesOf(claims)) != 25 {
		t.Errorf("%d roles", len(rolesOf(claims)))
	}
}

// Item 2: for the read lag after a PATCH, reads return the previous value.
func TestReadLag(t *testing.T) {
	clock := &testClock{}
	srv := newServer(t, WithClock(clock.Now), WithReadLag(30*time.Second))
	sc := seed(t, srv, ScenarioLegacy)
	admin := adminToken(t, srv, sc.TenantID)
	path := "/v1.0/applications/" + sc.AppObjectID
	wantStatus(t, call(t, srv, "PATCH", path, admin, map[string]any{"displayName": "renamed"}), 204, "")
	if got := call(t, srv, "GET", path, admin, nil).json(t)["displayName"]; got != AppDisplayName {
		t.Errorf("read inside the lag: displayName %v, want the previous value", got)
	}
	list := values(t, call(t, srv, "GET", "/v1.0/applications?$filter=appId%20eq%20'"+sc.ClientID+"'", admin, nil))
	if len(list) != 1 || list[0]["displayName"] != AppDisplayName {
		t.Errorf("list inside the lag: %v", list)
	}
	clock.Advance(31 * time.Second)
	if got := call(t, srv, "GET", path, admin, nil).json(t)["displayName"]; got != "renamed" {
		t.Errorf("read after the lag: displayName %v", got)
	}
}

// Item 6: a one-shot fault after the write; the upsert by uniqueName.
func TestFailAfterAndUpsert(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioEmpty)
	admin := adminToken(t, srv, sc.TenantID)
	srv.FailAfterNext(RouteCreateApplication, Failure{Status: 504, Code: "GatewayTimeout"})
	wantStatus(t, call(t, srv, "POST", "/v1.0/applications", admin, map[string]any{"displayName": "x"}), 504, "GatewayTimeout")
	if n := len(values(t, call(t, srv, "GET", "/v1.0/applications?$filter=displayName%20eq%20'x'", admin, nil))); n != 1 {
		t.Errorf("%d apps after the 504, want 1 (the write was applied)", n)
	}

	up := "/v1.0/applications(uniqueName='my-app')"
	wantStatus(t, call(t, srv, "PATCH", up, admin, map[string]any{"displayName": "u"}), 404, "Request_ResourceNotFound")
	r := upsert(t, srv, up, admin, map[string]any{"displayName": "u"})
	if wantStatus(t, r, 201, ""); r.json(t)["uniqueName"] != "my-app" {
		t.Errorf("created %s", r.body)
	}
	wantStatus(t, upsert(t, srv, up, admin, map[string]any{"displayName": "u2"}), 204, "")
	if got := call(t, srv, "GET", up, admin, nil).json(t)["displayName"]; got != "u2" {
		t.Errorf("displayName after the update = %v", got)
	}
	wantStatus(t, upsert(t, srv, up, operatorToken(t, srv, sc.TenantID, "user"), map[string]any{"displayName": "u"}), 403, "")
}

func upsert(t *testing.T, srv *Server, path, token string, body map[string]any) response {
	t.Helper()
	req, _ := http.NewRequest("PATCH", srv.URL+path, strings.NewReader(`{"displayName":"`+body["displayName"].(string)+`"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Prefer", "create-if-missing")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return response{status: res.StatusCode, header: res.Header, body: []byte(b.String())}
}

// Item 5: loop detection at the token endpoint.
func TestTokenLoopDetection(t *testing.T) {
	srv := newServer(t, WithTokenLoopLimit(3, time.Minute))
	sc := seed(t, srv, ScenarioMigrated)
	for i := 0; i < 3; i++ {
		mustToken(t, srv, certCredential(t, srv, sc.TenantID, sc.ClientID, sc.Bundle))
	}
	_, err := getToken(srv, certCredential(t, srv, sc.TenantID, sc.ClientID, sc.Bundle))
	wantSTSCode(t, err, 50196)
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse.StatusCode != 400 {
		t.Errorf("status %d, want 400", afe.RawResponse.StatusCode)
	}
}

// Items 4 and 8: published roles; the Graph SP is about a megabyte unless $select narrows it.
func TestPublishedRolesAndLargeGraphSP(t *testing.T) {
	srv := newServer(t, WithPublishedRoles("AgentIdentityBlueprint.UpdateBranding.All"))
	sc := seed(t, srv, ScenarioLegacy)
	id, err := srv.PublishRole("AgentIdentityBlueprintPrincipal.EnableDisable.All:disabled")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.PublishRole("AgentIdentityBlueprint.UpdateBranding.All"); err == nil {
		t.Error("a role published twice")
	}
	admin := adminToken(t, srv, sc.TenantID)
	full := call(t, srv, "GET", "/v1.0/servicePrincipals(appId='"+GraphAppID+"')", admin, nil)
	if len(full.body) < 800_000 || len(full.body) > 1_500_000 {
		t.Errorf("Graph SP without $select is %d bytes, want about 1 MB", len(full.body))
	}
	sel := call(t, srv, "GET", "/v1.0/servicePrincipals(appId='"+GraphAppID+"')?$select=id,appRoles", admin, nil)
	body := string(sel.body)
	if len(sel.body)*4 > len(full.body) || !strings.Contains(body, "UpdateBranding") || !strings.Contains(body, id) ||
		strings.Contains(body, "oauth2PermissionScopes") {
		t.Errorf("$select=id,appRoles: %d bytes, published roles present: %v", len(sel.body), strings.Contains(body, "UpdateBranding"))
	}
	// A published role can be granted and then appears in tokens.
	brandingID, _ := srvRoleID(t, srv, sc, admin, "AgentIdentityBlueprint.UpdateBranding.All")
	graphID := graphSP(t, srv, sc.TenantID)
	wantStatus(t, call(t, srv, "POST", "/v1.0/servicePrincipals/"+graphID+"/appRoleAssignedTo", admin,
		map[string]any{"principalId": sc.ServicePrincipalID, "resourceId": graphID, "appRoleId": brandingID}), 201, "")
	v, _ := srv.App(sc.TenantID, sc.ClientID)
	if !containsString(v.GrantedRoles, "AgentIdentityBlueprint.UpdateBranding.All") {
		t.Errorf("granted roles %v", v.GrantedRoles)
	}
}

func srvRoleID(t *testing.T, srv *Server, sc *Scenario, admin, value string) (string, bool) {
	t.Helper()
	r := call(t, srv, "GET", "/v1.0/servicePrincipals(appId='"+GraphAppID+"')?$select=appRoles", admin, nil)
	for _, role := range r.json(t)["appRoles"].([]any) {
		m := role.(map[string]any)
		if m["value"] == value {
			return m["id"].(string), true
		}
	}
	t.Fatalf("role %s not published", value)
	return "", false
}

// Item 9: the app's owner may change it; a Privileged Role Administrator may grant; the
// tenant may be named by its domain at the STS.
func TestOwnerPrivRoleAdminAndDomain(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioLegacy)
	owner := operatorToken(t, srv, sc.TenantID, "owner")
	wantStatus(t, call(t, srv, "PATCH", "/v1.0/applications/"+sc.AppObjectID, owner, map[string]any{"displayName": "by owner"}), 204, "")
	wantStatus(t, call(t, srv, "POST", "/v1.0/applications/"+sc.AppObjectID+"/addPassword", owner, map[string]any{}), 200, "")
	wantStatus(t, call(t, srv, "POST", "/v1.0/applications", owner, map[string]any{"displayName": "not mine"}), 403, "Authorization_RequestDenied")
	other := seed(t, srv, ScenarioLegacy)
	wantStatus(t, call(t, srv, "PATCH", "/v1.0/applications/"+other.AppObjectID, operatorToken(t, srv, other.TenantID, "user"),
		map[string]any{"displayName": "x"}), 403, "Authorization_RequestDenied")

	pra := operatorToken(t, srv, sc.TenantID, "privroleadmin")
	graphID := graphSP(t, srv, sc.TenantID)
	wantStatus(t, grant(t, srv, sc.TenantID, pra, graphID, sc.ServicePrincipalID, "Mail.Read"), 201, "")
	wantStatus(t, grant(t, srv, sc.TenantID, owner, graphID, sc.ServicePrincipalID, "Sites.Read.All"), 403, "")
	wantStatus(t, call(t, srv, "PATCH", "/v1.0/applications/"+sc.AppObjectID, pra, map[string]any{"displayName": "x"}), 403, "")

	domain := tenantDomain(t, srv, sc.TenantID)
	r := call(t, srv, "GET", "/"+domain+"/v2.0/.well-known/openid-configuration", "", nil)
	if wantStatus(t, r, 200, ""); !strings.Contains(r.json(t)["token_endpoint"].(string), sc.TenantID) {
		t.Errorf("metadata by domain: %s", r.body)
	}
	b := generateBundle(t)
	if err := srv.AddKeyCredential(sc.TenantID, sc.ClientID, b.Cert, b.Cert.NotBefore, b.Cert.NotAfter); err != nil {
		t.Fatal(err)
	}
	tok := mustToken(t, srv, certCredential(t, srv, domain, sc.ClientID, b))
	if claims, _ := claimsOf(t, srv, tok); claims["tid"] != sc.TenantID {
		t.Errorf("tid %v", claims["tid"])
	}
}

func tenantDomain(t *testing.T, srv *Server, tenantID string) string {
	t.Helper()
	r := call(t, srv, "GET", "/v1.0/organization", adminToken(t, srv, tenantID), nil)
	wantStatus(t, r, 200, "")
	orgs := values(t, r)
	if len(orgs) != 1 || orgs[0]["id"] != tenantID {
		t.Fatalf("organization: %s", r.body)
	}
	return orgs[0]["verifiedDomains"].([]any)[0].(map[string]any)["name"].(string)
}

// Item 12: the README's curl of /v1.0/organization with the provisioner's token, and the
// runbook's `az ad app show --id "$PROV" --query passwordCredentials -o json`.
func TestOrganizationAndAzAppShow(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioLegacy)
	tok := mustToken(t, srv, secretCredential(t, srv, sc.TenantID, sc.ClientID, sc.ClientSecret))
	wantStatus(t, call(t, srv, "GET", "/v1.0/organization", tok, nil), 200, "")
	if err := srv.RevokeGrant(sc.TenantID, sc.ClientID, "Organization.Read.All"); err != nil {
		t.Fatal(err)
	}
	tok = mustToken(t, srv, secretCredential(t, srv, sc.TenantID, sc.ClientID, sc.ClientSecret))
	wantStatus(t, call(t, srv, "GET", "/v1.0/organization", tok, nil), 403, "Authorization_RequestDenied")

	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is needed for the fake az's `ad app show` under CI")
		}
		t.Skip("no curl")
	}
	wd, err := WriteWorkdir(t.TempDir(), srv, sc)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(wd.BinDir, "az"), "ad", "app", "show", "--id", sc.ClientID, "--query", "passwordCredentials", "-o", "json").Output()
	if err != nil {
		t.Fatalf("az ad app show: %v", err)
	}
	if !strings.HasPrefix(string(out), "[\n  {") || !strings.Contains(string(out), `"hint"`) || strings.Contains(string(out), sc.ClientSecret) {
		t.Errorf("az ad app show --query passwordCredentials:\n%s", out)
	}
}
