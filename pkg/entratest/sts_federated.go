package entratest

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxExternalLifetime is the longest lifetime (exp - iat, or exp - nbf without iat) Entra
// accepts for an external token: AADSTS70023 "External OIDC Provider token must have a
// lifetime of less than or equal to 1.01:00:00" (azure-docs issue 116275).
const maxExternalLifetime = 25 * time.Hour

// externalFetchTimeout bounds the discovery and JWKS requests for one exchange.
const externalFetchTimeout = 10 * time.Second

// externalToken is what the STS reads from a federated client assertion before trusting it.
type externalToken struct {
	raw      string
	alg, kid string
	header   map[string]any
	iss, sub string
	aud      []string
	exp, nbf *jwt.NumericDate
	iat      *jwt.NumericDate
}

// federatedError is an AADSTS error of the federated exchange. Statuses and OAuth error
// strings are the fake's choice (unverified); the codes are from the design notes.
func federatedError(status int, err string, code int, format string, args ...any) *stsError {
	return &stsError{status, err, code, fmt.Sprintf(format, args...)}
}

// isFederatedAssertion reports whether a client assertion is an external token to
// exchange: its iss is not the client id, and its header does not name a certificate of
// the application (such an assertion stays on the certificate path, whose AADSTS700021
// reports the wrong iss).
func (s *Server) isFederatedAssertion(tid, clientID, assertion string) bool {
	tok, _, err := jwt.NewParser().ParseUnverified(assertion, jwt.MapClaims{})
	if err != nil {
		return false // malformed: the certificate path answers AADSTS50027
	}
	if iss, _ := tok.Claims.GetIssuer(); iss == clientID {
		return false
	}
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	app := s.dir.tenant(tid).appByAppID(clientID)
	if app == nil {
		return false
	}
	kc, _ := findAssertionKey(app.stsKeys(s.now()), tok.Header)
	return kc == nil
}

// grantFederated is the client-credentials grant with an external token as the client
// assertion (workload identity federation): the app must exist, the token must not be one
// Entra issued, its issuer must be on one of the app's FICs, its RS256 signature must
// verify against the issuer's published keys, it must be within its lifetime, and its
// iss, sub and aud must match one FIC exactly that has propagated. Then the app gets the
// same token as with a certificate.
func (s *Server) grantFederated(form url.Values, tid, resource string, now time.Time, lifetime time.Duration) (string, int, *stsError) {
	clientID := form.Get("client_id")
	if form.Get("client_assertion_type") != clientAssertionType {
		return "", 0, &stsError{http.StatusBadRequest, "invalid_request", 50027,
			fmt.Sprintf("Invalid JWT token. The client_assertion_type must be '%s'.", clientAssertionType)}
	}
	ext, e := parseExternalToken(form.Get("client_assertion"))
	if e != nil {
		return "", 0, e
	}
	fics, e := s.appFICs(tid, clientID)
	if e != nil {
		return "", 0, e
	}
	if e := s.checkExternalIssuer(ext, fics); e != nil {
		return "", 0, e
	}
	if e := s.verifyExternalSignature(ext, now); e != nil {
		return "", 0, e
	}
	if e := checkExternalLifetime(ext, now); e != nil {
		return "", 0, e
	}
	if e := matchFIC(fics, ext, now); e != nil {
		return "", 0, e
	}
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	t := s.dir.tenant(tid)
	app := t.appByAppID(clientID)
	if app == nil {
		return "", 0, appNotFound(clientID, tid)
	}
	// appidacr "2": the client authenticated with an assertion, as with a certificate
	// (unverified for federated credentials; see docs/fake-fidelity.md).
	return s.issueAppToken(t, app, resource, "2", form, now, lifetime)
}

// parseExternalToken reads an external token without trusting it.
func parseExternalToken(raw string) (*externalToken, *stsError) {
	tok, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
	if err != nil {
		return nil, &stsError{http.StatusBadRequest, "invalid_request", 50027, "Invalid JWT token. The token is malformed."}
	}
	claims := tok.Claims.(jwt.MapClaims)
	ext := &externalToken{raw: raw, alg: tok.Method.Alg(), header: tok.Header}
	ext.kid, _ = tok.Header["kid"].(string)
	ext.iss, _ = claims.GetIssuer()
	ext.sub, _ = claims.GetSubject()
	ext.aud, _ = claims.GetAudience()
	ext.exp, _ = claims.GetExpirationTime()
	ext.nbf, _ = claims.GetNotBefore()
	ext.iat, _ = claims.GetIssuedAt()
	return ext, nil
}

// appFICs copies the application's FICs (propagated or not) for matching outside the lock.
func (s *Server) appFICs(tid, clientID string) ([]federatedCredential, *stsError) {
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	app := s.dir.tenant(tid).appByAppID(clientID)
	if app == nil {
		return nil, appNotFound(clientID, tid)
	}
	out := make([]federatedCredential, 0, len(app.fics))
	for _, f := range app.fics {
		out = append(out, *f)
	}
	return out, nil
}

// checkExternalIssuer refuses a token Entra issued (AADSTS700222), an algorithm other than
// RS256 (AADSTS5002738, reported for ES384 federated assertions) and an issuer no FIC of
// the app names exactly (AADSTS700211), before any key is fetched.
func (s *Server) checkExternalIssuer(ext *externalToken, fics []federatedCredential) *stsError {
	if s.isEntraIssued(ext) {
		return federatedError(http.StatusBadRequest, "invalid_request", 700222,
			"AAD-issued tokens may not be used for federated identity flows.")
	}
	if ext.alg != "RS256" {
		return federatedError(http.StatusBadRequest, "invalid_request", 5002738,
			"Invalid JWT token. '%s' is not a supported signature algorithm for federated credentials. Supported signing algorithms are: 'RS256'.", ext.alg)
	}
	for _, f := range fics {
		if f.issuer == ext.iss {
			return nil
		}
	}
	return federatedError(http.StatusBadRequest, "invalid_request", 700211,
		"No matching federated identity record found for presented assertion issuer '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation", ext.iss)
}

// isEntraIssued recognises a token of Entra's token service: this fake's signing key, or
// an Entra issuer (v1 sts.windows.net, v2 login.microsoftonline.com or this fake's).
func (s *Server) isEntraIssued(ext *externalToken) bool {
	if x5t, _ := ext.header["x5t"].(string); x5t == s.signer.x5t || ext.kid == s.signer.x5t {
		return true
	}
	for _, prefix := range []string{"https://sts.windows.net/", "https://login.microsoftonline.com/"} {
		if strings.HasPrefix(ext.iss, prefix) {
			return true
		}
	}
	return strings.HasPrefix(ext.iss, s.URL+"/") && strings.HasSuffix(ext.iss, "/v2.0") &&
		!strings.HasPrefix(ext.iss, s.URL+"/_oidc/")
}

// verifyExternalSignature checks the RS256 signature with the issuer's published keys:
// known locally for GitHub and Azure Pipelines, else discovered over TLS
// (<iss>/.well-known/openid-configuration, then its jwks_uri) on every exchange.
func (s *Server) verifyExternalSignature(ext *externalToken, now time.Time) *stsError {
	var keys map[string]*rsa.PublicKey
	if kind, local := s.localIssuerKind(ext.iss); local {
		var err error
		if keys, err = s.publishedKeys(kind, now); err != nil {
			return federatedError(http.StatusInternalServerError, "server_error", 50000, "There was an error issuing a token.")
		}
	} else {
		var e *stsError
		if keys, e = s.discoverKeys(ext.iss); e != nil {
			return e
		}
	}
	key := keys[ext.kid]
	if key == nil && ext.kid == "" && len(keys) == 1 {
		for _, k := range keys {
			key = k
		}
	}
	if key == nil {
		return federatedError(http.StatusUnauthorized, "invalid_client", 7000272,
			"The certificate with identifier %s used to sign the federated credential could not be found in the metadata of identity provider %s. Please validate that your Identity Provider's metadata exposes the key used to sign the incoming token.", ext.kid, ext.iss)
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if _, err := parser.Parse(ext.raw, func(*jwt.Token) (any, error) { return key, nil }); err != nil {
		return federatedError(http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation.")
	}
	return nil
}

// discoverKeys fetches an issuer's discovery document and JWKS over TLS (trusting only the
// fake's CA). Any failure, or a discovery issuer that differs from iss, is AADSTS50166.
func (s *Server) discoverKeys(iss string) (map[string]*rsa.PublicKey, *stsError) {
	failed := federatedError(http.StatusBadRequest, "invalid_request", 50166, "Request to External OIDC endpoint failed.")
	if !strings.HasPrefix(iss, "https://") {
		return nil, failed
	}
	ctx, cancel := context.WithTimeout(context.Background(), externalFetchTimeout)
	defer cancel()
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := s.getJSON(ctx, strings.TrimSuffix(iss, "/")+"/.well-known/openid-configuration", &doc); err != nil ||
		doc.Issuer != iss || !strings.HasPrefix(doc.JWKSURI, "https://") {
		return nil, failed
	}
	var jwks struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			N   string `json:"n"`
			E   string `json:"e"`
		} `json:"keys"`
	}
	if err := s.getJSON(ctx, doc.JWKSURI, &jwks); err != nil {
		return nil, failed
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range jwks.Keys {
		n, errN := base64.RawURLEncoding.DecodeString(k.N)
		e, errE := base64.RawURLEncoding.DecodeString(k.E)
		if k.Kty != "RSA" || errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			continue
		}
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	return keys, nil
}

// getJSON GETs url with the fake's own client and decodes a 200 JSON answer.
func (s *Server) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return errors.New(res.Status)
	}
	return json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(v)
}

// checkExternalLifetime applies the assertion time rules of the certificate flow (exp
// required, exp and nbf with 5 minutes of skew: AADSTS700024) and Entra's ceiling on an
// external token's lifetime (AADSTS70023).
func checkExternalLifetime(ext *externalToken, now time.Time) *stsError {
	if ext.exp == nil || now.After(ext.exp.Add(assertionSkew)) || (ext.nbf != nil && now.Before(ext.nbf.Add(-assertionSkew))) {
		return assertionOutOfRange(now, ext.nbf, ext.exp)
	}
	start := ext.iat
	if start == nil {
		start = ext.nbf
	}
	if start != nil && ext.exp.Sub(start.Time) > maxExternalLifetime {
		return federatedError(http.StatusBadRequest, "invalid_request", 70023,
			"External OIDC Provider token must have a lifetime of less than or equal to 1.01:00:00")
	}
	return nil
}

// matchFIC matches the token's iss, sub and aud exactly (case-sensitive, no trimming)
// against the app's FICs. A full match that has not propagated yet is AADSTS70021; else
// the first claim that no FIC of the token's issuer matches decides: the subject
// (AADSTS7002138 when it differs only in case, else 700213), then the audience (700212).
func matchFIC(fics []federatedCredential, ext *externalToken, now time.Time) *stsError {
	subjectSeen, foldedSeen, pending := false, false, false
	for _, f := range fics {
		if f.issuer != ext.iss {
			continue
		}
		foldedSeen = foldedSeen || strings.EqualFold(f.subject, ext.sub)
		if f.subject != ext.sub {
			continue
		}
		subjectSeen = true
		if containsString(ext.aud, f.audiences[0]) {
			if !now.Before(f.activeAt) {
				return nil
			}
			pending = true
		}
	}
	switch {
	case pending:
		return federatedError(http.StatusBadRequest, "invalid_request", 70021,
			"No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
			ext.iss, ext.sub, strings.Join(ext.aud, ","))
	case !subjectSeen && foldedSeen:
		return federatedError(http.StatusBadRequest, "invalid_request", 7002138,
			"No matching federated identity record found for presented assertion subject '%s'. A federated identity credential's subject differs from it only in case; subjects are matched case-sensitively. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.", ext.sub)
	case !subjectSeen:
		return federatedError(http.StatusBadRequest, "invalid_request", 700213,
			"No matching federated identity record found for presented assertion subject '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation", ext.sub)
	default:
		return federatedError(http.StatusBadRequest, "invalid_request", 700212,
			"No matching federated identity record found for presented assertion audience '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation", strings.Join(ext.aud, ","))
	}
}
