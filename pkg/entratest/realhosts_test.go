package entratest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// realHostsClient is an HTTP client that sends every request, whatever its host, to srv's
// listener and verifies the server certificate against srv's CA for the host asked: what
// /etc/hosts mapping the real names to 127.0.0.1 gives a real client.
func realHostsClient(t *testing.T, srv *Server) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(srv.CAPEM()) {
		t.Fatal("CA PEM does not parse")
	}
	addr := strings.TrimPrefix(srv.URL, "https://")
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// getJSON GETs rawURL with an optional bearer token and decodes the JSON answer.
func getJSON(t *testing.T, c *http.Client, rawURL, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	_ = json.Unmarshal(body, &doc)
	return resp.StatusCode, doc
}

// clientSecretToken asks the real-hosts STS for a client-credentials token.
func clientSecretToken(t *testing.T, c *http.Client, tenantID, clientID, secret, scope string) string {
	t.Helper()
	resp, err := c.PostForm("https://login.microsoftonline.com/"+tenantID+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {scope},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil || out.AccessToken == "" {
		t.Fatalf("token for %s: %d %s", scope, resp.StatusCode, body)
	}
	return out.AccessToken
}

func TestRealHostsRoutesByHostAndNamesTheRealHosts(t *testing.T) {
	srv := newServer(t, WithRealHosts())
	sc := seed(t, srv, ScenarioLegacy)
	c := realHostsClient(t, srv)

	status, doc := getJSON(t, c, "https://login.microsoftonline.com/"+sc.TenantID+"/v2.0/.well-known/openid-configuration", "")
	if status != http.StatusOK {
		t.Fatalf("openid-configuration on login.microsoftonline.com: %d", status)
	}
	want := map[string]string{
		"token_endpoint": "https://login.microsoftonline.com/" + sc.TenantID + "/oauth2/v2.0/token",
		"issuer":         "https://login.microsoftonline.com/" + sc.TenantID + "/v2.0",
		"msgraph_host":   "graph.microsoft.com",
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %s", k, doc[k], v)
		}
	}
	if status, doc := getJSON(t, c, "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration", ""); status != http.StatusOK ||
		doc["issuer"] != "https://login.microsoftonline.com/{tenantid}/v2.0" {
		t.Errorf("organizations metadata: %d %v", status, doc["issuer"])
	}
	if srv.AuthorityHost() != "https://login.microsoftonline.com/" || srv.GraphEndpoint() != "https://graph.microsoft.com" {
		t.Errorf("AuthorityHost %s, GraphEndpoint %s", srv.AuthorityHost(), srv.GraphEndpoint())
	}
	token := clientSecretToken(t, c, sc.TenantID, sc.ClientID, sc.ClientSecret, "https://graph.microsoft.com/.default")
	if status, _ := getJSON(t, c, "https://graph.microsoft.com/v1.0/applications?$top=1", token); status != http.StatusOK {
		t.Errorf("Graph on graph.microsoft.com: %d", status)
	}
	// Each real host answers only its own service.
	for _, u := range []string{
		"https://login.microsoftonline.com/v1.0/applications",
		"https://graph.microsoft.com/" + sc.TenantID + "/v2.0/.well-known/openid-configuration",
		"https://management.azure.com/v1.0/applications",
		"https://graph.microsoft.com/_fake/state",
	} {
		if status, _ := getJSON(t, c, u, token); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", u, status)
		}
	}
	// 127.0.0.1 still serves everything, for the fake az and the helper routes.
	if status, _ := getJSON(t, srv.Client(), srv.URL+"/_fake/state", ""); status != http.StatusOK {
		t.Errorf("_fake/state on %s: %d", srv.URL, status)
	}
}

func TestInstanceDiscoveryAnswersAsTheRealService(t *testing.T) {
	srv := newServer(t, WithRealHosts())
	c := realHostsClient(t, srv)
	base := "https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint="
	cases := []struct{ authorize, want string }{
		{"https://login.microsoftonline.com/common/oauth2/authorize", "https://login.microsoftonline.com/common/.well-known/openid-configuration"},
		{"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize", "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"},
	}
	for _, tc := range cases {
		status, doc := getJSON(t, c, base+url.QueryEscape(tc.authorize), "")
		if status != http.StatusOK || doc["tenant_discovery_endpoint"] != tc.want || doc["api-version"] != "1.1" {
			t.Errorf("%s: %d %v, want %s", tc.authorize, status, doc["tenant_discovery_endpoint"], tc.want)
		}
		groups, _ := doc["metadata"].([]any)
		if len(groups) == 0 {
			t.Fatalf("no metadata: %v", doc)
		}
		first, _ := groups[0].(map[string]any)
		aliases, _ := json.Marshal(first["aliases"])
		if first["preferred_network"] != "login.microsoftonline.com" || first["preferred_cache"] != "login.windows.net" ||
			string(aliases) != `["login.microsoftonline.com","login.windows.net","login.microsoft.com","sts.windows.net"]` {
			t.Errorf("public cloud group: %v", first)
		}
	}
	status, doc := getJSON(t, c, base+url.QueryEscape("https://login.example.com/common/oauth2/v2.0/authorize"), "")
	if codes, _ := json.Marshal(doc["error_codes"]); status != http.StatusBadRequest || doc["error"] != "invalid_instance" || string(codes) != "[50049]" {
		t.Errorf("unknown instance: %d %v %s", status, doc["error"], codes)
	}
}

func TestARMAnswersAzLoginCalls(t *testing.T) {
	srv := newServer(t, WithRealHosts())
	sc := seed(t, srv, ScenarioLegacy)
	c := realHostsClient(t, srv)
	const api = "?api-version=2022-12-01"
	for _, scope := range []string{"https://management.core.windows.net//.default", "https://management.azure.com/.default"} {
		arm := clientSecretToken(t, c, sc.TenantID, sc.ClientID, sc.ClientSecret, scope)
		status, doc := getJSON(t, c, "https://management.azure.com/subscriptions"+api, arm)
		if subs, ok := doc["value"].([]any); status != http.StatusOK || !ok || len(subs) != 0 {
			t.Errorf("subscriptions with a token for %s: %d %v", scope, status, doc)
		}
		status, doc = getJSON(t, c, "https://management.azure.com/tenants"+api, arm)
		tenants, _ := doc["value"].([]any)
		if status != http.StatusOK || len(tenants) != 1 {
			t.Fatalf("tenants: %d %v", status, doc)
		}
		if tn, _ := tenants[0].(map[string]any); tn["tenantId"] != sc.TenantID || tn["id"] != "/tenants/"+sc.TenantID {
			t.Errorf("tenant: %v", tn)
		}
	}
	arm := clientSecretToken(t, c, sc.TenantID, sc.ClientID, sc.ClientSecret, "https://management.azure.com/.default")
	graph := clientSecretToken(t, c, sc.TenantID, sc.ClientID, sc.ClientSecret, "https://graph.microsoft.com/.default")
	armError := func(doc map[string]any) any { e, _ := doc["error"].(map[string]any); return e["code"] }
	cases := []struct {
		url, token string
		status     int
		code       string
	}{
		{"https://management.azure.com/tenants", arm, http.StatusBadRequest, "MissingApiVersionParameter"},
		{"https://management.azure.com/tenants" + api, "", http.StatusUnauthorized, "AuthenticationFailed"},
		{"https://management.azure.com/tenants" + api, graph, http.StatusUnauthorized, "InvalidAuthenticationTokenAudience"},
	}
	for _, tc := range cases {
		if status, doc := getJSON(t, c, tc.url, tc.token); status != tc.status || armError(doc) != tc.code {
			t.Errorf("GET %s: %d %v, want %d %s", tc.url, status, armError(doc), tc.status, tc.code)
		}
	}
	if status, _ := getJSON(t, c, "https://graph.microsoft.com/v1.0/applications", arm); status != http.StatusUnauthorized {
		t.Errorf("an ARM token on Graph: %d, want 401", status)
	}
}

// TestAzidentityPublicCloudDefaults: azidentity with its defaults (the public cloud,
// instance discovery on) gets a Graph token from the fake through the real host names.
func TestAzidentityPublicCloudDefaults(t *testing.T) {
	srv := newServer(t, WithRealHosts())
	sc := seed(t, srv, ScenarioLegacy)
	opts := &azidentity.ClientSecretCredentialOptions{}
	opts.Transport = realHostsClient(t, srv)
	cred, err := azidentity.NewClientSecretCredential(sc.TenantID, sc.ClientID, sc.ClientSecret, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}}); err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if n := srv.Counts()[RouteInstanceDiscovery]; n == 0 {
		t.Errorf("azidentity with instance discovery on did not ask %s", RouteInstanceDiscovery)
	}
}

func TestWriteWorkdirRealHosts(t *testing.T) {
	srv := newServer(t, WithRealHosts())
	sc := seed(t, srv, ScenarioLegacy)
	w, err := WriteWorkdir(t.TempDir(), srv, sc, "PATH=/tools")
	if err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(w.EnvFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, unwanted := range []string{"ENTRACLAW_AUTHORITY_HOST", "ENTRACLAW_GRAPH_ENDPOINT", "ENTRACLAW_FAKE_URL", w.BinDir} {
		if strings.Contains(string(env), unwanted) {
			t.Errorf("env names %s:\n%s", unwanted, env)
		}
	}
	for _, v := range []string{"ENTRACLAW_CA_FILE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"} {
		if want := "export " + v + "=" + shellQuote(w.CAFile) + "\n"; !strings.Contains(string(env), want) {
			t.Errorf("env lacks %q", want)
		}
	}
	info, err := os.Stat(w.OperatorFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("operator file: %v %v", info, err)
	}
	raw, _ := os.ReadFile(w.OperatorFile)
	var op struct{ AppID, Password, Tenant string }
	if err := json.Unmarshal(raw, &op); err != nil || op.Tenant != sc.TenantID {
		t.Fatalf("operator file %s: %v", raw, err)
	}
	token := clientSecretToken(t, realHostsClient(t, srv), sc.TenantID, op.AppID, op.Password, "https://graph.microsoft.com/.default")
	var claims struct{ Roles []string }
	payload := strings.Split(token, ".")[1]
	if err := json.Unmarshal(mustDecodeSegment(t, payload), &claims); err != nil {
		t.Fatal(err)
	}
	slices.Sort(claims.Roles)
	if strings.Join(claims.Roles, " ") != "AppRoleAssignment.ReadWrite.All Application.ReadWrite.All" {
		t.Errorf("operator app's roles: %v", claims.Roles)
	}
}

func mustDecodeSegment(t *testing.T, seg string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
