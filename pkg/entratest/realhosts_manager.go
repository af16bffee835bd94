package entratest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// armAudiences are the resource identifiers of Azure Resource Manager that ARM accepts as a
// token's aud; its 401 for another audience lists exactly these.
var armAudiences = []string{
	"https://management.core.windows.net/", "https://management.core.windows.net",
	"https://management.azure.com/", "https://management.azure.com",
}

// isARMResource reports whether a token request's resource names Azure Resource Manager
// (az asks for https://management.core.windows.net/, azidentity users for
// https://management.azure.com).
func isARMResource(resource string) bool {
	for _, a := range armAudiences {
		if strings.EqualFold(resource, a) {
			return true
		}
	}
	return false
}

// matchARM classifies a request to management.azure.com. Only the two calls `az login`
// makes are served: the subscriptions and the tenants the caller can see.
func matchARM(method, path string) request {
	switch strings.Trim(path, "/") {
	case "subscriptions":
		return request{name: method + " /subscriptions", area: areaARM}
	case "tenants":
		return request{name: method + " /tenants", area: areaARM}
	}
	return request{name: method + " /*", area: areaARM}
}

// armError is ARM's error envelope: {"error": {"code", "message"}}.
func (s *Server) writeARMError(w http.ResponseWriter, status int, code, message string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="`+message+`"`)
	}
	writeJSON(w, status, "application/json; charset=utf-8", object{{"error", object{{"code", code}, {"message", message}}}})
}

// serveARM answers GET /subscriptions (none: the fake's tenants have no subscription) and
// GET /tenants (the caller's tenant), with ARM's request headers and errors: a missing
// api-version is 400 MissingApiVersionParameter, a missing or bad token 401.
func (s *Server) serveARM(w http.ResponseWriter, r *http.Request, req request) {
	id := newGUID()
	w.Header().Set("x-ms-request-id", id)
	w.Header().Set("x-ms-correlation-request-id", id)
	switch req.name {
	case RouteARMSubscriptions, RouteARMTenants:
	default:
		s.writeARMError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("The fake Azure Resource Manager serves only GET /subscriptions and GET /tenants, not %s %s.", r.Method, r.URL.Path))
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		s.writeARMError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return
	}
	tid, code, message := s.authenticateARM(r, s.now())
	if code != "" {
		s.writeARMError(w, http.StatusUnauthorized, code, message)
		return
	}
	if req.name == RouteARMSubscriptions {
		writeJSON(w, http.StatusOK, "application/json; charset=utf-8", object{
			{"value", []object{}}, {"count", object{{"type", "Total"}, {"value", 0}}}})
		return
	}
	s.dir.mu.Lock()
	t := s.dir.tenant(tid)
	domain := ""
	if t != nil {
		domain = t.domain
	}
	s.dir.mu.Unlock()
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", object{
		{"value", []object{{
			{"id", "/tenants/" + tid},
			{"tenantId", tid},
			{"countryCode", "US"},
			{"displayName", "EntraClaw fake tenant"},
			{"domains", []string{domain}},
			{"tenantCategory", "Home"},
			{"defaultDomain", domain},
			{"tenantType", "AAD"},
		}}},
	})
}

// authenticateARM checks the bearer token as ARM does: signed by this fake, in its
// lifetime, an ARM audience. It returns the token's tenant, or ARM's error code and message.
func (s *Server) authenticateARM(r *http.Request, now time.Time) (tid, code, message string) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
	}
	claims, err := s.parseOwnToken(tok, now)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time."
	case err != nil:
		return "", "InvalidAuthenticationToken", "The access token is invalid."
	}
	aud, _ := claims.GetAudience()
	for _, a := range aud {
		if isARMResource(a) {
			tid, _ = claims["tid"].(string)
			return tid, "", ""
		}
	}
	return "", "InvalidAuthenticationTokenAudience", fmt.Sprintf(
		"The access token has been obtained for wrong audience or resource '%s'. It should exactly match with one of the allowed audiences '%s'.",
		strings.Join(aud, ","), strings.Join(armAudiences, "','"))
}
