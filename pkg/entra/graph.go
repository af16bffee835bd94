package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// GraphOptions tune the Graph client. Zero values mean the defaults.
type GraphOptions struct {
	// Transport sends the requests; nil means azcore's default HTTP client.
	Transport policy.Transporter
	// MaxRetries is how often azcore retries 408/429/5xx and transport errors
	// (honouring Retry-After, which real Graph sends in whole seconds); default 4,
	// negative for none.
	MaxRetries int
	// RetryDelay is the base of azcore's exponential backoff; default the cloud's
	// RetryDelay, else azcore's 800ms.
	RetryDelay time.Duration
	// MaxRetryDelay caps one backoff; a Retry-After above it ends the retries. Default 60s.
	MaxRetryDelay time.Duration
	// NotFoundRetries is how often a request about an object this client created
	// in the last RecentWindow is retried when Graph does not see it yet
	// (replication lag); default 6, negative for none.
	NotFoundRetries int
	// NotFoundBaseDelay is the first replication-lag wait; it doubles up to
	// 16 times the base (1, 2, 4, 8, 16, 16 s by default). Default 1s.
	NotFoundBaseDelay time.Duration
	// Progress, when set, receives one-line notes about waits (replication lag, throttling).
	Progress func(string)
}

// RecentWindow is how long after creating an object the client treats Not
// Found for it as replication lag.
const RecentWindow = 2 * time.Minute

const (
	defaultGraphMaxRetries  = 4
	defaultMaxRetryDelay    = 60 * time.Second // azcore's default MaxRetryDelay
	defaultNotFoundRetries  = 6
	defaultNotFoundBase     = time.Second
	notFoundMaxDelayFactor  = 16
	maxPages                = 500
	maxErrorMessageLength   = 300
	graphPipelineModuleName = "entraclaw"
	graphPipelineVersion    = "v1"
)

// Graph is a small Microsoft Graph v1.0 client on azcore's pipeline: bearer
// tokens from the credential, retries of throttling and server errors, and
// retries of Not Found for objects it created itself (replication lag).
type Graph struct {
	base     string
	pipeline runtime.Pipeline
	// once sends requests that are not idempotent (POST /applications, addPassword):
	// retried only on 429 and 503, answers that say the request was not processed, never
	// on 500/502/504, timeouts or resets, after which the write may have been applied.
	once     runtime.Pipeline
	opts     GraphOptions
	requests atomic.Int64

	mu      sync.Mutex
	created map[string]time.Time
}

// NewGraph builds a Graph client for the cloud's Graph endpoint, authorised by
// cred for Cloud.GraphScope().
func NewGraph(c Cloud, cred azcore.TokenCredential, o GraphOptions) (*Graph, error) {
	if cred == nil {
		return nil, errors.New("graph: no credential")
	}
	if c.GraphEndpoint == "" {
		return nil, errors.New("graph: no graph endpoint")
	}
	o.Transport = c.transport(o.Transport) // -ca-file
	if o.NotFoundRetries == 0 {
		o.NotFoundRetries = defaultNotFoundRetries
	}
	if o.NotFoundBaseDelay <= 0 {
		o.NotFoundBaseDelay = defaultNotFoundBase
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = c.RetryDelay
	}
	retries := o.MaxRetries
	if retries == 0 {
		retries = defaultGraphMaxRetries
	}
	g := &Graph{base: c.GraphBaseURL(), opts: o, created: map[string]time.Time{}}
	// One bearer policy serves both pipelines, so they share its token.
	perRetry := []policy.Policy{
		runtime.NewBearerTokenPolicy(cred, []string{c.GraphScope()}, nil),
		policyFunc(g.countAndReport),
	}
	transport := CapResponses(o.Transport, MaxGraphResponseBytes)
	retry := policy.RetryOptions{MaxRetries: int32(retries), RetryDelay: o.RetryDelay, MaxRetryDelay: o.MaxRetryDelay}
	g.pipeline = runtime.NewPipeline(graphPipelineModuleName, graphPipelineVersion, runtime.PipelineOptions{PerRetry: perRetry},
		&policy.ClientOptions{Transport: transport, Retry: retry})
	retry.ShouldRetry = notProcessed
	g.once = runtime.NewPipeline(graphPipelineModuleName, graphPipelineVersion, runtime.PipelineOptions{PerRetry: perRetry},
		&policy.ClientOptions{Transport: transport, Retry: retry})
	return g, nil
}

// retryBudget is the longest wait before a retry: MaxRetryDelay, azcore's 60 s by default.
func (g *Graph) retryBudget() time.Duration {
	if g.opts.MaxRetryDelay > 0 {
		return g.opts.MaxRetryDelay
	}
	return defaultMaxRetryDelay
}

// notProcessed is the retry rule for requests that are not idempotent: retry only an
// answer that says the service did not process the request (429, 503).
func notProcessed(resp *http.Response, err error) bool {
	return err == nil && resp != nil &&
		(resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable)
}

// RequestCount is the number of HTTP requests this client sent, retries included.
func (g *Graph) RequestCount() int { return int(g.requests.Load()) }

// policyFunc adapts a function to policy.Policy.
type policyFunc func(*policy.Request) (*http.Response, error)

func (f policyFunc) Do(req *policy.Request) (*http.Response, error) { return f(req) }

// countAndReport counts every attempt and notes throttling.
func (g *Graph) countAndReport(req *policy.Request) (*http.Response, error) {
	g.requests.Add(1)
	resp, err := req.Next()
	if err == nil && g.opts.Progress != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		g.opts.Progress(fmt.Sprintf("graph: %s %s: %s (throttled)", req.Raw().Method, req.Raw().URL.Path, statusText(resp.StatusCode)))
	}
	return resp, err
}

// markCreated records that this client created the objects (ids, or an app's appId)
// just now.
func (g *Graph) markCreated(ids ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		if id != "" {
			g.created[strings.ToLower(id)] = time.Now()
		}
	}
}

// recentlyCreated reports whether any of ids was created by this client within RecentWindow.
func (g *Graph) recentlyCreated(ids ...string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		if t, ok := g.created[strings.ToLower(id)]; ok && time.Since(t) < RecentWindow {
			return true
		}
	}
	return false
}

// GraphError is a Graph response with a non-2xx status.
type GraphError struct {
	Method     string
	Path       string // relative to /v1.0, without the query
	StatusCode int
	Code       string // e.g. Request_ResourceNotFound
	Message    string // one line
	RequestID  string
	// RetryAfter is the answer's Retry-After (retry-after-ms, x-ms-retry-after-ms), 0 when none.
	RetryAfter time.Duration
	// RetryBudget is the longest single wait the client makes before retrying (its
	// MaxRetryDelay). A Retry-After above it ends azcore's retries at once: Graph's write
	// quotas reset over 150 s windows, beyond azcore's default 60 s.
	RetryBudget time.Duration
}

// WaitExceedsBudget reports whether the service asked for a longer wait than the client
// makes, which is why it stopped retrying.
func (e *GraphError) WaitExceedsBudget() bool {
	return e.RetryAfter > 0 && e.RetryBudget > 0 && e.RetryAfter > e.RetryBudget
}

// Error is one line: "graph: <METHOD> <path>: <status> <Code>: <Message>".
func (e *GraphError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph: %s %s: %d", e.Method, e.Path, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	} else if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.WaitExceedsBudget() {
		fmt.Fprintf(&b, "; Graph asks to wait %s (Retry-After) before the next request, longer than the %s this client waits, so it stopped retrying: run the command again after %s",
			e.RetryAfter, e.RetryBudget, e.RetryAfter)
	}
	return b.String()
}

// IsNotFound reports whether err is a Graph 404.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsForbidden reports whether err is a Graph 403 (missing permission, or a
// token without the role yet).
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

// HasCode reports whether err is a Graph error with the given code (case-insensitive).
func HasCode(err error, code string) bool {
	var ge *GraphError
	return errors.As(err, &ge) && strings.EqualFold(ge.Code, code)
}

func hasStatus(err error, status int) bool {
	var ge *GraphError
	return errors.As(err, &ge) && ge.StatusCode == status
}

// RequestError is a Graph request that got no response: the token could not be
// obtained or the network failed. Err is typed (*AuthError, *FederatedMismatchError),
// so Error() is one line; Unwrap gives the cause, e.g. for AsSTSError.
type RequestError struct {
	Method, Path string
	Err          error
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("graph: %s %s: %s", e.Method, e.Path, e.Err.Error())
}

func (e *RequestError) Unwrap() error { return e.Err }

// graphErrorBody is Graph's error envelope.
type graphErrorBody struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			RequestID string `json:"request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

func newGraphError(method, path string, resp *http.Response, body []byte) *GraphError {
	ge := &GraphError{Method: method, Path: path, StatusCode: resp.StatusCode, RequestID: resp.Header.Get("request-id"),
		RetryAfter: retryAfter(resp.Header)}
	var env graphErrorBody
	if json.Unmarshal(body, &env) == nil {
		ge.Code = env.Error.Code
		ge.Message = clip(strings.Join(strings.Fields(env.Error.Message), " "), maxErrorMessageLength)
		if env.Error.InnerError.RequestID != "" {
			ge.RequestID = env.Error.InnerError.RequestID
		}
	}
	return ge
}

// call is one logical Graph request.
type call struct {
	method string
	path   string     // relative to /v1.0, escaped, e.g. /applications/{id}
	query  url.Values // nil for none; encoded with %20 for spaces
	body   any        // JSON body, nil for none
	out    any        // decoded from a 2xx body when non-nil
	// lagIDs are object ids the request is about: when one of them was created
	// by this client recently, Not Found is retried as replication lag.
	lagIDs []string
	// existing: the object is known to exist (e.g. an upsert just answered 204), so Not
	// Found is replication lag whatever lagIDs say.
	existing bool
	// header holds extra request headers, e.g. Prefer.
	header http.Header
	// notIdempotent sends the request through the pipeline that does not retry
	// 500/502/504, timeouts and resets.
	notIdempotent bool
}

// do sends c, retrying replication lag, and decodes the answer.
func (g *Graph) do(ctx context.Context, c call) error {
	return g.doURL(ctx, c, g.base+c.path+encodeQuery(c.query))
}

func (g *Graph) doURL(ctx context.Context, c call, fullURL string) error {
	for attempt := 0; ; attempt++ {
		err := g.send(ctx, c, fullURL)
		if err == nil || attempt >= g.opts.NotFoundRetries || !IsReplicationLag(err) || !(c.existing || g.recentlyCreated(c.lagIDs...)) {
			return err
		}
		if werr := g.waitForReplication(ctx, c, attempt); werr != nil {
			return err
		}
	}
}

// waitForReplication sleeps before the next replication-lag retry.
func (g *Graph) waitForReplication(ctx context.Context, c call, attempt int) error {
	delay := g.opts.NotFoundBaseDelay << min(attempt, 4)
	if limit := g.opts.NotFoundBaseDelay * notFoundMaxDelayFactor; delay > limit {
		delay = limit
	}
	if g.opts.Progress != nil {
		g.opts.Progress(fmt.Sprintf("graph: %s %s: new object not visible yet, retrying in %s", c.method, c.path, delay))
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// IsReplicationLag reports whether err is how Graph answers for an object its replica
// does not see yet: 404 Request_ResourceNotFound, or 400 "does not exist" / "does not
// reference" / "Not a valid reference update." (a grant to a service principal that has
// not replicated; terraform-provider-azuread retries the same message). It is lag only
// for an object the caller knows it created moments ago; the Graph client retries it
// for those by itself.
func IsReplicationLag(err error) bool {
	var ge *GraphError
	if !errors.As(err, &ge) {
		return false
	}
	switch ge.StatusCode {
	case http.StatusNotFound:
		return true
	case http.StatusBadRequest:
		return strings.Contains(ge.Message, "does not exist") || strings.Contains(ge.Message, "does not reference") ||
			strings.Contains(ge.Message, "Not a valid reference update")
	}
	return false
}

// isBackingAppNotReplicated reports whether err is the 403 Graph answers to POST
// /servicePrincipals while the application it names has not replicated yet ("When
// using this permission, the backing application of the service principal being
// created must in the local tenant"); terraform-provider-azuread retries it as lag.
func isBackingAppNotReplicated(err error) bool {
	var ge *GraphError
	return errors.As(err, &ge) && ge.StatusCode == http.StatusForbidden &&
		strings.Contains(ge.Message, "backing application of the service principal")
}

// send makes one attempt (azcore retries inside it) and decodes the answer.
func (g *Graph) send(ctx context.Context, c call, fullURL string) error {
	req, err := runtime.NewRequest(ctx, c.method, fullURL)
	if err != nil {
		return fmt.Errorf("graph: %s %s: %w", c.method, c.path, err)
	}
	req.Raw().Header.Set("Accept", "application/json")
	req.Raw().Header.Set("client-request-id", newUUID())
	for k, v := range c.header {
		req.Raw().Header[k] = v
	}
	if c.body != nil {
		if err := runtime.MarshalAsJSON(req, c.body); err != nil {
			return fmt.Errorf("graph: %s %s: encoding the request: %w", c.method, c.path, err)
		}
	}
	pipeline := g.pipeline
	if c.notIdempotent {
		pipeline = g.once
	}
	resp, err := pipeline.Do(req)
	if err != nil {
		return &RequestError{Method: c.method, Path: c.path, Err: typed(err)}
	}
	body, err := runtime.Payload(resp)
	if err != nil {
		return &RequestError{Method: c.method, Path: c.path, Err: typed(err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ge := newGraphError(c.method, c.path, resp, body)
		ge.RetryBudget = g.retryBudget()
		return ge
	}
	if c.out == nil || len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, c.out); err != nil {
		return fmt.Errorf("graph: %s %s: decoding the response: %w", c.method, c.path, err)
	}
	return nil
}

// page is one page of a Graph collection.
type page[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"@odata.nextLink"`
}

// list reads every page of a collection, following @odata.nextLink within
// this client's Graph endpoint.
func list[T any](ctx context.Context, g *Graph, c call) ([]T, error) {
	var all []T
	next := g.base + c.path + encodeQuery(c.query)
	for n := 0; next != ""; n++ {
		if n == maxPages {
			return nil, fmt.Errorf("graph: %s %s: more than %d pages", c.method, c.path, maxPages)
		}
		if !g.withinEndpoint(next) {
			return nil, fmt.Errorf("graph: %s %s: next page link points outside %s", c.method, c.path, g.base)
		}
		var p page[T]
		c.out = &p
		if err := g.doURL(ctx, c, next); err != nil {
			return nil, err
		}
		all = append(all, p.Value...)
		next = p.NextLink
	}
	return all, nil
}

// withinEndpoint reports whether link is an https URL on this client's Graph
// endpoint, so the bearer token is never sent elsewhere.
func (g *Graph) withinEndpoint(link string) bool {
	u, err := url.Parse(link)
	if err != nil {
		return false
	}
	b, err := url.Parse(g.base)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, b.Scheme) && strings.EqualFold(u.Host, b.Host) &&
		strings.HasPrefix(u.Path, strings.TrimSuffix(b.Path, "/")+"/")
}

// encodeQuery encodes q for a Graph URL: "?" + pairs sorted by key, keys such
// as $filter written as they are, values escaped with spaces as %20 (Graph's
// $filter parsing is unreliable with "+"). Empty for no values.
func encodeQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range q[k] {
			if b.Len() == 0 {
				b.WriteByte('?')
			} else {
				b.WriteByte('&')
			}
			b.WriteString(k + "=" + strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
		}
	}
	return b.String()
}

// filterEq is the OData filter "<property> eq '<value>'" with quotes doubled.
func filterEq(property, value string) url.Values {
	return url.Values{"$filter": {property + " eq '" + strings.ReplaceAll(value, "'", "''") + "'"}}
}

// objectPath is "/<collection>/<escaped id>" plus any further segments.
func objectPath(collection, id string, rest ...string) string {
	p := "/" + collection + "/" + url.PathEscape(id)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}
