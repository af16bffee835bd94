package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Workload identity federation: a CI job (or a Kubernetes pod) presents its own
// short-lived OIDC token as the client assertion, and Entra ID checks it against a
// federated identity credential (FIC) on the app: no secret and no certificate exist
// anywhere. The external token is fetched afresh for every token request, so an expired
// one (AADSTS700024, the classic failure of tools that exchange a CI token once and
// reuse it in a long job) cannot be presented.

// FederatedAudience is the audience Entra ID expects in external tokens, and the one a
// FIC names.
const FederatedAudience = "api://AzureADTokenExchange"

// maxExternalTokenSize bounds an external token read from a file, a variable or a CI
// endpoint.
const maxExternalTokenSize = 64 << 10

// FederatedSource is where the external token comes from.
type FederatedSource struct {
	// Name says which source, for messages: "GitHub Actions", "token file PATH", ...
	Name  string
	fetch func(ctx context.Context, do func(*http.Request) (*http.Response, error)) (string, error)
}

// FederatedSourceOptions choose the source: an explicit variable or file wins; then
// AZURE_FEDERATED_TOKEN_FILE, GitHub Actions, Azure Pipelines, in that order.
type FederatedSourceOptions struct {
	TokenFile           string // -federated-token-file (else AZURE_FEDERATED_TOKEN_FILE)
	TokenEnv            string // -federated-token-env NAME
	ServiceConnectionID string // Azure Pipelines (else AZURESUBSCRIPTION_SERVICE_CONNECTION_ID)
	Getenv              func(string) string
}

// FindFederatedSource picks the external token's source from o and the environment.
func FindFederatedSource(o FederatedSourceOptions) (*FederatedSource, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	switch {
	case o.TokenEnv != "":
		name := o.TokenEnv
		return &FederatedSource{Name: "environment variable " + name, fetch: func(context.Context, func(*http.Request) (*http.Response, error)) (string, error) {
			v := strings.TrimSpace(getenv(name))
			if v == "" {
				return "", fmt.Errorf("environment variable %s is empty or unset", name)
			}
			return v, nil
		}}, nil
	case o.TokenFile != "" || getenv("AZURE_FEDERATED_TOKEN_FILE") != "":
		path := o.TokenFile
		if path == "" {
			path = getenv("AZURE_FEDERATED_TOKEN_FILE")
		}
		return &FederatedSource{Name: "token file " + path, fetch: func(context.Context, func(*http.Request) (*http.Response, error)) (string, error) {
			return readTokenFile(path)
		}}, nil
	case getenv("ACTIONS_ID_TOKEN_REQUEST_URL") != "":
		reqURL, reqToken := getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
		if reqToken == "" {
			return nil, errors.New("GitHub Actions: ACTIONS_ID_TOKEN_REQUEST_URL is set but ACTIONS_ID_TOKEN_REQUEST_TOKEN is not (the job needs `permissions: id-token: write`)")
		}
		return &FederatedSource{Name: "GitHub Actions", fetch: func(ctx context.Context, do func(*http.Request) (*http.Response, error)) (string, error) {
			return fetchGitHubToken(ctx, do, reqURL, reqToken)
		}}, nil
	case getenv("SYSTEM_OIDCREQUESTURI") != "":
		uri, access := getenv("SYSTEM_OIDCREQUESTURI"), getenv("SYSTEM_ACCESSTOKEN")
		conn := o.ServiceConnectionID
		if conn == "" {
			conn = getenv("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID")
		}
		if access == "" || conn == "" {
			return nil, errors.New("Azure Pipelines: SYSTEM_OIDCREQUESTURI is set but SYSTEM_ACCESSTOKEN or the service connection id (-service-connection-id / AZURESUBSCRIPTION_SERVICE_CONNECTION_ID) is not")
		}
		return &FederatedSource{Name: "Azure Pipelines", fetch: func(ctx context.Context, do func(*http.Request) (*http.Response, error)) (string, error) {
			return fetchPipelinesToken(ctx, do, uri, access, conn)
		}}, nil
	}
	return nil, errors.New("no external token found: set -federated-token-file (or AZURE_FEDERATED_TOKEN_FILE), -federated-token-env NAME, or run in GitHub Actions (ACTIONS_ID_TOKEN_REQUEST_URL) or Azure Pipelines (SYSTEM_OIDCREQUESTURI)")
}

// readTokenFile reads the token file afresh (Kubernetes rotates it).
func readTokenFile(path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if !info.Mode().IsRegular() || info.Size() > maxExternalTokenSize {
		return "", fmt.Errorf("token file %s is not a regular file of at most %d bytes", path, maxExternalTokenSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return tok, nil
}

// fetchGitHubToken asks GitHub Actions for an OIDC token for Entra ID's audience. The
// request URL already has a query string.
func fetchGitHubToken(ctx context.Context, do func(*http.Request) (*http.Response, error), reqURL, reqToken string) (string, error) {
	sep := "&"
	if !strings.Contains(reqURL, "?") {
		sep = "?"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reqURL+sep+"audience="+url.QueryEscape(FederatedAudience), nil)
	if err != nil {
		return "", fmt.Errorf("GitHub Actions: ACTIONS_ID_TOKEN_REQUEST_URL: %w", err)
	}
	req.Header.Set("Authorization", "bearer "+reqToken)
	var out struct {
		Value string `json:"value"`
	}
	if err := ciTokenRequest(do, req, "GitHub Actions", &out); err != nil {
		return "", err
	}
	return out.Value, nonEmpty("GitHub Actions", out.Value)
}

// fetchPipelinesToken asks Azure Pipelines for the service connection's OIDC token.
func fetchPipelinesToken(ctx context.Context, do func(*http.Request) (*http.Response, error), uri, access, conn string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("Azure Pipelines: SYSTEM_OIDCREQUESTURI: %w", err)
	}
	q := u.Query()
	q.Set("api-version", "7.1")
	q.Set("serviceConnectionId", conn)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(""))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("Content-Type", "application/json")
	var out struct {
		OIDCToken string `json:"oidcToken"`
	}
	if err := ciTokenRequest(do, req, "Azure Pipelines", &out); err != nil {
		return "", err
	}
	return out.OIDCToken, nonEmpty("Azure Pipelines", out.OIDCToken)
}

// ciTokenRequest sends req and decodes its JSON answer into out. Errors name the CI
// system and the HTTP status, never the request token.
func ciTokenRequest(do func(*http.Request) (*http.Response, error), req *http.Request, system string, out any) error {
	resp, err := do(req)
	if err != nil {
		return fmt.Errorf("%s: request the OIDC token from %s: %s", system, req.URL.Host, firstLine(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: the OIDC token request to %s answered HTTP %d", system, req.URL.Host, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxExternalTokenSize)).Decode(out); err != nil {
		return fmt.Errorf("%s: the OIDC token answer is not JSON: %v", system, err)
	}
	return nil
}

func nonEmpty(system, tok string) error {
	if strings.TrimSpace(tok) == "" {
		return fmt.Errorf("%s: the OIDC token answer holds no token", system)
	}
	return nil
}

// NewFederatedCredential builds the provisioner's credential from an external token:
// azidentity's client-assertion credential, whose callback fetches the token from src
// afresh for every token request. Instance discovery is off, the cloud's transport
// (-ca-file) applies to the CI endpoints too.
func NewFederatedCredential(c Cloud, tenant, client string, src *FederatedSource, o CredentialOptions) (azcore.TokenCredential, error) {
	if err := validateIDs(tenant, client); err != nil {
		return nil, err
	}
	opts := c.ClientOptions(o)
	do := http.DefaultClient.Do
	if opts.Transport != nil {
		do = opts.Transport.Do
	}
	fc := &federatedCredential{src: src}
	cred, err := azidentity.NewClientAssertionCredential(tenant, client, func(ctx context.Context) (string, error) {
		tok, err := src.fetch(ctx, do)
		if err != nil {
			return "", err
		}
		fc.presented(tok)
		return tok, nil
	}, &azidentity.ClientAssertionCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true})
	if err != nil {
		return nil, fmt.Errorf("federated credential: %s", firstLine(err.Error()))
	}
	fc.inner = cred
	return fc, nil
}

// federatedCredential remembers what the last external token claimed (never the token),
// to explain a mismatch.
type federatedCredential struct {
	inner azcore.TokenCredential
	src   *FederatedSource

	mu            sync.Mutex
	iss, sub, aud string
}

func (f *federatedCredential) presented(tok string) {
	d, err := DecodeJWT(tok)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.iss, f.sub, f.aud = "", "", ""
	if err != nil {
		return
	}
	f.iss, f.sub = d.String("iss"), d.String("sub")
	if aud, err := d.Audience(); err == nil {
		f.aud = strings.Join(aud, ",")
	}
}

func (f *federatedCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := f.inner.GetToken(ctx, o)
	if err != nil {
		f.mu.Lock()
		iss, sub, aud := f.iss, f.sub, f.aud
		f.mu.Unlock()
		return tok, typed(explainFederated(err, f.src.Name, iss, sub, aud))
	}
	return tok, nil
}

// FederatedMismatchError is Entra ID refusing the external token: no FIC matched, the
// token was outside its validity, or it was an Entra token. It says what the token
// presented (iss, sub, aud: claims, never the token) so the FIC can be fixed.
type FederatedMismatchError struct {
	Code          int
	Source        string
	Iss, Sub, Aud string
	Err           error
}

func (e *FederatedMismatchError) Error() string {
	what := map[int]string{
		70021:   "no federated credential on the app matches the presented token (or a new one has not reached the token service yet)",
		700211:  "no federated credential on the app has the presented issuer",
		700212:  "no federated credential on the app has the presented audience",
		700213:  "no federated credential on the app has the presented subject",
		7002138: "the presented subject matches a federated credential only when case is ignored",
		700024:  "the presented token is outside its validity (expired or not yet valid)",
		700222:  "the presented token was issued by Entra ID itself, not by the CI system",
	}[e.Code]
	return fmt.Sprintf("AADSTS%d: %s: iss %q, sub %q, aud %q (from %s)", e.Code, what, e.Iss, e.Sub, e.Aud, e.Source)
}

func (e *FederatedMismatchError) Unwrap() error { return e.Err }

// Hint says how to fix it: matching is exact and case-sensitive.
func (e *FederatedMismatchError) Hint() string {
	switch e.Code {
	case 700024:
		return "the token is fetched afresh for every request: check the CI runner's clock, or that the token file is being rotated"
	case 700222:
		return "present the CI system's own OIDC token (not an Entra ID access token)"
	case 70021:
		return "issuer, subject and audience must equal a federated credential's exactly (case-sensitive, no trailing slash); a credential added minutes ago may still be propagating: retry in a few minutes; `az ad app federated-credential list --id <client id>` shows them"
	}
	return "issuer, subject and audience must equal a federated credential's exactly (case-sensitive, no trailing slash): fix the credential with `entraclaw-migrate -federate …`, or the CI job's environment/branch; `az ad app federated-credential list --id <client id>` shows them"
}

// explainFederated turns the federation AADSTS codes into a FederatedMismatchError.
func explainFederated(err error, source, iss, sub, aud string) error {
	sts, ok := AsSTSError(err)
	if !ok {
		return err
	}
	for _, code := range []int{7002138, 700211, 700212, 700213, 70021, 700024, 700222} {
		if sts.HasCode(code) {
			return &FederatedMismatchError{Code: code, Source: source, Iss: iss, Sub: sub, Aud: aud, Err: err}
		}
	}
	return err
}
