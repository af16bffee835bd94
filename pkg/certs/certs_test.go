package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	fixtureOnce sync.Once
	fixtureA    *Bundle
	fixtureB    *Bundle
	fixtureErr  error
	fixtureNow  = time.Date(2025, 4, 19, 12, 30, 45, 123456789, time.UTC)
)

// bundles returns two generated bundles shared by the tests (RSA keygen is slow).
func bundles(t *testing.T) (*Bundle, *Bundle) {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureA, fixtureErr = Generate(fixtureNow)
		if fixtureErr == nil {
			fixtureB, fixtureErr = Generate(fixtureNow)
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureA, fixtureB
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestGenerate(t *testing.T) {
	b, other := bundles(t)
	c := b.Cert
	if c.Subject.CommonName != CommonName || len(c.Subject.Organization) != 1 || c.Subject.Organization[0] != Organization {
		t.Errorf("subject = %v", c.Subject)
	}
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		t.Error("certificate is not self-issued")
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		t.Errorf("self signature does not verify: %v", err)
	}
	if c.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Errorf("signature algorithm = %v", c.SignatureAlgorithm)
	}
	if got := b.Key.N.BitLen(); got != 2048 {
		t.Errorf("key bits = %d", got)
	}
	if !b.Key.PublicKey.Equal(c.PublicKey) {
		t.Error("certificate public key is not the bundle key")
	}
	wantNotBefore := time.Date(2025, 4, 19, 12, 25, 45, 0, time.UTC)
	if !c.NotBefore.Equal(wantNotBefore) {
		t.Errorf("NotBefore = %v, want %v", c.NotBefore, wantNotBefore)
	}
	if !c.NotAfter.Equal(wantNotBefore.AddDate(0, 0, 365)) {
		t.Errorf("NotAfter = %v, want NotBefore + 365 days", c.NotAfter)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v", c.KeyUsage)
	}
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("ExtKeyUsage = %v", c.ExtKeyUsage)
	}
	if !c.BasicConstraintsValid || c.IsCA {
		t.Errorf("basic constraints valid=%v ca=%v", c.BasicConstraintsValid, c.IsCA)
	}
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.Cmp(limit) >= 0 {
		t.Errorf("serial %v outside [1, 2^128)", c.SerialNumber)
	}
	if c.SerialNumber.Cmp(other.Cert.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
	if b.Key.Equal(other.Key) {
		t.Error("two bundles share a key")
	}
}

func TestPEMLayout(t *testing.T) {
	b, _ := bundles(t)
	data := b.PEM()
	if !bytes.Equal(data, join(b.CertPEM(), b.KeyPEM())) {
		t.Fatal("PEM() is not CertPEM() followed by KeyPEM()")
	}
	first, rest := pem.Decode(data)
	second, rest := pem.Decode(rest)
	if first == nil || second == nil || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatal("PEM() is not exactly two blocks")
	}
	if first.Type != "CERTIFICATE" || !bytes.Equal(first.Bytes, b.Cert.Raw) {
		t.Errorf("first block = %s, want the certificate", first.Type)
	}
	if second.Type != "PRIVATE KEY" {
		t.Errorf("second block = %s, want PRIVATE KEY", second.Type)
	}
	key, err := x509.ParsePKCS8PrivateKey(second.Bytes)
	if err != nil {
		t.Fatalf("key block is not PKCS#8: %v", err)
	}
	if !b.Key.Equal(key) {
		t.Error("PKCS#8 key differs from the bundle key")
	}
}

func TestParseBundleAccepts(t *testing.T) {
	a, other := bundles(t)
	pkcs1 := pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(a.Key))
	pkcs1AsPKCS8Label := pemBlock("PRIVATE KEY", x509.MarshalPKCS1PrivateKey(a.Key))
	crlf := bytes.ReplaceAll(a.PEM(), []byte("\n"), []byte("\r\n"))
	cases := map[string][]byte{
		"cert then pkcs8":      a.PEM(),
		"key first":            join(a.KeyPEM(), a.CertPEM()),
		"pkcs1":                join(a.CertPEM(), pkcs1),
		"pkcs1 key first":      join(pkcs1, a.CertPEM()),
		"pkcs1 labelled pkcs8": join(a.CertPEM(), pkcs1AsPKCS8Label),
		"crlf":                 crlf,
		"text between blocks": join([]byte("Bag Attributes\n    localKeyID: 01 02\nsubject=/CN=x\n"), a.CertPEM(),
			[]byte("\nsome comment\n\n"), a.KeyPEM(), []byte("trailing text")),
		"other cert first": join(other.CertPEM(), a.CertPEM(), a.KeyPEM()),
		"other cert last":  join(a.KeyPEM(), a.CertPEM(), other.CertPEM()),
		"ignored blocks":   join(pemBlock("PUBLIC KEY", []byte{1, 2, 3}), a.PEM(), pemBlock("CERTIFICATE REQUEST", []byte{4})),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseBundle(data)
			if err != nil {
				t.Fatalf("ParseBundle: %v", err)
			}
			if !bytes.Equal(got.Cert.Raw, a.Cert.Raw) {
				t.Error("picked the wrong certificate")
			}
			if !got.Key.Equal(a.Key) {
				t.Error("key differs")
			}
		})
	}
}

func TestParseBundleErrors(t *testing.T) {
	a, other := bundles(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecSEC1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPKCS8, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPKCS8, err := x509.MarshalPKCS8PrivateKey(edKey)
	if err != nil {
		t.Fatal(err)
	}
	legacyEncrypted := pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"},
		Bytes:   bytes.Repeat([]byte{0x5a}, 1200),
	})
	corruptCert := a.Cert.Raw[:len(a.Cert.Raw)-10]
	corruptKey := pemBlock("PRIVATE KEY", bytes.Repeat([]byte{0x30}, 64))
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrNotPEM},
		{"garbage", []byte("this is not a certificate\x00\x01\x02"), ErrNotPEM},
		{"der instead of pem", a.Cert.Raw, ErrNotPEM},
		{"cert only", a.CertPEM(), ErrNoPrivateKey},
		{"key only", a.KeyPEM(), ErrNoCertificate},
		{"pkcs8 encrypted", join(a.CertPEM(), pemBlock("ENCRYPTED PRIVATE KEY", bytes.Repeat([]byte{1}, 1300))), ErrEncryptedKey},
		{"legacy encrypted", join(a.CertPEM(), legacyEncrypted), ErrEncryptedKey},
		{"ec sec1", join(a.CertPEM(), pemBlock("EC PRIVATE KEY", ecSEC1)), ErrNotRSAKey},
		{"ec pkcs8", join(a.CertPEM(), pemBlock("PRIVATE KEY", ecPKCS8)), ErrNotRSAKey},
		{"ed25519 pkcs8", join(a.CertPEM(), pemBlock("PRIVATE KEY", edPKCS8)), ErrNotRSAKey},
		{"openssh key", join(a.CertPEM(), pemBlock("OPENSSH PRIVATE KEY", []byte("openssh-key-v1"))), ErrNotRSAKey},
		{"two keys", join(a.PEM(), other.KeyPEM()), ErrMultipleKeys},
		{"mismatch", join(other.CertPEM(), a.KeyPEM()), ErrKeyMismatch},
		{"mismatch among several", join(other.CertPEM(), other.CertPEM(), a.KeyPEM()), ErrKeyMismatch},
		{"corrupt certificate", join(pemBlock("CERTIFICATE", corruptCert), a.KeyPEM()), ErrInvalidCertificate},
		{"corrupt key", join(a.CertPEM(), corruptKey), ErrInvalidKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseBundle(tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if b != nil {
				t.Error("bundle returned with an error")
			}
			checkErrorHidesInput(t, err, tc.data)
		})
	}
}

// checkErrorHidesInput fails when err spans lines or repeats any base64 body
// line of the input.
func checkErrorHidesInput(t *testing.T, err error, input []byte) {
	t.Helper()
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	for _, line := range strings.Split(string(input), "\n") {
		line = strings.TrimSpace(line)
		if len(line) >= 32 && !strings.ContainsAny(line, " -") && strings.Contains(msg, line) {
			t.Errorf("error repeats input line %q", line)
		}
	}
}

func TestEncryptedKeyErrorSaysHowToDecrypt(t *testing.T) {
	if !strings.Contains(ErrEncryptedKey.Error(), "openssl pkey") {
		t.Errorf("ErrEncryptedKey = %q, want a decryption command", ErrEncryptedKey)
	}
}

func TestThumbprints(t *testing.T) {
	b, other := bundles(t)
	sha1Sum := sha1.Sum(b.Cert.Raw)
	sha256Sum := sha256.Sum256(b.Cert.Raw)
	if got, want := Thumbprint(b.Cert), hex.EncodeToString(sha1Sum[:]); got != want || len(got) != 40 || strings.ToLower(got) != got {
		t.Errorf("Thumbprint = %q, want %q", got, want)
	}
	if got, want := ThumbprintS256(b.Cert), base64.RawURLEncoding.EncodeToString(sha256Sum[:]); got != want || len(got) != 43 {
		t.Errorf("ThumbprintS256 = %q, want %q", got, want)
	}
	if got, want := X5t(b.Cert), base64.RawURLEncoding.EncodeToString(sha1Sum[:]); got != want || len(got) != 27 {
		t.Errorf("X5t = %q, want %q", got, want)
	}
	if Thumbprint(b.Cert) == Thumbprint(other.Cert) {
		t.Error("different certificates share a thumbprint")
	}
}

func TestExpiry(t *testing.T) {
	b, _ := bundles(t)
	end := b.Cert.NotAfter
	if Expired(b.Cert, end) {
		t.Error("Expired at NotAfter")
	}
	if !Expired(b.Cert, end.Add(time.Second)) {
		t.Error("not Expired after NotAfter")
	}
	if Expired(b.Cert, fixtureNow) {
		t.Error("Expired right after Generate")
	}
	const month = 30 * 24 * time.Hour
	if ExpiresWithin(b.Cert, end.Add(-month-time.Second), month) {
		t.Error("ExpiresWithin true one second before the window")
	}
	if !ExpiresWithin(b.Cert, end.Add(-month), month) {
		t.Error("ExpiresWithin false at the window edge")
	}
	if !ExpiresWithin(b.Cert, end.Add(time.Hour), 0) {
		t.Error("expired certificate does not expire within 0")
	}
}
