package entratest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

// stateKeys returns the keys of a JSON object in file order.
func stateKeys(t *testing.T, data []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("state is not an object: %s", data)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestSeedScenarios(t *testing.T) {
	srv := newServer(t)
	legacy := seed(t, srv, ScenarioLegacy)
	migrated := seed(t, srv, ScenarioMigrated)
	empty := seed(t, srv, ScenarioEmpty)

	foreign := []string{"BLUEPRINT_APP_ID", "BLUEPRINT_OBJECT_ID", "BLUEPRINT_CERT_THUMBPRINT", "AGENT_ID",
		"AGENT_OBJECT_ID", "AGENT_USER_ID", "AGENT_USER_UPN", "BOT_APP_ID"}
	for _, tc := range []struct {
		sc         *Scenario
		credential string
		value      string
	}{
		{legacy, "PROVISIONER_CLIENT_SECRET", legacy.ClientSecret},
		{migrated, "PROVISIONER_CERT_THUMBPRINT", certs.Thumbprint(migrated.Bundle.Cert)},
	} {
		data := tc.sc.StateJSON
		want := append([]string{"TENANT_ID", "PROVISIONER_CLIENT_ID", tc.credential}, foreign...)
		if got := stateKeys(t, data); !slices.Equal(got, want) {
			t.Errorf("%s keys = %v, want %v", tc.sc.Name, got, want)
		}
		if !bytes.HasPrefix(data, []byte("{\n  \"TENANT_ID\": \"")) || !bytes.HasSuffix(data, []byte("\"\n}\n")) {
			t.Errorf("%s state is not Python-style JSON:\n%s", tc.sc.Name, data)
		}
		var m map[string]string
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m["TENANT_ID"] != tc.sc.TenantID || m["PROVISIONER_CLIENT_ID"] != tc.sc.ClientID || m[tc.credential] != tc.value || tc.value == "" {
			t.Errorf("%s state = %v", tc.sc.Name, m)
		}
		v, ok := srv.App(tc.sc.TenantID, tc.sc.ClientID)
		if !ok || v.ID != tc.sc.AppObjectID || v.DisplayName != AppDisplayName || v.SignInAudience != "AzureADMyOrg" ||
			v.RequiredResourceAccessCount != 25 || v.ServicePrincipalID != tc.sc.ServicePrincipalID || !sameSet(v.GrantedRoles, RequiredRoleValues()) {
			t.Errorf("%s app = %+v", tc.sc.Name, v)
		}
	}
	if v, _ := srv.App(legacy.TenantID, legacy.ClientID); len(v.PasswordCredentials) != 1 || len(v.KeyCredentials) != 0 || legacy.Bundle != nil {
		t.Errorf("legacy credentials: %+v", v)
	}
	if v, _ := srv.App(migrated.TenantID, migrated.ClientID); len(v.PasswordCredentials) != 0 || len(v.KeyCredentials) != 1 || migrated.ClientSecret != "" {
		t.Errorf("migrated credentials: %+v", v)
	}
	if empty.StateJSON != nil || empty.ClientID != "" {
		t.Errorf("empty scenario = %+v", empty)
	}
	if len(srv.Snapshot().Tenants) != 3 {
		t.Errorf("three seeds should make three tenants")
	}
	if _, err := srv.Seed("bogus"); err == nil {
		t.Error("unknown scenario accepted")
	}
}

func TestRequiredRoleValues(t *testing.T) {
	values := RequiredRoleValues()
	if len(values) != 25 || !slices.Equal(values[:5], baseRoleValues) {
		t.Fatalf("RequiredRoleValues = %v", values)
	}
	seen := map[string]bool{}
	for _, v := range values {
		if _, ok := GraphRoleID(v); !ok || seen[v] {
			t.Errorf("role %s missing or repeated", v)
		}
		seen[v] = true
	}
	ids := map[string]bool{}
	for _, r := range graphRoles {
		if !isGUID(r.id) || ids[r.id] {
			t.Errorf("role %s has a bad or repeated id %s", r.value, r.id)
		}
		ids[r.id] = true
	}
}

func TestFakeStateHasNoSecrets(t *testing.T) {
	srv := newServer(t)
	legacy := seed(t, srv, ScenarioLegacy)
	migrated := seed(t, srv, ScenarioMigrated)
	r := call(t, srv, "POST", "/v1.0/applications/"+legacy.AppObjectID+"/addPassword", adminToken(t, srv, legacy.TenantID), nil)
	wantStatus(t, r, 200, "")
	secretText := r.json(t)["secretText"].(string)
	_, hookSecret, err := srv.AddPassword(legacy.TenantID, legacy.ClientID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	state := call(t, srv, "GET", "/_fake/state", "", nil)
	wantStatus(t, state, 200, "")
	body := string(state.body)
	for name, secret := range map[string]string{
		"seeded secret":      legacy.ClientSecret,
		"addPassword secret": secretText,
		"hook secret":        hookSecret,
		"PEM marker":         "-----BEGIN",
		"private key":        "PRIVATE KEY",
		"certificate body":   base64.StdEncoding.EncodeToString(migrated.Bundle.Cert.Raw)[:60],
	} {
		if strings.Contains(body, secret) {
			t.Errorf("/_fake/state contains the %s", name)
		}
	}
	var snap Snapshot
	if err := json.Unmarshal(state.body, &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Tenants) != 2 || len(snap.Tenants[0].Apps) != 1 || snap.Tenants[0].ServicePrincipals != 2 {
		t.Fatalf("snapshot = %+v", snap)
	}
	app := snap.Tenants[0].Apps[0]
	if len(app.PasswordCredentials) != 3 || app.PasswordCredentials[1].Hint != secretText[:3] || len(app.GrantedRoles) != 25 {
		t.Errorf("legacy app in the snapshot = %+v", app)
	}
	if k := snap.Tenants[1].Apps[0].KeyCredentials; len(k) != 1 || k[0].Thumbprint != certs.Thumbprint(migrated.Bundle.Cert) {
		t.Errorf("migrated key credentials in the snapshot = %+v", k)
	}
	if snap.Requests[RouteAddPassword] != 1 || snap.Knobs.TokenLifetime != "1h0m0s" || snap.Knobs.PageSize != 100 {
		t.Errorf("requests/knobs = %v / %+v", snap.Requests, snap.Knobs)
	}
	if fromGo := srv.Snapshot(); len(fromGo.Tenants) != 2 || fromGo.Tenants[1].Apps[0].KeyCredentials[0].Cert == nil {
		t.Errorf("Snapshot() from Go lacks the certificate")
	}
}

func TestHooks(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	otherMachine := generateBundle(t)
	if err := srv.AddKeyCredential(sc.TenantID, sc.ClientID, otherMachine.Cert, otherMachine.Cert.NotBefore, otherMachine.Cert.NotAfter); err != nil {
		t.Fatal(err)
	}
	mustToken(t, srv, certCredential(t, srv, sc.TenantID, sc.ClientID, otherMachine))
	if err := srv.RemoveKeyCredential(sc.TenantID, sc.ClientID, strings.ToUpper(certs.Thumbprint(otherMachine.Cert))); err != nil {
		t.Fatal(err)
	}
	_, err := getToken(srv, certCredential(t, srv, sc.TenantID, sc.ClientID, otherMachine))
	wantSTSCode(t, err, 700027)
	mustToken(t, srv, certCredential(t, srv, sc.TenantID, sc.ClientID, sc.Bundle))

	if err := srv.RemoveKeyCredential(sc.TenantID, sc.ClientID, certs.Thumbprint(otherMachine.Cert)); !errors.Is(err, errNotFound) {
		t.Errorf("removing an absent certificate: %v", err)
	}
	if _, _, err := srv.AddPassword(newGUID(), sc.ClientID, time.Hour); !errors.Is(err, errNotFound) {
		t.Errorf("unknown tenant: %v", err)
	}
	if err := srv.RevokeGrant(sc.TenantID, newGUID(), "Mail.Read"); !errors.Is(err, errNotFound) {
		t.Errorf("unknown app: %v", err)
	}
	if err := srv.RevokeGrant(sc.TenantID, sc.ClientID, "Mail.Read"); !errors.Is(err, errNotFound) {
		t.Errorf("revoking a role never granted: %v", err)
	}
	if _, ok := srv.App(sc.TenantID, newGUID()); ok {
		t.Error("App found an unknown application")
	}
}
