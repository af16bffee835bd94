package entra

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/tpmkey"
)

// An application may roll its own certificates through Graph's per-key actions,
// POST /applications/{id}/addKey and /removeKey, with no Graph permission at all: the
// request carries a proof of possession, a JWT signed with the private key of one of the
// app's currently valid certificates. Each action changes one key atomically, so, unlike
// a PATCH of the whole keyCredentials list built from a read, two machines rolling keys
// at once cannot drop each other's (Graph docs: application-addkey,
// application-removekey, application-rollkey-prooftoken; docs/internals.md "Renewal").

// proofAudience is the aud of a key-roll proof: the Azure AD Graph application id, which
// is what Graph's docs name for it.
const proofAudience = "00000002-0000-0000-c000-000000000000"

// proofLifetime is exp - nbf of a proof; Graph accepts at most 10 minutes.
const proofLifetime = 10 * time.Minute

// RollKeyProof makes the proof for addKey/removeKey on the application with object id
// objectID: header {"alg":"RS256","typ":"JWT","x5t": base64url SHA-1 of cert}, claims
// aud = proofAudience, iss = objectID (the object id, not the appId), nbf = now,
// exp = now + 10 min. signer is cert's private key (in memory or in a TPM); it signs
// one SHA-256 digest, PKCS #1 v1.5.
func RollKeyProof(ctx context.Context, objectID string, cert *x509.Certificate, signer crypto.Signer, now time.Time) (string, error) {
	if cert == nil || signer == nil {
		return "", errors.New("key-roll proof: no certificate and signer")
	}
	if !isGUID(objectID) {
		return "", fmt.Errorf("key-roll proof: application object id %q is not a GUID", objectID)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": proofAudience,
		"iss": objectID,
		"nbf": now.Unix(),
		"exp": now.Add(proofLifetime).Unix(),
	})
	tok.Header["x5t"] = certs.X5t(cert)
	unsigned, err := tok.SigningString()
	if err != nil {
		return "", fmt.Errorf("key-roll proof: %w", err)
	}
	digest := sha256.Sum256([]byte(unsigned))
	sig, err := signDigest(ctx, signer, digest[:])
	if err != nil {
		return "", fmt.Errorf("key-roll proof: sign with certificate %s: %w", certs.Thumbprint(cert), err)
	}
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// BundleSigner returns the signer of b's private key: the key itself, or the TPM that
// holds it.
func BundleSigner(b *certs.Bundle) (crypto.Signer, error) {
	switch {
	case b == nil || b.Cert == nil:
		return nil, errors.New("no certificate")
	case b.TPMBound():
		return tpmkey.NewSigner(b, "")
	case b.Key == nil:
		return nil, errors.New("certificate has no private key")
	}
	return b.Key, nil
}

// AddKey adds cert to the application's certificates through addKey, with proof (see
// RollKeyProof), and returns the key credential Graph made. Not retried after a
// 500/502/504, timeout or reset: the key may have been added; the caller reads the app
// to find out.
func (g *Graph) AddKey(ctx context.Context, objectID string, cert *x509.Certificate, displayName, proof string) (*KeyCredential, error) {
	k := NewKeyCredential(cert, displayName)
	in := map[string]any{"type": k.Type, "usage": k.Usage, "key": k.Key}
	if displayName != "" {
		in["displayName"] = displayName
	}
	var out KeyCredential
	err := g.do(ctx, call{
		method: http.MethodPost, path: objectPath("applications", objectID, "addKey"),
		body: map[string]any{"keyCredential": in, "passwordCredential": nil, "proof": proof},
		out:  &out, lagIDs: []string{objectID}, notIdempotent: true,
	})
	if err != nil {
		return nil, err
	}
	if out.KeyID == "" {
		return nil, errors.New("graph: POST " + objectPath("applications", objectID, "addKey") + ": the response has no keyId")
	}
	return &out, nil
}

// RemoveKey removes the certificate with keyID from the application through removeKey,
// with proof. Not retried after an ambiguous failure (a second try of an applied removal
// is a 400); the caller reads the app to find out.
func (g *Graph) RemoveKey(ctx context.Context, objectID, keyID, proof string) error {
	return g.do(ctx, call{
		method: http.MethodPost, path: objectPath("applications", objectID, "removeKey"),
		body:   map[string]string{"keyId": keyID, "proof": proof},
		lagIDs: []string{objectID}, notIdempotent: true,
	})
}

// IsProofRefused reports whether Graph refused a key-roll proof (401
// Authentication_MissingOrMalformed): not signed by a currently valid certificate of the
// app, or malformed.
func IsProofRefused(err error) bool {
	return HasCode(err, "Authentication_MissingOrMalformed") || (hasStatus(err, http.StatusUnauthorized) && strings.Contains(graphMessage(err), "proof"))
}

// ProvePossession checks that b's private key is its certificate's: it signs a random
// digest with the key (in memory or in the TPM) and verifies the signature with the
// certificate's public key. A bundle that pairs someone else's certificate with a key
// block it cannot use fails.
func ProvePossession(ctx context.Context, b *certs.Bundle) error {
	signer, err := BundleSigner(b)
	if err != nil {
		return err
	}
	pub, ok := b.Cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("the certificate's key is not RSA")
	}
	var digest [sha256.Size]byte
	if _, err := rand.Read(digest[:]); err != nil {
		return err
	}
	sig, err := signDigest(ctx, signer, digest[:])
	if err != nil {
		return err
	}
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
		return errors.New("its key does not sign for its certificate")
	}
	return nil
}

// signDigest signs a SHA-256 digest, PKCS #1 v1.5; a TPM signer gives up when ctx ends.
func signDigest(ctx context.Context, signer crypto.Signer, digest []byte) ([]byte, error) {
	if cs, ok := signer.(interface {
		SignContext(context.Context, io.Reader, []byte, crypto.SignerOpts) ([]byte, error)
	}); ok {
		return cs.SignContext(ctx, rand.Reader, digest, crypto.SHA256)
	}
	return signer.Sign(rand.Reader, digest, crypto.SHA256)
}
