// Package certs creates, encodes and parses the provisioner's self-signed
// RSA certificate and its private key.
package certs

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// Subject of the certificates Generate creates.
const (
	CommonName   = "entraclaw-provisioner"
	Organization = "EntraClaw"
)

// Parameters of the certificates Generate creates.
const (
	KeyBits       = 2048
	ClockSkew     = 5 * time.Minute
	Validity      = 365 * 24 * time.Hour
	serialNumBits = 128
)

// PEM block types.
const (
	blockCertificate   = "CERTIFICATE"
	blockPKCS8Key      = "PRIVATE KEY"
	blockPKCS1Key      = "RSA PRIVATE KEY"
	blockEncryptedKey  = "ENCRYPTED PRIVATE KEY"
	blockTypeKeySuffix = "PRIVATE KEY"
)

// Bundle is a certificate and the RSA private key that belongs to it.
type Bundle struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// Generate creates a new RSA-2048 key and a self-signed client-authentication
// certificate for it, valid from now-5m for 365 days.
func Generate(now time.Time) (*Bundle, error) {
	return GenerateWithLifetime(now, DefaultLifetime)
}

// DefaultLifetime is how long a generated certificate is valid by default.
const DefaultLifetime = Validity

// GenerateWithLifetime is Generate with NotAfter = NotBefore + lifetime, for tenants whose
// app-management policy caps certificate lifetime below a year.
func GenerateWithLifetime(now time.Time, lifetime time.Duration) (*Bundle, error) {
	if lifetime <= 0 {
		return nil, fmt.Errorf("certificate lifetime must be positive, not %s", lifetime)
	}
	key, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate rsa key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notBefore := now.Add(-ClockSkew).UTC().Truncate(time.Second)
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: CommonName, Organization: []string{Organization}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(lifetime),
		SignatureAlgorithm:    x509.SHA256WithRSA,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse generated certificate: %w", err)
	}
	return &Bundle{Cert: cert, Key: key}, nil
}

// randomSerial returns a uniformly random serial number in [1, 2^128).
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), serialNumBits)
	limit.Sub(limit, big.NewInt(1))
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// CertPEM returns the certificate as a "CERTIFICATE" PEM block.
func (b *Bundle) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: blockCertificate, Bytes: b.Cert.Raw})
}

// KeyPEM returns the private key as an unencrypted PKCS#8 "PRIVATE KEY" PEM
// block. The key must be valid, as keys from Generate and ParseBundle are;
// KeyPEM panics on a key that fails rsa.PrivateKey.Validate.
func (b *Bundle) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(b.Key)
	if err != nil {
		panic("certs: cannot encode an invalid rsa private key: " + err.Error())
	}
	return pem.EncodeToMemory(&pem.Block{Type: blockPKCS8Key, Bytes: der})
}

// PEM returns the certificate PEM followed by the PKCS#8 key PEM, the layout
// the keyring item holds.
func (b *Bundle) PEM() []byte {
	return append(b.CertPEM(), b.KeyPEM()...)
}

// Thumbprint returns the SHA-1 of the certificate's DER as lowercase hex: the
// value kept in the state file and sent as Graph's customKeyIdentifier.
func Thumbprint(c *x509.Certificate) string {
	sum := sha1.Sum(c.Raw)
	return hex.EncodeToString(sum[:])
}

// ThumbprintS256 returns the SHA-256 of the certificate's DER, base64url
// without padding (the JOSE "x5t#S256" form).
func ThumbprintS256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// X5t returns the SHA-1 of the certificate's DER, base64url without padding
// (the JOSE "x5t" form).
func X5t(c *x509.Certificate) string {
	sum := sha1.Sum(c.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Expired reports whether now is after the certificate's NotAfter.
func Expired(c *x509.Certificate, now time.Time) bool {
	return now.After(c.NotAfter)
}

// ExpiresWithin reports whether the certificate's NotAfter is at or before
// now+d. An expired certificate expires within any d >= 0.
func ExpiresWithin(c *x509.Certificate, now time.Time, d time.Duration) bool {
	return !c.NotAfter.After(now.Add(d))
}
