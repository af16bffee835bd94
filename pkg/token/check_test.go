package token

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const (
	ctTenant = "11111111-1111-4111-8111-111111111111"
	ctClient = "22222222-2222-4222-8222-222222222222"
)

func testJWT(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims) + ".c2lnbmF0dXJl"
}

func goodClaims(now time.Time) map[string]any {
	return map[string]any{"tid": ctTenant, "appid": ctClient, "exp": now.Add(time.Hour).Unix(), "aud": "https://graph.microsoft.com"}
}

func with(m map[string]any, k string, v any) map[string]any {
	c := map[string]any{}
	for kk, vv := range m {
		c[kk] = vv
	}
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func TestCheck(t *testing.T) {
	now := time.Now()
	good := goodClaims(now)
	v2 := with(with(good, "appid", nil), "azp", strings.ToUpper(ctClient))
	for _, tc := range []struct {
		name      string
		token     string
		expiresOn time.Time
		tenant    string
		want      string // "" = accepted
	}{
		{"good v1", testJWT(good), now.Add(time.Hour), ctTenant, ""},
		{"good v2 (azp, other case)", testJWT(v2), time.Time{}, ctTenant, ""},
		{"domain tenant, GUID tid", testJWT(good), now.Add(time.Hour), "contoso.onmicrosoft.com", ""},
		{"empty", "", now.Add(time.Hour), ctTenant, "empty"},
		{"not a JWT", "EVIL-TOKEN-NOT-A-JWT", now.Add(10 * 365 * 24 * time.Hour), ctTenant, "not a JWT"},
		{"multi-line with escapes", testJWT(good) + "\n\x1b[2J\x1b[31mEVIL", now.Add(time.Hour), ctTenant, "not a single-line JWT"},
		{"trailing newline", testJWT(good) + "\n", now.Add(time.Hour), ctTenant, "not a single-line JWT"},
		{"four parts", testJWT(good) + ".x", now.Add(time.Hour), ctTenant, "not a JWT"},
		{"undecodable", "a.b.c", now.Add(time.Hour), ctTenant, "not a decodable jwt"},
		{"expires_in -100", testJWT(good), now.Add(-100 * time.Second), ctTenant, "token service said it expired"},
		{"exp in the past", testJWT(with(good, "exp", now.Add(-time.Minute).Unix())), now.Add(time.Hour), ctTenant, "expired at"},
		{"exp 10 years", testJWT(with(good, "exp", now.Add(10*365*24*time.Hour).Unix())), now.Add(10 * 365 * 24 * time.Hour), ctTenant, "more than 24h0m0s"},
		{"no exp", testJWT(with(good, "exp", nil)), now.Add(time.Hour), ctTenant, "no valid exp"},
		{"exp a string", testJWT(with(good, "exp", "tomorrow")), now.Add(time.Hour), ctTenant, "no valid exp"},
		{"wrong tid", testJWT(with(good, "tid", "33333333-3333-4333-8333-333333333333")), now.Add(time.Hour), ctTenant, "tid claim is not the tenant"},
		{"no tid", testJWT(with(good, "tid", nil)), now.Add(time.Hour), ctTenant, "tid claim is not the tenant"},
		{"domain tenant, no tid", testJWT(with(good, "tid", nil)), now.Add(time.Hour), "contoso.onmicrosoft.com", "tid claim is not a tenant id"},
		{"wrong appid", testJWT(with(good, "appid", "33333333-3333-4333-8333-333333333333")), now.Add(time.Hour), ctTenant, "appid/azp claim is not the client"},
		{"no appid", testJWT(with(good, "appid", nil)), now.Add(time.Hour), ctTenant, "appid/azp claim is not the client"},
		{"huge", strings.Repeat("a", maxTokenLength) + ".b.c", now.Add(time.Hour), ctTenant, "bytes long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp, err := Check(tc.token, tc.tenant, ctClient, tc.expiresOn, now)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "":
				if exp.After(now.Add(time.Hour+time.Second)) || !exp.After(now) {
					t.Errorf("expiry %v, want about now+1h", exp)
				}
			case err == nil:
				t.Fatalf("accepted, want %q", tc.want)
			case !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			head := strings.Split(tc.token, ".")[0]
			if err != nil && (strings.Contains(err.Error(), "EVIL") || len(head) > 8 && strings.Contains(err.Error(), head) || strings.ContainsAny(err.Error(), "\n\x1b")) {
				t.Errorf("the error quotes the token or is not one line: %q", err)
			}
		})
	}
	// The earlier of exp and the token service's expiry is what gets cached.
	exp, err := Check(testJWT(good), ctTenant, ctClient, now.Add(30*time.Minute), now)
	if err != nil || !exp.Equal(now.Add(30*time.Minute)) {
		t.Errorf("expiry %v, %v: want the token service's earlier expiry", exp, err)
	}
}
