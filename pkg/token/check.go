package token

import (
	"fmt"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
)

// Bounds on what the token binary prints or caches.
const (
	// maxTokenLifetime: Entra access tokens live 60-90 minutes (up to 24 h with a token
	// lifetime policy); an exp further out than this is not a real token.
	maxTokenLifetime = 24 * time.Hour
	// tokenClockSkew is the slack allowed between our clock and the token service's.
	tokenClockSkew = 5 * time.Minute
	// maxTokenLength: real access tokens are 1-4 KB, and the STS response is capped anyway.
	maxTokenLength = 32 << 10
)

// BadTokenError is the reason a token is refused; it never contains the token.
type BadTokenError struct{ Reason string }

func (e *BadTokenError) Error() string { return e.Reason }

// Check decides whether raw may be printed or cached for tenant and client:
// a single-line JWT whose exp is in the future and at most maxTokenLifetime away, whose
// tid is the tenant (when the tenant is a GUID; any GUID for a domain name) and whose
// appid (v1) or azp (v2) is the client. expiresOn is what the token service (or the cache
// item) said; it must be in the future too. It returns the earlier of the two expiries.
// Errors name the failed rule and never quote the token or its claims.
func Check(raw, tenant, client string, expiresOn, now time.Time) (time.Time, error) {
	bad := func(format string, args ...any) (time.Time, error) {
		return time.Time{}, &BadTokenError{Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case raw == "":
		return bad("it is empty")
	case len(raw) > maxTokenLength:
		return bad("it is %d bytes long, more than %d", len(raw), maxTokenLength)
	}
	for i := 0; i < len(raw); i++ {
		ch := raw[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return bad("it is not a single-line JWT (byte %d is not base64url)", i)
		}
	}
	if strings.Count(raw, ".") != 2 {
		return bad("it is not a JWT (%d dot-separated parts, want 3)", strings.Count(raw, ".")+1)
	}
	d, err := entra.DecodeJWT(raw)
	if err != nil {
		return bad("it is %v", err)
	}
	exp, ok, err := d.ExpiresAt()
	switch {
	case err != nil || !ok:
		return bad("it has no valid exp claim")
	case !exp.After(now):
		return bad("it expired at %s", exp.UTC().Format(time.RFC3339))
	case exp.Sub(now) > maxTokenLifetime+tokenClockSkew:
		return bad("its exp claim is %s, more than %s from now", exp.UTC().Format(time.RFC3339), maxTokenLifetime)
	case !expiresOn.IsZero() && !expiresOn.After(now):
		return bad("the token service said it expired at %s", expiresOn.UTC().Format(time.RFC3339))
	}
	tid := d.TenantID()
	if isGUIDLike(tenant) {
		if !strings.EqualFold(tid, tenant) {
			return bad("its tid claim is not the tenant %s", tenant)
		}
	} else if !isGUIDLike(tid) {
		return bad("its tid claim is not a tenant id")
	}
	if !strings.EqualFold(d.AppID(), client) {
		return bad("its appid/azp claim is not the client %s", client)
	}
	if !expiresOn.IsZero() && expiresOn.Before(exp) {
		exp = expiresOn
	}
	return exp, nil
}

func isGUIDLike(s string) bool { return entra.ValidateClientID(s) == nil }
