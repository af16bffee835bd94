package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
	"github.com/entraclaw/entraclaw-cli/pkg/token"
)

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

// warnHosts returns cloud with hostWarning put in front of its transport: the warning goes to
// stderr before the run's first request, so a run that sends nothing (verify -offline, a
// cached token) never warns, and at most once a day for the same hosts (warnOnceADay).
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
		if warnOnceADay(hostWarningStamp(key), time.Now()) {
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

// warnEvery is how often one warning (one stamp) is repeated.
const warnEvery = 24 * time.Hour

// hostWarningStamp names the stamp of the warning about key (the pair of hosts):
// hostwarning-<sha256(key), 16 hex digits>.
func hostWarningStamp(key string) string {
	return "hostwarning-" + shortHash(key)
}

// expiryWarningStamp names the stamp of the warning that the certificate thumb (its
// hex SHA-1 thumbprint, certs.Thumbprint) expires soon: certexpiry-<thumb>. One per
// certificate, so the certificate a renewal brings is warned about on its own.
func expiryWarningStamp(thumb string) string {
	return "certexpiry-" + thumb
}

// warnOnceADay reports whether the warning whose stamp is named stamp is due (none given
// in the last warnEvery) and, if so, stamps it as given at now. The stamp is an empty
// 0600 file in the per-user state directory whose mtime is when the warning was last
// given. A warning that is not due costs one lstat and creates nothing; a stamp that
// cannot be read or written just means warning again.
func warnOnceADay(stamp string, now time.Time) bool {
	root, err := state.UserRoot()
	if err != nil {
		return true
	}
	path := filepath.Join(root, stamp)
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
		if age := now.Sub(fi.ModTime()); age >= 0 && age < warnEvery {
			return false
		}
	}
	if root, err = userStateDir(); err != nil {
		return true
	}
	path = filepath.Join(root, stamp)
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

// withTokenCache returns store with the token cache -token-cache chooses (token.ChooseCache),
// warning at most once a day, when warn is set, that auto found none. An explicit kernel
// that cannot work is an error naming why; auto never fails.
func (c *Common) withTokenCache(store *keystore.Store, warn bool) (*keystore.Store, error) {
	kind, noneBecause, err := token.ChooseCache(c.TokenCache)
	if err != nil {
		var unavailable *keystore.UnavailableError
		errors.As(err, &unavailable)
		return nil, &Error{Code: ExitFailure, Msg: "-token-cache kernel: " + oneLine(err.Error()), Hint: unavailable.Hint()}
	}
	if noneBecause != "" {
		c.tokenCacheNote = noneBecause
		if warn && c.stdio.Err != nil && warnOnceADay(noTokenCacheStamp, time.Now()) {
			fmt.Fprintf(c.stdio.Err, "%s: %s no token cache, so every call asks Entra ID for a token: %s (-token-cache none silences this)\n",
				c.name, newPainter(c.stdio).yellow("warning:"), c.tokenCacheNote)
		}
	}
	return store.WithTokenCache(kind), nil
}

// noTokenCacheStamp names the stamp of the warning that auto found no token cache.
const noTokenCacheStamp = "tokencache-none"

// describeTokenCache is the status line of store's token cache.
func (c *Common) describeTokenCache(store *keystore.Store) string {
	cache := store.TokenCache()
	switch store.TokenCacheKind() {
	case keystore.CacheKernel:
		return "kernel keyring (lost at reboot)"
	case keystore.CacheNone:
		if c.tokenCacheNote != "" {
			return "none (-token-cache auto found none: " + c.tokenCacheNote + ")"
		}
		return "none (-token-cache none: every call asks Entra ID)"
	}
	return fmt.Sprintf("%s, service %q", cache.BackendName(), cache.Service())
}
