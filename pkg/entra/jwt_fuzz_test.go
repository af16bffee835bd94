package entra

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeJWT checks that DecodeJWT never panics, that its errors are one line, and
// that whatever it decodes re-decodes identically after the header and claims are
// encoded again. Seeds live in testdata/fuzz/FuzzDecodeJWT.
func FuzzDecodeJWT(f *testing.F) {
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJSUzI1NiJ9.e30.")
	f.Fuzz(func(t *testing.T, raw string) {
		d, err := DecodeJWT(raw)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		// The accessors must not panic on any decoded value.
		_, _ = d.Audience()
		_, _, _ = d.ExpiresAt()
		_ = d.Roles()
		_, _, _, _ = d.AppID(), d.TenantID(), d.AppIDACR(), d.IdTyp()

		header, err := json.Marshal(d.Header)
		if err != nil {
			t.Fatalf("re-encoding the header: %v", err)
		}
		claims, err := json.Marshal(d.Claims)
		if err != nil {
			t.Fatalf("re-encoding the claims: %v", err)
		}
		sig := raw[strings.LastIndexByte(raw, '.')+1:]
		again, err := DecodeJWT(base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims) + "." + strings.TrimSpace(sig))
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if !reflect.DeepEqual(again.Header, d.Header) || !reflect.DeepEqual(again.Claims, d.Claims) {
			t.Fatalf("re-decoding changed the token:\n%v %v\n%v %v", d.Header, d.Claims, again.Header, again.Claims)
		}
	})
}
