package entratest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// ficBody is a create body for a GitHub environment credential.
func ficBody(name, subject string) map[string]any {
	return map[string]any{"name": name, "issuer": GitHubIssuer, "subject": subject, "audiences": []string{FederationAudience}}
}

func appObjectID(t *testing.T, srv *Server, sc *Scenario) string {
	t.Helper()
	app, ok := srv.App(sc.TenantID, sc.ClientID)
	if !ok {
		t.Fatal("seeded app not found")
	}
	return app.ID
}

func TestFICCreateReadPatchDelete(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	admin := adminToken(t, srv, sc.TenantID)
	base := "/v1.0/applications/" + appObjectID(t, srv, sc) + "/federatedIdentityCredentials"

	r := call(t, srv, http.MethodPost, base, admin, ficBody("gh-prod", DefaultOIDCSubject))
	wantStatus(t, r, http.StatusCreated, "")
	created := r.json(t)
	id, _ := created["id"].(string)
	if !isGUID(id) || created["name"] != "gh-prod" || created["issuer"] != GitHubIssuer ||
		created["subject"] != DefaultOIDCSubject || created["description"] != nil ||
		!strings.HasSuffix(created["@odata.context"].(string), "/federatedIdentityCredentials/$entity") {
		t.Fatalf("created = %v", created)
	}
	if auds, _ := created["audiences"].([]any); len(auds) != 1 || auds[0] != FederationAudience {
		t.Fatalf("audiences = %v", created["audiences"])
	}

	byAppID := "/v1.0/applications(appId='" + sc.ClientID + "')/federatedIdentityCredentials"
	for _, path := range []string{base + "/" + id, base + "/gh-prod", base + "(name='gh-prod')", byAppID + "/" + id} {
		r = call(t, srv, http.MethodGet, path, admin, nil)
		wantStatus(t, r, http.StatusOK, "")
		if got := r.json(t)["id"]; got != id {
			t.Errorf("GET %s: id = %v, want %s", path, got, id)
		}
	}
	if list := values(t, call(t, srv, http.MethodGet, byAppID, admin, nil)); len(list) != 1 || list[0]["id"] != id {
		t.Fatalf("list = %v", list)
	}

	wantStatus(t, call(t, srv, http.MethodPatch, base+"/"+id, admin, map[string]any{"subject": "repo:acme/app:environment:staging", "description": "staging"}), http.StatusNoContent, "")
	got := call(t, srv, http.MethodGet, base+"(name='gh-prod')", admin, nil).json(t)
	if got["subject"] != "repo:acme/app:environment:staging" || got["description"] != "staging" || got["name"] != "gh-prod" {
		t.Fatalf("after PATCH: %v", got)
	}
	r = call(t, srv, http.MethodPatch, base+"/"+id, admin, map[string]any{"name": "renamed"})
	wantStatus(t, r, http.StatusBadRequest, "Request_BadRequest")
	if !strings.Contains(r.graphMessage(t), "immutable") {
		t.Errorf("rename refused with %q", r.graphMessage(t))
	}

	wantStatus(t, call(t, srv, http.MethodDelete, base+"(name='gh-prod')", admin, nil), http.StatusNoContent, "")
	wantStatus(t, call(t, srv, http.MethodGet, base+"/"+id, admin, nil), http.StatusNotFound, "Request_ResourceNotFound")
	wantStatus(t, call(t, srv, http.MethodDelete, base+"/"+id, admin, nil), http.StatusNotFound, "Request_ResourceNotFound")
	if fics := srv.FICs(sc.TenantID, sc.ClientID); len(fics) != 0 {
		t.Errorf("FICs after delete = %v", fics)
	}
	c := srv.Counts()
	for route, n := range map[string]int{RouteCreateFIC: 1, RouteGetFIC: 6, RouteListFICs: 1, RoutePatchFIC: 2, RouteDeleteFIC: 2} {
		if c[route] != n {
			t.Errorf("Counts[%s] = %d, want %d", route, c[route], n)
		}
	}
}

func TestFICValidation(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	admin := adminToken(t, srv, sc.TenantID)
	base := "/v1.0/applications/" + appObjectID(t, srv, sc) + "/federatedIdentityCredentials"
	wantStatus(t, call(t, srv, http.MethodPost, base, admin, ficBody("first", "repo:acme/app:ref:refs/heads/main")), http.StatusCreated, "")

	with := func(name, subject string, change func(map[string]any)) map[string]any {
		b := ficBody(name, subject)
		change(b)
		return b
	}
	long := strings.Repeat("x", 601)
	cases := []struct {
		name    string
		body    map[string]any
		message string
	}{
		{"name of 121 characters", ficBody(strings.Repeat("n", 121), "s1"), "'name'"},
		{"name with a dot", ficBody("gh.prod", "s1"), "'name'"},
		{"name with a space", ficBody("gh prod", "s1"), "'name'"},
		{"no name", with("", "s1", func(b map[string]any) { delete(b, "name") }), "'name'"},
		{"issuer of 601 characters", with("n1", "s1", func(b map[string]any) { b["issuer"] = "https://" + long }), "'issuer'"},
		{"subject of 601 characters", ficBody("n1", long), "'subject'"},
		{"empty subject", ficBody("n1", ""), "'subject'"},
		{"no audience", with("n1", "s1", func(b map[string]any) { b["audiences"] = []string{} }), ficAudienceMessage},
		{"two audiences", with("n1", "s1", func(b map[string]any) { b["audiences"] = []string{"a", "b"} }), ficAudienceMessage},
		{"audiences missing", with("n1", "s1", func(b map[string]any) { delete(b, "audiences") }), ficAudienceMessage},
		{"same issuer and subject", ficBody("second", "repo:acme/app:ref:refs/heads/main"), "same issuer and subject"},
		{"same name in another case", ficBody("FIRST", "s1"), "property name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, http.MethodPost, base, admin, tc.body)
			wantStatus(t, r, http.StatusBadRequest, "Request_BadRequest")
			if !strings.Contains(r.graphMessage(t), tc.message) {
				t.Errorf("message %q lacks %q", r.graphMessage(t), tc.message)
			}
		})
	}
	// A 120-character name is fine; subjects differing only in case are distinct.
	wantStatus(t, call(t, srv, http.MethodPost, base, admin, ficBody(strings.Repeat("n", 120), "Repo:acme/app:ref:refs/heads/main")), http.StatusCreated, "")
	if n := len(srv.FICs(sc.TenantID, sc.ClientID)); n != 2 {
		t.Fatalf("%d FICs stored, want 2", n)
	}
}

func TestFICLimitOfTwenty(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	admin := adminToken(t, srv, sc.TenantID)
	base := "/v1.0/applications(appId='" + sc.ClientID + "')/federatedIdentityCredentials"
	for i := 0; i < 19; i++ {
		if err := srv.AddFIC(sc.TenantID, sc.ClientID, "fic-"+strings.Repeat("a", i+1), GitHubIssuer, "sub-"+strings.Repeat("a", i+1), FederationAudience); err != nil {
			t.Fatal(err)
		}
	}
	wantStatus(t, call(t, srv, http.MethodPost, base, admin, ficBody("twentieth", "s20")), http.StatusCreated, "")
	r := call(t, srv, http.MethodPost, base, admin, ficBody("twenty-first", "s21"))
	wantStatus(t, r, http.StatusBadRequest, "Request_BadRequest")
	if !strings.Contains(r.graphMessage(t), "at most 20") {
		t.Errorf("21st refused with %q", r.graphMessage(t))
	}
	if err := srv.AddFIC(sc.TenantID, sc.ClientID, "twenty-first", GitHubIssuer, "s21", FederationAudience); err == nil {
		t.Error("AddFIC accepted a 21st credential")
	}
}

func TestFICWritesNeedWhatAPatchNeeds(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	base := "/v1.0/applications/" + appObjectID(t, srv, sc) + "/federatedIdentityCredentials"
	user := operatorToken(t, srv, sc.TenantID, "user")
	wantStatus(t, call(t, srv, http.MethodPost, base, user, ficBody("u", "s")), http.StatusForbidden, "Authorization_RequestDenied")
	wantStatus(t, call(t, srv, http.MethodGet, base, user, nil), http.StatusOK, "")
	owner := operatorToken(t, srv, sc.TenantID, "owner")
	wantStatus(t, call(t, srv, http.MethodPost, base, owner, ficBody("o", "s")), http.StatusCreated, "")
	wantStatus(t, call(t, srv, http.MethodDelete, base+"/o", user, nil), http.StatusForbidden, "Authorization_RequestDenied")
	wantStatus(t, call(t, srv, http.MethodPatch, base+"/o", user, map[string]any{"subject": "x"}), http.StatusForbidden, "Authorization_RequestDenied")
	wantStatus(t, call(t, srv, http.MethodDelete, base+"/o", owner, nil), http.StatusNoContent, "")
}

func TestFICReadsLagAndFilter(t *testing.T) {
	clock := &testClock{}
	srv := newServer(t, WithClock(clock.Now), WithReadLag(10*time.Second))
	sc := seed(t, srv, ScenarioMigrated)
	admin := adminToken(t, srv, sc.TenantID)
	base := "/v1.0/applications/" + appObjectID(t, srv, sc) + "/federatedIdentityCredentials"
	wantStatus(t, call(t, srv, http.MethodPost, base, admin, ficBody("prod", DefaultOIDCSubject)), http.StatusCreated, "")
	if list := values(t, call(t, srv, http.MethodGet, base, admin, nil)); len(list) != 0 {
		t.Fatalf("list right after the create = %v, want the lagging empty list", list)
	}
	wantStatus(t, call(t, srv, http.MethodGet, base+"/prod", admin, nil), http.StatusNotFound, "Request_ResourceNotFound")
	clock.Advance(11 * time.Second)
	wantStatus(t, call(t, srv, http.MethodPost, base, admin, ficBody("main", "repo:acme/app:ref:refs/heads/main")), http.StatusCreated, "")
	if list := values(t, call(t, srv, http.MethodGet, base, admin, nil)); len(list) != 1 || list[0]["name"] != "prod" {
		t.Fatalf("list during the second lag = %v, want only prod", list)
	}
	clock.Advance(11 * time.Second)
	filter := "?$filter=" + url.QueryEscape("subject eq '"+DefaultOIDCSubject+"'")
	if list := values(t, call(t, srv, http.MethodGet, base+filter, admin, nil)); len(list) != 1 || list[0]["name"] != "prod" {
		t.Fatalf("filtered list = %v", list)
	}
	filter = "?$filter=" + url.QueryEscape("issuer eq '"+GitHubIssuer+"'")
	wantStatus(t, call(t, srv, http.MethodGet, base+filter, admin, nil), http.StatusBadRequest, "Request_UnsupportedQuery")
	if list := values(t, call(t, srv, http.MethodGet, base+"?$select=name", admin, nil)); len(list) != 2 || len(list[0]) != 1 {
		t.Fatalf("$select=name list = %v", list)
	}
}
