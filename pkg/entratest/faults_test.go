package entratest

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

func TestThrottle(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioLegacy)
	admin := adminToken(t, srv, sc.TenantID)

	srv.Throttle(2, 1500*time.Millisecond)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sc.ClientID},
		"client_secret": {sc.ClientSecret}, "scope": {srv.GraphEndpoint() + "/.default"}}
	if r := postForm(t, srv, sc.TenantID, form); r.status != 200 {
		t.Fatalf("the STS is throttled too: %d %s", r.status, r.body)
	}
	for i := 0; i < 2; i++ {
		r := call(t, srv, "GET", "/v1.0/applications", admin, nil)
		wantStatus(t, r, 429, "TooManyRequests")
		if r.header.Get("Retry-After") != "2" || r.header.Get("x-ms-retry-after-ms") != "" {
			t.Errorf("retry headers = %q / %q, want 2 and no x-ms-retry-after-ms", r.header.Get("Retry-After"), r.header.Get("x-ms-retry-after-ms"))
		}
	}
	wantStatus(t, call(t, srv, "GET", "/v1.0/applications", admin, nil), 200, "")

	srv.Throttle(1, 10*time.Millisecond)
	r := call(t, srv, "GET", "/v1.0/applications", admin, nil)
	if r.header.Get("Retry-After") != "1" || r.header.Get("x-ms-retry-after-ms") != "" {
		t.Errorf("sub-second retry headers = %q / %q, want 1 and no x-ms-retry-after-ms", r.header.Get("Retry-After"), r.header.Get("x-ms-retry-after-ms"))
	}
}

// azcore's retry policy follows Retry-After, so a throttled burst is absorbed, in whole
// seconds: two 429s cost at least two seconds, as against real Graph.
func TestThrottleThroughAzcoreRetry(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioLegacy)
	admin := adminToken(t, srv, sc.TenantID)
	pl := runtime.NewPipeline("entratest", "v0", runtime.PipelineOptions{}, &policy.ClientOptions{Transport: srv.Client()})
	srv.Throttle(2, 5*time.Millisecond)
	srv.ResetCounts()
	start := time.Now()

	req, err := runtime.NewRequest(context.Background(), http.MethodGet, srv.URL+"/v1.0/applications")
	if err != nil {
		t.Fatal(err)
	}
	req.Raw().Header.Set("Authorization", "Bearer "+admin)
	res, err := pl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || srv.Counts()[RouteListApplications] != 3 {
		t.Errorf("status %d after %d attempts; want 200 after 3", res.StatusCode, srv.Counts()[RouteListApplications])
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("two 429s were retried within %s: Retry-After is whole seconds, so at least 2s", took)
	}
}

func TestFailNextAndRepeat(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioLegacy)
	admin := adminToken(t, srv, sc.TenantID)
	appPath := "/v1.0/applications/" + sc.AppObjectID

	srv.FailNext(RouteGetApplication, Failure{Status: 503, Code: "ServiceUnavailable"})
	r := call(t, srv, "GET", appPath, admin, nil)
	wantStatus(t, r, 503, "ServiceUnavailable")
	if r.graphMessage(t) == "" || r.header.Get("request-id") == "" {
		t.Errorf("injected error lacks message or request-id: %s", r.body)
	}
	wantStatus(t, call(t, srv, "GET", appPath, admin, nil), 200, "")

	srv.FailRepeat(RoutePatchApplication, 3, Failure{Status: 503, Code: "ServiceUnavailable", Message: "busy", RetryAfter: 20 * time.Millisecond})
	if got := srv.Snapshot().Knobs.PendingFailures[RoutePatchApplication]; got != 3 {
		t.Errorf("pending failures = %d, want 3", got)
	}
	for i := 0; i < 3; i++ {
		r := call(t, srv, "PATCH", appPath, admin, map[string]any{"displayName": "x"})
		wantStatus(t, r, 503, "ServiceUnavailable")
		if r.graphMessage(t) != "busy" || r.header.Get("Retry-After") != "1" || r.header.Get("x-ms-retry-after-ms") != "" {
			t.Errorf("attempt %d: %s %v", i, r.body, r.header)
		}
	}
	wantStatus(t, call(t, srv, "PATCH", appPath, admin, map[string]any{"displayName": "x"}), 204, "")

	srv.FailNext(RouteToken, Failure{Status: 401, Code: "7000229"})
	_, err := getToken(srv, secretCredential(t, srv, sc.TenantID, sc.ClientID, sc.ClientSecret))
	wantSTSCode(t, err, 7000229)
	mustToken(t, srv, secretCredential(t, srv, sc.TenantID, sc.ClientID, sc.ClientSecret))

	srv.FailNext(RouteToken, Failure{Code: CodeReset})
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sc.ClientID},
		"client_secret": {sc.ClientSecret}, "scope": {srv.GraphEndpoint() + "/.default"}}
	if res, err := srv.Client().PostForm(srv.URL+"/"+sc.TenantID+"/oauth2/v2.0/token", form); err == nil {
		res.Body.Close()
		t.Fatalf("reset: got status %d, want a transport error", res.StatusCode)
	}
	if r := postForm(t, srv, sc.TenantID, form); r.status != 200 {
		t.Errorf("after the reset: %d %s", r.status, r.body)
	}

	defer func() {
		if recover() == nil {
			t.Error("FailNext accepted an unknown route")
		}
	}()
	srv.FailNext("GET /v1.0/users", Failure{Status: 500})
}

func TestCounters(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioLegacy)
	admin := adminToken(t, srv, sc.TenantID)
	appPath := "/v1.0/applications/" + sc.AppObjectID

	call(t, srv, "GET", "/v1.0/applications?$filter="+url.QueryEscape("displayName eq '"+AppDisplayName+"'"), admin, nil)
	call(t, srv, "GET", appPath, admin, nil)
	call(t, srv, "GET", "/v1.0/applications(appId='"+sc.ClientID+"')", admin, nil)
	call(t, srv, "PATCH", appPath, admin, map[string]any{"displayName": AppDisplayName})
	call(t, srv, "POST", appPath+"/addPassword", admin, nil)
	call(t, srv, "POST", "/v1.0/servicePrincipals", admin, map[string]any{"appId": sc.ClientID})
	call(t, srv, "GET", "/v1.0/servicePrincipals(appId='"+sc.ClientID+"')/appRoleAssignments", admin, nil)
	call(t, srv, "GET", "/v1.0/users", admin, nil)
	call(t, srv, "DELETE", appPath, admin, nil)
	call(t, srv, "GET", "/_fake/state", "", nil)
	call(t, srv, "GET", "/nowhere", "", nil)

	want := map[string]int{
		RouteListApplications:            1,
		RouteGetApplication:              2,
		RoutePatchApplication:            1,
		RouteAddPassword:                 1,
		RouteCreateSP:                    1,
		RouteListAssignments:             1,
		"GET /v1.0/*":                    1,
		"DELETE /v1.0/applications/{id}": 1,
		RouteFakeState:                   1,
		"GET /*":                         1,
	}
	got := srv.Counts()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Counts()[%q] = %d, want %d", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Counts() = %v, want exactly %v", got, want)
	}
	if srv.WriteCalls() != 4 || srv.TokenRequests() != 0 {
		t.Errorf("WriteCalls = %d, TokenRequests = %d; want 4 and 0", srv.WriteCalls(), srv.TokenRequests())
	}
	srv.ResetCounts()
	if len(srv.Counts()) != 0 || srv.WriteCalls() != 0 {
		t.Errorf("after ResetCounts: %v, %d", srv.Counts(), srv.WriteCalls())
	}
	for _, r := range Routes() {
		method, pattern, _ := strings.Cut(r, " ")
		if method != strings.ToUpper(method) || !strings.HasPrefix(pattern, "/") {
			t.Errorf("route name %q is not METHOD /pattern", r)
		}
	}
}

func TestLatency(t *testing.T) {
	srv := newServer(t, WithLatency(time.Minute))
	sc := seed(t, srv, ScenarioEmpty)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/"+sc.TenantID+"/v2.0/.well-known/openid-configuration", nil)
	if res, err := srv.Client().Do(req); err == nil {
		res.Body.Close()
		t.Fatal("a request beat a one-minute latency")
	}
	// /_fake/state is never delayed.
	wantStatus(t, call(t, srv, "GET", "/_fake/state", "", nil), 200, "")
	srv.SetLatency(0)
	wantStatus(t, call(t, srv, "GET", "/"+sc.TenantID+"/v2.0/.well-known/openid-configuration", "", nil), 200, "")
}
