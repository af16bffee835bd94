package entra

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/tpmkey"
)

// assertionLifetime is how long a client assertion is valid, as MSAL makes them.
const assertionLifetime = 10 * time.Minute

// NewSignerCredential builds the provisioner's certificate credential for a private key
// that only signs, such as one that never leaves a TPM. azidentity's certificate
// credential takes nothing but an in-memory *rsa.PrivateKey, so this credential builds
// the client assertion itself, as MSAL builds it for Entra ID, and hands it to
// azidentity's client-assertion credential: header {"alg":"PS256","typ":"JWT",
// "x5t#S256": standard base64 of the SHA-256 of the certificate}, claims aud = the
// token endpoint (<authority host><tenant>/oauth2/v2.0/token; for a tenant given as a
// domain, the one its OIDC metadata names), iss = sub = client, a
// random jti, nbf = now, exp = now + 10 min. Entra ID accepts it as a certificate
// credential (appidacr 2). The cloud's authority host, transport and retries apply as
// for NewCertificateCredential; instance discovery is off. The signer is called once
// per token request (azidentity keeps the token in memory).
func NewSignerCredential(c Cloud, tenant, client string, cert *x509.Certificate, signer crypto.Signer, o CredentialOptions) (azcore.TokenCredential, error) {
	if err := validateIDs(tenant, client); err != nil {
		return nil, err
	}
	if cert == nil || signer == nil {
		return nil, errors.New("certificate credential: no certificate and signer")
	}
	pub, ok := signer.Public().(*rsa.PublicKey)
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("certificate credential: the signing key is not the certificate's RSA key")
	}
	x5t := sha256.Sum256(cert.Raw)
	opts := c.ClientOptions(o)
	a := &assertion{
		signer:    signer,
		authority: strings.TrimRight(c.AuthorityHost, "/") + "/",
		tenant:    tenant,
		client:    client,
		x5tS256:   base64.StdEncoding.EncodeToString(x5t[:]),
		transport: opts.Transport,
	}
	cred, err := azidentity.NewClientAssertionCredential(tenant, client, a.make, &azidentity.ClientAssertionCredentialOptions{
		ClientOptions:            opts,
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		return nil, fmt.Errorf("certificate credential: %s", firstLine(err.Error()))
	}
	return &signerCredential{inner: cred, a: a}, nil
}

// assertion makes the client assertions of one credential.
type assertion struct {
	signer                    crypto.Signer
	authority, tenant, client string // authority ends in "/"
	x5tS256                   string
	transport                 policy.Transporter // nil: http.DefaultClient
	now                       func() time.Time   // nil: time.Now

	mu       sync.Mutex
	signErr  error  // the last signing failure, for signerCredential
	audience string // the token endpoint, once known
}

// aud is the token endpoint the assertion is for. For a tenant GUID it is
// <authority><tenant>/oauth2/v2.0/token, the endpoint the OIDC metadata names. For a
// tenant given as a domain, the metadata's token endpoint names the tenant by GUID, and
// MSAL uses that: so does this, read once from the metadata (azidentity's callback is not
// told the endpoint). If the metadata cannot be read, azidentity's own request will fail
// and say why; the assertion then uses the domain form.
func (a *assertion) aud(ctx context.Context) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.audience != "" {
		return a.audience
	}
	endpoint := a.authority + a.tenant + "/oauth2/v2.0/token"
	if isGUID(a.tenant) {
		a.audience = endpoint
		return endpoint
	}
	if resolved, err := a.tokenEndpoint(ctx); err == nil {
		a.audience = resolved
		return resolved
	}
	return endpoint
}

// tokenEndpoint reads token_endpoint from the tenant's OIDC metadata; it must be on the
// authority's host.
func (a *assertion) tokenEndpoint(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.authority+a.tenant+"/v2.0/.well-known/openid-configuration", nil)
	if err != nil {
		return "", err
	}
	var do func(*http.Request) (*http.Response, error) = http.DefaultClient.Do
	if a.transport != nil {
		do = a.transport.Do
	}
	resp, err := do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("OIDC metadata: HTTP %d", resp.StatusCode)
	}
	var meta struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&meta); err != nil {
		return "", err
	}
	got, err1 := url.Parse(meta.TokenEndpoint)
	want, err2 := url.Parse(a.authority)
	if err1 != nil || err2 != nil || got.Scheme != "https" || !strings.EqualFold(got.Host, want.Host) {
		return "", errors.New("OIDC metadata: token_endpoint is not on the authority host")
	}
	return meta.TokenEndpoint, nil
}

func (a *assertion) make(ctx context.Context) (string, error) {
	now := time.Now()
	if a.now != nil {
		now = a.now()
	}
	jti, err := randomUUID()
	if err != nil {
		return "", err
	}
	header, _ := json.Marshal(struct {
		Alg     string `json:"alg"`
		Typ     string `json:"typ"`
		X5tS256 string `json:"x5t#S256"`
	}{"PS256", "JWT", a.x5tS256})
	claims, _ := json.Marshal(struct {
		Aud string `json:"aud"`
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Jti string `json:"jti"`
		Nbf int64  `json:"nbf"`
		Exp int64  `json:"exp"`
	}{a.aud(ctx), a.client, a.client, jti, now.Unix(), now.Add(assertionLifetime).Unix()})
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	digest := sha256.Sum256([]byte(input))
	opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	var sig []byte
	if cs, ok := a.signer.(contextSigner); ok { // a TPM: give up at Ctrl-C
		sig, err = cs.SignContext(ctx, rand.Reader, digest[:], opts)
	} else {
		sig, err = a.signer.Sign(rand.Reader, digest[:], opts)
	}
	if err != nil {
		err = fmt.Errorf("sign the client assertion: %w", err)
		a.mu.Lock()
		a.signErr = err
		a.mu.Unlock()
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// contextSigner is a crypto.Signer whose signing can be cancelled.
type contextSigner interface {
	SignContext(ctx context.Context, r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error)
}

func randomUUID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", fmt.Errorf("client assertion id: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}

// signerCredential returns the signer's own error when signing failed: azidentity wraps
// it in a multi-line text, and a TPM's error is one line that says what to do. Other
// failures are typed (*AuthError).
type signerCredential struct {
	inner azcore.TokenCredential
	a     *assertion
}

func (s *signerCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	s.a.mu.Lock()
	s.a.signErr = nil
	s.a.mu.Unlock()
	tok, err := s.inner.GetToken(ctx, o)
	if err != nil {
		s.a.mu.Lock()
		signErr := s.a.signErr
		s.a.mu.Unlock()
		if signErr != nil {
			return tok, signErr
		}
		return tok, typed(err)
	}
	return tok, nil
}

// tpmCredential is NewCertificateCredential for a bundle whose key is in the TPM.
func tpmCredential(c Cloud, tenant, client string, b *certs.Bundle, o CredentialOptions) (azcore.TokenCredential, error) {
	signer, err := tpmkey.NewSigner(b, "")
	if err != nil {
		return nil, fmt.Errorf("certificate credential: %w", err)
	}
	return NewSignerCredential(c, tenant, client, b.Cert, signer, o)
}
