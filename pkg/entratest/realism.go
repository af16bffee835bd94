package entratest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// What real Entra ID does that the fake added for issue 22: token-endpoint 429s, a delay
// before a removed certificate stops working, long-lived CAE tokens and the claims
// challenge that ends them. docs/fake-fidelity.md lists each with its source.

// DefaultCAETokenLifetime is the lifetime of a token asked for with the cp1 client
// capability (xms_cc): Entra ID gives CAE-capable clients long-lived tokens, because it can
// revoke them with a claims challenge (learn.microsoft.com "Continuous access evaluation":
// up to 28 hours; issue 22 reports expires_in 86399 in recordings, the value used here).
const DefaultCAETokenLifetime = 24 * time.Hour

// DefaultTokenRetryAfter is the Retry-After of the token endpoint's 429: MSAL.NET "Client
// and server throttling" says Entra ID answers client_credentials with "429 Too Many
// Requests, with a Retry-After: 60 header".
const DefaultTokenRetryAfter = 60 * time.Second

// realism holds the knobs of this file.
type realism struct {
	// keyRemovalDelay: a certificate removed from an application (PATCH, removeKey,
	// RemoveKeyCredential) is still accepted by the STS for this long.
	keyRemovalDelay time.Duration
	// caeTokenLifetime: the lifetime of tokens asked for with the cp1 client capability;
	// 0 means DefaultCAETokenLifetime.
	caeTokenLifetime time.Duration
}

// WithKeyRemovalDelay makes a certificate removed from an application (PATCH of
// keyCredentials, removeKey, RemoveKeyCredential) still accepted by the STS for d after
// the removal, as the real token service learns of a removal only after a delay, like an
// addition (WithPropagationDelay). Graph reads stop listing it at once. Default 0.
func WithKeyRemovalDelay(d time.Duration) Option {
	return func(k *knobs) { k.keyRemovalDelay = d }
}

// SetKeyRemovalDelay changes the key removal delay for removals made from now on.
func (s *Server) SetKeyRemovalDelay(d time.Duration) {
	s.setKnob(func(k *knobs) { k.keyRemovalDelay = d })
}

// WithCAETokenLifetime sets the lifetime of access tokens asked for with the cp1 client
// capability (azcore asks so for every Graph request). Default DefaultCAETokenLifetime.
func WithCAETokenLifetime(d time.Duration) Option {
	return func(k *knobs) { k.caeTokenLifetime = d }
}

// SetCAETokenLifetime changes the lifetime of CAE tokens issued from now on.
func (s *Server) SetCAETokenLifetime(d time.Duration) {
	s.setKnob(func(k *knobs) { k.caeTokenLifetime = d })
}

// lifetimeFor is the lifetime of a token for a request whose claims parameter is claims.
func (k knobs) lifetimeFor(claims string) time.Duration {
	if !asksCP1(claims) {
		return k.tokenLifetime
	}
	if k.caeTokenLifetime > 0 {
		return k.caeTokenLifetime
	}
	return DefaultCAETokenLifetime
}

// asksCP1 reports whether a token request's claims parameter declares the cp1 client
// capability: {"access_token":{"xms_cc":{"values":["cp1"]}}} (claims-challenge docs;
// MSAL sends "CP1").
func asksCP1(claims string) bool {
	var req struct {
		AccessToken struct {
			XmsCC struct {
				Values []string `json:"values"`
			} `json:"xms_cc"`
		} `json:"access_token"`
	}
	if json.Unmarshal([]byte(claims), &req) != nil {
		return false
	}
	for _, v := range req.AccessToken.XmsCC.Values {
		if strings.EqualFold(v, "cp1") {
			return true
		}
	}
	return false
}

// ---- token endpoint throttling ----------------------------------------------------------

// ThrottleTokens makes the next n requests to the token endpoint answer 429 Too Many
// Requests with Retry-After (whole seconds; DefaultTokenRetryAfter when retryAfter is 0)
// and the plain-text body "Too Many Requests", as Entra ID answers a client_credentials
// client that asks too often (MSAL.NET "Client and server throttling"; MSAL.NET issue
// 2855 shows the body and "Retry-After: 60").
func (s *Server) ThrottleTokens(n int, retryAfter time.Duration) {
	if retryAfter <= 0 {
		retryAfter = DefaultTokenRetryAfter
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenThrottleLeft, s.tokenThrottleAfter = n, retryAfter
}

// takeTokenThrottle consumes one throttled token answer; 0 when there is none.
func (s *Server) takeTokenThrottle() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokenThrottleLeft <= 0 {
		return 0
	}
	s.tokenThrottleLeft--
	return s.tokenThrottleAfter
}

// writeTokenThrottled answers 429 as the real token endpoint does: no AADSTS JSON.
func writeTokenThrottled(w http.ResponseWriter, retryAfter time.Duration) {
	body := "Too Many Requests"
	h := w.Header()
	setRetryAfter(h, retryAfter)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(body))
}

// ---- removed keys still accepted --------------------------------------------------------

// retiredKey is a certificate removed from an application that the STS accepts until goneAt.
type retiredKey struct {
	key    *keyCredential
	goneAt time.Time
}

// replaceKeys sets a's certificates to keys; those dropped stay accepted by the STS for
// delay. Caller holds the directory lock.
func (a *application) replaceKeys(keys []*keyCredential, now time.Time, delay time.Duration) {
	kept := map[*keyCredential]bool{}
	for _, k := range keys {
		kept[k] = true
	}
	live := a.retired[:0:0]
	for _, r := range a.retired {
		if now.Before(r.goneAt) && !kept[r.key] {
			live = append(live, r)
		}
	}
	if delay > 0 {
		for _, k := range a.keyCredentials {
			if !kept[k] && !keyListed(keys, k) {
				live = append(live, retiredKey{key: k, goneAt: now.Add(delay)})
			}
		}
	}
	a.retired = live
	a.keyCredentials = keys
}

// keyListed reports whether keys holds a credential with k's keyId (a PATCH resends the
// stored entries as new values with the same keyId).
func keyListed(keys []*keyCredential, k *keyCredential) bool {
	for _, x := range keys {
		if strings.EqualFold(x.keyID, k.keyID) {
			return true
		}
	}
	return false
}

// stsKeys is every certificate the STS may match an assertion against at now: those on
// the application and those removed less than the removal delay ago.
func (a *application) stsKeys(now time.Time) []*keyCredential {
	keys := a.keyCredentials
	for _, r := range a.retired {
		if now.Before(r.goneAt) {
			keys = append(keys[:len(keys):len(keys)], r.key)
		}
	}
	return keys
}

// ---- disabled service principals and the CAE claims challenge ---------------------------

// SetServicePrincipalEnabled disables (or enables again) the service principal of the
// application appID in tenantID, as an administrator setting accountEnabled false does.
// While it is disabled the STS refuses the app tokens (AADSTS7000112), and Graph answers a
// CAE token (one with xms_cc cp1) with 401 and a claims challenge (WWW-Authenticate error
// "insufficient_claims"), so a CAE-capable client asks the STS again instead of using its
// long-lived token. Tokens without the capability keep working until they expire, as
// Graph cannot revoke them.
func (s *Server) SetServicePrincipalEnabled(tenantID, appID string, enabled bool) error {
	now := s.now()
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	t := s.dir.tenant(tenantID)
	if t == nil {
		return fmt.Errorf("entratest: tenant %s: %w", tenantID, errNotFound)
	}
	sp := t.spByAppID(appID)
	if sp == nil {
		return fmt.Errorf("entratest: service principal of %s: %w", appID, errNotFound)
	}
	sp.disabled = !enabled
	if !enabled {
		sp.disabledAt = now
	}
	return nil
}

// spDisabled is the AADSTS7000112 answer to a token request for a disabled app. The text
// follows reports of the real one ("Application '<appId>'(<name>) is disabled."); its
// status and OAuth error are unverified.
func spDisabled(sp *servicePrincipal) *stsError {
	return &stsError{http.StatusBadRequest, "unauthorized_client", 7000112,
		fmt.Sprintf("Application '%s'(%s) is disabled.", sp.appID, sp.displayName)}
}

// caeChallenge is Graph's answer to a CAE token of a disabled service principal: 401 with
// a claims challenge asking for a token issued after the disabling (claims-challenge docs:
// error="insufficient_claims", claims = standard base64 of the claims request).
func caeChallenge(disabledAt time.Time) *graphError {
	claims := fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, disabledAt.Unix())
	return &graphError{status: http.StatusUnauthorized, code: "InvalidAuthenticationToken",
		message:   "Continuous access evaluation resulted in challenge with result: InteractionRequired and code: ServicePrincipalDisabled",
		challenge: `error="insufficient_claims", claims="` + base64.StdEncoding.EncodeToString([]byte(claims)) + `"`}
}

// checkCAE answers a CAE token (xms_cc cp1) of an app whose service principal is disabled
// with the claims challenge; nil otherwise.
func (s *Server) checkCAE(tid, appID string, cae bool) *graphError {
	if !cae {
		return nil
	}
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	t := s.dir.tenant(tid)
	if t == nil {
		return nil
	}
	if sp := t.spByAppID(appID); sp != nil && sp.disabled {
		return caeChallenge(sp.disabledAt)
	}
	return nil
}

// tokenIsCAE reports whether a token's claims carry xms_cc with cp1.
func tokenIsCAE(claims map[string]any) bool {
	for _, v := range stringList(claims["xms_cc"]) {
		if strings.EqualFold(v, "cp1") {
			return true
		}
	}
	return false
}
