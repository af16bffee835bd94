package certs

import (
	"bytes"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

// tpmBlock stands for pkg/tpmkey's block: certs treats its bytes as opaque.
func tpmBlock() *pem.Block {
	return &pem.Block{Type: TPMKeyBlockType, Headers: map[string]string{"Parent": "test"}, Bytes: []byte("opaque tpm blobs")}
}

func TestTPMBundleRoundTrip(t *testing.T) {
	a, _ := bundles(t)
	b := &Bundle{Cert: a.Cert, TPMKey: tpmBlock()}
	if !b.TPMBound() || a.TPMBound() {
		t.Fatalf("TPMBound: tpm bundle %v, key bundle %v", b.TPMBound(), a.TPMBound())
	}
	data := b.PEM()
	if bytes.Contains(data, []byte("PRIVATE KEY")) {
		t.Fatalf("a TPM bundle's PEM holds a PRIVATE KEY block:\n%s", data)
	}
	if !bytes.HasPrefix(data, a.CertPEM()) {
		t.Fatal("a TPM bundle's PEM does not start with the certificate")
	}
	for _, in := range [][]byte{data, append(b.KeyPEM(), b.CertPEM()...), bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))} {
		got, err := ParseBundle(in)
		if err != nil {
			t.Fatalf("ParseBundle(tpm bundle): %v", err)
		}
		if !got.TPMBound() || got.Key != nil || !got.Cert.Equal(a.Cert) {
			t.Fatalf("ParseBundle(tpm bundle) = key %v, tpm %v, same cert %v", got.Key != nil, got.TPMKey != nil, got.Cert.Equal(a.Cert))
		}
		if string(got.TPMKey.Bytes) != "opaque tpm blobs" || got.TPMKey.Headers["Parent"] != "test" {
			t.Fatalf("TPM block not kept: %q %v", got.TPMKey.Bytes, got.TPMKey.Headers)
		}
		if !bytes.Equal(got.PEM(), data) {
			t.Fatal("PEM of a parsed TPM bundle differs from what was parsed")
		}
	}
}

func TestTPMBundleErrors(t *testing.T) {
	a, b := bundles(t)
	tpm := pem.EncodeToMemory(tpmBlock())
	empty := pem.EncodeToMemory(&pem.Block{Type: TPMKeyBlockType})
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"tpm and pkcs8 key", join(a.CertPEM(), tpm, a.KeyPEM()), ErrMultipleKeys},
		{"two tpm keys", join(a.CertPEM(), tpm, tpm), ErrMultipleKeys},
		{"no certificate", tpm, ErrNoCertificate},
		{"two certificates", join(a.CertPEM(), b.CertPEM(), tpm), ErrKeyMismatch},
		{"empty block", join(a.CertPEM(), empty), ErrInvalidKey},
		{"bad certificate", join(pemBlock("CERTIFICATE", []byte("junk")), tpm), ErrInvalidCertificate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBundle(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "opaque") {
				t.Fatalf("error echoes the block: %v", err)
			}
		})
	}
}

func TestSelfSignMatchesGenerate(t *testing.T) {
	a, _ := bundles(t)
	cert, err := SelfSign(fixtureNow, 30*24*time.Hour, a.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Fatalf("self-signature: %v", err)
	}
	if cert.Subject.CommonName != CommonName || cert.NotAfter.Sub(cert.NotBefore) != 30*24*time.Hour || !a.Key.PublicKey.Equal(cert.PublicKey) {
		t.Fatalf("SelfSign: subject %q validity %s", cert.Subject, cert.NotAfter.Sub(cert.NotBefore))
	}
	if _, err := SelfSign(fixtureNow, 0, a.Key); err == nil {
		t.Fatal("SelfSign with a zero lifetime succeeded")
	}
}
