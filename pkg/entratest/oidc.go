package entratest

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The external identity providers the fake plays. Each is an OIDC issuer with its own
// RS256 signing keys, served under /_oidc/<kind>/ on the fake's HTTPS server.
const (
	issuerGitHub    = "github"    // GitHub Actions: the real issuer string, keys known locally
	issuerPipelines = "pipelines" // Azure Pipelines: https://vstoken.dev.azure.com/<org id>, keys known locally
	issuerK8s       = "k8s"       // a Kubernetes cluster: the fake's own URL, discovered over TLS
)

var oidcIssuerKinds = []string{issuerGitHub, issuerPipelines, issuerK8s}

// GitHubIssuer is the issuer of GitHub Actions' OIDC tokens. The fake's GitHub-shaped
// tokens carry it, and its token service knows their keys without a discovery fetch.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// FederationAudience is the audience Entra ID expects in external tokens by default, the
// one GitHub's request gets when it names none.
const FederationAudience = "api://AzureADTokenExchange"

// DefaultOIDCSubject is the sub of the fake's GitHub-shaped tokens unless WithOIDCSubject
// says otherwise.
const DefaultOIDCSubject = "repo:acme/app:environment:prod"

// Default Kubernetes service account of the fake's Kubernetes-style tokens.
const (
	DefaultK8sNamespace      = "entraclaw"
	DefaultK8sServiceAccount = "provisioner"
)

// Lifetimes of the external tokens the fake mints, as the real providers issue them:
// GitHub's ID tokens live 5 minutes (its docs' sample), Azure Pipelines' 10 minutes
// (unverified), projected service-account tokens 1 hour (azure-workload-identity's default
// expirationSeconds).
const (
	gitHubTokenLifetime    = 5 * time.Minute
	pipelinesTokenLifetime = 10 * time.Minute
	k8sTokenLifetime       = time.Hour
)

// oidcKeyOverlap is how long a signing key replaced by RotateOIDCKey stays in its
// issuer's JWKS, so tokens it signed still verify.
const oidcKeyOverlap = 24 * time.Hour

// federation holds the knobs of workload identity federation.
type federation struct {
	// ficPropagation: a created or changed federated identity credential is accepted by
	// the STS only this long after the write (AADSTS70021 until then).
	ficPropagation time.Duration
	// oidcSubject is the sub of GitHub-shaped tokens ("" = DefaultOIDCSubject).
	oidcSubject string
	// k8sNamespace and k8sServiceAccount make the sub of Kubernetes-style tokens.
	k8sNamespace, k8sServiceAccount string
}

// WithFICPropagationDelay makes the token service accept a federated identity credential
// created or changed through Graph (or AddFIC) only d after the write; before that an
// exchange it would match answers AADSTS70021. Default 0.
func WithFICPropagationDelay(d time.Duration) Option {
	return func(k *knobs) { k.ficPropagation = d }
}

// SetFICPropagationDelay changes the FIC propagation delay for writes made from now on.
func (s *Server) SetFICPropagationDelay(d time.Duration) {
	s.setKnob(func(k *knobs) { k.ficPropagation = d })
}

// WithOIDCSubject sets the sub claim of the GitHub-shaped tokens (default
// DefaultOIDCSubject, "repo:acme/app:environment:prod").
func WithOIDCSubject(sub string) Option { return func(k *knobs) { k.oidcSubject = sub } }

// SetOIDCSubject changes the sub claim of GitHub-shaped tokens minted from now on.
func (s *Server) SetOIDCSubject(sub string) { s.setKnob(func(k *knobs) { k.oidcSubject = sub }) }

// WithK8sServiceAccount sets the service account of Kubernetes-style tokens: their sub is
// system:serviceaccount:NAMESPACE:NAME (default entraclaw:provisioner).
func WithK8sServiceAccount(namespace, name string) Option {
	return func(k *knobs) { k.k8sNamespace, k.k8sServiceAccount = namespace, name }
}

func (f federation) githubSubject() string {
	if f.oidcSubject == "" {
		return DefaultOIDCSubject
	}
	return f.oidcSubject
}

func (f federation) k8sAccount() (namespace, name string) {
	namespace, name = f.k8sNamespace, f.k8sServiceAccount
	if namespace == "" {
		namespace = DefaultK8sNamespace
	}
	if name == "" {
		name = DefaultK8sServiceAccount
	}
	return namespace, name
}

// K8sSubject is the sub of the fake's Kubernetes-style tokens,
// system:serviceaccount:NAMESPACE:NAME.
func (s *Server) K8sSubject() string {
	ns, sa := s.currentKnobs().k8sAccount()
	return "system:serviceaccount:" + ns + ":" + sa
}

// oidcState is the fake's external identity providers: signing keys per issuer and the
// credentials their token endpoints require. It is built on first use (RSA keys are slow
// to generate and most tests never federate).
type oidcState struct {
	mu                   sync.Mutex
	ready                bool
	keys                 map[string][]*oidcKey // by issuer kind; the last one signs
	handedOut            atomic.Int32          // OIDC keys newOIDCKey has handed out
	githubRequestToken   string
	pipelinesAccessToken string
	pipelinesOrgID       string
	pipelinesConnection  string
}

// oidcKey is one signing key of an issuer; retiredAt is when RotateOIDCKey replaced it.
type oidcKey struct {
	kid       string
	key       *rsa.PrivateKey
	retiredAt time.Time
}

// newOIDCKey is the server's next OIDC signing key (sharedKeys: distinct within the server).
func (s *Server) newOIDCKey() (*oidcKey, error) {
	key, err := sharedKey(tokenSignerKey + int(s.oidc.handedOut.Add(1)))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(key.PublicKey.N.Bytes())
	return &oidcKey{kid: base64.RawURLEncoding.EncodeToString(sum[:16]), key: key}, nil
}

// lockedOIDC locks the OIDC state, building it on first use; the caller unlocks o.mu.
func (s *Server) lockedOIDC() (*oidcState, error) {
	o := &s.oidc
	o.mu.Lock()
	if o.ready {
		return o, nil
	}
	o.keys = map[string][]*oidcKey{}
	for _, kind := range oidcIssuerKinds {
		k, err := s.newOIDCKey()
		if err != nil {
			o.mu.Unlock()
			return nil, err
		}
		o.keys[kind] = []*oidcKey{k}
	}
	o.githubRequestToken = randomString(40)
	o.pipelinesAccessToken = randomString(52)
	o.pipelinesOrgID = newGUID()
	o.pipelinesConnection = newGUID()
	o.ready = true
	return o, nil
}

// RotateOIDCKey gives every external issuer (GitHub-, Pipelines- and Kubernetes-style) a
// new signing key. The old key stays in the issuer's JWKS for 24 hours of the server's
// clock, so tokens it signed still verify; new tokens are signed with the new key.
func (s *Server) RotateOIDCKey() error {
	now := s.now()
	fresh := map[string]*oidcKey{}
	for _, kind := range oidcIssuerKinds {
		k, err := s.newOIDCKey()
		if err != nil {
			return err
		}
		fresh[kind] = k
	}
	o, err := s.lockedOIDC()
	if err != nil {
		return err
	}
	defer o.mu.Unlock()
	for _, kind := range oidcIssuerKinds {
		keys := o.keys[kind]
		keys[len(keys)-1].retiredAt = now
		o.keys[kind] = append(keys, fresh[kind])
	}
	return nil
}

// OIDCIssuerURL is the issuer of the fake's Kubernetes-style tokens, on the fake's own
// server: https://127.0.0.1:PORT/_oidc/k8s (no trailing slash). Its discovery document is
// OIDCIssuerURL()+"/.well-known/openid-configuration".
func (s *Server) OIDCIssuerURL() string { return s.URL + "/_oidc/" + issuerK8s }

// PipelinesIssuer is the issuer of the fake's Azure-Pipelines-style tokens,
// https://vstoken.dev.azure.com/<the fake organization's id>.
func (s *Server) PipelinesIssuer() string {
	o, err := s.lockedOIDC()
	if err != nil {
		return ""
	}
	defer o.mu.Unlock()
	return "https://vstoken.dev.azure.com/" + o.pipelinesOrgID
}

// issuerURL is the iss claim of a kind of issuer.
func (s *Server) issuerURL(kind string) string {
	switch kind {
	case issuerGitHub:
		return GitHubIssuer
	case issuerPipelines:
		return s.PipelinesIssuer()
	default:
		return s.OIDCIssuerURL()
	}
}

// localIssuerKind tells which of the fake's issuers iss names and whether the token
// service knows its keys without discovery (GitHub and Pipelines, whose real hosts this
// fake cannot serve). The fake's own Kubernetes issuer is not local: the STS discovers it
// over TLS like any other.
func (s *Server) localIssuerKind(iss string) (string, bool) {
	switch iss {
	case GitHubIssuer:
		return issuerGitHub, true
	case s.PipelinesIssuer():
		return issuerPipelines, true
	}
	return "", false
}

// publishedKeys returns the public keys in an issuer's JWKS now, by kid.
func (s *Server) publishedKeys(kind string, now time.Time) (map[string]*rsa.PublicKey, error) {
	o, err := s.lockedOIDC()
	if err != nil {
		return nil, err
	}
	defer o.mu.Unlock()
	out := map[string]*rsa.PublicKey{}
	for _, k := range o.keys[kind] {
		if k.retiredAt.IsZero() || now.Before(k.retiredAt.Add(oidcKeyOverlap)) {
			out[k.kid] = &k.key.PublicKey
		}
	}
	return out, nil
}

// signExternal signs claims with the current key of an issuer (RS256, kid header).
func (s *Server) signExternal(kind string, claims jwt.MapClaims) (string, error) {
	o, err := s.lockedOIDC()
	if err != nil {
		return "", err
	}
	keys := o.keys[kind]
	current := keys[len(keys)-1]
	o.mu.Unlock()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = current.kid
	return tok.SignedString(current.key)
}

// MintExternalToken signs an external OIDC token with the claims given, for tests of the
// federated exchange. Missing claims get defaults: iss OIDCIssuerURL(), sub the GitHub
// subject (WithOIDCSubject), aud api://AzureADTokenExchange, iat and nbf now, exp now + 5
// minutes, a random jti; a claim set to nil is left out. It is signed by the current key
// of the issuer its iss names (GitHub's, the Pipelines organization's, else the fake's
// own Kubernetes-style issuer), so a token claiming an issuer the fake does not play
// fails signature validation at the token service.
func (s *Server) MintExternalToken(claims map[string]any) (string, error) {
	k := s.currentKnobs()
	now := k.clock()
	out := jwt.MapClaims{
		"iss": s.OIDCIssuerURL(), "sub": k.githubSubject(), "aud": FederationAudience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(gitHubTokenLifetime).Unix(), "jti": newGUID(),
	}
	for name, v := range claims {
		if v == nil {
			delete(out, name)
			continue
		}
		out[name] = v
	}
	iss, _ := out["iss"].(string)
	kind, ok := s.localIssuerKind(iss)
	if !ok {
		kind = issuerK8s
	}
	return s.signExternal(kind, out)
}

// ---- discovery and JWKS -------------------------------------------------------------------

// matchOIDC classifies a request under /_oidc/ (path without its leading slash).
func matchOIDC(method, trimmed string) request {
	parts := strings.SplitN(strings.TrimPrefix(trimmed, "_oidc/"), "/", 2)
	kind, rest := parts[0], ""
	if len(parts) == 2 {
		rest = parts[1]
	}
	known := false
	for _, k := range oidcIssuerKinds {
		known = known || k == kind
	}
	switch {
	case !known:
	case rest == ".well-known/openid-configuration":
		return request{name: method + " /_oidc/{issuer}/.well-known/openid-configuration", area: areaOIDC, issuer: kind}
	case rest == "keys":
		return request{name: method + " /_oidc/{issuer}/keys", area: areaOIDC, issuer: kind}
	case kind == issuerGitHub && rest == "idtoken", kind == issuerPipelines && rest == "oidctoken":
		return request{name: method + " /_oidc/" + kind + "/" + rest, area: areaOIDC, issuer: kind}
	}
	return request{name: method + " /*", area: areaUnknown}
}

// serveOIDC answers the external issuers' routes.
func (s *Server) serveOIDC(w http.ResponseWriter, r *http.Request, req request) {
	switch req.name {
	case RouteOIDCDiscovery:
		s.serveOIDCDiscovery(w, req.issuer)
	case RouteOIDCKeys:
		s.serveOIDCKeys(w, req.issuer)
	case RouteGitHubIDToken:
		s.serveGitHubIDToken(w, r)
	case RoutePipelinesOIDCToken:
		s.servePipelinesOIDCToken(w, r)
	default:
		writeOIDCError(w, http.StatusMethodNotAllowed, "Method not allowed.")
	}
}

// serveOIDCDiscovery serves an issuer's /.well-known/openid-configuration: the issuer
// string its tokens carry and its JWKS on this server.
func (s *Server) serveOIDCDiscovery(w http.ResponseWriter, kind string) {
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", object{
		{"issuer", s.issuerURL(kind)},
		{"jwks_uri", s.URL + "/_oidc/" + kind + "/keys"},
		{"response_types_supported", []string{"id_token"}},
		{"subject_types_supported", []string{"public"}},
		{"id_token_signing_alg_values_supported", []string{"RS256"}},
		{"claims_supported", []string{"sub", "aud", "exp", "iat", "iss", "jti", "nbf"}},
	})
}

// serveOIDCKeys serves an issuer's JWKS: its current key and the keys RotateOIDCKey
// replaced less than 24 hours ago.
func (s *Server) serveOIDCKeys(w http.ResponseWriter, kind string) {
	keys, err := s.publishedKeys(kind, s.now())
	if err != nil {
		writeOIDCError(w, http.StatusInternalServerError, err.Error())
		return
	}
	list := []object{}
	for kid, pub := range keys {
		list = append(list, object{
			{"kty", "RSA"}, {"use", "sig"}, {"alg", "RS256"}, {"kid", kid},
			{"n", base64.RawURLEncoding.EncodeToString(pub.N.Bytes())},
			{"e", base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())},
		})
	}
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", object{{"keys", list}})
}

// writeOIDCError answers an external issuer's request with {"message": ...}.
func writeOIDCError(w http.ResponseWriter, status int, message string) {
	if message == "" {
		message = http.StatusText(status)
	}
	writeJSON(w, status, "application/json; charset=utf-8", object{{"message", message}})
}
