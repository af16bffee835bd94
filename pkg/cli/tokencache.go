package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
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
	// tokenLockWait bounds the wait for another process minting the same token; after it
	// the token is requested anyway.
	tokenLockWait = time.Minute
)

// errBadToken is the reason a token is refused; it never contains the token.
type errBadToken struct{ reason string }

func (e *errBadToken) Error() string { return e.reason }

// checkAccessToken decides whether raw may be printed or cached for tenant and client:
// a single-line JWT whose exp is in the future and at most maxTokenLifetime away, whose
// tid is the tenant (when the tenant is a GUID; any GUID for a domain name) and whose
// appid (v1) or azp (v2) is the client. expiresOn is what the token service (or the cache
// item) said; it must be in the future too. It returns the earlier of the two expiries.
// Errors name the failed rule and never quote the token or its claims.
func checkAccessToken(raw, tenant, client string, expiresOn, now time.Time) (time.Time, error) {
	bad := func(format string, args ...any) (time.Time, error) {
		return time.Time{}, &errBadToken{reason: fmt.Sprintf(format, args...)}
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

// badTokenError is the one-line error for a token the token service returned that
// checkAccessToken refused.
func badTokenError(authorityHost string, err error) error {
	host := authorityHost
	if u, perr := url.Parse(authorityHost); perr == nil && u.Host != "" {
		host = u.Host
	}
	return &Error{
		Code: ExitFailure,
		Msg:  fmt.Sprintf("the token service at %s returned an access token that cannot be used: %v; nothing was printed or cached", host, err),
		Hint: "check -authority-host / ENTRACLAW_AUTHORITY_HOST and -tenant-id/-client-id: the authority must be your cloud's Entra ID login host (e.g. https://login.microsoftonline.com) and no proxy may rewrite it",
	}
}

// hostWarning is the one warning line for an authority host or Graph endpoint that is not
// a known Microsoft cloud host ("" when both are known).
func hostWarning(c entra.Cloud) string {
	auth, graph := c.UnknownHosts()
	switch {
	case auth != "" && graph != "":
		return fmt.Sprintf("-authority-host %s and -graph-endpoint %s are not Microsoft cloud hosts: the certificate-signed client assertion goes to %s", auth, graph, auth)
	case auth != "":
		return fmt.Sprintf("-authority-host %s is not a Microsoft cloud host: the certificate-signed client assertion goes to %s", auth, auth)
	case graph != "":
		return fmt.Sprintf("-graph-endpoint %s is not a Microsoft cloud host: tokens are requested for it and sent to it", graph)
	}
	return ""
}

// hostWarningEvery is how often the warning about one pair of hosts is repeated.
const hostWarningEvery = 24 * time.Hour

// warnHosts returns cloud with hostWarning put in front of its transport: the warning goes to
// stderr before the run's first request, so a run that sends nothing (verify -offline, a
// cached token) never warns, and at most once a day for the same hosts (hostWarningDue).
func (c *Common) warnHosts(cloud entra.Cloud) entra.Cloud {
	w := hostWarning(cloud)
	if w == "" || c.stdio.Err == nil {
		return cloud
	}
	next := cloud.Transport
	if next == nil {
		next = http.DefaultClient // what entra's default client is made from: proxy from the environment, TLS 1.2+
	}
	key := cloud.AuthorityHost + " " + cloud.GraphEndpoint
	cloud.Transport = &firstRequestHook{next: next, hook: func() {
		if hostWarningDue(key, time.Now()) {
			fmt.Fprintf(c.stdio.Err, "%s: %s %s\n", c.name, newPainter(c.stdio).yellow("warning:"), w)
		}
	}}
	return cloud
}

// firstRequestHook calls hook once, before the first request it sends.
type firstRequestHook struct {
	next policy.Transporter
	once sync.Once
	hook func()
}

func (t *firstRequestHook) Do(req *http.Request) (*http.Response, error) {
	t.once.Do(t.hook)
	return t.next.Do(req)
}

// hostWarningStamp is the stamp file of the warning about key (the pair of hosts) under
// root, the per-user state directory: root/hostwarning-<sha256(key), 16 hex digits>. Its
// mtime is when the warning was last given.
func hostWarningStamp(root, key string) string {
	return filepath.Join(root, "hostwarning-"+shortHash(key))
}

// hostWarningDue reports whether the warning about key is due (none in the last
// hostWarningEvery) and, if so, stamps it as given at now. A stamp that cannot be read or
// written just means warning again.
func hostWarningDue(key string, now time.Time) bool {
	root, err := userStateDir()
	if err != nil {
		return true
	}
	path := hostWarningStamp(root, key)
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
		if age := now.Sub(fi.ModTime()); age >= 0 && age < hostWarningEvery {
			return false
		}
	}
	if err := os.WriteFile(path, nil, 0o600); err == nil {
		_ = os.Chtimes(path, now, now)
	}
	return true
}

// userStateDir is state.UserRoot, created (0700) if missing, when it is a directory of
// this user.
func userStateDir() (string, error) {
	root, err := state.UserRoot()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", err
	}
	if fi, err := os.Lstat(root); err != nil || !fi.IsDir() || !state.OwnedByMe(fi) {
		return "", fmt.Errorf("%s is not a directory of this user", root)
	}
	return root, nil
}

// shortHash is the first 8 bytes of the SHA-256 of s, in hex.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// TokenLockPath is the per-user lock file of one token cache key under root, the per-user
// state directory (state.UserRoot: $XDG_STATE_HOME/entraclaw, ~/Library/Application
// Support/entraclaw, %LOCALAPPDATA%\entraclaw): root/token-<sha256(key), 16 hex digits>.lock.
func TokenLockPath(root, key string) string {
	return filepath.Join(root, "token-"+shortHash(key)+".lock")
}

// lockToken takes the per-user lock of key, so that one process mints while the others wait
// and then find its token in the cache. The lock is only a guard against bursts: when it
// cannot be created or is held for more than tokenLockWait, the caller goes on without it
// (unlock is then a no-op). Only the end of ctx (Ctrl-C) is an error.
func lockToken(ctx context.Context, key string, note func(string)) (unlock func(), err error) {
	noop := func() {}
	root, err := userStateDir()
	if err != nil {
		note("token lock skipped: " + err.Error())
		return noop, nil
	}
	path := TokenLockPath(root, key)
	lctx, cancel := context.WithTimeout(ctx, tokenLockWait)
	defer cancel()
	unlock, err = state.LockFile(lctx, path, func() { note("waiting for another entraclaw-provisioner-token (" + path + ")") })
	switch {
	case err == nil:
		return unlock, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		note(fmt.Sprintf("%s held for more than %s; requesting a token anyway", path, tokenLockWait))
	default:
		note("token lock skipped: " + err.Error())
	}
	return noop, nil
}
