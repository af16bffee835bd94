package entratest

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

// appKeyCredentials returns keyCredentials of a Graph application object.
func appKeyCredentials(t *testing.T, obj map[string]any) []map[string]any {
	t.Helper()
	raw, ok := obj["keyCredentials"].([]any)
	if !ok {
		t.Fatalf("no keyCredentials in %v", obj)
	}
	var out []map[string]any
	for _, k := range raw {
		out = append(out, k.(map[string]any))
	}
	return out
}

func TestKeyIsNullExceptSingleObjectSelect(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	admin := adminToken(t, srv, sc.TenantID)
	wantKey := base64.StdEncoding.EncodeToString(sc.Bundle.Cert.Raw)

	list := call(t, srv, "GET", "/v1.0/applications?$filter="+url.QueryEscape("appId eq '"+sc.ClientID+"'")+"&$select=id,keyCredentials", admin, nil)
	wantStatus(t, list, 200, "")
	apps := values(t, list)
	if len(apps) != 1 || appKeyCredentials(t, apps[0])[0]["key"] != nil {
		t.Errorf("list with $select=keyCredentials: %s; want one app with key null", list.body)
	}

	plain := call(t, srv, "GET", "/v1.0/applications/"+sc.AppObjectID, admin, nil)
	wantStatus(t, plain, 200, "")
	k := appKeyCredentials(t, plain.json(t))[0]
	if k["key"] != nil {
		t.Errorf("GET without $select returned key %v", k["key"])
	}
	if k["customKeyIdentifier"] != strings.ToUpper(certs.Thumbprint(sc.Bundle.Cert)) || k["type"] != "AsymmetricX509Cert" || k["usage"] != "Verify" {
		t.Errorf("key credential = %v", k)
	}

	for _, path := range []string{
		"/v1.0/applications/" + sc.AppObjectID + "?$select=keyCredentials",
		"/v1.0/applications(appId='" + sc.ClientID + "')?$select=id,appId,keyCredentials",
	} {
		r := call(t, srv, "GET", path, admin, nil)
		wantStatus(t, r, 200, "")
		obj := r.json(t)
		if got := appKeyCredentials(t, obj)[0]["key"]; got != wantKey {
			t.Errorf("%s: key = %v, want the certificate DER", path, got)
		}
		if _, ok := obj["displayName"]; ok {
			t.Errorf("%s: $select did not limit the properties: %v", path, obj)
		}
	}
	r := call(t, srv, "GET", "/v1.0/applications/"+sc.AppObjectID+"?$select=id,bogus", admin, nil)
	wantStatus(t, r, 400, "Request_BadRequest")
}

func TestPatchKeyCredentialsReplaceSemantics(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	admin := adminToken(t, srv, sc.TenantID)
	appPath := "/v1.0/applications/" + sc.AppObjectID
	existing := appKeyCredentials(t, call(t, srv, "GET", appPath, admin, nil).json(t))
	oldKeyID := existing[0]["keyId"].(string)

	second := generateBundle(t)
	r := call(t, srv, "PATCH", appPath, admin, map[string]any{"keyCredentials": []any{existing[0], newKeyEntry(second, nil)}})
	wantStatus(t, r, 204, "")
	if len(r.body) != 0 {
		t.Errorf("PATCH body = %q, want empty", r.body)
	}
	view, _ := srv.App(sc.TenantID, sc.ClientID)
	if len(view.KeyCredentials) != 2 || view.KeyCredentials[0].KeyID != oldKeyID ||
		view.KeyCredentials[0].Thumbprint != certs.Thumbprint(sc.Bundle.Cert) ||
		view.KeyCredentials[1].Thumbprint != certs.Thumbprint(second.Cert) {
		t.Fatalf("after append: %+v", view.KeyCredentials)
	}
	selectedKeys := appKeyCredentials(t, call(t, srv, "GET", appPath+"?$select=keyCredentials", admin, nil).json(t))
	if selectedKeys[0]["key"] != base64.StdEncoding.EncodeToString(sc.Bundle.Cert.Raw) {
		t.Errorf("the resent null-key entry lost its certificate: %v", selectedKeys[0])
	}
	mustToken(t, srv, certCredential(t, srv, sc.TenantID, sc.ClientID, sc.Bundle))

	changed := map[string]any{}
	for k, v := range existing[0] {
		changed[k] = v
	}
	changed["endDateTime"] = sc.Bundle.Cert.NotAfter.Add(-time.Hour).UTC().Format(time.RFC3339)
	r = call(t, srv, "PATCH", appPath, admin, map[string]any{"keyCredentials": []any{changed}})
	wantStatus(t, r, 400, "KeyNotUpdatable")

	all := appKeyCredentials(t, call(t, srv, "GET", appPath, admin, nil).json(t))
	r = call(t, srv, "PATCH", appPath, admin, map[string]any{"keyCredentials": []any{all[1]}})
	wantStatus(t, r, 204, "")
	view, _ = srv.App(sc.TenantID, sc.ClientID)
	if len(view.KeyCredentials) != 1 || view.KeyCredentials[0].Thumbprint != certs.Thumbprint(second.Cert) {
		t.Fatalf("after dropping the first certificate: %+v", view.KeyCredentials)
	}
	_, err := getToken(srv, certCredential(t, srv, sc.TenantID, sc.ClientID, sc.Bundle))
	wantSTSCode(t, err, 700027)

	chosen := newGUID()
	r = call(t, srv, "PATCH", appPath, admin, map[string]any{"keyCredentials": []any{newKeyEntry(sc.Bundle, func(e map[string]any) { e["keyId"] = chosen })}})
	wantStatus(t, r, 204, "")
	if view, _ = srv.App(sc.TenantID, sc.ClientID); view.KeyCredentials[0].KeyID != chosen {
		t.Errorf("keyId sent by the client was not kept: %+v", view.KeyCredentials)
	}
}

func TestKeyCredentialValidation(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioLegacy)
	admin := adminToken(t, srv, sc.TenantID)
	appPath := "/v1.0/applications/" + sc.AppObjectID
	b := generateBundle(t)
	certPEM := base64.StdEncoding.EncodeToString(b.CertPEM())
	bundlePEM := base64.StdEncoding.EncodeToString(b.PEM())

	for _, tc := range []struct {
		name    string
		mod     func(map[string]any)
		code    string
		message string
	}{
		{"end after NotAfter", func(e map[string]any) {
			e["endDateTime"] = b.Cert.NotAfter.Add(time.Second).UTC().Format(time.RFC3339)
		}, "KeyCredentialsInvalidEndDate", "Key credential end date is invalid."},
		{"start before NotBefore", func(e map[string]any) {
			e["startDateTime"] = b.Cert.NotBefore.Add(-time.Second).UTC().Format(time.RFC3339)
		}, "KeyCredentialsInvalidStartDate", ""},
		{"type", func(e map[string]any) { e["type"] = "Symmetric" }, "Request_BadRequest", `property "type"`},
		{"usage", func(e map[string]any) { e["usage"] = "Encrypt" }, "Request_BadRequest",
			`The value for the property "usage" in one of your credentials is invalid. Acceptable values are Sign, Verify.`},
		{"garbage key", func(e map[string]any) { e["key"] = "!!!" }, "Request_BadRequest", "property 'key'"},
		{"no key", func(e map[string]any) { delete(e, "key") }, "Request_BadRequest", "property 'key'"},
		{"private key sent", func(e map[string]any) { e["key"] = bundlePEM }, "Request_BadRequest", "private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, "PATCH", appPath, admin, map[string]any{"keyCredentials": []any{newKeyEntry(b, tc.mod)}})
			wantStatus(t, r, 400, tc.code)
			if !strings.Contains(r.graphMessage(t), tc.message) {
				t.Errorf("message %q does not contain %q", r.graphMessage(t), tc.message)
			}
		})
	}
	if v, _ := srv.App(sc.TenantID, sc.ClientID); len(v.KeyCredentials) != 0 {
		t.Fatalf("a rejected PATCH changed the app: %+v", v.KeyCredentials)
	}

	r := call(t, srv, "PATCH", appPath, admin, map[string]any{"passwordCredentials": []any{}})
	wantStatus(t, r, 400, "Request_BadRequest")
	r = call(t, srv, "PATCH", appPath, admin, map[string]any{"web": map[string]any{}})
	wantStatus(t, r, 400, "Request_BadRequest")
	r = call(t, srv, "PATCH", appPath, admin, "{not json")
	wantStatus(t, r, 400, "BadRequest")

	r = call(t, srv, "PATCH", appPath, admin, map[string]any{"keyCredentials": []any{map[string]any{
		"type": "AsymmetricX509Cert", "usage": "Verify", "key": certPEM}}})
	wantStatus(t, r, 204, "")
	v, _ := srv.App(sc.TenantID, sc.ClientID)
	if len(v.KeyCredentials) != 1 || !v.KeyCredentials[0].StartDateTime.Equal(b.Cert.NotBefore) ||
		!v.KeyCredentials[0].EndDateTime.Equal(b.Cert.NotAfter) || v.KeyCredentials[0].DisplayName != "CN="+certs.CommonName {
		t.Errorf("base64(PEM) key without dates: %+v", v.KeyCredentials)
	}
}

func TestPatchRequiredResourceAccessAndProperties(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioLegacy)
	admin := adminToken(t, srv, sc.TenantID)
	appPath := "/v1.0/applications/" + sc.AppObjectID
	rra := []any{map[string]any{"resourceAppId": GraphAppID, "resourceAccess": []any{
		map[string]any{"id": "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9", "type": "Role"},
		map[string]any{"id": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", "type": "Role"},
	}}}
	wantStatus(t, call(t, srv, "PATCH", appPath, admin, map[string]any{"requiredResourceAccess": rra, "displayName": "renamed"}), 204, "")
	v, _ := srv.App(sc.TenantID, sc.ClientID)
	if v.RequiredResourceAccessCount != 2 || v.DisplayName != "renamed" {
		t.Errorf("after PATCH: %+v", v)
	}
	got := call(t, srv, "GET", appPath+"?$select=requiredResourceAccess", admin, nil).json(t)["requiredResourceAccess"].([]any)
	if len(got) != 1 || len(got[0].(map[string]any)["resourceAccess"].([]any)) != 2 {
		t.Errorf("requiredResourceAccess = %v", got)
	}
	bad := []any{map[string]any{"resourceAppId": GraphAppID, "resourceAccess": []any{map[string]any{"id": newGUID(), "type": "Application"}}}}
	wantStatus(t, call(t, srv, "PATCH", appPath, admin, map[string]any{"requiredResourceAccess": bad}), 400, "Request_BadRequest")
	wantStatus(t, call(t, srv, "PATCH", appPath, admin, map[string]any{"signInAudience": "Everyone"}), 400, "Request_BadRequest")
	wantStatus(t, call(t, srv, "PATCH", appPath, admin, map[string]any{"appId": newGUID()}), 400, "Request_BadRequest")
}

func TestAddAndRemovePassword(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioLegacy)
	admin := adminToken(t, srv, sc.TenantID)
	appPath := "/v1.0/applications/" + sc.AppObjectID

	r := call(t, srv, "POST", appPath+"/addPassword", admin, map[string]any{"passwordCredential": map[string]any{"displayName": "rollback"}})
	wantStatus(t, r, 200, "")
	added := r.json(t)
	secret, _ := added["secretText"].(string)
	if len(secret) != 40 || added["hint"] != secret[:3] || added["displayName"] != "rollback" || !isGUID(added["keyId"].(string)) {
		t.Fatalf("addPassword answered %v", added)
	}
	end, err := time.Parse(time.RFC3339, added["endDateTime"].(string))
	if err != nil || end.Before(time.Now().AddDate(2, 0, -1)) || end.After(time.Now().AddDate(2, 0, 1)) {
		t.Errorf("endDateTime = %v, want about two years from now", added["endDateTime"])
	}
	mustToken(t, srv, secretCredential(t, srv, sc.TenantID, sc.ClientID, secret))

	got := call(t, srv, "GET", appPath, admin, nil)
	if strings.Contains(string(got.body), secret) || strings.Contains(string(got.body), sc.ClientSecret) {
		t.Fatal("GET application returns a secret")
	}
	passwords := got.json(t)["passwordCredentials"].([]any)
	if len(passwords) != 2 {
		t.Fatalf("passwordCredentials = %v, want 2", passwords)
	}
	for _, p := range passwords {
		if p.(map[string]any)["secretText"] != nil {
			t.Errorf("secretText not null in GET: %v", p)
		}
	}

	wantStatus(t, call(t, srv, "POST", appPath+"/removePassword", admin, map[string]any{"keyId": newGUID()}), 400, "Request_BadRequest")
	wantStatus(t, call(t, srv, "POST", appPath+"/removePassword", admin, map[string]any{}), 400, "Request_BadRequest")
	for _, p := range passwords {
		r := call(t, srv, "POST", "/v1.0/applications(appId='"+sc.ClientID+"')/removePassword", admin, map[string]any{"keyId": p.(map[string]any)["keyId"]})
		wantStatus(t, r, 204, "")
	}
	if v, _ := srv.App(sc.TenantID, sc.ClientID); len(v.PasswordCredentials) != 0 {
		t.Fatalf("passwords left: %+v", v.PasswordCredentials)
	}
	_, err = getToken(srv, secretCredential(t, srv, sc.TenantID, sc.ClientID, sc.ClientSecret))
	wantSTSCode(t, err, 7000215)

	wantStatus(t, call(t, srv, "POST", appPath+"/addPassword", admin, nil), 200, "")
	wantStatus(t, call(t, srv, "POST", appPath+"/addPassword", admin, map[string]any{"passwordCredential": map[string]any{"secretText": "mine"}}), 400, "Request_BadRequest")
}

func TestCreateAndFindApplications(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioEmpty)
	admin := adminToken(t, srv, sc.TenantID)

	r := call(t, srv, "POST", "/v1.0/applications", admin, map[string]any{"displayName": "O'Brien app"})
	wantStatus(t, r, 201, "")
	created := r.json(t)
	if created["signInAudience"] != "AzureADandPersonalMicrosoftAccount" || len(created["keyCredentials"].([]any)) != 0 ||
		!strings.HasSuffix(created["@odata.context"].(string), "/v1.0/$metadata#applications/$entity") {
		t.Errorf("created = %v", created)
	}
	wantStatus(t, call(t, srv, "POST", "/v1.0/applications", admin, map[string]any{"signInAudience": "AzureADMyOrg"}), 400, "Request_BadRequest")

	filter := "displayName eq 'O''Brien app'"
	for _, query := range []string{
		strings.ReplaceAll(url.QueryEscape(filter), "+", "%20"),
		url.QueryEscape(filter),
		url.QueryEscape("displayname eq 'o''brien APP'"),
	} {
		r := call(t, srv, "GET", "/v1.0/applications?$filter="+query, admin, nil)
		wantStatus(t, r, 200, "")
		if apps := values(t, r); len(apps) != 1 || apps[0]["appId"] != created["appId"] {
			t.Errorf("filter %s: %s", query, r.body)
		}
	}
	r = call(t, srv, "GET", "/v1.0/applications?$filter="+url.QueryEscape("appId eq '"+newGUID()+"'"), admin, nil)
	if wantStatus(t, r, 200, ""); len(values(t, r)) != 0 {
		t.Errorf("unknown appId matched: %s", r.body)
	}
	for filter, code := range map[string]string{
		"signInAudience eq 'AzureADMyOrg'":           "Request_UnsupportedQuery",
		"startswith(displayName,'O')":                "Request_UnsupportedQuery",
		"displayName ne 'x'":                         "Request_UnsupportedQuery",
		"displayName eq 'x' and appId eq 'y'":        "Request_UnsupportedQuery",
		"displayName eq":                             "BadRequest",
		"displayName eq 'unterminated":               "BadRequest",
		"displayName eq 'x' trailing":                "BadRequest",
		"displayName equals 'x'":                     "BadRequest",
		"'x' eq displayName":                         "BadRequest",
		"displayName eq 'x'; DROP TABLE apps; --'x'": "BadRequest",
	} {
		r := call(t, srv, "GET", "/v1.0/applications?$filter="+url.QueryEscape(filter), admin, nil)
		wantStatus(t, r, 400, code)
		if code == "BadRequest" && !strings.HasPrefix(r.graphMessage(t), "Invalid filter clause") {
			t.Errorf("filter %q: message %q", filter, r.graphMessage(t))
		}
	}
	wantStatus(t, call(t, srv, "GET", "/v1.0/applications?$orderby=displayName", admin, nil), 400, "BadRequest")
	wantStatus(t, call(t, srv, "GET", "/v1.0/applications/"+newGUID(), admin, nil), 404, "Request_ResourceNotFound")
	wantStatus(t, call(t, srv, "GET", "/v1.0/applications(appId='"+newGUID()+"')", admin, nil), 404, "Request_ResourceNotFound")
	wantStatus(t, call(t, srv, "GET", "/v1.0/applications(appId=x)", admin, nil), 400, "BadRequest")
	wantStatus(t, call(t, srv, "GET", "/v1.0/users", admin, nil), 400, "BadRequest")
	wantStatus(t, call(t, srv, "DELETE", "/v1.0/applications/"+created["id"].(string), admin, nil), 405, "")
}

func TestPaging(t *testing.T) {
	srv := newServer(t, WithPageSize(2))
	sc := seed(t, srv, ScenarioEmpty)
	admin := adminToken(t, srv, sc.TenantID)
	for i := 0; i < 5; i++ {
		createApp(t, srv, sc.TenantID, "same name")
	}
	createApp(t, srv, sc.TenantID, "other")

	collect := func(path string) (pages int, ids []string) {
		next := srv.URL + path
		for next != "" {
			if pages > 0 && (!strings.HasPrefix(next, srv.URL+"/v1.0/applications?") || strings.Contains(next, "+")) {
				t.Fatalf("nextLink %q is not absolute or encodes spaces as '+'", next)
			}
			r := call(t, srv, "GET", strings.TrimPrefix(next, srv.URL), admin, nil)
			wantStatus(t, r, 200, "")
			for _, v := range values(t, r) {
				ids = append(ids, v["id"].(string))
			}
			next, _ = r.json(t)["@odata.nextLink"].(string)
			pages++
		}
		return pages, ids
	}
	if pages, ids := collect("/v1.0/applications"); pages != 3 || len(ids) != 6 {
		t.Errorf("default page size 2: %d pages, %d apps; want 3 and 6", pages, len(ids))
	}
	if pages, ids := collect("/v1.0/applications?$filter=" + url.QueryEscape("displayName eq 'same name'") + "&$top=4"); pages != 2 || len(ids) != 5 {
		t.Errorf("$top=4 with a filter: %d pages, %d apps; want 2 and 5", pages, len(ids))
	}
	wantStatus(t, call(t, srv, "GET", "/v1.0/applications?$top=0", admin, nil), 400, "Request_BadRequest")
	wantStatus(t, call(t, srv, "GET", "/v1.0/applications?$skiptoken=bogus", admin, nil), 400, "Request_BadRequest")
}

func TestServicePrincipals(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioLegacy)
	admin := adminToken(t, srv, sc.TenantID)

	r := call(t, srv, "POST", "/v1.0/servicePrincipals", admin, map[string]any{"appId": sc.ClientID, "accountEnabled": true})
	wantStatus(t, r, 409, "Request_MultipleObjectsWithSameKeyValue")
	if want := "The service principal cannot be created, updated, or restored because the service principal name " + sc.ClientID + " is already in use."; r.graphMessage(t) != want {
		t.Errorf("message = %q", r.graphMessage(t))
	}
	r = call(t, srv, "POST", "/v1.0/servicePrincipals", admin, map[string]any{"appId": newGUID()})
	wantStatus(t, r, 400, "Request_BadRequest")
	if !strings.Contains(r.graphMessage(t), "does not reference a valid application object") || !strings.Contains(string(r.body), "NoBackingApplicationObject") {
		t.Errorf("unknown appId: %s", r.body)
	}

	r = call(t, srv, "GET", "/v1.0/servicePrincipals?$filter="+url.QueryEscape("appId eq '"+sc.ClientID+"'"), admin, nil)
	if sps := values(t, r); len(sps) != 1 || sps[0]["id"] != sc.ServicePrincipalID {
		t.Errorf("filter by appId: %s", r.body)
	}
	for _, path := range []string{"/v1.0/servicePrincipals/" + sc.ServicePrincipalID, "/v1.0/servicePrincipals(appId='" + sc.ClientID + "')"} {
		r := call(t, srv, "GET", path, admin, nil)
		if wantStatus(t, r, 200, ""); r.json(t)["appId"] != sc.ClientID {
			t.Errorf("%s: %s", path, r.body)
		}
	}

	r = call(t, srv, "GET", "/v1.0/servicePrincipals(appId='"+GraphAppID+"')?$select=id,appId,displayName,appRoles", admin, nil)
	wantStatus(t, r, 200, "")
	byValue := map[string]string{}
	for _, role := range r.json(t)["appRoles"].([]any) {
		m := role.(map[string]any)
		byValue[m["value"].(string)] = m["id"].(string)
		if m["allowedMemberTypes"].([]any)[0] != "Application" || m["isEnabled"] != true {
			t.Errorf("app role %v", m)
		}
	}
	if len(byValue) != len(graphRoles)+len(fillerRoles()) || len(byValue) < 400 || byValue["Application.ReadWrite.All"] != "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9" ||
		byValue["AppRoleAssignment.ReadWrite.All"] != "06b708a9-e830-4db3-a914-8e69da51d44f" {
		t.Errorf("Graph app roles = %v", byValue)
	}
	for _, v := range RequiredRoleValues() {
		if byValue[v] == "" {
			t.Errorf("required role %s missing from the Graph service principal", v)
		}
	}

	appID, _ := createApp(t, srv, sc.TenantID, "second")
	r = call(t, srv, "POST", "/v1.0/servicePrincipals", admin, map[string]any{"appId": appID})
	wantStatus(t, r, 201, "")
	if sp := r.json(t); sp["appId"] != appID || sp["appOwnerOrganizationId"] != sc.TenantID || len(sp["appRoles"].([]any)) != 0 {
		t.Errorf("created service principal = %v", sp)
	}
}

func TestGrants(t *testing.T) {
	srv := newServer(t, WithPageSize(10))
	sc := seed(t, srv, ScenarioLegacy)
	admin := adminToken(t, srv, sc.TenantID)
	graphID := graphSP(t, srv, sc.TenantID)

	r := grant(t, srv, sc.TenantID, admin, graphID, sc.ServicePrincipalID, "Application.ReadWrite.All")
	wantStatus(t, r, 400, "Request_BadRequest")
	if r.graphMessage(t) != "Permission being assigned already exists on the object." {
		t.Errorf("duplicate grant message %q", r.graphMessage(t))
	}
	r = call(t, srv, "POST", "/v1.0/servicePrincipals/"+graphID+"/appRoleAssignedTo", admin,
		map[string]any{"principalId": sc.ServicePrincipalID, "resourceId": graphID, "appRoleId": newGUID()})
	wantStatus(t, r, 400, "Request_BadRequest")
	if r.graphMessage(t) != "Permission being assigned was not found on application '"+GraphAppID+"'." {
		t.Errorf("unknown role message %q", r.graphMessage(t))
	}
	r = grant(t, srv, sc.TenantID, admin, graphID, newGUID(), "Mail.Read")
	if wantStatus(t, r, 400, "Request_BadRequest"); r.graphMessage(t) != "Not a valid reference update." {
		t.Errorf("grant to an unknown principal: message %q", r.graphMessage(t))
	}

	r = grant(t, srv, sc.TenantID, admin, graphID, sc.ServicePrincipalID, "Mail.Read")
	wantStatus(t, r, 201, "")
	a := r.json(t)
	mailRead, _ := GraphRoleID("Mail.Read")
	if id, _ := a["id"].(string); id == "" || isGUID(id) || a["principalId"] != sc.ServicePrincipalID ||
		a["resourceId"] != graphID || a["appRoleId"] != mailRead || a["resourceDisplayName"] != "Microsoft Graph" ||
		a["principalDisplayName"] != AppDisplayName || a["createdDateTime"] == nil {
		t.Errorf("assignment = %v", a)
	}

	count := func(path string) int {
		n, next := 0, path
		for next != "" {
			r := call(t, srv, "GET", next, admin, nil)
			wantStatus(t, r, 200, "")
			n += len(values(t, r))
			link, _ := r.json(t)["@odata.nextLink"].(string)
			next = strings.TrimPrefix(link, srv.URL)
		}
		return n
	}
	if n := count("/v1.0/servicePrincipals/" + graphID + "/appRoleAssignedTo"); n != 26 {
		t.Errorf("appRoleAssignedTo lists %d grants, want 26", n)
	}
	if n := count("/v1.0/servicePrincipals/" + sc.ServicePrincipalID + "/appRoleAssignments?$filter=" + url.QueryEscape("resourceId eq '"+graphID+"'")); n != 26 {
		t.Errorf("appRoleAssignments lists %d grants, want 26", n)
	}
	if n := count("/v1.0/servicePrincipals/" + sc.ServicePrincipalID + "/appRoleAssignments?$filter=" + url.QueryEscape("resourceId eq '"+newGUID()+"'")); n != 0 {
		t.Errorf("filter on another resource lists %d grants", n)
	}
}

func TestReplicationLag(t *testing.T) {
	clock := &testClock{}
	srv := newServer(t, WithClock(clock.Now), WithReplicationLag(time.Minute))
	sc := seed(t, srv, ScenarioEmpty)
	admin := adminToken(t, srv, sc.TenantID)
	appID, objectID := createApp(t, srv, sc.TenantID, "lagging")

	wantStatus(t, call(t, srv, "GET", "/v1.0/applications/"+objectID, admin, nil), 404, "Request_ResourceNotFound")
	wantStatus(t, call(t, srv, "GET", "/v1.0/applications(appId='"+appID+"')", admin, nil), 404, "Request_ResourceNotFound")
	if r := call(t, srv, "GET", "/v1.0/applications?$filter="+url.QueryEscape("appId eq '"+appID+"'"), admin, nil); len(values(t, r)) != 0 {
		t.Errorf("filtered list shows a lagging app: %s", r.body)
	}
	wantStatus(t, call(t, srv, "PATCH", "/v1.0/applications/"+objectID, admin, map[string]any{"displayName": "x"}), 404, "Request_ResourceNotFound")
	wantStatus(t, call(t, srv, "POST", "/v1.0/applications/"+objectID+"/addPassword", admin, nil), 404, "Request_ResourceNotFound")
	wantStatus(t, call(t, srv, "POST", "/v1.0/applications/"+objectID+"/removePassword", admin, map[string]any{"keyId": newGUID()}), 404, "Request_ResourceNotFound")
	r := call(t, srv, "POST", "/v1.0/servicePrincipals", admin, map[string]any{"appId": appID})
	wantStatus(t, r, 400, "Request_BadRequest")
	if want := "The appId '" + appID + "' of the service principal does not reference a valid application object."; r.graphMessage(t) != want {
		t.Errorf("message %q, want %q", r.graphMessage(t), want)
	}

	clock.Advance(61 * time.Second)
	wantStatus(t, call(t, srv, "GET", "/v1.0/applications/"+objectID, admin, nil), 200, "")
	spID := createSP(t, srv, sc.TenantID, appID)
	wantStatus(t, call(t, srv, "GET", "/v1.0/servicePrincipals/"+spID, admin, nil), 404, "Request_ResourceNotFound")
	wantStatus(t, grant(t, srv, sc.TenantID, admin, graphSP(t, srv, sc.TenantID), spID, "Mail.Read"), 400, "Request_BadRequest")

	clock.Advance(61 * time.Second)
	graphID := graphSP(t, srv, sc.TenantID)
	wantStatus(t, grant(t, srv, sc.TenantID, admin, graphID, spID, "Mail.Read"), 201, "")
	assigned := "/v1.0/servicePrincipals/" + graphID + "/appRoleAssignedTo?$filter=" + url.QueryEscape("principalId eq '"+spID+"'")
	if n := len(values(t, call(t, srv, "GET", assigned, admin, nil))); n != 0 {
		t.Errorf("a lagging grant is listed")
	}
	clock.Advance(61 * time.Second)
	if n := len(values(t, call(t, srv, "GET", assigned, admin, nil))); n != 1 {
		t.Errorf("the grant is not listed after the lag")
	}
}

func TestAuthorization(t *testing.T) {
	clock := &testClock{}
	srv := newServer(t, WithClock(clock.Now))
	sc := seed(t, srv, ScenarioLegacy)
	other := seed(t, srv, ScenarioLegacy)
	graphID := graphSP(t, srv, sc.TenantID)
	appPath := "/v1.0/applications/" + sc.AppObjectID

	r := call(t, srv, "GET", appPath, "", nil)
	wantStatus(t, r, 401, "InvalidAuthenticationToken")
	if r.graphMessage(t) != "Access token is empty." || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %s %v", r.body, r.header)
	}
	wantStatus(t, call(t, srv, "GET", appPath, "garbage", nil), 401, "InvalidAuthenticationToken")
	forged, _ := claimsOf(t, srv, adminToken(t, srv, sc.TenantID))
	forgedTok := assertion(t, generateBundle(t).Key, jwt.SigningMethodRS256, nil, forged)
	wantStatus(t, call(t, srv, "GET", appPath, forgedTok, nil), 401, "InvalidAuthenticationToken")

	// The legacy app holds Application.ReadWrite.All but not AppRoleAssignment.ReadWrite.All.
	app := mustToken(t, srv, secretCredential(t, srv, sc.TenantID, sc.ClientID, sc.ClientSecret))
	wantStatus(t, call(t, srv, "GET", appPath, app, nil), 200, "")
	wantStatus(t, call(t, srv, "POST", "/v1.0/applications", app, map[string]any{"displayName": "by app"}), 201, "")
	r = grant(t, srv, sc.TenantID, app, graphID, sc.ServicePrincipalID, "Mail.Read")
	wantStatus(t, r, 403, "Authorization_RequestDenied")
	if r.graphMessage(t) != "Insufficient privileges to complete the operation." {
		t.Errorf("403 message %q", r.graphMessage(t))
	}
	// A token of another tenant sees nothing of this one.
	otherAdmin := adminToken(t, srv, other.TenantID)
	wantStatus(t, call(t, srv, "GET", appPath, otherAdmin, nil), 404, "Request_ResourceNotFound")

	// An app with a service principal but no grants: its token has no roles.
	appID, _ := createApp(t, srv, sc.TenantID, "no roles")
	createSP(t, srv, sc.TenantID, appID)
	_, secret, err := srv.AddPassword(sc.TenantID, appID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roleless := mustToken(t, srv, secretCredential(t, srv, sc.TenantID, appID, secret))
	wantStatus(t, call(t, srv, "GET", "/v1.0/applications", roleless, nil), 403, "Authorization_RequestDenied")

	appadmin := operatorToken(t, srv, sc.TenantID, "appadmin")
	wantStatus(t, call(t, srv, "POST", "/v1.0/applications", appadmin, map[string]any{"displayName": "by appadmin"}), 201, "")
	wantStatus(t, call(t, srv, "POST", appPath+"/addPassword", appadmin, nil), 200, "")
	wantStatus(t, grant(t, srv, sc.TenantID, appadmin, graphID, sc.ServicePrincipalID, "Mail.Read"), 403, "Authorization_RequestDenied")

	user := operatorToken(t, srv, sc.TenantID, "user")
	wantStatus(t, call(t, srv, "GET", appPath, user, nil), 200, "")
	wantStatus(t, call(t, srv, "PATCH", appPath, user, map[string]any{"displayName": "x"}), 403, "Authorization_RequestDenied")
	wantStatus(t, call(t, srv, "POST", appPath+"/addPassword", user, nil), 403, "Authorization_RequestDenied")

	admin := adminToken(t, srv, sc.TenantID)
	wantStatus(t, grant(t, srv, sc.TenantID, admin, graphID, sc.ServicePrincipalID, "Mail.Read"), 201, "")

	clock.Advance(13 * time.Hour)
	r = call(t, srv, "GET", appPath, admin, nil)
	wantStatus(t, r, 401, "InvalidAuthenticationToken")
	if !strings.Contains(r.graphMessage(t), "expired") {
		t.Errorf("expired token message %q", r.graphMessage(t))
	}
}

func TestOperatorToken(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioEmpty)
	claims, _ := claimsOf(t, srv, adminToken(t, srv, sc.TenantID))
	if claims["aud"] != srv.GraphEndpoint() || claims["idtyp"] != "user" || claims["tid"] != sc.TenantID ||
		!strings.Contains(claims["scp"].(string), "AppRoleAssignment.ReadWrite.All") ||
		stringList(claims["wids"])[0] != roleGlobalAdministrator || claims["upn"] == nil {
		t.Errorf("admin token claims = %v", claims)
	}
	again, _ := claimsOf(t, srv, adminToken(t, srv, sc.TenantID))
	if again["oid"] != claims["oid"] {
		t.Errorf("operator oid changes between tokens")
	}
	if _, err := srv.OperatorToken(sc.TenantID, "superuser"); err == nil {
		t.Error("unknown operator kind accepted")
	}
	if _, err := srv.OperatorToken(newGUID(), "admin"); err == nil {
		t.Error("unknown tenant accepted")
	}
}

func TestGraphResponseHeadersAndErrorEnvelope(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioLegacy)
	req := call(t, srv, "GET", "/v1.0/applications/"+newGUID(), adminToken(t, srv, sc.TenantID), nil)
	wantStatus(t, req, 404, "Request_ResourceNotFound")
	if !strings.HasPrefix(req.header.Get("Content-Type"), "application/json;odata.metadata=minimal") ||
		!isGUID(req.header.Get("request-id")) || req.header.Get("client-request-id") == "" {
		t.Errorf("headers = %v", req.header)
	}
	inner, _ := req.json(t)["error"].(map[string]any)["innerError"].(map[string]any)
	if inner["request-id"] != req.header.Get("request-id") || inner["client-request-id"] == nil {
		t.Errorf("innerError = %v", inner)
	}
	if _, err := time.Parse("2006-01-02T15:04:05", inner["date"].(string)); err != nil {
		t.Errorf("innerError.date = %v", inner["date"])
	}
}
