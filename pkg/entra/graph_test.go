package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// staticCredential hands out one fixed token.
type staticCredential struct{}

func (staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "graph-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// newTestGraph starts a TLS server with h and a Graph client for it with fast
// retry settings (overridable through o).
func newTestGraph(t *testing.T, h http.HandlerFunc, o GraphOptions) (*Graph, *httptest.Server) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer graph-token" {
			t.Errorf("%s %s: Authorization = %q", r.Method, r.URL.Path, got)
		}
		if r.Header.Get("client-request-id") == "" {
			t.Errorf("%s %s: no client-request-id", r.Method, r.URL.Path)
		}
		w.Header().Set("Content-Type", "application/json")
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := ResolveCloud("", "", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	o.Transport = srv.Client()
	if o.RetryDelay == 0 {
		o.RetryDelay = time.Millisecond
	}
	if o.NotFoundBaseDelay == 0 {
		o.NotFoundBaseDelay = time.Millisecond
	}
	g, err := NewGraph(c, staticCredential{}, o)
	if err != nil {
		t.Fatal(err)
	}
	return g, srv
}

func writeGraphError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("request-id", "header-request-id")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": message,
		"innerError": map[string]string{"date": "2026-01-12T15:31:26", "request-id": "inner-request-id", "client-request-id": "x"},
	}})
}

func TestGraphErrorEnvelope(t *testing.T) {
	g, _ := newTestGraph(t, func(w http.ResponseWriter, r *http.Request) {
		writeGraphError(w, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges\nto complete the operation.")
	}, GraphOptions{})
	_, err := g.GetApplication(testContext(t), "0f0e0d0c-aaaa-bbbb-cccc-000000000001")
	var ge *GraphError
	if !errors.As(err, &ge) {
		t.Fatalf("err = %v (%T), want *GraphError", err, err)
	}
	want := "graph: GET /applications/0f0e0d0c-aaaa-bbbb-cccc-000000000001: 403 Authorization_RequestDenied: Insufficient privileges to complete the operation."
	if ge.Error() != want {
		t.Errorf("Error() = %q, want %q", ge.Error(), want)
	}
	if ge.StatusCode != 403 || ge.Code != "Authorization_RequestDenied" || ge.RequestID != "inner-request-id" {
		t.Errorf("GraphError = %+v", ge)
	}
	if !IsForbidden(err) || IsNotFound(err) || !HasCode(err, "authorization_requestdenied") || HasCode(err, "Request_ResourceNotFound") {
		t.Error("IsForbidden/IsNotFound/HasCode disagree with the error")
	}
}

func TestGraphErrorWithoutEnvelope(t *testing.T) {
	var hits atomic.Int32
	g, _ := newTestGraph(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html>\n<body>bad gateway</body>\n</html>")
	}, GraphOptions{MaxRetries: -1})
	_, err := g.ListApplicationsByDisplayName(testContext(t), "x")
	want := "graph: GET /applications: 502 Bad Gateway"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	if hits.Load() != 1 || g.RequestCount() != 1 {
		t.Errorf("hits = %d, RequestCount = %d; want 1 with retries off", hits.Load(), g.RequestCount())
	}
}

func TestListFollowsNextLink(t *testing.T) {
	var srvURL string
	g, srv := newTestGraph(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1.0/applications" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("$skiptoken") == "page2" {
			fmt.Fprint(w, `{"value":[{"id":"o3","appId":"a3","displayName":"n"}]}`)
			return
		}
		fmt.Fprintf(w, `{"@odata.context":"x","value":[{"id":"o1","appId":"a1","displayName":"n"},{"id":"o2","appId":"a2","displayName":"n"}],"@odata.nextLink":%q}`,
			srvURL+"/v1.0/applications?$filter=displayName%20eq%20'n'&$skiptoken=page2")
	}, GraphOptions{})
	srvURL = srv.URL
	apps, err := g.ListApplicationsByDisplayName(testContext(t), "n")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range apps {
		ids = append(ids, a.ID)
	}
	if strings.Join(ids, ",") != "o1,o2,o3" {
		t.Errorf("ids = %v, want o1,o2,o3", ids)
	}
	if g.RequestCount() != 2 {
		t.Errorf("RequestCount = %d, want 2", g.RequestCount())
	}
}

func TestListRefusesForeignNextLink(t *testing.T) {
	g, _ := newTestGraph(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"value":[],"@odata.nextLink":"https://evil.example/v1.0/applications?$skiptoken=1"}`)
	}, GraphOptions{})
	_, err := g.ListApplicationsByDisplayName(testContext(t), "n")
	if err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("err = %v, want a refusal to follow the link", err)
	}
	if g.RequestCount() != 1 {
		t.Errorf("RequestCount = %d, want 1", g.RequestCount())
	}
}

func TestFilterQuoting(t *testing.T) {
	var rawQuery, filter string
	g, _ := newTestGraph(t, func(w http.ResponseWriter, r *http.Request) {
		rawQuery, filter = r.URL.RawQuery, r.URL.Query().Get("$filter")
		fmt.Fprint(w, `{"value":[]}`)
	}, GraphOptions{})
	apps, err := g.ListApplicationsByDisplayName(testContext(t), "O'Brien & Co+1")
	if err != nil || len(apps) != 0 {
		t.Fatalf("apps, err = %v, %v", apps, err)
	}
	if want := "displayName eq 'O''Brien & Co+1'"; filter != want {
		t.Errorf("$filter = %q, want %q", filter, want)
	}
	if strings.Contains(strings.ReplaceAll(rawQuery, "%2B", ""), "+") || !strings.Contains(rawQuery, "%20") || !strings.HasPrefix(rawQuery, "$filter=") {
		t.Errorf("raw query = %q, want $filter with spaces as %%20", rawQuery)
	}
}

func TestThrottlingRetriedWithRetryAfter(t *testing.T) {
	var hits atomic.Int32
	var notes []string
	var mu sync.Mutex
	g, _ := newTestGraph(t, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("x-ms-retry-after-ms", "5")
			writeGraphError(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests")
			return
		}
		fmt.Fprint(w, `{"value":[{"id":"o1","appId":"a1","displayName":"n"}]}`)
	}, GraphOptions{
		// A computed backoff would be an hour: only the header can make this pass quickly.
		RetryDelay: time.Hour, MaxRetryDelay: 2 * time.Hour,
		Progress: func(s string) { mu.Lock(); notes = append(notes, s); mu.Unlock() },
	})
	app, err := g.FindApplicationByAppID(testContext(t), "a1")
	if err != nil || app == nil || app.ID != "o1" {
		t.Fatalf("app, err = %+v, %v", app, err)
	}
	if hits.Load() != 2 || g.RequestCount() != 2 {
		t.Errorf("hits = %d, RequestCount = %d; want 2", hits.Load(), g.RequestCount())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notes) != 1 || !strings.Contains(notes[0], "429") {
		t.Errorf("progress notes = %q, want one about the 429", notes)
	}
}

func TestReplicationLagRetriedOnlyForCreatedObjects(t *testing.T) {
	var mu sync.Mutex
	getHits := map[string]int{}
	g, _ := newTestGraph(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1.0/applications":
			var body map[string]string
			_ = json.NewDecoder(r.Body).Decode(&body)
			if body["signInAudience"] != "AzureADMyOrg" || body["displayName"] != ProvisionerDisplayName {
				t.Errorf("create body = %v", body)
			}
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"id":"new-app","appId":"new-appid","displayName":"EntraClaw Agent ID Provisioner","keyCredentials":[],"passwordCredentials":[]}`)
		case r.Method == http.MethodGet:
			id := strings.TrimPrefix(r.URL.Path, "/v1.0/applications/")
			getHits[id]++
			if id == "new-app" && getHits[id] <= 2 || id == "never-visible" || id == "old-app" {
				writeGraphError(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource '"+id+"' does not exist or one of its queried reference-property objects are not present.")
				return
			}
			fmt.Fprintf(w, `{"id":%q,"appId":"x","displayName":"d"}`, id)
		}
	}, GraphOptions{NotFoundRetries: 3})
	ctx := testContext(t)
	created, err := g.CreateApplication(ctx, ProvisionerDisplayName)
	if err != nil {
		t.Fatal(err)
	}
	app, err := g.GetApplication(ctx, created.ID)
	if err != nil || app.ID != "new-app" {
		t.Fatalf("GetApplication after create = %+v, %v", app, err)
	}
	_, err = g.GetApplication(ctx, "old-app")
	if !IsNotFound(err) {
		t.Errorf("err = %v, want the 404", err)
	}
	g.markCreated("never-visible")
	_, err = g.GetApplication(ctx, "never-visible")
	if !IsNotFound(err) {
		t.Errorf("err = %v, want the 404 after the retries", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if getHits["new-app"] != 3 || getHits["old-app"] != 1 || getHits["never-visible"] != 4 {
		t.Errorf("GET hits = %v, want new-app 3, old-app 1 (no retry), never-visible 4 (1 + 3 retries)", getHits)
	}
}

func TestCreateServicePrincipalConflictReturnsExisting(t *testing.T) {
	g, _ := newTestGraph(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1.0/servicePrincipals":
			writeGraphError(w, http.StatusConflict, "Request_MultipleObjectsWithSameKeyValue", "The service principal cannot be created, updated, or restored because the service principal name app-1 is already in use.")
		case r.Method == http.MethodGet && r.URL.Path == "/v1.0/servicePrincipals":
			if got := r.URL.Query().Get("$filter"); got != "appId eq 'app-1'" {
				t.Errorf("$filter = %q", got)
			}
			fmt.Fprint(w, `{"value":[{"id":"sp-1","appId":"app-1","displayName":"d","appRoles":[{"id":"r1","value":"Application.ReadWrite.All","isEnabled":true,"allowedMemberTypes":["Application"]}]}]}`)
		default:
			http.NotFound(w, r)
		}
	}, GraphOptions{})
	sp, err := g.CreateServicePrincipal(testContext(t), "app-1")
	if err != nil {
		t.Fatal(err)
	}
	if sp.ID != "sp-1" || len(sp.AppRoles) != 1 || sp.AppRoles[0].Value != "Application.ReadWrite.All" || !sp.AppRoles[0].IsEnabled {
		t.Errorf("sp = %+v", sp)
	}
}

func TestCreateServicePrincipalWaitsForApplication(t *testing.T) {
	var posts atomic.Int32
	g, _ := newTestGraph(t, func(w http.ResponseWriter, r *http.Request) {
		if posts.Add(1) <= 2 {
			writeGraphError(w, http.StatusBadRequest, "Request_BadRequest", "The appId 'app-1' of the service principal does not reference a valid application object.")
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"sp-new","appId":"app-1","appRoles":[]}`)
	}, GraphOptions{})
	sp, err := g.CreateServicePrincipal(testContext(t), "app-1")
	if err != nil || sp.ID != "sp-new" {
		t.Fatalf("sp, err = %+v, %v", sp, err)
	}
	if posts.Load() != 3 {
		t.Errorf("POSTs = %d, want 3", posts.Load())
	}
	if !g.recentlyCreated("sp-new") {
		t.Error("the new service principal is not tracked as recently created")
	}
}

func TestGrantAppRole(t *testing.T) {
	var mu sync.Mutex
	granted := map[string]bool{}
	g, _ := newTestGraph(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1.0/servicePrincipals/graph-sp/appRoleAssignedTo" {
			http.NotFound(w, r)
			return
		}
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["principalId"] != "client-sp" || body["resourceId"] != "graph-sp" || body["appRoleId"] == "" {
			t.Errorf("grant body = %v", body)
		}
		mu.Lock()
		defer mu.Unlock()
		if granted[body["appRoleId"]] {
			writeGraphError(w, http.StatusBadRequest, "Request_BadRequest", "Permission being assigned already exists on the object.")
			return
		}
		granted[body["appRoleId"]] = true
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"47nZsM8O_UuNq5Jz3QValA","appRoleId":"r1","principalId":"client-sp","resourceId":"graph-sp"}`)
	}, GraphOptions{})
	ctx := testContext(t)
	created, err := g.GrantAppRole(ctx, "graph-sp", "client-sp", "r1")
	if err != nil || !created {
		t.Fatalf("first grant = %v, %v; want true, nil", created, err)
	}
	created, err = g.GrantAppRole(ctx, "graph-sp", "client-sp", "r1")
	if err != nil || created {
		t.Fatalf("duplicate grant = %v, %v; want false, nil", created, err)
	}
	_, err = g.GrantAppRole(ctx, "other-sp", "client-sp", "r1")
	if !IsNotFound(err) {
		t.Errorf("grant on unknown resource: err = %v, want a 404", err)
	}
}

func TestListAppRoleAssignments(t *testing.T) {
	g, _ := newTestGraph(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1.0/servicePrincipals/client-sp/appRoleAssignments" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"value":[{"id":"a1","appRoleId":"r1","principalId":"client-sp","resourceId":"graph-sp","principalType":"ServicePrincipal"}]}`)
	}, GraphOptions{})
	as, err := g.ListAppRoleAssignments(testContext(t), "client-sp")
	if err != nil || len(as) != 1 || as[0].AppRoleID != "r1" || as[0].ResourceID != "graph-sp" {
		t.Fatalf("assignments, err = %+v, %v", as, err)
	}
}

func TestApplicationWrites(t *testing.T) {
	var mu sync.Mutex
	var requests []string
	g, _ := newTestGraph(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.RequestURI()+" "+strings.TrimSpace(string(body)))
		mu.Unlock()
		switch {
		case r.Method == http.MethodGet:
			fmt.Fprint(w, `{"@odata.context":"x","keyCredentials":[{"customKeyIdentifier":"AB12","displayName":"CN=old","endDateTime":"2027-01-12T15:31:26Z","key":"TUlJ","keyId":"k-old","startDateTime":"2026-01-12T15:31:26Z","type":"AsymmetricX509Cert","usage":"Verify"}]}`)
		case strings.HasSuffix(r.URL.Path, "/addPassword"):
			fmt.Fprint(w, `{"customKeyIdentifier":null,"displayName":"rollback","endDateTime":"2026-01-13T00:00:00Z","hint":"abc","keyId":"p1","secretText":"abc-super-secret-value","startDateTime":"2026-01-12T00:00:00Z"}`)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}, GraphOptions{})
	ctx := testContext(t)
	app, err := g.GetApplication(ctx, "app-obj")
	if err != nil || len(app.KeyCredentials) != 1 || app.KeyCredentials[0].Key == nil {
		t.Fatalf("app, err = %+v, %v", app, err)
	}
	keys := app.KeyCredentials
	if err := g.SetKeyCredentials(ctx, "app-obj", keys); err != nil {
		t.Fatal(err)
	}
	if err := g.SetRequiredResourceAccess(ctx, "app-obj", []RequiredResourceAccess{{ResourceAppID: GraphAppID, ResourceAccess: []ResourceAccess{{ID: "r1", Type: ResourceAccessRole}}}}); err != nil {
		t.Fatal(err)
	}
	pc, err := g.AddPassword(ctx, "app-obj", "rollback", time.Date(2026, 1, 13, 0, 0, 0, 0, time.UTC))
	if err != nil || pc.SecretText.Reveal() != "abc-super-secret-value" || pc.KeyID != "p1" {
		t.Fatalf("AddPassword = %+v, %v", pc, err)
	}
	if err := g.RemovePassword(ctx, "app-obj", "p1"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GET /v1.0/applications/app-obj?$select=id%2CappId%2CdisplayName%2CsignInAudience%2CkeyCredentials%2CpasswordCredentials%2CrequiredResourceAccess ",
		`PATCH /v1.0/applications/app-obj {"keyCredentials":[{"customKeyIdentifier":"AB12","displayName":"CN=old","endDateTime":"2027-01-12T15:31:26Z","key":null,"keyId":"k-old","startDateTime":"2026-01-12T15:31:26Z","type":"AsymmetricX509Cert","usage":"Verify"}]}`,
		`PATCH /v1.0/applications/app-obj {"requiredResourceAccess":[{"resourceAppId":"00000003-0000-0000-c000-000000000000","resourceAccess":[{"id":"r1","type":"Role"}]}]}`,
		`POST /v1.0/applications/app-obj/addPassword {"passwordCredential":{"displayName":"rollback","endDateTime":"2026-01-13T00:00:00Z"}}`,
		`POST /v1.0/applications/app-obj/removePassword {"keyId":"p1"}`,
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(requests, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(requests, "\n"), strings.Join(want, "\n"))
	}
}

func TestAuthFailureThroughGraph(t *testing.T) {
	sts := newFakeSTS(t)
	sts.respond(http.StatusUnauthorized, `{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys for app 'x' are expired.\r\nTrace ID: t","error_codes":[7000222]}`)
	c := sts.cloud(t)
	cred, err := NewSecretCredential(c, testTenant, testClient, "expired", sts.options())
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGraph(c, cred, GraphOptions{Transport: sts.srv.Client(), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.GetApplication(testContext(t), "app-obj")
	if e, ok := AsSTSError(err); !ok || e.Code() != 7000222 {
		t.Fatalf("AsSTSError(%v) = %v, %v", err, e, ok)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") || !strings.HasPrefix(msg, "graph: GET /applications/app-obj: AADSTS7000222: ") {
		t.Errorf("err = %q, want one line naming the request and the AADSTS code", msg)
	}
	if g.RequestCount() != 0 {
		t.Errorf("RequestCount = %d, want 0 (no Graph request without a token)", g.RequestCount())
	}
}
