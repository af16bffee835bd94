package certs

import (
	"bytes"
	"testing"
)

// FuzzParseBundle checks that ParseBundle never panics, that its errors are
// one line and never repeat the input, and that whatever it accepts survives
// a PEM round trip. Seeds live in testdata/fuzz/FuzzParseBundle.
func FuzzParseBundle(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\r\nMAA=\r\n-----END PRIVATE KEY-----\r\n"))
	f.Add([]byte("-----BEGIN ENTRACLAW TPM KEY-----\nParent: owner-ecc-p256-srk\n\nAAE=\n-----END ENTRACLAW TPM KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			checkErrorHidesInput(t, err, data)
			return
		}
		again, err := ParseBundle(b.PEM())
		if err != nil {
			t.Fatalf("re-parsing PEM() of an accepted bundle: %v", err)
		}
		if !bytes.Equal(again.Cert.Raw, b.Cert.Raw) || again.TPMBound() != b.TPMBound() {
			t.Fatal("PEM() round trip changed the bundle")
		}
		if b.TPMBound() {
			if !bytes.Equal(again.TPMKey.Bytes, b.TPMKey.Bytes) || b.Key != nil {
				t.Fatal("PEM() round trip changed the TPM key block")
			}
		} else if !again.Key.Equal(b.Key) {
			t.Fatal("PEM() round trip changed the bundle")
		}
	})
}
