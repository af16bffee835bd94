package entratest

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

// aadGraphAudience is the aud of an addKey/removeKey proof (application-rollkey-prooftoken).
const aadGraphAudience = "00000002-0000-0000-c000-000000000000"

// signProof makes an addKey/removeKey proof for the application objectID: RS256 signed by
// key, x5t of cert, valid from now for 10 minutes. edit changes the header or the claims
// before signing.
func signProof(t *testing.T, cert *certs.Bundle, key *rsa.PrivateKey, objectID string, now time.Time, edit func(map[string]any, jwt.MapClaims)) string {
	t.Helper()
	claims := jwt.MapClaims{"aud": aadGraphAudience, "iss": objectID, "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["x5t"] = certs.X5t(cert.Cert)
	if edit != nil {
		edit(tok.Header, claims)
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// proofBy is a valid proof signed by the bundle.
func proofBy(t *testing.T, b *certs.Bundle, objectID string, now time.Time) string {
	return signProof(t, b, b.Key, objectID, now, nil)
}

// addKeyBody is the addKey request for the certificate cert.
func addKeyBody(cert *certs.Bundle, proof string) map[string]any {
	return map[string]any{
		"keyCredential": map[string]any{
			"type":        "AsymmetricX509Cert",
			"usage":       "Verify",
			"key":         base64.StdEncoding.EncodeToString(cert.Cert.Raw),
			"displayName": "CN=" + cert.Cert.Subject.CommonName,
		},
		"passwordCredential": nil,
		"proof":              proof,
	}
}

// selfToken is the migrated app's own Graph token, with every grant revoked first when
// noRoles: rolling its own keys must need no permission.
func selfToken(t *testing.T, srv *Server, sc *Scenario, noRoles bool) string {
	t.Helper()
	if noRoles {
		for _, v := range RequiredRoleValues() {
			if err := srv.RevokeGrant(sc.TenantID, sc.ClientID, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	return mustToken(t, srv, certCredential(t, srv, sc.TenantID, sc.ClientID, sc.Bundle))
}

func keyCount(t *testing.T, srv *Server, sc *Scenario) int {
	t.Helper()
	v, ok := srv.App(sc.TenantID, sc.ClientID)
	if !ok {
		t.Fatal("app not found")
	}
	return len(v.KeyCredentials)
}

func TestAddKeyAndRemoveKeyBySelfNeedNoRole(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	self := selfToken(t, srv, sc, true)
	appPath := "/v1.0/applications/" + sc.AppObjectID
	wantStatus(t, call(t, srv, "PATCH", appPath, self, map[string]any{"displayName": "x"}), 403, "Authorization_RequestDenied")

	srv.ResetCounts()
	b := generateBundle(t)
	r := call(t, srv, "POST", appPath+"/addKey", self, addKeyBody(b, proofBy(t, sc.Bundle, sc.AppObjectID, time.Now())))
	wantStatus(t, r, 200, "")
	got := r.json(t)
	want := map[string]any{
		"customKeyIdentifier": strings.ToUpper(certs.Thumbprint(b.Cert)),
		"displayName":         "CN=" + b.Cert.Subject.CommonName,
		"startDateTime":       graphTime(b.Cert.NotBefore),
		"endDateTime":         graphTime(b.Cert.NotAfter),
		"type":                "AsymmetricX509Cert",
		"usage":               "Verify",
		"key":                 nil,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("addKey answer %s = %v, want %v", k, got[k], v)
		}
	}
	newKeyID, _ := got["keyId"].(string)
	if !isGUID(newKeyID) || !strings.HasSuffix(got["@odata.context"].(string), "#microsoft.graph.keyCredential") {
		t.Errorf("addKey answer = %s", r.body)
	}
	if keyCount(t, srv, sc) != 2 {
		t.Fatalf("keys after addKey: %d, want 2", keyCount(t, srv, sc))
	}
	mustToken(t, srv, certCredential(t, srv, sc.TenantID, sc.ClientID, b))

	// Addressed by appId too; the new certificate signs the removal of the old one.
	oldKeyID := appKeyCredentials(t, call(t, srv, "GET", appPath, adminToken(t, srv, sc.TenantID), nil).json(t))[0]["keyId"]
	r = call(t, srv, "POST", "/v1.0/applications(appId='"+sc.ClientID+"')/removeKey", self,
		map[string]any{"keyId": oldKeyID, "proof": proofBy(t, b, sc.AppObjectID, time.Now())})
	wantStatus(t, r, 204, "")
	if v, _ := srv.App(sc.TenantID, sc.ClientID); len(v.KeyCredentials) != 1 || v.KeyCredentials[0].KeyID != newKeyID {
		t.Errorf("keys after removeKey: %+v, want only %s", v.KeyCredentials, newKeyID)
	}
	if reads, writes := srv.ApplicationRequests(); reads != 1 || writes != 2 {
		t.Errorf("ApplicationRequests = %d reads, %d writes; want 1, 2", reads, writes)
	}
}

func TestAddKeyOtherCallersNeedWriteAccess(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	admin := adminToken(t, srv, sc.TenantID)
	keysPath := "/v1.0/applications/" + sc.AppObjectID + "/addKey"
	add := func(token string) response {
		return call(t, srv, "POST", keysPath, token, addKeyBody(generateBundle(t), proofBy(t, sc.Bundle, sc.AppObjectID, time.Now())))
	}

	// Another app of the tenant, without Application.ReadWrite.All.
	created := call(t, srv, "POST", "/v1.0/applications", admin, map[string]any{"displayName": "other"})
	wantStatus(t, created, 201, "")
	otherAppID := created.json(t)["appId"].(string)
	wantStatus(t, call(t, srv, "POST", "/v1.0/servicePrincipals", admin, map[string]any{"appId": otherAppID}), 201, "")
	_, secret, err := srv.AddPassword(sc.TenantID, otherAppID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other := mustToken(t, srv, secretCredential(t, srv, sc.TenantID, otherAppID, secret))

	wantStatus(t, add(other), 403, "Authorization_RequestDenied")
	wantStatus(t, add(operatorToken(t, srv, sc.TenantID, "user")), 403, "Authorization_RequestDenied")
	wantStatus(t, add(operatorToken(t, srv, sc.TenantID, "owner")), 200, "")
	wantStatus(t, add(admin), 200, "")
	// The app itself with its grants: no role is needed, none is in the way either.
	wantStatus(t, add(selfToken(t, srv, sc, false)), 200, "")
	// Whoever calls, the proof is required.
	wantStatus(t, call(t, srv, "POST", keysPath, admin, addKeyBody(generateBundle(t), "")), 401, "Authentication_MissingOrMalformed")
	if n := keyCount(t, srv, sc); n != 4 {
		t.Errorf("keys = %d, want 4", n)
	}
}

func TestAddKeyProofRules(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	self := selfToken(t, srv, sc, false)
	stranger := generateBundle(t)
	now := time.Now()
	app := sc.Bundle
	psProof := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodPS256, jwt.MapClaims{"aud": aadGraphAudience, "iss": sc.AppObjectID,
			"nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})
		tok.Header["x5t"] = certs.X5t(app.Cert)
		s, err := tok.SignedString(app.Key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	claim := func(name string, v any) func(map[string]any, jwt.MapClaims) {
		return func(_ map[string]any, c jwt.MapClaims) {
			if v == nil {
				delete(c, name)
			} else {
				c[name] = v
			}
		}
	}
	sum := sha1.Sum(app.Cert.Raw)
	cases := []struct {
		name, proof, wantMessage string
	}{
		{"no proof", "", "no proof"},
		{"not a JWT", "not-a-jwt", "not a JWT"},
		{"alg PS256", psProof(), "alg must be RS256"},
		{"no x5t", signProof(t, app, app.Key, sc.AppObjectID, now, func(h map[string]any, _ jwt.MapClaims) { delete(h, "x5t") }), "no x5t"},
		{"x5t padded standard base64", signProof(t, app, app.Key, sc.AppObjectID, now, func(h map[string]any, _ jwt.MapClaims) {
			h["x5t"] = base64.StdEncoding.EncodeToString(sum[:])
		}), "base64url"},
		{"certificate not on the app", proofBy(t, stranger, sc.AppObjectID, now), "names no certificate"},
		{"signed by another key", signProof(t, app, stranger.Key, sc.AppObjectID, now, nil), "signature does not verify"},
		{"aud Graph", signProof(t, app, app.Key, sc.AppObjectID, now, claim("aud", "https://graph.microsoft.com")), "aud must be"},
		{"iss appId", signProof(t, app, app.Key, sc.ClientID, now, nil), "appId"},
		{"iss other", signProof(t, app, app.Key, newGUID(), now, nil), "object id"},
		{"nbf missing", signProof(t, app, app.Key, sc.AppObjectID, now, claim("nbf", nil)), "no nbf"},
		{"nbf beyond skew", signProof(t, app, app.Key, sc.AppObjectID, now.Add(6*time.Minute), nil), "nbf is in the future"},
		{"exp missing", signProof(t, app, app.Key, sc.AppObjectID, now, claim("exp", nil)), "no exp"},
		{"exp past", signProof(t, app, app.Key, sc.AppObjectID, now.Add(-5*time.Minute), claim("exp", now.Add(-time.Second).Unix())), "expired"},
		{"longer than 10 minutes", signProof(t, app, app.Key, sc.AppObjectID, now, claim("exp", now.Add(11*time.Minute).Unix())), "at most 10 minutes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, "POST", "/v1.0/applications/"+sc.AppObjectID+"/addKey", self, addKeyBody(generateBundle(t), tc.proof))
			wantStatus(t, r, 401, "Authentication_MissingOrMalformed")
			if msg := r.graphMessage(t); !strings.Contains(msg, tc.wantMessage) {
				t.Errorf("message %q does not say %q", msg, tc.wantMessage)
			}
			r = call(t, srv, "POST", "/v1.0/applications/"+sc.AppObjectID+"/removeKey", self, map[string]any{"keyId": newGUID(), "proof": tc.proof})
			wantStatus(t, r, 401, "Authentication_MissingOrMalformed")
		})
	}
	if n := keyCount(t, srv, sc); n != 1 {
		t.Fatalf("refused proofs changed the app: %d keys", n)
	}
	// Within the skew: nbf 4 minutes ahead, exp 10 minutes after it.
	r := call(t, srv, "POST", "/v1.0/applications/"+sc.AppObjectID+"/addKey", self,
		addKeyBody(generateBundle(t), proofBy(t, app, sc.AppObjectID, now.Add(4*time.Minute))))
	wantStatus(t, r, 200, "")
}

func TestAddKeyNeedsACurrentlyValidCertificate(t *testing.T) {
	clock := &testClock{}
	srv := newServer(t, WithClock(clock.Now))
	sc := seed(t, srv, ScenarioMigrated)
	admin := adminToken(t, srv, sc.TenantID)
	keysPath := "/v1.0/applications/" + sc.AppObjectID + "/addKey"

	// A certificate on the app whose key credential starts tomorrow, and one that ended.
	future, expired := generateBundle(t), generateBundle(t)
	now := clock.Now()
	if err := srv.AddKeyCredential(sc.TenantID, sc.ClientID, future.Cert, now.Add(24*time.Hour), future.Cert.NotAfter); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddKeyCredential(sc.TenantID, sc.ClientID, expired.Cert, expired.Cert.NotBefore, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*certs.Bundle{future, expired} {
		r := call(t, srv, "POST", keysPath, admin, addKeyBody(generateBundle(t), proofBy(t, b, sc.AppObjectID, now)))
		wantStatus(t, r, 401, "Authentication_MissingOrMalformed")
		if !strings.Contains(r.graphMessage(t), "not valid now") {
			t.Errorf("message = %q", r.graphMessage(t))
		}
	}

	// Once every certificate has expired, addKey is closed: only a PATCH by an operator helps.
	clock.Advance(400 * 24 * time.Hour)
	later := clock.Now()
	admin = adminToken(t, srv, sc.TenantID)
	r := call(t, srv, "POST", keysPath, admin, addKeyBody(generateBundle(t), proofBy(t, sc.Bundle, sc.AppObjectID, later)))
	wantStatus(t, r, 401, "Authentication_MissingOrMalformed")
	if n := keyCount(t, srv, sc); n != 3 {
		t.Errorf("keys = %d, want the 3 of before", n)
	}
}

// postJSON sends a Graph POST without a *testing.T, for use from goroutines.
func postJSON(srv *Server, path, token string, body any) (int, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest("POST", srv.URL+path, bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := srv.Client().Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func TestConcurrentAddKeysKeepEveryKey(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	self := selfToken(t, srv, sc, false)
	const n = 8
	key := generateBundle(t).Key
	bundles := make([]*certs.Bundle, n)
	for i := range bundles {
		cert, err := certs.SelfSign(time.Now(), 30*24*time.Hour, key)
		if err != nil {
			t.Fatal(err)
		}
		bundles[i] = &certs.Bundle{Cert: cert, Key: key}
	}
	statuses := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, b := range bundles {
		body := addKeyBody(b, proofBy(t, sc.Bundle, sc.AppObjectID, time.Now()))
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], errs[i] = postJSON(srv, "/v1.0/applications/"+sc.AppObjectID+"/addKey", self, body)
		}()
	}
	wg.Wait()
	for i := range statuses {
		if errs[i] != nil || statuses[i] != 200 {
			t.Fatalf("addKey %d: status %d, %v", i, statuses[i], errs[i])
		}
	}
	v, _ := srv.App(sc.TenantID, sc.ClientID)
	have := map[string]bool{}
	for _, k := range v.KeyCredentials {
		have[k.Thumbprint] = true
	}
	for i, b := range bundles {
		if !have[certs.Thumbprint(b.Cert)] {
			t.Errorf("key %d was dropped; the app has %d keys", i, len(v.KeyCredentials))
		}
	}
	if len(v.KeyCredentials) != n+1 {
		t.Errorf("keys = %d, want %d", len(v.KeyCredentials), n+1)
	}
}

func TestAddKeyFollowsPropagationAndReadLag(t *testing.T) {
	clock := &testClock{}
	srv := newServer(t, WithClock(clock.Now), WithPropagationDelay(time.Minute), WithReadLag(30*time.Second))
	sc := seed(t, srv, ScenarioMigrated)
	self := selfToken(t, srv, sc, false)
	admin := adminToken(t, srv, sc.TenantID)
	appPath := "/v1.0/applications/" + sc.AppObjectID
	readKeys := func() int { return len(appKeyCredentials(t, call(t, srv, "GET", appPath, admin, nil).json(t))) }

	b := generateBundle(t)
	r := call(t, srv, "POST", appPath+"/addKey", self, addKeyBody(b, proofBy(t, sc.Bundle, sc.AppObjectID, clock.Now())))
	wantStatus(t, r, 200, "")
	newKeyID := r.json(t)["keyId"]
	if got := readKeys(); got != 1 {
		t.Errorf("read inside the read lag: %d keys, want the 1 of before", got)
	}
	_, err := getToken(srv, certCredential(t, srv, sc.TenantID, sc.ClientID, b))
	wantSTSCode(t, err, 700027)
	clock.Advance(31 * time.Second)
	if got := readKeys(); got != 2 {
		t.Errorf("read after the read lag: %d keys, want 2", got)
	}
	clock.Advance(30 * time.Second)
	mustToken(t, srv, certCredential(t, srv, sc.TenantID, sc.ClientID, b))

	r = call(t, srv, "POST", appPath+"/removeKey", self, map[string]any{"keyId": newKeyID, "proof": proofBy(t, sc.Bundle, sc.AppObjectID, clock.Now())})
	wantStatus(t, r, 204, "")
	if got := readKeys(); got != 2 {
		t.Errorf("read inside the read lag after removeKey: %d keys, want 2", got)
	}
	_, err = getToken(srv, certCredential(t, srv, sc.TenantID, sc.ClientID, b))
	wantSTSCode(t, err, 700027)
	clock.Advance(31 * time.Second)
	if got := readKeys(); got != 1 {
		t.Errorf("read after the read lag: %d keys, want 1", got)
	}
}

func TestAddKeyAndRemoveKeyRequests(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	self := selfToken(t, srv, sc, false)
	appPath := "/v1.0/applications/" + sc.AppObjectID
	proof := func() string { return proofBy(t, sc.Bundle, sc.AppObjectID, time.Now()) }

	r := call(t, srv, "POST", appPath+"/removeKey", self, map[string]any{"keyId": newGUID(), "proof": proof()})
	wantStatus(t, r, 400, "Request_BadRequest")
	wantStatus(t, call(t, srv, "POST", appPath+"/removeKey", self, map[string]any{"keyId": "x", "proof": proof()}), 400, "Request_BadRequest")
	wantStatus(t, call(t, srv, "POST", appPath+"/removeKey", self, map[string]any{"proof": proof()}), 400, "Request_BadRequest")
	wantStatus(t, call(t, srv, "POST", appPath+"/removeKey", self, map[string]any{"keyId": newGUID(), "proof": proof(), "extra": 1}), 400, "Request_BadRequest")

	body := addKeyBody(generateBundle(t), proof())
	body["passwordCredential"] = map[string]any{"secretText": "x"}
	wantStatus(t, call(t, srv, "POST", appPath+"/addKey", self, body), 400, "Request_BadRequest")
	body = addKeyBody(generateBundle(t), proof())
	body["keyCredential"].(map[string]any)["usage"] = "Sign"
	wantStatus(t, call(t, srv, "POST", appPath+"/addKey", self, body), 400, "Request_BadRequest")
	body = addKeyBody(generateBundle(t), proof())
	delete(body, "keyCredential")
	wantStatus(t, call(t, srv, "POST", appPath+"/addKey", self, body), 400, "Request_BadRequest")
	oldKeyID := appKeyCredentials(t, call(t, srv, "GET", appPath, self, nil).json(t))[0]["keyId"]
	body = addKeyBody(generateBundle(t), proof())
	body["keyCredential"].(map[string]any)["keyId"] = oldKeyID
	wantStatus(t, call(t, srv, "POST", appPath+"/addKey", self, body), 400, "Request_BadRequest")
	wantStatus(t, call(t, srv, "POST", "/v1.0/applications/"+newGUID()+"/addKey", adminToken(t, srv, sc.TenantID), addKeyBody(generateBundle(t), proof())), 404, "Request_ResourceNotFound")
	if n := keyCount(t, srv, sc); n != 1 {
		t.Errorf("refused requests changed the app: %d keys", n)
	}
}

func TestMaxKeyCredentials(t *testing.T) {
	srv := newServer(t, WithMaxKeyCredentials(2))
	sc := seed(t, srv, ScenarioMigrated)
	self := selfToken(t, srv, sc, false)
	admin := adminToken(t, srv, sc.TenantID)
	appPath := "/v1.0/applications/" + sc.AppObjectID
	addKey := func() response {
		return call(t, srv, "POST", appPath+"/addKey", self, addKeyBody(generateBundle(t), proofBy(t, sc.Bundle, sc.AppObjectID, time.Now())))
	}

	wantStatus(t, addKey(), 200, "")
	r := addKey()
	wantStatus(t, r, 400, "Directory_ResourceSizeExceeded")
	if msg := r.graphMessage(t); msg != "The size of the object has exceeded its limit. Please reduce the number of values and retry your request" {
		t.Errorf("message = %q", msg)
	}
	existing := appKeyCredentials(t, call(t, srv, "GET", appPath, admin, nil).json(t))
	three := []any{existing[0], existing[1], newKeyEntry(generateBundle(t), nil)}
	wantStatus(t, call(t, srv, "PATCH", appPath, admin, map[string]any{"keyCredentials": three}), 400, "Directory_ResourceSizeExceeded")
	wantStatus(t, call(t, srv, "PATCH", appPath, admin, map[string]any{"keyCredentials": []any{existing[0], newKeyEntry(generateBundle(t), nil)}}), 204, "")
	wantStatus(t, call(t, srv, "POST", "/v1.0/applications", admin, map[string]any{"displayName": "many", "keyCredentials": three[2:]}), 201, "")

	srv.SetMaxKeyCredentials(0)
	wantStatus(t, addKey(), 200, "")
	if n := keyCount(t, srv, sc); n != 3 {
		t.Errorf("keys = %d, want 3", n)
	}
}

func TestKeyCredentialAtMostOneYear(t *testing.T) {
	srv := newServer(t)
	sc := seed(t, srv, ScenarioMigrated)
	admin := adminToken(t, srv, sc.TenantID)
	appPath := "/v1.0/applications/" + sc.AppObjectID
	lifetime := func(b *certs.Bundle) time.Duration { return b.Cert.NotAfter.Sub(b.Cert.NotBefore) }
	withLifetime := func(d time.Duration) *certs.Bundle {
		b, err := certs.GenerateWithLifetime(time.Now(), d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	long := withLifetime(366*24*time.Hour + time.Hour)
	for _, r := range []response{
		call(t, srv, "PATCH", appPath, admin, map[string]any{"keyCredentials": []any{newKeyEntry(long, nil)}}),
		call(t, srv, "POST", appPath+"/addKey", admin, addKeyBody(long, proofBy(t, sc.Bundle, sc.AppObjectID, time.Now()))),
	} {
		wantStatus(t, r, 400, "KeyCredentialsInvalidEndDate")
		if msg := r.graphMessage(t); msg != "Key credential end date is invalid." {
			t.Errorf("message = %q", msg)
		}
	}

	// A year and two minutes passes (the slack); so does a 365-day certificate sent with a
	// start of now, and one with its own dates.
	nb := time.Now().Add(-certs.ClockSkew).UTC().Truncate(time.Second)
	slack := withLifetime(nb.AddDate(1, 0, 0).Sub(nb) + 2*time.Minute)
	year := generateBundle(t)
	startNow := newKeyEntry(year, func(e map[string]any) { e["startDateTime"] = time.Now().UTC().Format(time.RFC3339) })
	r := call(t, srv, "PATCH", appPath, admin, map[string]any{"keyCredentials": []any{startNow, newKeyEntry(slack, nil)}})
	wantStatus(t, r, 204, "")
	r = call(t, srv, "POST", appPath+"/addKey", admin, addKeyBody(generateBundle(t), proofBy(t, year, sc.AppObjectID, time.Now())))
	wantStatus(t, r, 200, "")
	if lifetime(slack) <= 365*24*time.Hour || keyCount(t, srv, sc) != 3 {
		t.Errorf("slack certificate lifetime %s, keys %d", lifetime(slack), keyCount(t, srv, sc))
	}
}

func TestAppManagementPolicyCodes(t *testing.T) {
	srv := newServer(t, WithCertLifetimeCap(180*24*time.Hour), WithPasswordAdditionBlocked(true))
	sc := seed(t, srv, ScenarioMigrated)
	admin := adminToken(t, srv, sc.TenantID)
	appPath := "/v1.0/applications/" + sc.AppObjectID
	lifetimeMsg := "Credential lifetime exceeds the max value allowed as per assigned policy '" + appManagementPolicyID + "'."
	for _, r := range []response{
		call(t, srv, "PATCH", appPath, admin, map[string]any{"keyCredentials": []any{newKeyEntry(generateBundle(t), nil)}}),
		call(t, srv, "POST", appPath+"/addKey", admin, addKeyBody(generateBundle(t), proofBy(t, sc.Bundle, sc.AppObjectID, time.Now()))),
	} {
		wantStatus(t, r, 400, "CredentialInvalidLifetimeAsPerAppPolicy")
		if msg := r.graphMessage(t); !strings.HasPrefix(msg, lifetimeMsg) {
			t.Errorf("message = %q, want it to start with %q", msg, lifetimeMsg)
		}
	}
	r := call(t, srv, "POST", appPath+"/addPassword", admin, map[string]any{})
	wantStatus(t, r, 400, "CredentialTypeNotAllowedAsPerAppPolicy")
	if msg, want := r.graphMessage(t), "Credential type not allowed as per assigned policy '"+appManagementPolicyID+"'."; !strings.HasPrefix(msg, want) {
		t.Errorf("message = %q, want it to start with %q", msg, want)
	}
}
