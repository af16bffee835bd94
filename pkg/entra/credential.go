package entra

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

// Operator credential kinds accepted by NewOperatorCredential. OperatorProvisioner
// is resolved by the caller, which passes the provisioner's certificate credential.
const (
	OperatorAzureCLI    = "azcli"
	OperatorDeviceCode  = "device-code"
	OperatorProvisioner = "provisioner"
)

// Every credential here is built with DisableInstanceDiscovery. The authority hosts of the
// built-in clouds (public, usgov, china) are known, and a custom host is trusted by the
// operator who named it, so MSAL's instance-discovery request (GET
// {host}/common/discovery/instance) would add only a round trip: a cold token is 2
// requests (OIDC metadata + token POST) on every cloud, not 3.

// CredentialOptions tune the HTTP side of a credential.
type CredentialOptions struct {
	// Transport sends the requests; nil means azcore's default HTTP client, which
	// honours HTTPS_PROXY/NO_PROXY and, on Linux, SSL_CERT_FILE.
	Transport policy.Transporter
	// Retry configures azcore's retries of token requests (408, 429, 5xx).
	Retry policy.RetryOptions
}

// NewCertificateCredential builds the provisioner app's certificate credential
// for tenant and client. Instance discovery is off on every cloud. A bundle whose
// key is in the TPM (b.TPMBound) gets NewSignerCredential with the TPM signing: the
// TPM is first used by the first token request, not here.
func NewCertificateCredential(c Cloud, tenant, client string, b *certs.Bundle, o CredentialOptions) (azcore.TokenCredential, error) {
	if err := validateIDs(tenant, client); err != nil {
		return nil, err
	}
	if b != nil && b.Cert != nil && b.TPMBound() {
		return tpmCredential(c, tenant, client, b, o)
	}
	if b == nil || b.Cert == nil || b.Key == nil {
		return nil, errors.New("certificate credential: no certificate and private key")
	}
	cred, err := azidentity.NewClientCertificateCredential(tenant, client, []*x509.Certificate{b.Cert}, b.Key, &azidentity.ClientCertificateCredentialOptions{
		ClientOptions:            c.ClientOptions(o),
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		return nil, fmt.Errorf("certificate credential: %s", firstLine(err.Error()))
	}
	return typedCredential{inner: cred, describe: typed}, nil
}

// NewSecretCredential builds a client-secret credential for tenant and client.
// Instance discovery is off on every cloud.
func NewSecretCredential(c Cloud, tenant, client, secret string, o CredentialOptions) (azcore.TokenCredential, error) {
	if err := validateIDs(tenant, client); err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, errors.New("secret credential: the client secret is empty")
	}
	cred, err := azidentity.NewClientSecretCredential(tenant, client, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            c.ClientOptions(o),
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		return nil, fmt.Errorf("secret credential: %s", firstLine(err.Error()))
	}
	return typedCredential{inner: cred, describe: typed}, nil
}

// NewOperatorCredential builds the credential of the person running the
// migration: kind "azcli" uses the Azure CLI's login (tenant, when set, is
// passed as --tenant); kind "device-code" runs the device-code flow and writes
// its prompt to stderr (os.Stderr when nil), never to stdout. "provisioner" is
// not built here: the caller passes the provisioner's certificate credential.
// Any other kind is an ErrInvalidArgument.
func NewOperatorCredential(kind string, c Cloud, tenant string, stderr io.Writer, o CredentialOptions) (azcore.TokenCredential, error) {
	if tenant != "" {
		if err := ValidateTenantID(tenant); err != nil {
			return nil, err
		}
	}
	switch kind {
	case OperatorAzureCLI:
		// az uses its own cloud configuration (az cloud set). AzureCLICredential
		// refuses scopes with characters other than letters, digits and ". - _ / :",
		// so say so now rather than at the first token request.
		if !azureCLIScopeOK(c.GraphScope()) {
			return nil, invalidArgument("-graph-endpoint %q cannot be used with -operator-auth azcli: az accepts only letters, digits and . - _ / : in the resource", c.GraphEndpoint)
		}
		cred, err := azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: tenant})
		if err != nil {
			return nil, fmt.Errorf("azure cli credential: %s", firstLine(err.Error()))
		}
		return typedCredential{inner: cred, describe: azureCLIFailure}, nil
	case OperatorDeviceCode:
		if stderr == nil {
			stderr = os.Stderr
		}
		capture := &stsCapture{}
		opts := c.ClientOptions(o)
		opts.PerCallPolicies = append(opts.PerCallPolicies, capture)
		cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
			ClientOptions:            opts,
			DisableInstanceDiscovery: true,
			TenantID:                 tenant,
			UserPrompt: func(_ context.Context, m azidentity.DeviceCodeMessage) error {
				_, err := fmt.Fprintln(stderr, m.Message)
				return err
			},
		})
		if err != nil {
			return nil, fmt.Errorf("device code credential: %s", firstLine(err.Error()))
		}
		return &singleSignIn{inner: cred, tenant: tenant, capture: capture}, nil
	default:
		return nil, invalidArgument("unknown operator credential %q for -operator-auth: valid values are %s, %s, %s",
			kind, OperatorAzureCLI, OperatorDeviceCode, OperatorProvisioner)
	}
}

// singleSignIn makes one interactive credential sign the user in once per run.
// azidentity keeps separate MSAL clients and caches for CAE and non-CAE requests, and
// azcore's bearer-token policy always asks with CAE on, so a non-CAE GetToken (FetchToken)
// followed by Graph calls would prompt twice — and the second prompt could be completed
// as someone else. Every request is therefore made with EnableCAE, so they share one
// cache; and a token for another tenant than the first one (or than the -tenant-id
// asked for) is refused.
type singleSignIn struct {
	inner   azcore.TokenCredential
	tenant  string      // as configured; "" for organizations
	capture *stsCapture // nil in tests

	mu  sync.Mutex
	tid string // the tenant of the first token
}

func (s *singleSignIn) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	o.EnableCAE = true
	tok, err := s.inner.GetToken(ctx, o)
	if err != nil {
		return tok, typed(s.capture.explain(err))
	}
	tid := tokenTenant(tok.Token)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case tid == "":
	case isGUID(s.tenant) && !strings.EqualFold(tid, s.tenant):
		return azcore.AccessToken{}, fmt.Errorf("device code: you signed in to tenant %s, but the tenant is %s: sign in with an account of tenant %s", tid, s.tenant, s.tenant)
	case s.tid == "":
		s.tid = tid
	case !strings.EqualFold(tid, s.tid):
		return azcore.AccessToken{}, fmt.Errorf("device code: the second sign-in of this run is for tenant %s, the first was for tenant %s: refusing to mix tenants; run again and sign in with one account", tid, s.tid)
	}
	return tok, nil
}

// stsCapture keeps the body of the last failed token-endpoint answer. MSAL's device-code
// poller reads the error body itself (authorization_pending), so the azidentity error it
// returns carries an empty body and AsSTSError could not tell AADSTS53003 (Conditional
// Access) from any other failure.
type stsCapture struct {
	mu   sync.Mutex
	body []byte
}

func (c *stsCapture) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err == nil && resp.StatusCode >= 400 && strings.HasSuffix(req.Raw().URL.Path, "/token") {
		if body, rerr := runtime.Payload(resp); rerr == nil {
			c.mu.Lock()
			c.body = body
			c.mu.Unlock()
		}
	}
	return resp, err
}

// explain types err with the captured STS error when err itself has lost it.
func (c *stsCapture) explain(err error) error {
	if c == nil {
		return err
	}
	if _, ok := AsSTSError(err); ok {
		return err
	}
	c.mu.Lock()
	body := c.body
	c.mu.Unlock()
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil {
		return err
	}
	if sts, ok := parseSTSBody(afe.RawResponse.StatusCode, body); ok {
		return &AuthError{Summary: sts.Error(), HintText: sts.Hint(), STS: sts, Err: err}
	}
	return err
}

// tokenTenant reads the tid claim of a JWT without verifying it (the tenant the
// credential signed into); "" when it cannot be read.
func tokenTenant(raw string) string {
	d, err := DecodeJWT(raw)
	if err != nil {
		return ""
	}
	return d.TenantID()
}

// FetchToken asks cred for one token for scope. Its failure is typed (*AuthError,
// *FederatedMismatchError) whatever credential cred is.
func FetchToken(ctx context.Context, cred azcore.TokenCredential, scope string) (azcore.AccessToken, error) {
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	return tok, typed(err)
}

// azureCLIScopeOK mirrors AzureCLICredential's check of the scope it passes to az.
func azureCLIScopeOK(scope string) bool {
	for _, r := range scope {
		ok := 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(".-_/:", r)
		if !ok {
			return false
		}
	}
	return true
}

func validateIDs(tenant, client string) error {
	if err := ValidateTenantID(tenant); err != nil {
		return err
	}
	return ValidateClientID(client)
}

// FetchGraphClientToken gets a token the way the Graph client's bearer policy asks for
// one (azcore requests CAE tokens: EnableCAE), so that reading the sign-in's claims first
// and then calling Graph with the same credential costs one token request, not two.
// Tokens handed to scripts come from FetchToken (no CAE: a script cannot answer a claims
// challenge).
func FetchGraphClientToken(ctx context.Context, cred azcore.TokenCredential, scope string) (azcore.AccessToken, error) {
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}, EnableCAE: true})
	return tok, typed(err)
}
