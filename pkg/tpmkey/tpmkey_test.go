package tpmkey

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
)

var testNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// generate makes a TPM-bound bundle in a fresh swtpm and returns it with the swtpm.
func generate(t *testing.T) (*certs.Bundle, *entratest.SoftwareTPM) {
	t.Helper()
	sw := entratest.StartSoftwareTPM(t)
	start := time.Now()
	b, err := Generate(context.Background(), sw.Socket, testNow, certs.DefaultLifetime)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	t.Logf("key and certificate created in the TPM in %s", time.Since(start).Round(time.Millisecond))
	return b, sw
}

func checkOneLine(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("error is not one line: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Fatalf("error %q does not say %q", msg, w)
		}
	}
}

func TestGenerateMakesANonExportableKey(t *testing.T) {
	b, sw := generate(t)
	if !b.TPMBound() || b.Key != nil {
		t.Fatalf("bundle: TPMBound %v, in-memory key %v", b.TPMBound(), b.Key != nil)
	}
	c := b.Cert
	if c.Subject.CommonName != certs.CommonName || len(c.Subject.Organization) != 1 || c.Subject.Organization[0] != certs.Organization {
		t.Fatalf("subject %q", c.Subject)
	}
	if c.NotBefore != testNow.Add(-certs.ClockSkew) || c.NotAfter.Sub(c.NotBefore) != certs.DefaultLifetime || c.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Fatalf("validity %s..%s, algorithm %s", c.NotBefore, c.NotAfter, c.SignatureAlgorithm)
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		t.Fatalf("the certificate's self-signature does not verify with its public key: %v", err)
	}
	if pub := c.PublicKey.(*rsa.PublicKey); pub.N.BitLen() != 2048 {
		t.Fatalf("RSA-%d", pub.N.BitLen())
	}

	// Ask the TPM itself what it loaded, not the blob we wrote.
	k, err := ParseBlock(b.TPMKey)
	if err != nil {
		t.Fatal(err)
	}
	err = withTPM(context.Background(), sw.Socket, "inspect", func(s *session) error {
		h, err := s.load(k)
		if err != nil {
			return err
		}
		rsp, err := tpm2.ReadPublic{ObjectHandle: h.Handle}.Execute(s.tpm)
		if err != nil {
			return err
		}
		pub, err := rsp.OutPublic.Contents()
		if err != nil {
			return err
		}
		a := pub.ObjectAttributes
		if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || !a.UserWithAuth || !a.SignEncrypt || a.Decrypt || a.Restricted {
			t.Errorf("attributes in the TPM: fixedTPM=%v fixedParent=%v sensitiveDataOrigin=%v userWithAuth=%v sign=%v decrypt=%v restricted=%v",
				a.FixedTPM, a.FixedParent, a.SensitiveDataOrigin, a.UserWithAuth, a.SignEncrypt, a.Decrypt, a.Restricted)
		}
		got, err := checkPublic(&rsp.OutPublic)
		if err != nil {
			return err
		}
		if !got.Equal(c.PublicKey) {
			t.Error("the TPM's key is not the certificate's")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSignerSignsPSSAndPKCS1(t *testing.T) {
	b, sw := generate(t)
	s, err := NewSigner(b, sw.Socket)
	if err != nil {
		t.Fatal(err)
	}
	pub := b.Cert.PublicKey.(*rsa.PublicKey)
	if !pub.Equal(s.Public()) {
		t.Fatal("Public is not the certificate's key")
	}
	digest := sha256.Sum256([]byte("header.claims"))
	other := sha256.Sum256([]byte("header.claims2"))

	start := time.Now()
	sig, err := s.Sign(rand.Reader, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	if err != nil {
		t.Fatalf("PSS: %v", err)
	}
	t.Logf("one PSS signature (open, load, sign, flush): %s", time.Since(start).Round(100*time.Microsecond))
	if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
		t.Fatalf("PSS signature does not verify with the certificate's key (salt = hash length): %v", err)
	}
	if rsa.VerifyPSS(pub, crypto.SHA256, other[:], sig, nil) == nil {
		t.Fatal("PSS signature verifies for another digest")
	}

	sig, err = s.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("PKCS1v15: %v", err)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("PKCS1v15 signature does not verify: %v", err)
	}

	if _, err := s.Sign(rand.Reader, make([]byte, 48), crypto.SHA384); err == nil {
		t.Fatal("a SHA-384 digest was signed")
	}
	if _, err := s.Sign(rand.Reader, digest[:], &rsa.PSSOptions{SaltLength: 100, Hash: crypto.SHA256}); err == nil {
		t.Fatal("a PSS salt length the TPM does not use was accepted")
	}
}

func TestBundleHoldsNoPrivateKey(t *testing.T) {
	b, _ := generate(t)
	data := b.PEM()
	if !IsTPMBundle(data) {
		t.Fatal("IsTPMBundle(TPM bundle) = false")
	}
	if bytes.Contains(data, []byte("PRIVATE KEY")) {
		t.Fatalf("the bundle has a PRIVATE KEY block:\n%s", data)
	}
	// One Windows Credential Manager item holds it (2560 bytes): no split needed.
	if len(data) > 2560 {
		t.Fatalf("TPM bundle is %d bytes, more than a Windows credential holds", len(data))
	}
	t.Logf("TPM bundle: %d bytes", len(data))
	n := 0
	for rest := data; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		// No PKCS#1 or PKCS#8 private key at any offset of any block.
		for i := range block.Bytes {
			if block.Bytes[i] != 0x30 {
				continue
			}
			var raw asn1.RawValue
			if _, err := asn1.Unmarshal(block.Bytes[i:], &raw); err != nil {
				continue
			}
			if _, err := x509.ParsePKCS1PrivateKey(raw.FullBytes); err == nil {
				t.Fatalf("%s block holds a PKCS#1 private key at offset %d", block.Type, i)
			}
			if _, err := x509.ParsePKCS8PrivateKey(raw.FullBytes); err == nil {
				t.Fatalf("%s block holds a PKCS#8 private key at offset %d", block.Type, i)
			}
		}
	}
	if n != 2 {
		t.Fatalf("bundle has %d PEM blocks, want 2 (certificate, TPM key)", n)
	}
	// The round trip through certs and the keyring text keeps it TPM-bound.
	parsed, err := certs.ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	if !parsed.TPMBound() || !bytes.Equal(parsed.PEM(), data) {
		t.Fatal("certs.ParseBundle did not keep the TPM bundle as it was")
	}
	if _, err := NewSigner(parsed, ""); err != nil {
		t.Fatalf("NewSigner(parsed bundle): %v", err)
	}
	k, err := Generate(context.Background(), "", testNow, 0)
	if err == nil || k != nil {
		t.Fatal("Generate with a zero lifetime succeeded")
	}
}

func TestSecondTPMCannotSign(t *testing.T) {
	b, first := generate(t)
	second := entratest.StartSoftwareTPM(t)
	digest := sha256.Sum256([]byte("x"))
	opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}

	copied, err := certs.ParseBundle(b.PEM()) // what a stolen keyring item gives
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(copied, second.Socket)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Sign(rand.Reader, digest[:], opts)
	checkOneLine(t, err, "cannot load the key", "another TPM", "entraclaw-migrate -rotate")
	if !errors.Is(err, ErrForeignKey) || errors.Is(err, ErrNoTPM) {
		t.Fatalf("errors.Is(ErrForeignKey) = %v, (ErrNoTPM) = %v", errors.Is(err, ErrForeignKey), errors.Is(err, ErrNoTPM))
	}
	t.Logf("second TPM: %v", err)

	// Still fine on the TPM that made it; and the failed load left nothing behind there.
	s, _ = NewSigner(copied, first.Socket)
	for i := 0; i < 5; i++ {
		if _, err := s.Sign(rand.Reader, digest[:], opts); err != nil {
			t.Fatalf("sign %d on the first TPM: %v", i, err)
		}
	}
	s, _ = NewSigner(copied, second.Socket)
	for i := 0; i < 5; i++ {
		if _, err := s.Sign(rand.Reader, digest[:], opts); !errors.Is(err, ErrForeignKey) {
			t.Fatalf("attempt %d on the second TPM: %v (objects left loaded?)", i, err)
		}
	}
}

func TestGoneTPM(t *testing.T) {
	b, sw := generate(t)
	s, err := NewSigner(b, sw.Socket)
	if err != nil {
		t.Fatal(err)
	}
	sw.Stop()
	digest := sha256.Sum256([]byte("x"))
	_, err = s.Sign(rand.Reader, digest[:], crypto.SHA256)
	checkOneLine(t, err, "no usable TPM", sw.Socket, "start the software TPM")
	if !errors.Is(err, ErrNoTPM) {
		t.Fatalf("errors.Is(err, ErrNoTPM) = false: %v", err)
	}
	t.Logf("gone: %v", err)
	_, err = Generate(context.Background(), sw.Socket, testNow, certs.DefaultLifetime)
	checkOneLine(t, err, "no usable TPM")
	checkOneLine(t, Check(context.Background(), sw.Socket), "no usable TPM")

	os.Remove(sw.Socket)
	_, err = s.Sign(rand.Reader, digest[:], crypto.SHA256)
	checkOneLine(t, err, "no usable TPM", "no such socket")
}

func TestFullTPM(t *testing.T) {
	b, sw := generate(t)
	// Fill the TPM's object slots as crashed programs would on a TPM without a resource
	// manager: primaries that nobody flushes.
	tpm, err := open(sw.Socket)
	if err != nil {
		t.Fatal(err)
	}
	full := false
	for i := 0; i < 32 && !full; i++ {
		_, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(tpm2.ECCSRKTemplate)}.Execute(tpm)
		full = errors.Is(err, tpm2.TPMRCObjectMemory)
		if err != nil && !full {
			t.Fatalf("filling the TPM: %v", err)
		}
	}
	tpm.Close()
	if !full {
		t.Fatal("the TPM never ran out of object memory")
	}
	s, err := NewSigner(b, sw.Socket)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	_, err = s.Sign(rand.Reader, digest[:], crypto.SHA256)
	checkOneLine(t, err, "the TPM is full", "nothing was changed")
	t.Logf("full: %v", err)
	_, err = Generate(context.Background(), sw.Socket, testNow, certs.DefaultLifetime)
	checkOneLine(t, err, "the TPM is full")
}

func TestParseBlockRejects(t *testing.T) {
	b, _ := generate(t)
	good := b.TPMKey
	k, err := ParseBlock(good)
	if err != nil {
		t.Fatal(err)
	}
	if !k.PublicKey().Equal(b.Cert.PublicKey) {
		t.Fatal("ParseBlock: wrong public key")
	}
	exportable := *k
	pub, _ := exportable.Public.Contents()
	pub.ObjectAttributes.FixedTPM = false
	pub.ObjectAttributes.FixedParent = false
	exportable.Public = tpm2.New2B(*pub)
	decrypting := *k
	pub, _ = k.Public.Contents()
	pub.ObjectAttributes.Decrypt = true
	decrypting.Public = tpm2.New2B(*pub)

	withBytes := func(data []byte) *pem.Block {
		return &pem.Block{Type: good.Type, Headers: good.Headers, Bytes: data}
	}
	cases := map[string]*pem.Block{
		"exportable":     exportable.Block(),
		"decrypt":        decrypting.Block(),
		"unknown parent": {Type: good.Type, Headers: map[string]string{"Parent": "0x81000001"}, Bytes: good.Bytes},
		"no parent":      {Type: good.Type, Bytes: good.Bytes},
		"truncated":      withBytes(good.Bytes[:len(good.Bytes)-1]),
		"trailing":       withBytes(append(append([]byte(nil), good.Bytes...), 0)),
		"empty":          withBytes(nil),
		"wrong type":     {Type: "RSA PRIVATE KEY", Headers: good.Headers, Bytes: good.Bytes},
	}
	for name, block := range cases {
		if _, err := ParseBlock(block); !errors.Is(err, ErrInvalidBlock) {
			t.Errorf("%s: ParseBlock err = %v, want ErrInvalidBlock", name, err)
		}
	}

	// A TPM key block with someone else's certificate.
	other, err := certs.Generate(testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSigner(&certs.Bundle{Cert: other.Cert, TPMKey: good}, ""); !errors.Is(err, ErrInvalidBlock) {
		t.Fatalf("NewSigner with a foreign certificate: %v", err)
	}
	if _, err := NewSigner(other, ""); err == nil {
		t.Fatal("NewSigner accepted a bundle that is not TPM-bound")
	}
}

func TestNoTPMErrors(t *testing.T) {
	t.Setenv(EnvTPM, "")
	dir := t.TempDir()
	file := dir + "/plain"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	checkOneLine(t, Check(context.Background(), file), "no usable TPM", "not a TPM device or socket", EnvTPM)
	checkOneLine(t, Check(context.Background(), dir+"/missing"), "no usable TPM", "no such socket or device")
	checkOneLine(t, Check(context.Background(), "127.0.0.1:1"), "no usable TPM", "nothing is listening")
	checkOneLine(t, openError("/dev/tpmrm0", os.ErrPermission), "no usable TPM (/dev/tpmrm0): permission denied", "group", "tss")
	checkOneLine(t, openError("/dev/tpmrm0", os.ErrNotExist), "does not exist", "firmware", EnvTPM)
	if !errors.Is(Check(context.Background(), file), ErrNoTPM) {
		t.Fatal("errors.Is(ErrNoTPM) = false")
	}
	t.Setenv(EnvTPM, "unix:"+dir+"/sock")
	if Device() != "unix:"+dir+"/sock" {
		t.Fatalf("Device() = %q with %s set", Device(), EnvTPM)
	}
	checkOneLine(t, Check(context.Background(), ""), "no usable TPM ("+EnvTPM+"=unix:")
}

func TestIsTPMBundle(t *testing.T) {
	sw, err := certs.Generate(testNow)
	if err != nil {
		t.Fatal(err)
	}
	if IsTPMBundle(sw.PEM()) || IsTPMBundle(nil) || IsTPMBundle([]byte("junk")) {
		t.Fatal("IsTPMBundle is true for a bundle without a TPM key")
	}
}

// TestTCPTransport: ENTRACLAW_TPM=host:port reaches a swtpm over TCP (swtpm --server
// type=tcp), the way Windows binaries under Wine reach a Linux swtpm.
func TestTCPTransport(t *testing.T) {
	sw := entratest.StartSoftwareTPMOnTCP(t)
	t.Setenv(EnvTPM, sw.Socket)
	b, err := Generate(context.Background(), "", testNow, certs.DefaultLifetime)
	if err != nil {
		t.Fatalf("Generate over TCP: %v", err)
	}
	s, err := NewSigner(b, "")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	sig, err := s.Sign(rand.Reader, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	if err != nil {
		t.Fatalf("Sign over TCP: %v", err)
	}
	if err := rsa.VerifyPSS(b.Cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig, nil); err != nil {
		t.Fatal(err)
	}
	sw.Stop()
	_, err = s.Sign(rand.Reader, digest[:], crypto.SHA256)
	checkOneLine(t, err, "no usable TPM ("+EnvTPM+"="+sw.Socket+")", "nothing is listening")
}

// TestDefaultDeviceMissing: on a Linux machine without /dev/tpmrm0 (this CI box) the
// default device gives the firmware/software-TPM advice in one line.
func TestDefaultDeviceMissing(t *testing.T) {
	if defaultDevice != "/dev/tpmrm0" {
		t.Skipf("the default device here is %q", defaultDevice)
	}
	if _, err := os.Stat(defaultDevice); err == nil {
		t.Skip("this machine has a TPM")
	}
	t.Setenv(EnvTPM, "")
	checkOneLine(t, Check(context.Background(), ""), "no usable TPM (/dev/tpmrm0): it does not exist", "firmware", EnvTPM)
	_, err := Generate(context.Background(), "", testNow, certs.DefaultLifetime)
	checkOneLine(t, err, "no usable TPM (/dev/tpmrm0)")
}
