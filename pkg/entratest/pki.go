package entratest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// newTLSIdentity creates a throwaway ECDSA CA and a leaf certificate for 127.0.0.1, ::1,
// localhost and the extra DNS names (the real hosts, WithRealHosts) signed by it. It
// returns the leaf for the listener, the CA as PEM and a pool holding the CA.
func newTLSIdentity(now time.Time, extraDNSNames ...string) (tls.Certificate, []byte, *x509.CertPool, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("entratest: ca key: %w", err)
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "entratest fake Entra CA", Organization: []string{"EntraClaw test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("entratest: ca certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("entratest: ca certificate: %w", err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("entratest: tls key: %w", err)
	}
	leafTemplate := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		// "127.0.0.1" as a DNS name too: Wine 8's crypt32 SSL policy matches the host only
		// against DNS names and the CN, never IP SANs. Go verifies IPs against IPAddresses.
		DNSNames: append([]string{"localhost", "127.0.0.1"}, extraDNSNames...),
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTemplate, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("entratest: tls certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}, caPEM, pool, nil
}

// tokenSigner is the key the fake STS signs access tokens with, plus a self-signed
// certificate so tokens can carry a real x5t thumbprint.
type tokenSigner struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
	x5t  string // base64url SHA-1 of the certificate, also used as kid
}

func newTokenSigner(now time.Time) (*tokenSigner, error) {
	key, err := sharedKey(tokenSignerKey)
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "entratest token signing"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("entratest: signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("entratest: signing certificate: %w", err)
	}
	sum := sha1.Sum(der)
	return &tokenSigner{key: key, cert: cert, x5t: base64.RawURLEncoding.EncodeToString(sum[:])}, nil
}

func randomSerial() *big.Int {
	b := make([]byte, 16)
	mustRead(b)
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b)
}
