package entratest

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// GitHubTokenRequest returns what a GitHub Actions job with `permissions: id-token: write`
// finds in ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN: the URL (it
// already has a query, ?api-version=2.0, so clients append &audience=...) and the bearer
// token it requires.
func (s *Server) GitHubTokenRequest() (url, token string) {
	o, err := s.lockedOIDC()
	if err != nil {
		return "", ""
	}
	defer o.mu.Unlock()
	return s.URL + "/_oidc/github/idtoken?api-version=2.0", o.githubRequestToken
}

// PipelinesTokenRequest returns what an Azure Pipelines job finds in SYSTEM_OIDCREQUESTURI
// and SYSTEM_ACCESSTOKEN. Clients POST to uri + "?api-version=7.1&serviceConnectionId=ID"
// with "Authorization: Bearer " + accessToken.
func (s *Server) PipelinesTokenRequest() (uri, accessToken string) {
	o, err := s.lockedOIDC()
	if err != nil {
		return "", ""
	}
	defer o.mu.Unlock()
	return s.URL + "/_oidc/pipelines/oidctoken", o.pipelinesAccessToken
}

// PipelinesServiceConnectionID is the id of the fake's Azure service connection, which
// ci-env exports as AZURESUBSCRIPTION_SERVICE_CONNECTION_ID (as Azure Pipelines' Azure
// tasks do). Any id is accepted; the token's sub is sc://acme/app/<id>.
func (s *Server) PipelinesServiceConnectionID() string {
	o, err := s.lockedOIDC()
	if err != nil {
		return ""
	}
	defer o.mu.Unlock()
	return o.pipelinesConnection
}

// bearerMatches reports whether the request carries "Authorization: <scheme> want" (the
// scheme in any case, as both CI services' clients vary it).
func bearerMatches(r *http.Request, want string) bool {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "bearer") && want != "" &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(want)) == 1
}

// serveGitHubIDToken is GitHub Actions' ID-token endpoint: GET with the request token as
// bearer, optional audience (default api://AzureADTokenExchange) → {"count", "value"}.
func (s *Server) serveGitHubIDToken(w http.ResponseWriter, r *http.Request) {
	o, err := s.lockedOIDC()
	if err != nil {
		writeOIDCError(w, http.StatusInternalServerError, err.Error())
		return
	}
	want := o.githubRequestToken
	o.mu.Unlock()
	if !bearerMatches(r, want) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeOIDCError(w, http.StatusUnauthorized, "Bad credentials: the ID token request needs ACTIONS_ID_TOKEN_REQUEST_TOKEN as its bearer token.")
		return
	}
	aud := r.URL.Query().Get("audience")
	if aud == "" {
		aud = FederationAudience
	}
	k := s.currentKnobs()
	tok, err := s.signExternal(issuerGitHub, gitHubClaims(k.githubSubject(), aud, k.clock()))
	if err != nil {
		writeOIDCError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", object{{"count", len(tok)}, {"value", tok}})
}

// gitHubClaims are the claims of a GitHub Actions ID token for a subject such as
// repo:ORG/REPO:environment:NAME, with the repository and environment or ref claims the
// subject implies.
func gitHubClaims(sub, aud string, now time.Time) jwt.MapClaims {
	claims := jwt.MapClaims{
		"jti": newGUID(), "sub": sub, "aud": aud, "iss": GitHubIssuer,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(gitHubTokenLifetime).Unix(),
		"runner_environment": "github-hosted", "event_name": "push",
	}
	rest, ok := strings.CutPrefix(sub, "repo:")
	if !ok {
		return claims
	}
	repo, context, _ := strings.Cut(rest, ":")
	owner, _, _ := strings.Cut(repo, "/")
	claims["repository"], claims["repository_owner"] = repo, owner
	switch kind, value, _ := strings.Cut(context, ":"); kind {
	case "environment":
		claims["environment"], claims["ref"], claims["ref_type"] = value, "refs/heads/main", "branch"
	case "ref":
		claims["ref"] = value
		claims["ref_type"] = "branch"
		if strings.HasPrefix(value, "refs/tags/") {
			claims["ref_type"] = "tag"
		}
	case "pull_request":
		claims["event_name"] = "pull_request"
	}
	return claims
}

// servePipelinesOIDCToken is Azure Pipelines' OIDC token endpoint: POST
// ?api-version=...&serviceConnectionId=ID with the job's System.AccessToken as bearer →
// {"oidcToken"}.
func (s *Server) servePipelinesOIDCToken(w http.ResponseWriter, r *http.Request) {
	o, err := s.lockedOIDC()
	if err != nil {
		writeOIDCError(w, http.StatusInternalServerError, err.Error())
		return
	}
	want, orgID := o.pipelinesAccessToken, o.pipelinesOrgID
	o.mu.Unlock()
	if !bearerMatches(r, want) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeOIDCError(w, http.StatusUnauthorized, "TF400813: The user is not authorized to access this resource: the request needs SYSTEM_ACCESSTOKEN as its bearer token.")
		return
	}
	q := r.URL.Query()
	connection := q.Get("serviceConnectionId")
	switch {
	case q.Get("api-version") == "":
		writeOIDCError(w, http.StatusBadRequest, "No api-version was supplied for the POST request.")
		return
	case connection == "":
		writeOIDCError(w, http.StatusBadRequest, "The serviceConnectionId query parameter is required.")
		return
	}
	now := s.now()
	tok, err := s.signExternal(issuerPipelines, jwt.MapClaims{
		"jti": newGUID(), "sub": "sc://acme/app/" + connection, "aud": FederationAudience,
		"iss": "https://vstoken.dev.azure.com/" + orgID,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(pipelinesTokenLifetime).Unix(),
	})
	if err != nil {
		writeOIDCError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", object{{"oidcToken", tok}})
}

// WriteK8sTokenFile writes a Kubernetes-style projected service-account token to path
// (mode 0600, replaced atomically as the kubelet does), as Azure workload identity mounts
// at AZURE_FEDERATED_TOKEN_FILE: iss OIDCIssuerURL(), sub K8sSubject(), aud
// api://AzureADTokenExchange, valid one hour. Calling it again is a rotation: a fresh
// token, signed by the issuer's current key.
func (s *Server) WriteK8sTokenFile(path string) error {
	k := s.currentKnobs()
	now := k.clock()
	ns, sa := k.k8sAccount()
	tok, err := s.signExternal(issuerK8s, jwt.MapClaims{
		"aud": []string{FederationAudience}, "iss": s.OIDCIssuerURL(),
		"sub": "system:serviceaccount:" + ns + ":" + sa, "jti": newGUID(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(k8sTokenLifetime).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      ns,
			"serviceaccount": map[string]any{"name": sa, "uid": newGUID()},
			"pod":            map[string]any{"name": sa + "-0", "uid": newGUID()},
		},
	})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".k8s-token-*")
	if err != nil {
		return fmt.Errorf("entratest: writing the token file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(tok); err != nil {
		tmp.Close()
		return fmt.Errorf("entratest: writing the token file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("entratest: writing the token file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("entratest: writing the token file: %w", err)
	}
	return nil
}

// writeCIEnv writes w.K8sTokenFile and w.CIEnvFile (mode 0600: it holds the CI request
// tokens). Sourcing ci-env sources env first, so `. DIR/ci-env` alone sets a shell up as a
// CI job talking to the fake. Real jobs get the same variables from their platform:
// GitHub Actions ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN, Azure Pipelines
// SYSTEM_OIDCREQUESTURI and SYSTEM_ACCESSTOKEN (and AZURESUBSCRIPTION_SERVICE_CONNECTION_ID
// from its Azure tasks), Kubernetes workload identity AZURE_FEDERATED_TOKEN_FILE.
func writeCIEnv(w *Workdir, srv *Server) error {
	w.CIEnvFile = filepath.Join(w.Dir, "ci-env")
	w.K8sTokenFile = filepath.Join(w.Dir, "azure-identity-token")
	if err := srv.WriteK8sTokenFile(w.K8sTokenFile); err != nil {
		return err
	}
	ghURL, ghToken := srv.GitHubTokenRequest()
	adoURI, adoToken := srv.PipelinesTokenRequest()
	var b strings.Builder
	b.WriteString("# Written by entraclaw-fake-entra: a CI job's environment. Source it: . " + w.CIEnvFile + "\n")
	b.WriteString(". " + shellQuote(w.EnvFile) + "\n")
	for _, kv := range [][2]string{
		{"ACTIONS_ID_TOKEN_REQUEST_URL", ghURL},
		{"ACTIONS_ID_TOKEN_REQUEST_TOKEN", ghToken},
		{"SYSTEM_OIDCREQUESTURI", adoURI},
		{"SYSTEM_ACCESSTOKEN", adoToken},
		{"AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", srv.PipelinesServiceConnectionID()},
		{"AZURE_FEDERATED_TOKEN_FILE", w.K8sTokenFile},
	} {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return os.WriteFile(w.CIEnvFile, []byte(b.String()), 0o600)
}
