package entra

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

func TestSecretTextNeverPrinted(t *testing.T) {
	const secret = "abc-super-secret-value"
	var pc PasswordCredential
	if err := json.Unmarshal([]byte(`{"keyId":"p1","hint":"abc","secretText":"`+secret+`"}`), &pc); err != nil {
		t.Fatal(err)
	}
	if pc.SecretText.Reveal() != secret || pc.SecretText.IsZero() {
		t.Fatalf("secret not decoded: IsZero=%v", pc.SecretText.IsZero())
	}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		outputs = append(outputs, fmt.Sprintf(verb, pc), fmt.Sprintf(verb, &pc), fmt.Sprintf(verb, pc.SecretText), fmt.Sprintf(verb, []PasswordCredential{pc}))
	}
	outputs = append(outputs, fmt.Sprint(pc), fmt.Sprintln(pc.SecretText), pc.SecretText.String())
	for _, v := range []any{pc, &pc, pc.SecretText, Application{PasswordCredentials: []PasswordCredential{pc}}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(b))
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "cred", pc, "secret", pc.SecretText)
	outputs = append(outputs, logged.String())
	hexSecret := hex.EncodeToString([]byte(secret))
	for _, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(strings.ToLower(out), hexSecret) {
			t.Errorf("secret leaked in %q", out)
		}
	}
	if b, _ := json.Marshal(pc); strings.Contains(string(b), "secretText") {
		t.Errorf("json output %s carries secretText", b)
	}
}

func TestKeyCredentialResentAsRead(t *testing.T) {
	in := `{"@odata.type":"#microsoft.graph.keyCredential","customKeyIdentifier":"52ED9B5038A47B9E2E2190715CC238359D4F8F73","displayName":null,"endDateTime":"2027-01-12T15:31:26.1234567Z","key":"TUlJQw==","keyId":"k1","startDateTime":"2026-01-12T15:31:26Z","type":"AsymmetricX509Cert","usage":"Verify","futureProperty":{"a":1}}`
	var k KeyCredential
	if err := json.Unmarshal([]byte(in), &k); err != nil {
		t.Fatal(err)
	}
	if k.KeyID != "k1" || k.Key == nil || k.DisplayName != nil || k.End().IsZero() {
		t.Fatalf("decoded %+v", k)
	}
	out, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	_ = json.Unmarshal(out, &got)
	_ = json.Unmarshal([]byte(in), &want)
	delete(want, "@odata.type")
	want["key"] = nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("resent %s\nwant   %v", out, want)
	}
}

func TestNewKeyCredential(t *testing.T) {
	now := time.Now()
	b, err := certs.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeyCredential(b.Cert, "CN=entraclaw-provisioner")
	out, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	if _, ok := m["customKeyIdentifier"]; ok {
		t.Errorf("customKeyIdentifier sent: %s", out)
	}
	if m["type"] != "AsymmetricX509Cert" || m["usage"] != "Verify" || m["displayName"] != "CN=entraclaw-provisioner" {
		t.Errorf("new credential = %s", out)
	}
	der, err := base64.StdEncoding.DecodeString(fmt.Sprint(m["key"]))
	if err != nil || !bytes.Equal(der, b.Cert.Raw) {
		t.Errorf("key is not base64 of the certificate DER")
	}
	if !isGUID(k.KeyID) || k.KeyID[14] != '4' {
		t.Errorf("keyId %q is not a v4 UUID", k.KeyID)
	}
	start, end := parseGraphTime(k.StartDateTime), k.End()
	if start.Before(b.Cert.NotBefore.Add(time.Second)) || start.Before(now.Add(-time.Second)) || start.After(now.Add(5*time.Second)) {
		t.Errorf("start %v: want max(now %v, NotBefore+1s %v)", start, now, b.Cert.NotBefore)
	}
	if !end.Equal(b.Cert.NotAfter.Add(-time.Second).Truncate(time.Second)) {
		t.Errorf("end %v, want NotAfter-1s (%v)", end, b.Cert.NotAfter)
	}
	if k2 := NewKeyCredential(b.Cert, ""); k2.KeyID == k.KeyID || k2.DisplayName != nil {
		t.Errorf("second credential: keyId %q reused or displayName %v set", k2.KeyID, k2.DisplayName)
	}
}

func TestMatchesThumbprint(t *testing.T) {
	der := []byte("not really a certificate")
	sum := sha1.Sum(der)
	thumb := hex.EncodeToString(sum[:])
	upper, b64 := strings.ToUpper(thumb), base64.StdEncoding.EncodeToString(sum[:])
	key := base64.StdEncoding.EncodeToString(der)
	other := strings.Repeat("0", 40)
	tests := []struct {
		name string
		k    KeyCredential
		want bool
	}{
		{"hex upper", KeyCredential{CustomKeyIdentifier: &upper}, true},
		{"base64", KeyCredential{CustomKeyIdentifier: &b64}, true},
		{"from key", KeyCredential{Key: &key}, true},
		{"other thumbprint", KeyCredential{CustomKeyIdentifier: &other}, false},
		{"nothing to compare", KeyCredential{}, false},
	}
	for _, tt := range tests {
		if got := tt.k.MatchesThumbprint(thumb); got != tt.want {
			t.Errorf("%s: MatchesThumbprint = %v, want %v", tt.name, got, tt.want)
		}
	}
	if (KeyCredential{CustomKeyIdentifier: &upper}).MatchesThumbprint("xyz") {
		t.Error("a malformed thumbprint matched")
	}
}
