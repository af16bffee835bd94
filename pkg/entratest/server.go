// Package entratest is a fake Microsoft Entra ID token service (STS) and Microsoft Graph
// v1.0, served over HTTPS on loopback, for tests — in the spirit of net/http/httptest.
//
// One server plays both hosts: the STS lives at /{tenant}/... and Graph at /v1.0/...
// Point azidentity at AuthorityHost() (with DisableInstanceDiscovery and Client() as the
// transport) and a Graph client at GraphEndpoint(). Seed fills the directory with a
// scenario; knobs (latency, propagation delay, replication lag, throttling, one-shot
// failures) reproduce the eventual consistency and faults of the real services, and
// per-route request counters let tests assert how many calls a run made.
//
// The behaviour follows the project's notes on the real services (graph-api-facts.md);
// where those notes mark something as unconfirmed, the doc comment says what this fake
// chose.
package entratest

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the server, https://127.0.0.1:PORT, without a trailing slash.
	URL string
	// realHosts: the server answers as login.microsoftonline.com, graph.microsoft.com and
	// management.azure.com (WithRealHosts); fixed at construction.
	realHosts bool

	caPEM      []byte
	client     *http.Client
	httpServer *http.Server
	signer     *tokenSigner
	dir        *directory

	mu            sync.Mutex // guards the fields below
	knobs         knobs
	counts        map[string]int
	writeCalls    int
	tokenRequests int
	throttleLeft  int
	throttleAfter time.Duration
	// tokenThrottleLeft token requests are answered 429 with Retry-After tokenThrottleAfter.
	tokenThrottleLeft  int
	tokenThrottleAfter time.Duration
	failures           map[string][]*pendingFailure
	failuresAfter      map[string][]*pendingFailure
	tokenCalls         map[string][]time.Time // token requests per tenant+client, for loop detection
	deviceCodes        map[string]*deviceCode // by device_code
	refreshTokens      map[string]*deviceCode // by refresh_token

	oidc oidcState // the external OIDC issuers; its own lock

	busyMu   sync.Mutex
	busy     int        // requests being served, for WaitIdle
	busyDone *sync.Cond // signalled when busy drops to 0
}

// knobs are the adjustable behaviours of the server.
type knobs struct {
	latency          time.Duration
	propagationDelay time.Duration
	replicationLag   time.Duration
	tokenLifetime    time.Duration
	pageSize         int
	clock            func() time.Time
	listenAddr       string // WithListenAddress; "" is 127.0.0.1:0
	realHosts        bool   // WithRealHosts
	fidelity
	federation
	realism
}

// Option configures a Server at construction.
type Option func(*knobs)

// WithLatency delays every STS and Graph request by d before it is handled.
func WithLatency(d time.Duration) Option { return func(k *knobs) { k.latency = d } }

// WithPropagationDelay makes app-role grants appear in tokens' roles claim only d after the
// grant, and makes the STS accept a newly uploaded certificate only d after the upload
// (before that it answers AADSTS700027 "key was not found"). The delay in force when the
// grant or upload happens applies to it.
func WithPropagationDelay(d time.Duration) Option {
	return func(k *knobs) { k.propagationDelay = d }
}

// WithReplicationLag hides objects created through Graph (applications, service
// principals, app-role assignments) from Graph reads and writes for d after creation:
// GETs answer 404 Request_ResourceNotFound, filtered lists omit them, and creating a
// service principal for a just-created application fails with 400 "does not reference a
// valid application object". The STS is not affected.
func WithReplicationLag(d time.Duration) Option {
	return func(k *knobs) { k.replicationLag = d }
}

// WithTokenLifetime sets the lifetime of access tokens the STS issues (default 1h), CAE
// tokens included (a test shortening tokens wants them all short); a later
// WithCAETokenLifetime sets the CAE one apart.
func WithTokenLifetime(d time.Duration) Option {
	return func(k *knobs) { k.tokenLifetime, k.caeTokenLifetime = d, d }
}

// WithPageSize sets the Graph page size used when a list request has no $top (default 100).
func WithPageSize(n int) Option { return func(k *knobs) { k.pageSize = n } }

// WithClock replaces time.Now for every decision the fake makes (token times, credential
// validity, propagation and lag). TLS certificates of the server itself use the real time.
func WithClock(now func() time.Time) Option { return func(k *knobs) { k.clock = now } }

// NewServer starts a fake on 127.0.0.1 with a fresh CA and token-signing key.
func NewServer(opts ...Option) (*Server, error) {
	k := knobs{tokenLifetime: time.Hour, pageSize: 100, clock: time.Now}
	for _, o := range opts {
		o(&k)
	}
	var hostNames []string
	if k.realHosts {
		hostNames = RealHostNames()
	}
	tlsCert, caPEM, pool, err := newTLSIdentity(time.Now(), hostNames...)
	if err != nil {
		return nil, err
	}
	signer, err := newTokenSigner(time.Now())
	if err != nil {
		return nil, err
	}
	listenAddr := k.listenAddr
	if listenAddr == "" {
		listenAddr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:           "https://" + ln.Addr().String(),
		realHosts:     k.realHosts,
		caPEM:         caPEM,
		signer:        signer,
		dir:           newDirectory(),
		knobs:         k,
		counts:        map[string]int{},
		failures:      map[string][]*pendingFailure{},
		failuresAfter: map[string][]*pendingFailure{},
		tokenCalls:    map[string][]time.Time{},
		deviceCodes:   map[string]*deviceCode{},
		refreshTokens: map[string]*deviceCode{},
	}
	s.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}}
	s.httpServer = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	tlsConfig := &tls.Config{
		Certificates: []tls.Certificate{tlsCert},
		NextProtos:   []string{"http/1.1"},
		MinVersion:   tls.VersionTLS12,
	}
	go func() { _ = s.httpServer.Serve(tls.NewListener(ln, tlsConfig)) }()
	return s, nil
}

// Close stops the server and closes its connections.
func (s *Server) Close() {
	_ = s.httpServer.Close()
	s.client.CloseIdleConnections()
}

// CAPEM returns the PEM of the CA that signed the server's TLS certificate.
func (s *Server) CAPEM() []byte { return append([]byte(nil), s.caPEM...) }

// Client returns an HTTP client that trusts the server's CA. Pass it as azcore's
// ClientOptions.Transport.
func (s *Server) Client() *http.Client { return s.client }

// AuthorityHost is the value for azidentity's Cloud.ActiveDirectoryAuthorityHost
// (URL plus a trailing slash; https://login.microsoftonline.com/ with WithRealHosts).
func (s *Server) AuthorityHost() string { return s.stsBase() + "/" }

// GraphEndpoint is the Graph base URL without a trailing slash; Graph lives at
// GraphEndpoint()+"/v1.0/...", and GraphEndpoint()+"/.default" is the token scope
// (https://graph.microsoft.com with WithRealHosts).
func (s *Server) GraphEndpoint() string { return s.graphBase() }

// SigningPublicKey returns the key that verifies every access token the fake issues.
func (s *Server) SigningPublicKey() *rsa.PublicKey { return &s.signer.key.PublicKey }

// SigningCertificate returns the self-signed certificate of the token-signing key; its
// SHA-1 thumbprint is the tokens' x5t/kid header.
func (s *Server) SigningCertificate() *x509.Certificate { return s.signer.cert }

// SetLatency changes the per-request latency while running.
func (s *Server) SetLatency(d time.Duration) { s.setKnob(func(k *knobs) { k.latency = d }) }

// SetPropagationDelay changes the propagation delay for grants and certificates made from
// now on.
func (s *Server) SetPropagationDelay(d time.Duration) {
	s.setKnob(func(k *knobs) { k.propagationDelay = d })
}

// SetReplicationLag changes the replication lag for objects created from now on.
func (s *Server) SetReplicationLag(d time.Duration) {
	s.setKnob(func(k *knobs) { k.replicationLag = d })
}

// SetTokenLifetime changes the lifetime of tokens issued from now on, CAE tokens included.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.setKnob(func(k *knobs) { k.tokenLifetime, k.caeTokenLifetime = d, d })
}

// SetPageSize changes the default Graph page size.
func (s *Server) SetPageSize(n int) { s.setKnob(func(k *knobs) { k.pageSize = n }) }

// SetClock replaces the clock; nil restores time.Now.
func (s *Server) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.setKnob(func(k *knobs) { k.clock = now })
}

func (s *Server) setKnob(f func(*knobs)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.knobs)
}

// currentKnobs returns a copy of the knobs.
func (s *Server) currentKnobs() knobs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.knobs
}

// now reads the server's clock.
func (s *Server) now() time.Time { return s.currentKnobs().clock() }

// Counts returns how many requests each route received since the start or the last
// ResetCounts, keyed by "METHOD /pattern" (see Routes). Requests matching no route are
// counted under "METHOD /*".
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// ResetCounts zeroes the request counters, WriteCalls and TokenRequests.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = map[string]int{}
	s.writeCalls = 0
	s.tokenRequests = 0
}

// WriteCalls is the number of Graph requests whose method is not GET (whatever their
// outcome), for asserting that a re-run changed nothing.
func (s *Server) WriteCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeCalls
}

// ApplicationRequests counts the Graph requests to the /v1.0/applications routes (the
// collection, one application, and its actions and owners) since the start or the last
// ResetCounts, whatever their outcome: reads (GET) and writes (every other method).
func (s *Server) ApplicationRequests() (reads, writes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for route, n := range s.counts {
		method, path, _ := strings.Cut(route, " ")
		if path != "/v1.0/applications" && !strings.HasPrefix(path, "/v1.0/applications/") {
			continue
		}
		if method == http.MethodGet {
			reads += n
		} else {
			writes += n
		}
	}
	return reads, writes
}

// TokenRequests is the number of requests to the token endpoint.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// Route names, as used by Counts, FailNext and FailRepeat.
const (
	RouteOpenIDConfiguration = "GET /{tenant}/v2.0/.well-known/openid-configuration"
	RouteKeys                = "GET /{tenant}/discovery/v2.0/keys"
	RouteToken               = "POST /{tenant}/oauth2/v2.0/token"
	RouteDeviceCode          = "POST /{tenant}/oauth2/v2.0/devicecode"
	RouteInstanceDiscovery   = "GET /{tenant}/discovery/instance"
	RouteARMSubscriptions    = "GET /subscriptions"
	RouteARMTenants          = "GET /tenants"
	RouteOrganization        = "GET /v1.0/organization"
	RouteListApplications    = "GET /v1.0/applications"
	RouteCreateApplication   = "POST /v1.0/applications"
	RouteGetApplication      = "GET /v1.0/applications/{id}"
	RoutePatchApplication    = "PATCH /v1.0/applications/{id}"
	RouteAddPassword         = "POST /v1.0/applications/{id}/addPassword"
	RouteRemovePassword      = "POST /v1.0/applications/{id}/removePassword"
	RouteAddKey              = "POST /v1.0/applications/{id}/addKey"
	RouteRemoveKey           = "POST /v1.0/applications/{id}/removeKey"
	RouteListOwners          = "GET /v1.0/applications/{id}/owners"
	RouteListFICs            = "GET /v1.0/applications/{id}/federatedIdentityCredentials"
	RouteCreateFIC           = "POST /v1.0/applications/{id}/federatedIdentityCredentials"
	RouteGetFIC              = "GET /v1.0/applications/{id}/federatedIdentityCredentials/{ficId}"
	RoutePatchFIC            = "PATCH /v1.0/applications/{id}/federatedIdentityCredentials/{ficId}"
	RouteDeleteFIC           = "DELETE /v1.0/applications/{id}/federatedIdentityCredentials/{ficId}"
	RouteListSPs             = "GET /v1.0/servicePrincipals"
	RouteCreateSP            = "POST /v1.0/servicePrincipals"
	RouteGetSP               = "GET /v1.0/servicePrincipals/{id}"
	RouteListAssignedTo      = "GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo"
	RouteGrant               = "POST /v1.0/servicePrincipals/{id}/appRoleAssignedTo"
	RouteListAssignments     = "GET /v1.0/servicePrincipals/{id}/appRoleAssignments"
	RouteFakeState           = "GET /_fake/state"
	RouteFakeAzAppShow       = "GET /_fake/az/ad/app/show"
	RouteFakeAzCredReset     = "POST /_fake/az/ad/app/credential/reset"
	RouteOIDCDiscovery       = "GET /_oidc/{issuer}/.well-known/openid-configuration"
	RouteOIDCKeys            = "GET /_oidc/{issuer}/keys"
	RouteGitHubIDToken       = "GET /_oidc/github/idtoken"
	RoutePipelinesOIDCToken  = "POST /_oidc/pipelines/oidctoken"
)

// Routes lists every route name the server serves.
func Routes() []string {
	return []string{
		RouteOpenIDConfiguration, RouteKeys, RouteToken, RouteDeviceCode, RouteOrganization,
		RouteListApplications, RouteCreateApplication, RouteGetApplication, RoutePatchApplication,
		RouteAddPassword, RouteRemovePassword, RouteAddKey, RouteRemoveKey, RouteListOwners,
		RouteListFICs, RouteCreateFIC, RouteGetFIC, RoutePatchFIC, RouteDeleteFIC,
		RouteListSPs, RouteCreateSP, RouteGetSP, RouteListAssignedTo, RouteGrant, RouteListAssignments,
		RouteFakeState, RouteFakeAzAppShow, RouteFakeAzCredReset,
		RouteOIDCDiscovery, RouteOIDCKeys, RouteGitHubIDToken, RoutePipelinesOIDCToken,
		RouteInstanceDiscovery, RouteARMSubscriptions, RouteARMTenants,
	}
}

func knownRoute(name string) bool {
	for _, r := range Routes() {
		if r == name {
			return true
		}
	}
	return false
}

// area tells which half of the fake a request belongs to.
type area int

const (
	areaUnknown area = iota
	areaSTS
	areaGraph
	areaFake
	areaOIDC // the external OIDC issuers (/_oidc/...)
	areaARM  // Azure Resource Manager (management.azure.com, WithRealHosts)
)

// request is a matched request: its route name and the parts of the path it needs.
type request struct {
	name   string // "METHOD /pattern"; pattern part may be unknown for unsupported methods
	area   area
	tenant string    // STS routes
	issuer string    // OIDC routes: github, pipelines or k8s
	graph  graphPath // Graph routes
	err    string    // Graph path that cannot be parsed: the message of the 400
}

// match classifies a request by method and path.
func match(method, path string) request {
	trimmed := strings.Trim(path, "/")
	switch {
	case trimmed == "_fake/state":
		return request{name: method + " /_fake/state", area: areaFake}
	case trimmed == "_fake/az/ad/app/show", trimmed == "_fake/az/ad/app/credential/reset":
		return request{name: method + " /" + trimmed, area: areaFake}
	case strings.HasPrefix(trimmed, "_oidc/"):
		return matchOIDC(method, trimmed)
	case trimmed == "v1.0" || strings.HasPrefix(trimmed, "v1.0/"):
		gp, err := parseGraphPath(strings.TrimPrefix(strings.TrimPrefix(trimmed, "v1.0"), "/"))
		if err != "" {
			return request{name: method + " /v1.0/*", area: areaGraph, err: err}
		}
		return request{name: method + " " + gp.pattern(), area: areaGraph, graph: gp}
	}
	segs := strings.SplitN(trimmed, "/", 2)
	if len(segs) == 2 {
		switch segs[1] {
		case "v2.0/.well-known/openid-configuration":
			return request{name: method + " /{tenant}/v2.0/.well-known/openid-configuration", area: areaSTS, tenant: segs[0]}
		case "oauth2/v2.0/token":
			return request{name: method + " /{tenant}/oauth2/v2.0/token", area: areaSTS, tenant: segs[0]}
		case "oauth2/v2.0/devicecode":
			return request{name: method + " /{tenant}/oauth2/v2.0/devicecode", area: areaSTS, tenant: segs[0]}
		case "discovery/v2.0/keys":
			return request{name: method + " /{tenant}/discovery/v2.0/keys", area: areaSTS, tenant: segs[0]}
		case "discovery/instance":
			return request{name: method + " /{tenant}/discovery/instance", area: areaSTS, tenant: segs[0]}
		}
	}
	return request{name: method + " /*", area: areaUnknown}
}

// ServeHTTP dispatches a request: count it, wait the latency, inject any pending fault,
// then serve it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.enter()
	defer s.leave()
	req := s.matchHost(r)
	s.record(req, r.Method)
	if req.area == areaGraph {
		setGraphHeaders(w, r)
	}
	if req.area == areaSTS {
		// Every answer of the real token service carries one (the azure-sdk-for-go
		// recordings); an error's trace_id repeats it.
		w.Header().Set("x-ms-request-id", newGUID())
	}
	if req.area == areaSTS || req.area == areaGraph {
		if !s.sleepLatency(r.Context()) {
			return
		}
		if s.injectFault(w, r, req) {
			return
		}
	}
	if req.area == areaOIDC && s.injectFault(w, r, req) {
		return
	}
	switch req.area {
	case areaFake:
		switch strings.Trim(r.URL.Path, "/") {
		case "_fake/az/ad/app/show":
			s.serveAzAppShow(w, r)
		case "_fake/az/ad/app/credential/reset":
			s.serveAzCredentialReset(w, r)
		default:
			s.serveState(w, r)
		}
	case areaSTS:
		s.serveSTS(w, r, req)
	case areaOIDC:
		s.serveOIDC(w, r, req)
	case areaARM:
		s.serveARM(w, r, req)
	case areaGraph:
		if f, ok := s.takeFaultAfter(req); ok {
			// The write is applied, then the answer is lost: a gateway timeout or a reset
			// after the directory committed it.
			s.serveGraph(discardWriter{header: http.Header{}}, r, req)
			s.writeFault(w, r, req, f)
			return
		}
		s.serveGraph(w, r, req)
	default:
		http.NotFound(w, r)
	}
}

// WaitIdle returns once no request is being served: after a client was killed, a
// request it had in flight has then either been applied (as Entra ID would) or dropped.
// Call it when no client is running, or it waits for theirs too.
func (s *Server) WaitIdle() {
	s.busyMu.Lock()
	defer s.busyMu.Unlock()
	for s.busy > 0 {
		s.idleCond().Wait()
	}
}

func (s *Server) idleCond() *sync.Cond {
	if s.busyDone == nil {
		s.busyDone = sync.NewCond(&s.busyMu)
	}
	return s.busyDone
}

func (s *Server) enter() {
	s.busyMu.Lock()
	s.busy++
	s.busyMu.Unlock()
}

func (s *Server) leave() {
	s.busyMu.Lock()
	if s.busy--; s.busy == 0 {
		s.idleCond().Broadcast()
	}
	s.busyMu.Unlock()
}

// record updates the counters for one request.
func (s *Server) record(req request, method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[req.name]++
	if req.area == areaGraph && method != http.MethodGet {
		s.writeCalls++
	}
	if req.name == RouteToken {
		s.tokenRequests++
	}
}

// sleepLatency waits the configured latency; false when the client went away meanwhile.
func (s *Server) sleepLatency(ctx context.Context) bool {
	d := s.currentKnobs().latency
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
