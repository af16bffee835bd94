package cli

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
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

func TestCheckAccessToken(t *testing.T) {
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
			exp, err := checkAccessToken(tc.token, tc.tenant, ctClient, tc.expiresOn, now)
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
	exp, err := checkAccessToken(testJWT(good), ctTenant, ctClient, now.Add(30*time.Minute), now)
	if err != nil || !exp.Equal(now.Add(30*time.Minute)) {
		t.Errorf("expiry %v, %v: want the token service's earlier expiry", exp, err)
	}
}

// The first signal cancels the run; the second exits at once, whatever the run waits for.
func TestHandleSignals(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	canceled, exited := make(chan struct{}), make(chan struct{})
	go handleSignals(sigs, func() { close(canceled) }, func() { close(exited) })
	sigs <- os.Interrupt
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the first signal did not cancel the run")
	}
	select {
	case <-exited:
		t.Fatal("the first signal already exited")
	case <-time.After(50 * time.Millisecond):
	}
	sigs <- syscall.SIGTERM
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the second signal did not exit")
	}
}

func TestHostWarning(t *testing.T) {
	for _, tc := range []struct{ cloud, auth, graph, want string }{
		{"public", "", "", ""},
		{"usgov", "", "", ""},
		{"china", "", "", ""},
		{"public", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us", ""},
		{"public", "https://sts.evil.example/", "", "-authority-host sts.evil.example is not a Microsoft cloud host: the certificate-signed client assertion goes to sts.evil.example"},
		{"public", "", "https://127.0.0.1:4443", "-graph-endpoint 127.0.0.1:4443 is not a Microsoft cloud host"},
		{"public", "https://127.0.0.1:4443", "https://127.0.0.1:4443", "-authority-host 127.0.0.1:4443 and -graph-endpoint 127.0.0.1:4443 are not Microsoft cloud hosts: the certificate-signed client assertion goes to 127.0.0.1:4443"},
	} {
		c, err := entra.ResolveCloud(tc.cloud, tc.auth, tc.graph)
		if err != nil {
			t.Fatal(err)
		}
		got := hostWarning(c)
		if tc.want == "" && got != "" || tc.want != "" && !strings.HasPrefix(got, tc.want) || strings.Contains(got, "\n") {
			t.Errorf("%s %q %q: %q, want %q", tc.cloud, tc.auth, tc.graph, got, tc.want)
		}
	}
}

// TestProductionBuildHasNoWaitKnob: without the harness's -ldflags, verify -wait polls
// every verifyWaitInterval.
func TestProductionBuildHasNoWaitKnob(t *testing.T) {
	if testWaitInterval != "" || waitInterval() != verifyWaitInterval {
		t.Fatalf("testWaitInterval is %q in a plain build", testWaitInterval)
	}
}
