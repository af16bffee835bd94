package entratest

import (
	"crypto/x509"
	"net/http"
	"time"
)

// Snapshot is a secret-free picture of the fake: the directory, the request counters and
// the knobs. GET /_fake/state serves the same data as JSON. It never holds a client
// secret, a secretText, a private key or a certificate body.
type Snapshot struct {
	Tenants  []TenantView   `json:"tenants"`
	Requests map[string]int `json:"requests"`
	Knobs    KnobsView      `json:"knobs"`
}

// TenantView describes one tenant.
type TenantView struct {
	ID                string    `json:"id"`
	Apps              []AppView `json:"apps"`
	ServicePrincipals int       `json:"servicePrincipals"` // count, the Graph SP included
}

// AppView describes one application registration, including objects still hidden from
// Graph by replication lag.
type AppView struct {
	ID                  string                   `json:"id"`
	AppID               string                   `json:"appId"`
	DisplayName         string                   `json:"displayName"`
	SignInAudience      string                   `json:"signInAudience"`
	KeyCredentials      []KeyCredentialView      `json:"keyCredentials"`
	PasswordCredentials []PasswordCredentialView `json:"passwordCredentials"`
	// RequiredResourceAccessCount is the number of permissions declared, over all resources.
	RequiredResourceAccessCount int    `json:"requiredResourceAccessCount"`
	ServicePrincipalID          string `json:"servicePrincipalId"` // "" when none
	// GrantedRoles are the Graph app-role values granted to the service principal,
	// propagated or not.
	GrantedRoles []string `json:"grantedRoles"`
	// FICs are the federated identity credentials, propagated or not.
	FICs []FICView `json:"federatedIdentityCredentials"`
}

// KeyCredentialView describes an uploaded certificate. Cert is for Go callers only.
type KeyCredentialView struct {
	KeyID         string            `json:"keyId"`
	Thumbprint    string            `json:"thumbprint"` // SHA-1, lowercase hex
	DisplayName   string            `json:"displayName"`
	StartDateTime time.Time         `json:"startDateTime"`
	EndDateTime   time.Time         `json:"endDateTime"`
	Cert          *x509.Certificate `json:"-"`
}

// PasswordCredentialView describes a client secret by its metadata only.
type PasswordCredentialView struct {
	KeyID         string    `json:"keyId"`
	Hint          string    `json:"hint"`
	DisplayName   string    `json:"displayName"`
	StartDateTime time.Time `json:"startDateTime"`
	EndDateTime   time.Time `json:"endDateTime"`
}

// KnobsView shows the current knob settings; durations are Go duration strings.
type KnobsView struct {
	Latency            string         `json:"latency"`
	PropagationDelay   string         `json:"propagationDelay"`
	ReplicationLag     string         `json:"replicationLag"`
	TokenLifetime      string         `json:"tokenLifetime"`
	PageSize           int            `json:"pageSize"`
	ThrottleRemaining  int            `json:"throttleRemaining"`
	ThrottleRetryAfter string         `json:"throttleRetryAfter"`
	PendingFailures    map[string]int `json:"pendingFailures"`
}

// Snapshot returns the current secret-free state.
func (s *Server) Snapshot() Snapshot {
	s.mu.Lock()
	k := s.knobs
	snap := Snapshot{
		Requests: make(map[string]int, len(s.counts)),
		Knobs: KnobsView{
			Latency:            k.latency.String(),
			PropagationDelay:   k.propagationDelay.String(),
			ReplicationLag:     k.replicationLag.String(),
			TokenLifetime:      k.tokenLifetime.String(),
			PageSize:           k.pageSize,
			ThrottleRemaining:  s.throttleLeft,
			ThrottleRetryAfter: s.throttleAfter.String(),
			PendingFailures:    map[string]int{},
		},
		Tenants: []TenantView{},
	}
	for route, n := range s.counts {
		snap.Requests[route] = n
	}
	for route, queue := range s.failures {
		for _, f := range queue {
			snap.Knobs.PendingFailures[route] += f.left
		}
	}
	s.mu.Unlock()

	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	for _, t := range s.dir.order {
		tv := TenantView{ID: t.id, Apps: []AppView{}, ServicePrincipals: len(t.sps)}
		for _, a := range t.apps {
			tv.Apps = append(tv.Apps, t.appView(a))
		}
		snap.Tenants = append(snap.Tenants, tv)
	}
	return snap
}

// serveState serves GET /_fake/state (no authentication).
func (s *Server) serveState(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", s.Snapshot())
}
