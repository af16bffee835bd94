package entra

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
)

// Tests of the client against pkg/entratest with the real-tenant behaviours turned on
// (docs/fake-fidelity.md, issue 9).

func newFake(t *testing.T, opts ...entratest.Option) *entratest.Server {
	t.Helper()
	t.Setenv("AZURE_REGIONAL_AUTHORITY_NAME", "")
	srv, err := entratest.NewServer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func fakeSeed(t *testing.T, srv *entratest.Server, name string) *entratest.Scenario {
	t.Helper()
	sc, err := srv.Seed(name)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func fakeCloud(t *testing.T, srv *entratest.Server) Cloud {
	t.Helper()
	c, err := ResolveCloud("", srv.AuthorityHost(), srv.GraphEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tokenCredential hands out one fixed token (e.g. the fake's operator token).
type tokenCredential string

func (c tokenCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(c), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// fakeGraph is a Graph client on the fake as the given operator kind, with fast retries.
func fakeGraph(t *testing.T, srv *entratest.Server, tenantID, kind string) *Graph {
	t.Helper()
	tok, err := srv.OperatorToken(tenantID, kind)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGraph(fakeCloud(t, srv), tokenCredential(tok), GraphOptions{
		Transport: srv.Client(), RetryDelay: time.Millisecond, NotFoundBaseDelay: 5 * time.Millisecond, NotFoundRetries: 12,
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// hostRewriter sends every request to the fake whatever its host (so a built-in cloud's
// authority can be exercised), records the paths, and rewrites the fake's URL in OIDC
// metadata back to the original host.
type hostRewriter struct {
	srv   *entratest.Server
	mu    sync.Mutex
	paths []string
}

func (h *hostRewriter) Do(req *http.Request) (*http.Response, error) {
	origin := req.URL.Scheme + "://" + req.URL.Host
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = "https", strings.TrimPrefix(h.srv.URL, "https://"), ""
	h.mu.Lock()
	h.paths = append(h.paths, req.Method+" "+req.URL.Path)
	h.mu.Unlock()
	resp, err := h.srv.Client().Do(r)
	if err != nil || !strings.HasSuffix(req.URL.Path, "openid-configuration") {
		return resp, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body = []byte(strings.ReplaceAll(string(body), h.srv.URL, origin))
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// Item 11: a cold token is 2 requests (OIDC metadata + token POST) on every cloud: no
// instance discovery for the built-in clouds either.
func TestColdTokenIsTwoRequestsOnEveryCloud(t *testing.T) {
	srv := newFake(t)
	sc := fakeSeed(t, srv, entratest.ScenarioMigrated)
	for _, name := range CloudNames() {
		t.Run(name, func(t *testing.T) {
			c, err := ResolveCloud(name, "", "")
			if err != nil {
				t.Fatal(err)
			}
			rw := &hostRewriter{srv: srv}
			cred, err := NewCertificateCredential(c, sc.TenantID, sc.ClientID, sc.Bundle,
				CredentialOptions{Transport: rw, Retry: policy.RetryOptions{MaxRetries: -1}})
			if err != nil {
				t.Fatal(err)
			}
			// The fake refuses the assertion (its audience names the real host), which does
			// not matter here: what counts is which requests a cold token costs.
			_, _ = FetchToken(testContext(t), cred, c.GraphScope())
			want := []string{
				"GET /" + sc.TenantID + "/v2.0/.well-known/openid-configuration",
				"POST /" + sc.TenantID + "/oauth2/v2.0/token",
			}
			if strings.Join(rw.paths, ", ") != strings.Join(want, ", ") {
				t.Errorf("cold token requests on %s = %v, want %v", name, rw.paths, want)
			}
		})
	}
}

// Item 8: the Graph service principal is read with $select: a fraction of the megabyte
// the fake (like Graph) serves without it.
func TestFindServicePrincipalSelects(t *testing.T) {
	srv := newFake(t)
	sc := fakeSeed(t, srv, entratest.ScenarioLegacy)
	counter := &byteCounter{inner: srv.Client()}
	tok, _ := srv.OperatorToken(sc.TenantID, "admin")
	g, err := NewGraph(fakeCloud(t, srv), tokenCredential(tok), GraphOptions{Transport: counter})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := g.FindServicePrincipal(testContext(t), GraphAppID)
	if err != nil || sp == nil {
		t.Fatalf("FindServicePrincipal = %v, %v", sp, err)
	}
	if len(sp.AppRoles) < 400 {
		t.Errorf("%d app roles, want the full realistic set", len(sp.AppRoles))
	}
	selected := counter.total()
	if !strings.Contains(counter.lastQuery(), "%24select=id%2CappId%2CdisplayName%2CappRoles") &&
		!strings.Contains(counter.lastQuery(), "$select=id%2CappId%2CdisplayName%2CappRoles") {
		t.Errorf("query %q has no $select", counter.lastQuery())
	}
	// The same read without $select.
	req, _ := http.NewRequest(http.MethodGet, srv.GraphEndpoint()+"/v1.0/servicePrincipals?$filter=appId%20eq%20'"+GraphAppID+"'", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(full) < 800_000 || selected*4 > int64(len(full)) {
		t.Errorf("read %d bytes with $select, %d without: want the full read about 1 MB and the selected one under a quarter of it", selected, len(full))
	}
}

type byteCounter struct {
	inner *http.Client
	mu    sync.Mutex
	n     int64
	query string
}

func (b *byteCounter) Do(req *http.Request) (*http.Response, error) {
	resp, err := b.inner.Do(req)
	if err != nil {
		return resp, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	b.mu.Lock()
	b.n += int64(len(body))
	b.query = req.URL.RawQuery
	b.mu.Unlock()
	return resp, nil
}

func (b *byteCounter) total() int64 { b.mu.Lock(); defer b.mu.Unlock(); return b.n }
func (b *byteCounter) lastQuery() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.query
}

// Item 1: a grant to a service principal that has not replicated answers 400 "Not a valid
// reference update."; creating the SP right after the app can answer the replication 403.
// Both are retried for objects this client just created.
func TestReplicationAnswersRetried(t *testing.T) {
	srv := newFake(t, entratest.WithReplicationLag(150*time.Millisecond), entratest.WithBackingAppForbidden(true))
	sc := fakeSeed(t, srv, entratest.ScenarioEmpty)
	g := fakeGraph(t, srv, sc.TenantID, "admin")
	ctx := testContext(t)
	app, err := g.CreateApplication(ctx, "replication test")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := g.CreateServicePrincipal(ctx, app.AppID)
	if err != nil {
		t.Fatalf("CreateServicePrincipal right after the app: %v", err)
	}
	if n := srv.Counts()[entratest.RouteCreateSP]; n < 2 {
		t.Errorf("POST /servicePrincipals sent %d times; the fake's 403 should have been retried", n)
	}
	graphSP, err := g.FindServicePrincipal(ctx, GraphAppID)
	if err != nil {
		t.Fatal(err)
	}
	roleID, _ := entratest.GraphRoleID("Organization.Read.All")
	created, err := g.GrantAppRole(ctx, graphSP.ID, sp.ID, roleID)
	if err != nil || !created {
		t.Fatalf("GrantAppRole to the new SP = %v, %v", created, err)
	}
	if n := srv.Counts()[entratest.RouteGrant]; n < 2 {
		t.Errorf("grant sent %d times; the 400 'Not a valid reference update.' should have been retried", n)
	}
}

// A replication 403 for an app this client did not create is a missing role: not retried.
func TestBackingAppForbiddenNotRetriedForOthersApps(t *testing.T) {
	srv := newFake(t, entratest.WithReplicationLag(time.Hour), entratest.WithBackingAppForbidden(true))
	sc := fakeSeed(t, srv, entratest.ScenarioEmpty)
	app, err := fakeGraph(t, srv, sc.TenantID, "admin").CreateApplication(testContext(t), "someone else's")
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetCounts()
	_, err = fakeGraph(t, srv, sc.TenantID, "admin").CreateServicePrincipal(testContext(t), app.AppID)
	if !IsForbidden(err) || srv.Counts()[entratest.RouteCreateSP] != 1 {
		t.Errorf("err = %v after %d requests, want one 403", err, srv.Counts()[entratest.RouteCreateSP])
	}
}

// Item 2: with read lag a GET right after the PATCH lacks the new certificate;
// AwaitApplication waits until consecutive reads show it.
func TestAwaitApplicationRidesOutReadLag(t *testing.T) {
	srv := newFake(t, entratest.WithReadLag(300*time.Millisecond))
	sc := fakeSeed(t, srv, entratest.ScenarioLegacy)
	g := fakeGraph(t, srv, sc.TenantID, "admin")
	ctx := testContext(t)
	b, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	thumb := certs.Thumbprint(b.Cert)
	start := time.Now()
	if err := g.SetKeyCredentials(ctx, sc.AppObjectID, []KeyCredential{NewKeyCredential(b.Cert, "new")}); err != nil {
		t.Fatal(err)
	}
	stale, err := g.GetApplication(ctx, sc.AppObjectID)
	if err != nil {
		t.Fatal(err)
	}
	if HasCertificate(stale, thumb) {
		t.Fatal("a read right after the PATCH already shows the certificate: the fake's read lag is off")
	}
	if _, err := g.AwaitApplication(ctx, sc.AppObjectID, func(a *Application) bool { return HasCertificate(a, thumb) },
		AwaitOptions{Interval: 20 * time.Millisecond, Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrReadsInconsistent) {
		t.Errorf("short await: err = %v, want ErrReadsInconsistent", err)
	}
	app, err := g.AwaitApplication(ctx, sc.AppObjectID, func(a *Application) bool { return HasCertificate(a, thumb) },
		AwaitOptions{Interval: 40 * time.Millisecond, Timeout: 3 * time.Second})
	if err != nil || !HasCertificate(app, thumb) {
		t.Fatalf("AwaitApplication = %v", err)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Errorf("AwaitApplication returned after %s, before the read lag ended", time.Since(start))
	}
}

// Item 5: a client polling the token endpoint in a tight loop gets AADSTS50196; that and
// a Graph 429 are "throttled", not failures.
func TestThrottlingClassified(t *testing.T) {
	srv := newFake(t, entratest.WithTokenLoopLimit(2, time.Minute))
	sc := fakeSeed(t, srv, entratest.ScenarioMigrated)
	var last error
	for i := 0; i < 3; i++ {
		cred, err := NewCertificateCredential(fakeCloud(t, srv), sc.TenantID, sc.ClientID, sc.Bundle,
			CredentialOptions{Transport: srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}})
		if err != nil {
			t.Fatal(err)
		}
		_, last = FetchToken(testContext(t), cred, fakeCloud(t, srv).GraphScope())
		if i < 2 && last != nil {
			t.Fatalf("token %d: %v", i+1, last)
		}
	}
	sts, ok := AsSTSError(last)
	if !ok || !sts.HasCode(50196) || !IsThrottled(last) || ThrottleDelay(last) < 10*time.Second ||
		!strings.Contains(sts.Hint(), "throttling") {
		t.Errorf("third token: %v (throttled %v)", last, IsThrottled(last))
	}
	if IsThrottled(errors.New("x")) || IsThrottled(nil) {
		t.Error("plain errors classified as throttled")
	}

	srv.Throttle(5, 7*time.Millisecond)
	tok, _ := srv.OperatorToken(sc.TenantID, "admin")
	g, _ := NewGraph(fakeCloud(t, srv), tokenCredential(tok), GraphOptions{Transport: srv.Client(), MaxRetries: -1})
	_, err := g.GetApplication(testContext(t), sc.AppObjectID)
	if !IsThrottled(err) || ThrottleDelay(err) != time.Second {
		t.Errorf("Graph 429: %v, throttled %v, delay %s", err, IsThrottled(err), ThrottleDelay(err))
	}
}

// Item 6: a POST that was applied but answered 504 is not retried blindly (that made a
// second app, or a second secret); the upsert is safe to retry and converges on one app.
func TestNonIdempotentWritesNotRetried(t *testing.T) {
	srv := newFake(t)
	sc := fakeSeed(t, srv, entratest.ScenarioLegacy)
	g := fakeGraph(t, srv, sc.TenantID, "admin")
	ctx := testContext(t)
	gatewayTimeout := entratest.Failure{Status: http.StatusGatewayTimeout, Code: "GatewayTimeout"}

	srv.FailAfterNext(entratest.RouteCreateApplication, gatewayTimeout)
	if _, err := g.CreateApplication(ctx, "dup test"); err == nil {
		t.Error("CreateApplication hid the 504")
	}
	apps, _ := g.ListApplicationsByDisplayName(ctx, "dup test")
	if len(apps) != 1 || srv.Counts()[entratest.RouteCreateApplication] != 1 {
		t.Errorf("%d apps after %d POSTs, want 1 and 1", len(apps), srv.Counts()[entratest.RouteCreateApplication])
	}

	srv.FailAfterNext(entratest.RouteAddPassword, gatewayTimeout)
	if _, err := g.AddPassword(ctx, sc.AppObjectID, "rollback", time.Time{}); err == nil {
		t.Error("AddPassword hid the 504")
	}
	if v, _ := srv.App(sc.TenantID, sc.ClientID); len(v.PasswordCredentials) != 2 {
		t.Errorf("%d secrets, want the seeded one plus one", len(v.PasswordCredentials))
	}

	srv.FailAfterNext(entratest.RoutePatchApplication, gatewayTimeout)
	app, created, err := g.UpsertApplication(ctx, ProvisionerUniqueName, "upserted")
	if err != nil || app == nil || app.AppID == "" || created {
		t.Fatalf("UpsertApplication after a lost answer = %+v, created %v, %v (want the app, created false)", app, created, err)
	}
	again, created, err := g.UpsertApplication(ctx, ProvisionerUniqueName, "upserted")
	if err != nil || created || again.ID != app.ID {
		t.Errorf("second upsert = %v, created %v, %v", again, created, err)
	}
	if apps, _ := g.ListApplicationsByDisplayName(ctx, "upserted"); len(apps) != 1 {
		t.Errorf("%d apps named upserted, want 1", len(apps))
	}
	fresh, created, err := g.UpsertApplication(ctx, "another-unique-name", "fresh")
	if err != nil || !created || fresh.ID == "" {
		t.Errorf("upsert of a new name = %v, created %v, %v", fresh, created, err)
	}
}

// Item 3: device code prompts once per run although the run asks for a non-CAE token
// (FetchToken) and then calls Graph (CAE), and a sign-in to another tenant is refused.
func TestDeviceCodePromptsOncePerRun(t *testing.T) {
	srv := newFake(t)
	sc := fakeSeed(t, srv, entratest.ScenarioLegacy)
	other := fakeSeed(t, srv, entratest.ScenarioEmpty)
	c := fakeCloud(t, srv)
	for _, tt := range []struct {
		name, signInTenant string
		wantErr            string
	}{
		{"same tenant", sc.TenantID, ""},
		{"other tenant", other.TenantID, "tenant"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetCounts()
			prompt := &completer{srv: srv, tenant: tt.signInTenant}
			cred, err := NewOperatorCredential(OperatorDeviceCode, c, sc.TenantID, prompt,
				CredentialOptions{Transport: srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}})
			if err != nil {
				t.Fatal(err)
			}
			ctx := testContext(t)
			_, err = FetchToken(ctx, cred, c.GraphScope())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("sign-in as another tenant: err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("FetchToken: %v", err)
			}
			g, err := NewGraph(c, cred, GraphOptions{Transport: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := g.ListApplicationsByDisplayName(ctx, entratest.AppDisplayName); err != nil {
				t.Fatal(err)
			}
			if _, err := g.FindServicePrincipal(ctx, GraphAppID); err != nil {
				t.Fatal(err)
			}
			if n := srv.DeviceCodePrompts(); n != 1 || prompt.count() != 1 {
				t.Errorf("%d device codes requested, %d prompts shown; want 1", n, prompt.count())
			}
		})
	}
}

// completer plays the user: it reads the prompt and signs in at the fake.
type completer struct {
	srv    *entratest.Server
	tenant string
	mu     sync.Mutex
	n      int
}

var userCode = regexp.MustCompile(`enter the code (\S+)`)

func (c *completer) Write(p []byte) (int, error) {
	if m := userCode.FindSubmatch(p); m != nil {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
		if err := c.srv.CompleteDeviceCode(string(m[1]), c.tenant, "admin"); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *completer) count() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

// The single-sign-in wrapper refuses a token for another tenant than the first one.
func TestSingleSignInRefusesSecondTenant(t *testing.T) {
	mk := func(tid string) string {
		return strings.TrimRight(b64url(`{"alg":"RS256","typ":"JWT"}`), "=") + "." + strings.TrimRight(b64url(`{"tid":"`+tid+`"}`), "=") + ".sig"
	}
	inner := &sequenceCredential{tokens: []string{mk("11111111-1111-1111-1111-111111111111"), mk("22222222-2222-2222-2222-222222222222")}}
	s := &singleSignIn{inner: inner}
	if _, err := s.GetToken(context.Background(), policy.TokenRequestOptions{}); err != nil {
		t.Fatal(err)
	}
	if !inner.cae {
		t.Error("the request was not made with EnableCAE")
	}
	if _, err := s.GetToken(context.Background(), policy.TokenRequestOptions{}); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("second tenant: err = %v", err)
	}
}

type sequenceCredential struct {
	tokens []string
	cae    bool
}

func (s *sequenceCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	s.cae = o.EnableCAE
	tok := s.tokens[0]
	s.tokens = s.tokens[1:]
	return azcore.AccessToken{Token: tok, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// Item 10: tenant policies answer with the real errors; the client's hint says the fix.
func TestTenantPolicyHints(t *testing.T) {
	srv := newFake(t, entratest.WithCertLifetimeCap(180*24*time.Hour), entratest.WithPasswordAdditionBlocked(true),
		entratest.WithDeviceCodeBlocked(true))
	sc := fakeSeed(t, srv, entratest.ScenarioLegacy)
	g := fakeGraph(t, srv, sc.TenantID, "admin")
	ctx := testContext(t)
	b, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	err = g.SetKeyCredentials(ctx, sc.AppObjectID, []KeyCredential{NewKeyCredential(b.Cert, "")})
	var ge *GraphError
	if !errors.As(err, &ge) || !strings.Contains(ge.Hint(), "-cert-lifetime") {
		t.Errorf("365-day cert under a 180-day cap: %v (hint %q)", err, hintOf(err))
	}
	_, err = g.AddPassword(ctx, sc.AppObjectID, "x", time.Time{})
	if h, ok := PolicyHint(err); !ok || !strings.Contains(h, "client secrets") {
		t.Errorf("addPassword under passwordAddition: %v (hint %q)", err, h)
	}
	prompt := &completer{srv: srv, tenant: sc.TenantID}
	cred, err := NewOperatorCredential(OperatorDeviceCode, fakeCloud(t, srv), sc.TenantID, prompt,
		CredentialOptions{Transport: srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = FetchToken(ctx, cred, fakeCloud(t, srv).GraphScope())
	if sts, ok := AsSTSError(err); !ok || !sts.HasCode(53003) || !strings.Contains(sts.Hint(), "azcli") {
		t.Errorf("device code under Conditional Access: %v", err)
	}
}

func hintOf(err error) string {
	var ge *GraphError
	if errors.As(err, &ge) {
		return ge.Hint()
	}
	return ""
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
