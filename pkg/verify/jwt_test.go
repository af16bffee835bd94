package verify

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
)

const (
	testTenant = "11111111-2222-3333-4444-555555555555"
	testClient = "66666666-7777-8888-9999-000000000000"
)

// makeJWT builds an unsigned-looking JWT from header and claims; the signature segment
// is arbitrary base64url, as nothing here verifies it.
func makeJWT(t testing.TB, header, claims any) string {
	t.Helper()
	seg := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return seg(header) + "." + seg(claims) + "." + base64.RawURLEncoding.EncodeToString([]byte("not-a-real-signature"))
}

// graphClaims are the claims of a real-shaped app-only Graph token (graph-api-facts §5).
func graphClaims(exp time.Time) map[string]any {
	return map[string]any{
		"aud": "https://graph.microsoft.com", "iss": "https://sts.windows.net/" + testTenant + "/",
		"iat": exp.Add(-time.Hour).Unix(), "nbf": exp.Add(-time.Hour).Unix(), "exp": exp.Unix(),
		"app_displayname": "EntraClaw Agent ID Provisioner", "appid": testClient, "appidacr": "2",
		"idtyp": "app", "oid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		"roles": []string{"Application.ReadWrite.All", "User.ReadWrite.All"}, "tid": testTenant, "ver": "1.0",
	}
}

var graphHeader = map[string]any{"typ": "JWT", "nonce": "abc", "alg": "RS256", "x5t": "x5t-value", "kid": "x5t-value"}

func TestDecodeJWTReadsGraphClaims(t *testing.T) {
	exp := time.Unix(1900000000, 0)
	d, err := entra.DecodeJWT(makeJWT(t, graphHeader, graphClaims(exp)) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	aud, err := d.Audience()
	if err != nil || !reflect.DeepEqual(aud, []string{"https://graph.microsoft.com"}) {
		t.Errorf("Audience() = %v, %v", aud, err)
	}
	if d.AppID() != testClient || d.TenantID() != testTenant || d.AppIDACR() != "2" || d.IdTyp() != "app" {
		t.Errorf("appid %q tid %q appidacr %q idtyp %q", d.AppID(), d.TenantID(), d.AppIDACR(), d.IdTyp())
	}
	if got := d.Roles(); !reflect.DeepEqual(got, []string{"Application.ReadWrite.All", "User.ReadWrite.All"}) {
		t.Errorf("Roles() = %v", got)
	}
	got, ok, err := d.ExpiresAt()
	if err != nil || !ok || !got.Equal(exp) {
		t.Errorf("ExpiresAt() = %v, %v, %v; want %v", got, ok, err, exp)
	}
	if d.Header["kid"] != "x5t-value" {
		t.Errorf("header = %v", d.Header)
	}
}

func TestDecodeJWTAudienceArrayAndV2Claims(t *testing.T) {
	claims := map[string]any{"aud": []string{"api://other", "00000003-0000-0000-c000-000000000000"}, "azp": testClient, "azpacr": "1", "exp": 1900000000}
	d, err := entra.DecodeJWT(makeJWT(t, map[string]any{"alg": "RS256"}, claims))
	if err != nil {
		t.Fatal(err)
	}
	aud, err := d.Audience()
	if err != nil || len(aud) != 2 || aud[1] != "00000003-0000-0000-c000-000000000000" {
		t.Errorf("Audience() = %v, %v", aud, err)
	}
	if d.AppID() != testClient || d.AppIDACR() != "1" {
		t.Errorf("AppID %q AppIDACR %q: want azp/azpacr", d.AppID(), d.AppIDACR())
	}
}

func TestDecodeJWTRolesAbsentIsNil(t *testing.T) {
	claims := graphClaims(time.Unix(1900000000, 0))
	delete(claims, "roles")
	d, err := entra.DecodeJWT(makeJWT(t, graphHeader, claims))
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Roles(); r != nil {
		t.Errorf("Roles() = %#v, want nil", r)
	}
}

func TestDecodeJWTBadClaimTypes(t *testing.T) {
	d, err := entra.DecodeJWT(makeJWT(t, map[string]any{"alg": "RS256"}, map[string]any{"aud": 5, "exp": "tomorrow"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Audience(); err == nil {
		t.Error("Audience() accepted a number")
	}
	if _, _, err := d.ExpiresAt(); err == nil {
		t.Error("ExpiresAt() accepted a string")
	}
	d, err = entra.DecodeJWT(makeJWT(t, map[string]any{"alg": "RS256"}, map[string]any{"exp": 1e300}))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.ExpiresAt(); err == nil {
		t.Error("ExpiresAt() accepted exp 1e300")
	}
}

func TestDecodeJWTErrorsHideToken(t *testing.T) {
	secretish := "c2VjcmV0LXNpZ25hdHVyZS1ieXRlcw"
	good := makeJWT(t, graphHeader, graphClaims(time.Unix(1900000000, 0)))
	parts := strings.Split(good, ".")
	cases := map[string]string{
		"empty":          "  ",
		"one segment":    secretish,
		"two segments":   parts[0] + "." + secretish,
		"four segments":  good + "." + secretish,
		"bad base64":     "!!!." + parts[1] + "." + secretish,
		"header no json": base64.RawURLEncoding.EncodeToString([]byte("{x"+secretish)) + "." + parts[1] + "." + secretish,
		"claims array":   parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`["`+secretish+`"]`)) + "." + secretish,
		"no alg":         makeJWT(t, map[string]any{"typ": "JWT"}, map[string]any{"x": secretish}),
		"unknown alg":    makeJWT(t, map[string]any{"alg": secretish}, map[string]any{}),
		"bad signature":  parts[0] + "." + parts[1] + ".!" + secretish,
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := entra.DecodeJWT(raw)
			if err == nil {
				t.Fatal("decoded")
			}
			msg := err.Error()
			if strings.Contains(msg, secretish) || strings.Contains(msg, "\n") || (len(raw) > 8 && strings.Contains(msg, strings.TrimSpace(raw))) {
				t.Errorf("error leaks token bytes or spans lines: %q", msg)
			}
		})
	}
}

func TestDecodeForPrint(t *testing.T) {
	raw := makeJWT(t, graphHeader, graphClaims(time.Unix(1900000000, 0)))
	out, err := DecodeForPrint(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"signatureVerified":false`, `"exp":1900000000`, `"appid":"` + testClient + `"`, `"alg":"RS256"`} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %s: %s", want, s)
		}
	}
	if strings.Contains(s, strings.Split(raw, ".")[2]) {
		t.Error("output contains the signature segment")
	}
}

func TestCheckToken(t *testing.T) {
	now := time.Unix(1800000000, 0)
	expect := Expectations{GraphEndpoint: "https://graph.microsoft.com", Tenant: testTenant, Client: testClient,
		Roles: []string{"Application.ReadWrite.All", "User.ReadWrite.All"}, Now: now}
	tok := func(edit func(map[string]any)) string {
		c := graphClaims(now.Add(time.Hour))
		edit(c)
		return makeJWT(t, graphHeader, c)
	}
	cases := []struct {
		name     string
		edit     func(map[string]any)
		ok       bool
		contains string
	}{
		{"good", func(map[string]any) {}, true, "all 2 required roles"},
		{"aud with slash", func(c map[string]any) { c["aud"] = "https://graph.microsoft.com/" }, true, ""},
		{"aud app id in array", func(c map[string]any) { c["aud"] = []string{"00000003-0000-0000-c000-000000000000"} }, true, ""},
		{"aud other", func(c map[string]any) { c["aud"] = "https://management.azure.com" }, false, "aud is https://management.azure.com"},
		{"appid", func(c map[string]any) { c["appid"] = testTenant }, false, "appid is " + testTenant},
		{"tid", func(c map[string]any) { delete(c, "tid") }, false, "tid is (none)"},
		{"secret acr", func(c map[string]any) { c["appidacr"] = "1" }, false, "appidacr is 1 (client secret)"},
		{"expired", func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }, false, "expired at"},
		{"no exp", func(c map[string]any) { delete(c, "exp") }, false, "no exp claim"},
		{"no roles", func(c map[string]any) { delete(c, "roles") }, false, "no roles claim"},
		{"missing role", func(c map[string]any) { c["roles"] = []string{"User.ReadWrite.All"} }, false, "missing 1 of 2 required roles: Application.ReadWrite.All"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tok(tc.edit)
			r := CheckToken(raw, expect)
			if r.Name != NameToken || r.OK != tc.ok || !strings.Contains(r.Detail, tc.contains) {
				t.Errorf("CheckToken = %+v; want ok=%v with %q", r, tc.ok, tc.contains)
			}
			if strings.Contains(r.Detail, strings.Split(raw, ".")[2]) {
				t.Error("detail contains the token")
			}
		})
	}
	r := CheckToken(tok(func(c map[string]any) { delete(c, "roles") }), Expectations{GraphEndpoint: "https://graph.microsoft.com", Tenant: testTenant, Client: testClient, Now: now})
	if !r.OK {
		t.Errorf("without required roles a token without roles should pass: %+v", r)
	}
	byDomain := expect
	byDomain.Tenant = "contoso.onmicrosoft.com"
	if r := CheckToken(tok(func(map[string]any) {}), byDomain); !r.OK {
		t.Errorf("a tenant given as a domain name cannot be compared with tid and must not fail: %+v", r)
	}
	if r := CheckToken(tok(func(c map[string]any) { delete(c, "tid") }), byDomain); r.OK {
		t.Error("a token without tid passed")
	}
	if r := CheckToken("garbage", expect); r.OK || !strings.HasPrefix(r.Detail, "not a decodable jwt") {
		t.Errorf("garbage: %+v", r)
	}
}
