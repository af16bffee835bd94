// Package tpmkey keeps the provisioner's RSA-2048 private key inside a TPM 2.0: the key is
// created by the TPM (fixedTPM, fixedParent, sensitiveDataOrigin, sign-only), the
// certificate is self-signed by it, and what is stored (certs.Bundle.TPMKey, a
// certs.TPMKeyBlockType PEM block) is the TPM's public area and the private area wrapped
// by the TPM's storage key: no key material, and useless on any other TPM.
//
// The storage primary key (the parent) is not stored: it is re-created from the TCG ECC
// P-256 SRK template on every use, which gives the same key on the same TPM for as long as
// its owner seed lives (a TPM clear changes it; every key made before is lost then).
// Every object loaded is flushed before the call returns.
//
// Which TPM: ENTRACLAW_TPM (a swtpm unix socket, host:port, or a device path) when set,
// else /dev/tpmrm0 (the kernel's resource manager) on Linux and TBS on Windows.
package tpmkey

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

// parentECCSRK is the Parent header of keys created under the TCG ECC P-256 SRK template
// in the owner hierarchy (the only parent this version creates or loads under).
const (
	headerParent = "Parent"
	parentECCSRK = "owner-ecc-p256-srk"
)

// signingTemplate is an RSA-2048 key the TPM generates and never lets out: fixedTPM and
// fixedParent (it cannot be duplicated), sensitiveDataOrigin (the TPM made the secret),
// unrestricted sign only (no decrypt). Its scheme is NULL so that each Sign chooses
// RSASSA (certificates) or RSAPSS (PS256 assertions). Its auth value is empty: whoever can
// open this TPM as this user can sign, as whoever can read the keyring item could before;
// what changes is that the key cannot be taken elsewhere. noDA because an empty auth has
// nothing to guess, so a dictionary-attack lockout must not block it.
var signingTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgRSA,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		NoDA:                true,
		SignEncrypt:         true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
		Scheme:  tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgNull},
		KeyBits: certs.KeyBits,
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{}),
}

// Key is a TPM-bound key as a bundle holds it.
type Key struct {
	Public  tpm2.TPM2BPublic  // the TPM's public area: attributes and the RSA public key
	Private tpm2.TPM2BPrivate // the private area encrypted by the parent: only that TPM can load it
	pub     *rsa.PublicKey
}

// PublicKey is the key's RSA public key.
func (k *Key) PublicKey() *rsa.PublicKey { return k.pub }

// Block is the key as a certs.TPMKeyBlockType PEM block: the marshalled TPM2B_PUBLIC
// followed by the TPM2B_PRIVATE, and the parent it loads under as a header.
func (k *Key) Block() *pem.Block {
	data := append(tpm2.Marshal(k.Public), tpm2.Marshal(k.Private)...)
	return &pem.Block{Type: certs.TPMKeyBlockType, Headers: map[string]string{headerParent: parentECCSRK}, Bytes: data}
}

// ErrInvalidBlock reports a TPM key block that is not one this package creates.
var ErrInvalidBlock = errors.New("not a usable " + certs.TPMKeyBlockType + " block")

// ParseBlock reads a key from its PEM block, without a TPM. It accepts only what Generate
// creates: an RSA-2048 key whose attributes say the TPM made it and will never let it out,
// under the parent this version knows.
func ParseBlock(block *pem.Block) (*Key, error) {
	if block == nil || block.Type != certs.TPMKeyBlockType {
		return nil, fmt.Errorf("%w: wrong PEM type", ErrInvalidBlock)
	}
	if p := block.Headers[headerParent]; p != parentECCSRK {
		return nil, fmt.Errorf("%w: unknown parent %q (want %s)", ErrInvalidBlock, p, parentECCSRK)
	}
	pubBytes, rest, ok := cut2B(block.Bytes)
	if !ok {
		return nil, fmt.Errorf("%w: truncated public area", ErrInvalidBlock)
	}
	privBytes, rest, ok := cut2B(rest)
	if !ok || len(rest) != 0 {
		return nil, fmt.Errorf("%w: truncated private area or trailing bytes", ErrInvalidBlock)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](pubBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: public area: %v", ErrInvalidBlock, err)
	}
	priv, err := tpm2.Unmarshal[tpm2.TPM2BPrivate](privBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: private area: %v", ErrInvalidBlock, err)
	}
	k := &Key{Public: *pub, Private: *priv}
	if k.pub, err = checkPublic(&k.Public); err != nil {
		return nil, err
	}
	return k, nil
}

// cut2B splits a TPM2B (a big-endian uint16 size and that many bytes) off b.
func cut2B(b []byte) (item, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := 2 + int(binary.BigEndian.Uint16(b))
	if len(b) < n {
		return nil, nil, false
	}
	return b[:n], b[n:], true
}

// checkPublic returns the RSA public key of pub when pub is a key Generate would make.
func checkPublic(pub *tpm2.TPM2BPublic) (*rsa.PublicKey, error) {
	p, err := pub.Contents()
	if err != nil {
		return nil, fmt.Errorf("%w: public area: %v", ErrInvalidBlock, err)
	}
	a := p.ObjectAttributes
	switch {
	case p.Type != tpm2.TPMAlgRSA:
		return nil, fmt.Errorf("%w: not an RSA key", ErrInvalidBlock)
	case !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin:
		return nil, fmt.Errorf("%w: the key's attributes allow it to leave the TPM (fixedTPM, fixedParent and sensitiveDataOrigin are required)", ErrInvalidBlock)
	case !a.SignEncrypt || a.Decrypt || a.Restricted:
		return nil, fmt.Errorf("%w: not an unrestricted sign-only key", ErrInvalidBlock)
	}
	detail, err := p.Parameters.RSADetail()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBlock, err)
	}
	unique, err := p.Unique.RSA()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBlock, err)
	}
	if detail.KeyBits != certs.KeyBits {
		return nil, fmt.Errorf("%w: RSA-%d, want RSA-%d", ErrInvalidBlock, detail.KeyBits, certs.KeyBits)
	}
	rsaPub, err := tpm2.RSAPub(detail, unique)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBlock, err)
	}
	return rsaPub, nil
}

// IsTPMBundle reports whether a PEM bundle holds a TPM-bound key (a certs.TPMKeyBlockType
// block) rather than a private key. certs.ParseBundle reads both kinds.
func IsTPMBundle(data []byte) bool {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return false
		}
		if block.Type == certs.TPMKeyBlockType {
			return true
		}
	}
}

// Generate creates a key in the TPM that device names ("" for Device()) and a
// certificate for it as certs.GenerateWithLifetime does (self-signed by the TPM), and
// returns them as a TPM-bound bundle. Nothing is left loaded in the TPM.
func Generate(ctx context.Context, device string, now time.Time, lifetime time.Duration) (*certs.Bundle, error) {
	if lifetime <= 0 {
		return nil, fmt.Errorf("certificate lifetime must be positive, not %s", lifetime)
	}
	var b *certs.Bundle
	err := withTPM(ctx, device, "create a key in", func(s *session) error {
		created, err := tpm2.Create{ParentHandle: s.parent, InPublic: tpm2.New2B(signingTemplate)}.Execute(s.tpm)
		if err != nil {
			return s.fail("create an RSA-2048 key in", err)
		}
		k := &Key{Public: created.OutPublic, Private: created.OutPrivate}
		if k.pub, err = checkPublic(&k.Public); err != nil {
			return s.fail("create an RSA-2048 key in", err)
		}
		loaded, err := s.load(k)
		if err != nil {
			return err
		}
		cert, err := certs.SelfSign(now, lifetime, &loadedSigner{s: s, key: k, handle: loaded})
		if err != nil {
			var te *Error
			if errors.As(err, &te) {
				return te
			}
			return s.fail("self-sign the certificate with", err)
		}
		b = &certs.Bundle{Cert: cert, TPMKey: k.Block()}
		return nil
	})
	return b, err
}

// Signer signs with a TPM-bound key. Each Sign opens the TPM, re-creates the parent,
// loads the key, signs and flushes everything: no TPM state survives between calls.
// It signs SHA-256 digests, PKCS #1 v1.5 or PSS (salt length = hash length, which the
// TPM uses and Entra ID expects), and checks each signature against the public key.
type Signer struct {
	key    *Key
	device string
}

// NewSigner returns the signer of a TPM-bound bundle, for the TPM device names ("" for
// Device()). It checks, without a TPM, that the key block is one Generate makes and
// that its public key is the certificate's; the TPM is first used by Sign.
func NewSigner(b *certs.Bundle, device string) (*Signer, error) {
	if b == nil || b.Cert == nil || b.TPMKey == nil {
		return nil, errors.New("not a TPM-bound certificate bundle")
	}
	k, err := ParseBlock(b.TPMKey)
	if err != nil {
		return nil, err
	}
	if !k.pub.Equal(b.Cert.PublicKey) {
		return nil, fmt.Errorf("%w: its public key is not the certificate's", ErrInvalidBlock)
	}
	return &Signer{key: k, device: device}, nil
}

// Public returns the key's *rsa.PublicKey.
func (s *Signer) Public() crypto.PublicKey { return s.key.pub }

// Sign signs a SHA-256 digest in the TPM: PSS when opts is *rsa.PSSOptions, else
// PKCS #1 v1.5. The io.Reader is not used: the TPM has its own random source.
func (s *Signer) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.SignContext(context.Background(), r, digest, opts)
}

// SignContext is Sign that gives up when ctx ends (Ctrl-C during a token request).
func (s *Signer) SignContext(ctx context.Context, _ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := checkSignOpts(digest, opts); err != nil {
		return nil, err
	}
	var sig []byte
	err := withTPM(ctx, s.device, "sign with", func(ses *session) error {
		h, err := ses.load(s.key)
		if err != nil {
			return err
		}
		sig, err = ses.sign(s.key, h, digest, opts)
		return err
	})
	return sig, err
}

// loadedSigner signs with a key already loaded in an open session (Generate's certificate).
type loadedSigner struct {
	s      *session
	key    *Key
	handle tpm2.AuthHandle
}

func (l *loadedSigner) Public() crypto.PublicKey { return l.key.pub }

func (l *loadedSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := checkSignOpts(digest, opts); err != nil {
		return nil, err
	}
	return l.s.sign(l.key, l.handle, digest, opts)
}

func checkSignOpts(digest []byte, opts crypto.SignerOpts) error {
	if opts == nil || opts.HashFunc() != crypto.SHA256 || len(digest) != crypto.SHA256.Size() {
		return errors.New("TPM key: only SHA-256 digests are signed")
	}
	if pss, ok := opts.(*rsa.PSSOptions); ok {
		switch pss.SaltLength {
		case rsa.PSSSaltLengthAuto, rsa.PSSSaltLengthEqualsHash, crypto.SHA256.Size():
		default:
			return fmt.Errorf("TPM key: PSS salt length %d is not supported (the TPM uses the hash length)", pss.SaltLength)
		}
	}
	return nil
}

// verify checks a signature the TPM made against the key's public key: a TPM that used
// another PSS salt length (old firmware uses the maximum) would otherwise produce
// assertions Entra ID rejects.
func verify(pub *rsa.PublicKey, digest, sig []byte, opts crypto.SignerOpts) error {
	if _, ok := opts.(*rsa.PSSOptions); ok {
		return rsa.VerifyPSS(pub, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig)
}
