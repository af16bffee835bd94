package certs

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Errors ParseBundle returns (possibly wrapped with detail); test with errors.Is.
// None of them carries bytes of the input.
var (
	ErrNotPEM             = errors.New("bundle holds no PEM data")
	ErrNoCertificate      = errors.New("bundle holds no CERTIFICATE block")
	ErrNoPrivateKey       = errors.New("bundle holds no private key (want a PRIVATE KEY or RSA PRIVATE KEY block)")
	ErrEncryptedKey       = errors.New("encrypted private keys are not supported: decrypt the key first, e.g. `openssl pkey -in key.pem -out key-decrypted.pem`, and keep the result private")
	ErrNotRSAKey          = errors.New("private key is not an RSA key")
	ErrMultipleKeys       = errors.New("bundle holds more than one private key")
	ErrKeyMismatch        = errors.New("private key does not match the certificate")
	ErrInvalidKey         = errors.New("private key block is not a valid PKCS#1 or PKCS#8 key")
	ErrInvalidCertificate = errors.New("CERTIFICATE block is not a valid X.509 certificate")
)

// keyBlockNames names the private key PEM types that are not RSA, for errors.
var keyBlockNames = map[string]string{
	"EC PRIVATE KEY":      "an EC key",
	"DSA PRIVATE KEY":     "a DSA key",
	"OPENSSH PRIVATE KEY": "an OpenSSH-format key",
}

// ParseBundle reads a certificate and its RSA private key from PEM data.
// The blocks may come in any order, with CRLF line endings and with other text
// between them; the key may be PKCS#8 ("PRIVATE KEY") or PKCS#1 ("RSA PRIVATE
// KEY"). With several certificates it picks the one that matches the key.
//
// A bundle whose key is held by a TPM has a TPMKeyBlockType block instead of a private
// key and exactly one certificate; it comes back with TPMKey set and Key nil. Whether
// the TPM key matches the certificate is checked by pkg/tpmkey, which can read it.
func ParseBundle(data []byte) (*Bundle, error) {
	var certBlocks, keyBlocks, tpmBlocks []*pem.Block
	sawPEM := false
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawPEM = true
		switch {
		case block.Type == blockCertificate:
			certBlocks = append(certBlocks, block)
		case strings.HasSuffix(block.Type, blockTypeKeySuffix):
			keyBlocks = append(keyBlocks, block)
		case block.Type == TPMKeyBlockType:
			tpmBlocks = append(tpmBlocks, block)
		}
	}
	if !sawPEM {
		return nil, ErrNotPEM
	}
	for _, block := range keyBlocks {
		if isEncrypted(block) {
			return nil, ErrEncryptedKey
		}
	}
	if len(tpmBlocks) > 0 {
		return parseTPMBundle(certBlocks, keyBlocks, tpmBlocks)
	}
	switch {
	case len(keyBlocks) > 1:
		return nil, ErrMultipleKeys
	case len(keyBlocks) == 0:
		return nil, ErrNoPrivateKey
	case len(certBlocks) == 0:
		return nil, ErrNoCertificate
	}
	key, err := parseKey(keyBlocks[0])
	if err != nil {
		return nil, err
	}
	var match *x509.Certificate
	for i, block := range certBlocks {
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d of %d: %w", i+1, len(certBlocks), ErrInvalidCertificate)
		}
		if match == nil && key.PublicKey.Equal(cert.PublicKey) {
			match = cert
		}
	}
	if match == nil {
		if len(certBlocks) > 1 {
			return nil, fmt.Errorf("%w (none of %d certificates)", ErrKeyMismatch, len(certBlocks))
		}
		return nil, ErrKeyMismatch
	}
	return &Bundle{Cert: match, Key: key}, nil
}

// parseTPMBundle is ParseBundle for a bundle with a TPM key block.
func parseTPMBundle(certBlocks, keyBlocks, tpmBlocks []*pem.Block) (*Bundle, error) {
	switch {
	case len(keyBlocks)+len(tpmBlocks) > 1:
		return nil, ErrMultipleKeys
	case len(certBlocks) == 0:
		return nil, ErrNoCertificate
	case len(certBlocks) > 1:
		return nil, fmt.Errorf("%w (a TPM key bundle holds one certificate, not %d)", ErrKeyMismatch, len(certBlocks))
	case len(tpmBlocks[0].Bytes) == 0:
		return nil, fmt.Errorf("%w (the %s block is empty)", ErrInvalidKey, TPMKeyBlockType)
	}
	cert, err := x509.ParseCertificate(certBlocks[0].Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate 1 of 1: %w", ErrInvalidCertificate)
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("%w (the certificate of the TPM key is not RSA)", ErrNotRSAKey)
	}
	block := *tpmBlocks[0]
	return &Bundle{Cert: cert, TPMKey: &block}, nil
}

func isEncrypted(block *pem.Block) bool {
	return block.Type == blockEncryptedKey || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED")
}

func parseKey(block *pem.Block) (*rsa.PrivateKey, error) {
	switch block.Type {
	case blockPKCS8Key:
		if parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			return rsaKey(parsed)
		}
		// Some tools label PKCS#1 DER as "PRIVATE KEY"; accept it as azidentity does.
		if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			return key, nil
		}
		return nil, ErrInvalidKey
	case blockPKCS1Key:
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, ErrInvalidKey
		}
		return key, nil
	}
	if name, ok := keyBlockNames[block.Type]; ok {
		return nil, fmt.Errorf("%w (found %s)", ErrNotRSAKey, name)
	}
	return nil, fmt.Errorf("%w (found an unsupported private key block type)", ErrNotRSAKey)
}

func rsaKey(parsed any) (*rsa.PrivateKey, error) {
	var name string
	switch k := parsed.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		name = "an ECDSA key"
	case ed25519.PrivateKey:
		name = "an Ed25519 key"
	case *ecdh.PrivateKey:
		name = "an X25519 key"
	default:
		name = "an unsupported key type"
	}
	return nil, fmt.Errorf("%w (found %s)", ErrNotRSAKey, name)
}
