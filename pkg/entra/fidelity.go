package entra

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// What real Entra ID and Graph do after the first minute, and the primitives callers use
// to survive it (docs/fake-fidelity.md).

// ProvisionerUniqueName is the uniqueName (a client-chosen alternate key) the provisioner
// app is created with through UpsertApplication, so that a retried create cannot make a
// second app.
const ProvisionerUniqueName = "entraclaw-agent-id-provisioner"

// UpsertApplication creates the single-tenant application with this uniqueName, or
// updates its displayName when it exists: PATCH /applications(uniqueName='…') with
// "Prefer: create-if-missing" (Graph's upsert). Unlike POST /applications it is safe to
// retry: a retry after a lost answer finds the app the first attempt created. created
// is true when this call made it (201); after a 204 the app is read back (retrying
// replication lag). An app created by POST (without a uniqueName) is not found by it:
// look up by display name first.
func (g *Graph) UpsertApplication(ctx context.Context, uniqueName, displayName string) (app *Application, created bool, err error) {
	path := "/applications(uniqueName='" + url.PathEscape(strings.ReplaceAll(uniqueName, "'", "''")) + "')"
	var out Application
	body := map[string]string{"displayName": displayName, "signInAudience": SignInAudienceMyOrg}
	err = g.do(ctx, call{
		method: http.MethodPatch, path: path, body: body, out: &out,
		header: http.Header{"Prefer": {"create-if-missing"}},
	})
	if err != nil {
		return nil, false, err
	}
	if out.ID != "" {
		if out.AppID == "" {
			return nil, false, errors.New("graph: PATCH " + path + ": the response has no appId")
		}
		g.markCreated(out.ID, out.AppID)
		return &out, true, nil
	}
	// 204: it existed (possibly created by an earlier attempt whose answer was lost).
	var read Application
	err = g.do(ctx, call{
		method: http.MethodGet, path: path, query: url.Values{"$select": {applicationSelect}}, out: &read, existing: true,
	})
	if err != nil {
		return nil, false, err
	}
	return &read, false, nil
}

// HasCertificate reports whether app lists the certificate with this SHA-1 thumbprint.
func HasCertificate(app *Application, thumbprint string) bool {
	if app == nil {
		return false
	}
	for _, k := range app.KeyCredentials {
		if k.MatchesThumbprint(thumbprint) {
			return true
		}
	}
	return false
}

// AwaitOptions bound AwaitApplication. Zero values mean the defaults.
type AwaitOptions struct {
	// Consecutive is how many reads in a row must satisfy the condition (default 3):
	// one good read can come from a replica that caught up while the next does not.
	Consecutive int
	// Interval is the wait between reads (default 2s).
	Interval time.Duration
	// Timeout bounds the whole wait (default 2 minutes).
	Timeout time.Duration
}

// ErrReadsInconsistent is returned by AwaitApplication when reads did not settle in time.
var ErrReadsInconsistent = errors.New("graph reads of the application did not settle")

// AwaitApplication reads the application (GetApplication) until ok holds for
// Consecutive reads in a row, and returns the last read. Graph reads are eventually
// consistent for property updates too: after a PATCH of keyCredentials a read can still
// show the old list, and a read-modify-write from it would drop the certificate just
// uploaded (PATCH replaces the list). So: before PATCHing keyCredentials from a read, or
// deleting a local key because Graph no longer lists it, wait here until reads agree
// (e.g. ok = HasCertificate(app, newThumb)). On timeout the error wraps
// ErrReadsInconsistent and the last read is returned too.
func (g *Graph) AwaitApplication(ctx context.Context, objectID string, ok func(*Application) bool, o AwaitOptions) (*Application, error) {
	if o.Consecutive <= 0 {
		o.Consecutive = 3
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	deadline := time.Now().Add(o.Timeout)
	var last *Application
	for good := 0; ; {
		app, err := g.GetApplication(ctx, objectID)
		if err != nil {
			return last, err
		}
		last = app
		if ok(app) {
			good++
		} else {
			good = 0
		}
		if good >= o.Consecutive {
			return app, nil
		}
		if time.Now().Add(o.Interval).After(deadline) {
			return last, fmt.Errorf("graph: application %s: %w within %s", objectID, ErrReadsInconsistent, o.Timeout)
		}
		if g.opts.Progress != nil && good == 0 {
			g.opts.Progress(fmt.Sprintf("graph: application %s: reads do not show the change yet, re-reading in %s", objectID, o.Interval))
		}
		t := time.NewTimer(o.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return last, ctx.Err()
		case <-t.C:
		}
	}
}

// ---- throttling ---------------------------------------------------------------------------

// AADSTS50196 is Entra's loop detection: "The server terminated an operation because it
// encountered a client request loop". It answers clients that request identical tokens
// in a tight loop (MSAL.NET "Throttling (HTTP 429 and AADSTS50196)").
const codeClientRequestLoop = 50196

// IsThrottled reports whether err says "not now, slow down" rather than "no": an STS
// answer AADSTS50196 or HTTP 429, or a Graph 429 (after azcore's own retries). A poller
// (e.g. waiting for a new certificate or grant to propagate) should treat it as "not
// yet", wait at least ThrottleDelay(err), and ask less often from then on.
func IsThrottled(err error) bool {
	if err == nil {
		return false
	}
	if sts, ok := AsSTSError(err); ok {
		return sts.HasCode(codeClientRequestLoop) || sts.Status == http.StatusTooManyRequests
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		return afe.RawResponse.StatusCode == http.StatusTooManyRequests
	}
	return hasStatus(err, http.StatusTooManyRequests)
}

// minThrottleDelay is the least a caller waits after a throttled answer without a
// Retry-After: Entra's loop detection counts identical requests over tens of seconds.
const minThrottleDelay = 15 * time.Second

// ThrottleDelay is how long to wait after a throttled answer: its Retry-After when it
// carried one, else 15 s.
func ThrottleDelay(err error) time.Duration {
	var ge *GraphError
	if errors.As(err, &ge) && ge.RetryAfter > 0 {
		return ge.RetryAfter
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		if d := retryAfter(afe.RawResponse.Header); d > 0 {
			return d
		}
	}
	return minThrottleDelay
}

// retryAfter reads retry-after-ms, x-ms-retry-after-ms or Retry-After (seconds); 0 when
// none is usable.
func retryAfter(h http.Header) time.Duration {
	for _, name := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if ms, err := strconv.Atoi(h.Get(name)); err == nil && ms > 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// ---- tenant policies ----------------------------------------------------------------------

// Hint says what to do about a Graph error an operator can fix, in one line; "" when there
// is nothing specific to say. It covers the tenant policies a real tenant can have: an
// app-management policy capping certificate lifetime (asymmetricKeyLifetime) or blocking
// client secrets (passwordAddition).
func (e *GraphError) Hint() string {
	h, _ := PolicyHint(e)
	return h
}

// PolicyHint recognises a Graph refusal by a tenant policy and says how to proceed.
func PolicyHint(err error) (string, bool) {
	var ge *GraphError
	if !errors.As(err, &ge) || ge.StatusCode != http.StatusBadRequest {
		return "", false
	}
	m := strings.ToLower(ge.Message)
	switch {
	case ge.Code == "CredentialInvalidLifetimeAsPerAppPolicy", strings.Contains(m, "lifetime") && strings.Contains(m, "policy"):
		return "the tenant's app-management policy caps certificate lifetime: run entraclaw-migrate with a shorter -cert-lifetime (e.g. -cert-lifetime 180d), or ask an administrator to exempt the app", true
	case ge.Code == "CredentialTypeNotAllowedAsPerAppPolicy", strings.Contains(m, "password") && strings.Contains(m, "policy"):
		return "the tenant's app-management policy blocks client secrets: keep the certificate (entraclaw-migrate) instead of rolling back to a secret, or ask an administrator to exempt the app", true
	}
	return "", false
}
