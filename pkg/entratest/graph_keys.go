package entratest

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// An application rolls its own certificates with addKey and removeKey (Graph v1.0
// application-addkey, application-removekey): each call carries a proof, a JWT signed by
// a certificate already on the app (application-rollkey-prooftoken). Unlike a PATCH of
// keyCredentials, each call adds or removes one key, so two writers never drop each
// other's keys.

const (
	// proofAudience is the aud a proof must carry: the Azure AD Graph resource id.
	proofAudience = "00000002-0000-0000-c000-000000000000"
	// proofMaxLifetime is the longest exp - nbf a proof may span.
	proofMaxLifetime = 10 * time.Minute
	// proofSkew is how far in the future a proof's nbf may lie.
	proofSkew = 5 * time.Minute
)

// proofError is the 401 Graph answers a proof it refuses with. The code is the one a
// Microsoft sample documents; the message saying which rule failed is the fake's own.
func proofError(format string, args ...any) *graphError {
	return &graphError{status: http.StatusUnauthorized, code: "Authentication_MissingOrMalformed",
		message: "Proof of possession token validation failed: " + fmt.Sprintf(format, args...)}
}

// checkProof validates an addKey/removeKey proof against the application's stored keys
// (never a lagging read): an RS256 JWT whose x5t header is the base64url SHA-1 of one of
// the app's certificates valid now, signed by that certificate's key, with aud
// proofAudience, iss the application's object id, nbf not in the future (5 minutes of
// skew), exp in the future and exp - nbf at most 10 minutes.
func checkProof(a *application, proof string, now time.Time) *graphError {
	if proof == "" {
		return proofError("the request has no proof.")
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	unverified, _, err := parser.ParseUnverified(proof, jwt.MapClaims{})
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return proofError("the proof is not a JWT (three base64url segments without padding).")
	case err != nil || unverified.Method.Alg() != "RS256":
		return proofError("the proof's alg must be RS256.")
	}
	k, e := proofKey(a, unverified.Header, now)
	if e != nil {
		return e
	}
	pub, ok := k.cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return proofError("the certificate x5t names has no RSA key.")
	}
	claims := jwt.MapClaims{}
	if _, err := parser.ParseWithClaims(proof, claims, func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
		return proofError("the signature does not verify with the certificate x5t names.")
	}
	return checkProofClaims(a, claims, now)
}

// proofKey finds the certificate a proof's x5t header names among the application's keys
// and checks that it is valid now (startDateTime <= now < endDateTime).
func proofKey(a *application, header map[string]any, now time.Time) (*keyCredential, *graphError) {
	x5t, _ := header["x5t"].(string)
	if x5t == "" {
		return nil, proofError("the proof's header has no x5t.")
	}
	thumb, err := base64.RawURLEncoding.DecodeString(x5t)
	if err != nil || len(thumb) != 20 {
		return nil, proofError("x5t must be the base64url (unpadded) SHA-1 thumbprint of the signing certificate.")
	}
	for _, k := range a.keyCredentials {
		if !bytes.Equal(k.sha1, thumb) {
			continue
		}
		if now.Before(k.start) || !now.Before(k.end) {
			return nil, proofError("the certificate x5t names is not valid now (startDateTime %s, endDateTime %s).",
				graphTime(k.start), graphTime(k.end))
		}
		return k, nil
	}
	return nil, proofError("x5t names no certificate of application '%s'.", a.appID)
}

// checkProofClaims checks aud, iss, nbf and exp of a verified proof.
func checkProofClaims(a *application, claims jwt.MapClaims, now time.Time) *graphError {
	if aud, _ := claims.GetAudience(); !containsString(aud, proofAudience) {
		return proofError("aud must be %s.", proofAudience)
	}
	iss, _ := claims.GetIssuer()
	switch {
	case strings.EqualFold(iss, a.id):
	case strings.EqualFold(iss, a.appID):
		return proofError("iss is the application's appId; it must be its object id.")
	default:
		return proofError("iss must be the application's object id.")
	}
	nbf, err := claims.GetNotBefore()
	if err != nil || nbf == nil {
		return proofError("the proof has no nbf.")
	}
	if nbf.After(now.Add(proofSkew)) {
		return proofError("nbf is in the future.")
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return proofError("the proof has no exp.")
	}
	if !exp.After(now) {
		return proofError("the proof has expired.")
	}
	if exp.Sub(nbf.Time) > proofMaxLifetime {
		return proofError("exp may be at most 10 minutes after nbf.")
	}
	return nil
}

// decodeKeyAction reads the body of addKey or removeKey: its properties (only the named
// ones, besides @odata annotations, are accepted) and its proof.
func decodeKeyAction(body []byte, action string, names ...string) (map[string]json.RawMessage, string, *graphError) {
	props, e := decodeObject(body)
	if e != nil {
		return nil, "", e
	}
	for name := range props {
		if name != "proof" && !containsString(names, name) && !strings.HasPrefix(name, "@odata.") {
			return nil, "", badRequest("Request_BadRequest", "Property '%s' is not a parameter of action '%s'.", name, action)
		}
	}
	proof, _, e := decodeString(props["proof"], "proof", action)
	return props, proof, e
}

// addKey serves POST /applications/{id}/addKey {"keyCredential", "passwordCredential":
// null, "proof"}: 200 with the new key credential (key null). The certificate is checked
// as a PATCH-added one is, and the STS accepts it after the propagation delay; reads of
// the app follow the read lag as after a PATCH.
func (s *Server) addKey(c *graphCall) graphResult {
	a, e := c.lookupApplication()
	if e != nil {
		return failed(e)
	}
	props, proof, e := decodeKeyAction(c.body, "addKey", "keyCredential", "passwordCredential")
	if e != nil {
		return failed(e)
	}
	if e := checkProof(a, proof, c.now); e != nil {
		return failed(e)
	}
	if raw := props["passwordCredential"]; len(raw) > 0 && string(raw) != "null" {
		return failed(badRequest("Request_BadRequest", "passwordCredential is only for keys of type X509CertAndPassword; send null with an AsymmetricX509Cert."))
	}
	k, e := parseNewKey(c, a, props["keyCredential"])
	if e != nil {
		return failed(e)
	}
	c.beforePatch(a)
	a.keyCredentials = append(a.keyCredentials, k)
	body := object{{"@odata.context", s.metadata("microsoft.graph.keyCredential")}}
	body = append(body, keyCredentialJSON(k, false)...)
	return graphResult{status: http.StatusOK, body: body}
}

// parseNewKey validates addKey's keyCredential as a PATCH-added certificate is validated,
// then the tenant's lifetime policy and the key-count limit.
func parseNewKey(c *graphCall, a *application, raw json.RawMessage) (*keyCredential, *graphError) {
	var in keyCredentialInput
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &in) != nil {
		return nil, invalidProperty("keyCredential", "addKey")
	}
	keyID, hasKeyID, e := decodeString(in.KeyID, "keyId", "KeyCredential")
	if e != nil || (hasKeyID && !isGUID(keyID)) {
		return nil, invalidProperty("keyId", "KeyCredential")
	}
	for _, old := range a.keyCredentials {
		if hasKeyID && strings.EqualFold(old.keyID, keyID) {
			return nil, badRequest("Request_BadRequest", "Duplicate keyId '%s' in keyCredentials.", strings.ToLower(keyID))
		}
	}
	k, e := newKeyCredentialFromInput(in, c.now, c.knobs.propagationDelay)
	if e != nil {
		return nil, e
	}
	if hasKeyID {
		k.keyID = strings.ToLower(keyID)
	}
	if e := checkCertLifetime([]*keyCredential{k}, nil, c.knobs.certLifetimeCap); e != nil {
		return nil, e
	}
	if e := checkKeyCount(len(a.keyCredentials)+1, c.knobs.maxKeyCredentials); e != nil {
		return nil, e
	}
	return k, nil
}

// removeKey serves POST /applications/{id}/removeKey {"keyId", "proof"}: 204. An unknown
// keyId is 400 Request_BadRequest (the real answer is unverified).
func (s *Server) removeKey(c *graphCall) graphResult {
	a, e := c.lookupApplication()
	if e != nil {
		return failed(e)
	}
	props, proof, e := decodeKeyAction(c.body, "removeKey", "keyId")
	if e != nil {
		return failed(e)
	}
	if e := checkProof(a, proof, c.now); e != nil {
		return failed(e)
	}
	keyID, ok, e := decodeString(props["keyId"], "keyId", "removeKey")
	if e != nil || !ok || !isGUID(keyID) {
		return failed(invalidProperty("keyId", "removeKey"))
	}
	i := slices.IndexFunc(a.keyCredentials, func(k *keyCredential) bool { return strings.EqualFold(k.keyID, keyID) })
	if i < 0 {
		return failed(badRequest("Request_BadRequest", "No key credential with keyId '%s' exists on application '%s'.", keyID, a.appID))
	}
	c.beforePatch(a)
	// A copy: the read-lag snapshot shares the stored list, which slices.Delete shifts in place.
	a.replaceKeys(slices.Delete(slices.Clone(a.keyCredentials), i, i+1), c.now, c.knobs.keyRemovalDelay)
	return graphResult{status: http.StatusNoContent}
}
