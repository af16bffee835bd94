package entratest

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The public cloud's hosts the fake can answer as (WithRealHosts).
const (
	RealLoginHost = "login.microsoftonline.com"
	RealGraphHost = "graph.microsoft.com"
	RealARMHost   = "management.azure.com"
)

// RealHostNames lists the host names WithRealHosts puts in the server certificate; map each
// to 127.0.0.1 (an /etc/hosts of a private mount namespace) to send real clients to the fake.
func RealHostNames() []string { return []string{RealLoginHost, RealGraphHost, RealARMHost} }

// WithListenAddress makes the server listen on addr (host:port) instead of 127.0.0.1 on a
// free port, e.g. "127.0.0.1:443" for WithRealHosts, where clients dial the default port.
func WithListenAddress(addr string) Option { return func(k *knobs) { k.listenAddr = addr } }

// WithRealHosts makes the fake stand in for the public cloud: its certificate (from its own
// CA) also names login.microsoftonline.com, graph.microsoft.com and management.azure.com,
// requests are routed by their Host (the token service, Graph, Azure Resource Manager), and
// every URL it hands out (metadata, token audiences, nextLinks, error_uri) names the real
// hosts. Requests to 127.0.0.1 or localhost still reach every route, as without it. Clients
// then need no host settings at all, only the CA (CAPEM).
func WithRealHosts() Option { return func(k *knobs) { k.realHosts = true } }

// RealHosts reports whether the server was started WithRealHosts.
func (s *Server) RealHosts() bool { return s.realHosts }

// stsBase is the token service's base URL, without a trailing slash.
func (s *Server) stsBase() string {
	if s.realHosts {
		return "https://" + RealLoginHost
	}
	return s.URL
}

// graphBase is Graph's base URL, without a trailing slash.
func (s *Server) graphBase() string {
	if s.realHosts {
		return "https://" + RealGraphHost
	}
	return s.URL
}

// matchHost classifies a request by its path and, WithRealHosts, by its Host: each real
// host answers only its own service, as the real ones do; any other host (127.0.0.1) is
// served every route, as without real hosts.
func (s *Server) matchHost(r *http.Request) request {
	if !s.realHosts {
		return match(r.Method, r.URL.Path)
	}
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	switch host {
	case RealARMHost:
		return matchARM(r.Method, r.URL.Path)
	case RealLoginHost:
		return onlyArea(match(r.Method, r.URL.Path), areaSTS)
	case RealGraphHost:
		return onlyArea(match(r.Method, r.URL.Path), areaGraph)
	}
	return match(r.Method, r.URL.Path)
}

// onlyArea keeps req when it belongs to area and makes it an unknown route otherwise.
func onlyArea(req request, a area) request {
	if req.area == a {
		return req
	}
	method, _, _ := strings.Cut(req.name, " ")
	return request{name: method + " /*", area: areaUnknown}
}

// Instance discovery (GET https://login.microsoftonline.com/common/discovery/instance):
// MSAL asks it which hosts are aliases of one cloud (to share cached tokens) and, for an
// authority it does not know, where the tenant's metadata is. The groups below are the
// real answer's (api-version 1.1), as recorded in azure-sdk-for-js's test recordings and
// read by MSAL Python 1.21 (application.py _get_authority_aliases) and MSAL Go
// (authority.go InstanceDiscoveryResponse).
var instanceMetadata = []object{
	cloudAliases("login.microsoftonline.com", "login.windows.net",
		"login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"),
	cloudAliases("login.partner.microsoftonline.cn", "login.partner.microsoftonline.cn",
		"login.partner.microsoftonline.cn", "login.chinacloudapi.cn"),
	cloudAliases("login.microsoftonline.de", "login.microsoftonline.de", "login.microsoftonline.de"),
	cloudAliases("login.microsoftonline.us", "login.microsoftonline.us",
		"login.microsoftonline.us", "login.usgovcloudapi.net"),
	cloudAliases("login-us.microsoftonline.com", "login-us.microsoftonline.com", "login-us.microsoftonline.com"),
}

func cloudAliases(network, cache string, aliases ...string) object {
	return object{{"preferred_network", network}, {"preferred_cache", cache}, {"aliases", aliases}}
}

// serveInstanceDiscovery answers GET /{tenant}/discovery/instance?api-version=…&
// authorization_endpoint=https://HOST/TENANT/oauth2/[v2.0/]authorize with the tenant's
// metadata URL on HOST (v2.0 when the authorize URL is) and the alias groups. A HOST of no
// group (nor the fake's own) is 400 invalid_instance AADSTS50049, as the real service
// answers an unknown instance (MSAL Python raises on "invalid_instance").
func (s *Server) serveInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("authorization_endpoint")
	if raw == "" {
		s.writeSTSError(w, r, stsError{http.StatusBadRequest, "invalid_request", 90014,
			"The required field 'authorization_endpoint' is missing."})
		return
	}
	u, err := url.Parse(raw)
	tenant, rest, _ := strings.Cut(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	if err != nil || u.Scheme != "https" || tenant == "" || !s.knownInstance(u.Host) {
		s.writeSTSError(w, r, stsError{http.StatusBadRequest, "invalid_instance", 50049,
			"Unknown or invalid instance."})
		return
	}
	metadataPath := "/.well-known/openid-configuration"
	if strings.HasPrefix(rest, "oauth2/v2.0/") {
		metadataPath = "/v2.0" + metadataPath
	}
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", object{
		{"tenant_discovery_endpoint", "https://" + u.Host + "/" + tenant + metadataPath},
		{"api-version", "1.1"},
		{"metadata", instanceMetadata},
	})
}

// knownInstance reports whether host is a Microsoft login host of some cloud, or the fake's
// own host:port.
func (s *Server) knownInstance(host string) bool {
	if strings.EqualFold(host, strings.TrimPrefix(s.URL, "https://")) {
		return true
	}
	for _, group := range instanceMetadata {
		for _, f := range group {
			aliases, ok := f.value.([]string)
			for _, a := range aliases {
				if ok && strings.EqualFold(a, host) {
					return true
				}
			}
		}
	}
	return false
}

// OperatorAppDisplayName is the display name of the application AddOperatorApp registers.
const OperatorAppDisplayName = "EntraClaw fake operator"

// operatorAppRoles are the Graph application permissions of the operator app: what an
// administrator needs for the runbook (create and change applications, grant app roles).
var operatorAppRoles = []string{"Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"}

// AddOperatorApp registers, in the tenant, an application with a client secret and the
// Graph application permissions Application.ReadWrite.All and AppRoleAssignment.ReadWrite.All
// (granted and propagated), and returns its appId and secret. It is an operator the real az
// can sign in as (`az login --service-principal`), since the fake has no interactive user
// sign-in; its app-only Graph tokens may do what the runbook's administrator does.
func (s *Server) AddOperatorApp(tenantID string) (appID, secret string, err error) {
	now := s.now()
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	t := s.dir.tenant(tenantID)
	if t == nil {
		return "", "", fmt.Errorf("entratest: no tenant %s", tenantID)
	}
	past := now.Add(-24 * time.Hour)
	a := t.addApplication(OperatorAppDisplayName, "AzureADMyOrg", past, past)
	p := newPasswordCredential("az login", past, past.AddDate(1, 0, 0))
	a.passwordCredentials = []*passwordCredential{p}
	sp := t.addServicePrincipal(a, past, past)
	for _, value := range operatorAppRoles {
		id, ok := GraphRoleID(value)
		if !ok {
			return "", "", fmt.Errorf("entratest: no Graph role %s", value)
		}
		t.addAssignment(sp.id, t.graphSP.id, id, past, past, past)
	}
	return a.appID, p.secret, nil
}

// OperatorFileName is the file (mode 0600) of a real-hosts workdir holding the operator
// app's sign-in, shaped as az's own credential output: {"appId", "password", "tenant"}.
const OperatorFileName = "operator-sp.json"

// writeOperatorFile registers the operator app (AddOperatorApp) and writes its sign-in to
// DIR/operator-sp.json, for `az login --service-principal -u APPID -p PASSWORD --tenant T`.
func writeOperatorFile(w *Workdir, srv *Server, tenantID string) error {
	appID, secret, err := srv.AddOperatorApp(tenantID)
	if err != nil {
		return err
	}
	w.OperatorFile = filepath.Join(w.Dir, OperatorFileName)
	body := pythonStyleJSON([][2]string{{"appId", appID}, {"password", secret}, {"tenant", tenantID}})
	return os.WriteFile(w.OperatorFile, body, 0o600)
}
