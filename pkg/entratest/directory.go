package entratest

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

// directory is the in-memory Entra ID: tenants with their applications, service principals
// and app-role assignments. Every field of every object below is guarded by mu.
type directory struct {
	mu      sync.Mutex
	tenants map[string]*tenant // by lowercase tenant id
	order   []*tenant
}

type tenant struct {
	id          string
	domain      string
	apps        []*application
	sps         []*servicePrincipal
	assignments []*appRoleAssignment
	graphSP     *servicePrincipal
	operators   map[string]string // operator kind -> user object id
}

// application is an app registration. Objects created through Graph carry visibleAt =
// creation + replication lag; seeded objects are visible at once.
type application struct {
	id                     string
	appID                  string
	displayName            string
	signInAudience         string
	createdAt              time.Time
	visibleAt              time.Time
	keyCredentials         []*keyCredential
	passwordCredentials    []*passwordCredential
	requiredResourceAccess []resourceAccessEntry
	uniqueName             string   // alternate key set by an upsert; "" when none
	owners                 []string // object ids of the users owning the app
	// fics are the federated identity credentials. Writes replace the slice and its
	// elements instead of changing them in place, so a read-lag snapshot keeps the old ones.
	fics []*federatedCredential
	// stale is the value before the last PATCH, served to reads until staleUntil (read lag).
	stale      *application
	staleUntil time.Time
	// retired are certificates removed from the app that the STS still accepts (the key
	// removal delay).
	retired []retiredKey
}

// keyCredential is an uploaded certificate. activeAt is when the STS starts accepting it
// (upload + propagation delay).
type keyCredential struct {
	keyID               string
	displayName         string
	customKeyIdentifier string
	keyType             string
	usage               string
	start, end          time.Time
	der                 []byte
	cert                *x509.Certificate
	sha1, sha256        []byte
	addedAt             time.Time
	activeAt            time.Time
}

// passwordCredential is a client secret. The secret itself leaves the directory only in the
// addPassword response and through the AddPassword test hook.
type passwordCredential struct {
	keyID       string
	displayName string
	hint        string
	secret      string
	start, end  time.Time
}

// resourceAccessEntry is one element of requiredResourceAccess.
type resourceAccessEntry struct {
	ResourceAppID  string           `json:"resourceAppId"`
	ResourceAccess []resourceAccess `json:"resourceAccess"`
}

type resourceAccess struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

type servicePrincipal struct {
	id                     string
	appID                  string
	displayName            string
	appOwnerOrganizationID string
	servicePrincipalNames  []string
	appRoles               []graphRole
	createdAt              time.Time
	visibleAt              time.Time
	isGraph                bool // Microsoft Graph's own: carries the large scope catalogue
	// disabled (accountEnabled false, since disabledAt): no tokens, CAE tokens challenged.
	disabled   bool
	disabledAt time.Time
}

// appRoleAssignment is an application-permission grant. activeAt is when tokens start to
// carry the role (grant + propagation delay).
type appRoleAssignment struct {
	id          string
	principalID string
	resourceID  string
	appRoleID   string
	createdAt   time.Time
	visibleAt   time.Time
	activeAt    time.Time
}

func newDirectory() *directory {
	return &directory{tenants: map[string]*tenant{}}
}

// addTenant creates a tenant holding the Microsoft Graph service principal (the built-in
// roles, the realistic filler and any published roles). Caller holds mu.
func (d *directory) addTenant(now time.Time, published []graphRole) *tenant {
	id := newGUID()
	t := &tenant{
		id:        id,
		domain:    "entraclaw" + strings.ReplaceAll(id, "-", "")[:8] + ".onmicrosoft.com",
		operators: map[string]string{},
	}
	t.graphSP = &servicePrincipal{
		id:                     newGUID(),
		appID:                  GraphAppID,
		displayName:            "Microsoft Graph",
		appOwnerOrganizationID: microsoftServicesTenantID,
		servicePrincipalNames: []string{
			GraphAppID + "/ags.windows.net", GraphAppID,
			"https://canary.graph.microsoft.com", "https://graph.microsoft.com",
		},
		appRoles:  graphSPRoles(published),
		createdAt: now.Add(-365 * 24 * time.Hour),
		isGraph:   true,
	}
	t.graphSP.visibleAt = t.graphSP.createdAt
	t.sps = append(t.sps, t.graphSP)
	d.tenants[id] = t
	d.order = append(d.order, t)
	return t
}

// tenant returns the tenant with the given id (case-insensitive). Caller holds mu.
func (d *directory) tenant(id string) *tenant {
	return d.tenants[strings.ToLower(id)]
}

// tenantByName returns the tenant with the given id or domain name (case-insensitive), as
// the STS accepts either. Caller holds mu.
func (d *directory) tenantByName(name string) *tenant {
	if t := d.tenant(name); t != nil {
		return t
	}
	for _, t := range d.order {
		if strings.EqualFold(t.domain, name) {
			return t
		}
	}
	return nil
}

func visible(visibleAt, now time.Time) bool { return !now.Before(visibleAt) }

// appByAppID finds an application by appId regardless of replication lag.
func (t *tenant) appByAppID(appID string) *application {
	for _, a := range t.apps {
		if strings.EqualFold(a.appID, appID) {
			return a
		}
	}
	return nil
}

// appByUniqueName finds an application by its uniqueName regardless of replication lag.
func (t *tenant) appByUniqueName(name string) *application {
	for _, a := range t.apps {
		if a.uniqueName != "" && strings.EqualFold(a.uniqueName, name) {
			return a
		}
	}
	return nil
}

// appByObjectID finds an application by object id regardless of replication lag.
func (t *tenant) appByObjectID(id string) *application {
	for _, a := range t.apps {
		if strings.EqualFold(a.id, id) {
			return a
		}
	}
	return nil
}

// spByAppID finds a service principal by appId regardless of replication lag.
func (t *tenant) spByAppID(appID string) *servicePrincipal {
	for _, sp := range t.sps {
		if strings.EqualFold(sp.appID, appID) {
			return sp
		}
	}
	return nil
}

// spByObjectID finds a service principal by object id regardless of replication lag.
func (t *tenant) spByObjectID(id string) *servicePrincipal {
	for _, sp := range t.sps {
		if strings.EqualFold(sp.id, id) {
			return sp
		}
	}
	return nil
}

// grantedRoleValues lists the Graph role values granted to the service principal spID.
// With activeOnly, grants still inside their propagation delay are left out.
func (t *tenant) grantedRoleValues(spID string, now time.Time, activeOnly bool) []string {
	var values []string
	for _, a := range t.assignments {
		if a.principalID != spID || a.resourceID != t.graphSP.id {
			continue
		}
		if activeOnly && now.Before(a.activeAt) {
			continue
		}
		for _, r := range t.graphSP.appRoles {
			if strings.EqualFold(r.id, a.appRoleID) {
				values = append(values, r.value)
			}
		}
	}
	return values
}

// addApplication registers an application (and nothing else). Caller holds mu.
func (t *tenant) addApplication(displayName, audience string, now, visibleAt time.Time) *application {
	a := &application{
		id:             newGUID(),
		appID:          newGUID(),
		displayName:    displayName,
		signInAudience: audience,
		createdAt:      now,
		visibleAt:      visibleAt,
	}
	t.apps = append(t.apps, a)
	return a
}

// addServicePrincipal creates the service principal of app. Caller holds mu.
func (t *tenant) addServicePrincipal(a *application, now, visibleAt time.Time) *servicePrincipal {
	sp := &servicePrincipal{
		id:                     newGUID(),
		appID:                  a.appID,
		displayName:            a.displayName,
		appOwnerOrganizationID: t.id,
		servicePrincipalNames:  []string{a.appID},
		createdAt:              now,
		visibleAt:              visibleAt,
	}
	t.sps = append(t.sps, sp)
	return sp
}

// findAssignment returns the grant of role appRoleID on resourceID to principalID, if any.
func (t *tenant) findAssignment(principalID, resourceID, appRoleID string) *appRoleAssignment {
	for _, a := range t.assignments {
		if strings.EqualFold(a.principalID, principalID) && strings.EqualFold(a.resourceID, resourceID) &&
			strings.EqualFold(a.appRoleID, appRoleID) {
			return a
		}
	}
	return nil
}

// addAssignment records a grant. Caller holds mu and has checked for duplicates.
func (t *tenant) addAssignment(principalID, resourceID, appRoleID string, now, visibleAt, activeAt time.Time) *appRoleAssignment {
	a := &appRoleAssignment{
		id:          newAssignmentID(),
		principalID: strings.ToLower(principalID),
		resourceID:  strings.ToLower(resourceID),
		appRoleID:   strings.ToLower(appRoleID),
		createdAt:   now,
		visibleAt:   visibleAt,
		activeAt:    activeAt,
	}
	t.assignments = append(t.assignments, a)
	return a
}

// newKeyCredential builds a stored certificate credential from a parsed certificate.
func newKeyCredential(cert *x509.Certificate, start, end, addedAt, activeAt time.Time) *keyCredential {
	s1 := sha1.Sum(cert.Raw)
	s256 := sha256.Sum256(cert.Raw)
	return &keyCredential{
		keyID:               newGUID(),
		displayName:         truncate("CN="+cert.Subject.CommonName, 90),
		customKeyIdentifier: strings.ToUpper(hex.EncodeToString(s1[:])),
		keyType:             "AsymmetricX509Cert",
		usage:               "Verify",
		start:               start,
		end:                 end,
		der:                 cert.Raw,
		cert:                cert,
		sha1:                s1[:],
		sha256:              s256[:],
		addedAt:             addedAt,
		activeAt:            activeAt,
	}
}

// newPasswordCredential generates a client secret shaped like Entra's (40 characters,
// "8Q~" after the three-character hint).
func newPasswordCredential(displayName string, start, end time.Time) *passwordCredential {
	secret := randomString(3) + "8Q~" + randomString(34)
	return &passwordCredential{
		keyID:       newGUID(),
		displayName: displayName,
		hint:        secret[:3],
		secret:      secret,
		start:       start,
		end:         end,
	}
}

// matchSecret reports which password credential, if any, holds secret.
func (a *application) matchSecret(secret string) *passwordCredential {
	for _, p := range a.passwordCredentials {
		if subtle.ConstantTimeCompare([]byte(p.secret), []byte(secret)) == 1 {
			return p
		}
	}
	return nil
}

// ---- test hooks -------------------------------------------------------------------------

// errNotFound reports a missing tenant, application or credential to a test hook's caller.
var errNotFound = errors.New("not found")

// lookupApp resolves tenant and appId for a test hook. Caller holds s.dir.mu.
func (s *Server) lookupApp(tenantID, appID string) (*tenant, *application, error) {
	t := s.dir.tenant(tenantID)
	if t == nil {
		return nil, nil, fmt.Errorf("entratest: tenant %s: %w", tenantID, errNotFound)
	}
	a := t.appByAppID(appID)
	if a == nil {
		return nil, nil, fmt.Errorf("entratest: application %s in tenant %s: %w", appID, tenantID, errNotFound)
	}
	return t, a, nil
}

// AddPassword adds a client secret to the application, as if someone had clicked "New
// client secret" in the portal, and returns its keyId and value. It is usable at once.
func (s *Server) AddPassword(tenantID, appID string, lifetime time.Duration) (keyID, secret string, err error) {
	now := s.now()
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	_, a, err := s.lookupApp(tenantID, appID)
	if err != nil {
		return "", "", err
	}
	p := newPasswordCredential("added by test", now, now.Add(lifetime))
	a.passwordCredentials = append(a.passwordCredentials, p)
	return p.keyID, p.secret, nil
}

// AddKeyCredential uploads a certificate to the application out of band, for example
// another machine's certificate. It is accepted by the STS at once.
func (s *Server) AddKeyCredential(tenantID, appID string, cert *x509.Certificate, start, end time.Time) error {
	now := s.now()
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	_, a, err := s.lookupApp(tenantID, appID)
	if err != nil {
		return err
	}
	a.keyCredentials = append(a.keyCredentials, newKeyCredential(cert, start, end, now, now))
	return nil
}

// RemoveKeyCredential deletes the certificate with the given SHA-1 thumbprint (hex, any
// case) from the application; the STS keeps accepting it for the key removal delay.
func (s *Server) RemoveKeyCredential(tenantID, appID, thumbprint string) error {
	knob := s.currentKnobs()
	now := knob.clock()
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	_, a, err := s.lookupApp(tenantID, appID)
	if err != nil {
		return err
	}
	for i, k := range a.keyCredentials {
		if strings.EqualFold(hex.EncodeToString(k.sha1), thumbprint) {
			a.replaceKeys(slices.Delete(slices.Clone(a.keyCredentials), i, i+1), now, knob.keyRemovalDelay)
			return nil
		}
	}
	return fmt.Errorf("entratest: certificate %s on application %s: %w", thumbprint, appID, errNotFound)
}

// RevokeGrant removes the grant of the Graph app role roleValue from the application's
// service principal.
func (s *Server) RevokeGrant(tenantID, appID, roleValue string) error {
	roleID, ok := GraphRoleID(roleValue)
	if !ok {
		return fmt.Errorf("entratest: graph app role %q: %w", roleValue, errNotFound)
	}
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	t, _, err := s.lookupApp(tenantID, appID)
	if err != nil {
		return err
	}
	sp := t.spByAppID(appID)
	if sp == nil {
		return fmt.Errorf("entratest: service principal of %s: %w", appID, errNotFound)
	}
	for i, a := range t.assignments {
		if a.principalID == sp.id && a.resourceID == t.graphSP.id && a.appRoleID == roleID {
			t.assignments = append(t.assignments[:i], t.assignments[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("entratest: grant of %s to %s: %w", roleValue, appID, errNotFound)
}

// App returns a secret-free view of the application with the given appId, including
// objects still hidden by replication lag.
func (s *Server) App(tenantID, appID string) (AppView, bool) {
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	t, a, err := s.lookupApp(tenantID, appID)
	if err != nil {
		return AppView{}, false
	}
	return t.appView(a), true
}

// appView builds the secret-free view of a. Caller holds the directory lock.
func (t *tenant) appView(a *application) AppView {
	v := AppView{
		ID:                  a.id,
		AppID:               a.appID,
		DisplayName:         a.displayName,
		SignInAudience:      a.signInAudience,
		KeyCredentials:      []KeyCredentialView{},
		PasswordCredentials: []PasswordCredentialView{},
		GrantedRoles:        []string{},
		FICs:                ficViews(a.fics),
	}
	for _, k := range a.keyCredentials {
		v.KeyCredentials = append(v.KeyCredentials, KeyCredentialView{
			KeyID:         k.keyID,
			Thumbprint:    certs.Thumbprint(k.cert),
			DisplayName:   k.displayName,
			StartDateTime: k.start.UTC(),
			EndDateTime:   k.end.UTC(),
			Cert:          k.cert,
		})
	}
	for _, p := range a.passwordCredentials {
		v.PasswordCredentials = append(v.PasswordCredentials, PasswordCredentialView{
			KeyID:         p.keyID,
			Hint:          p.hint,
			DisplayName:   p.displayName,
			StartDateTime: p.start.UTC(),
			EndDateTime:   p.end.UTC(),
		})
	}
	for _, r := range a.requiredResourceAccess {
		v.RequiredResourceAccessCount += len(r.ResourceAccess)
	}
	if sp := t.spByAppID(a.appID); sp != nil {
		v.ServicePrincipalID = sp.id
		v.GrantedRoles = append(v.GrantedRoles, t.grantedRoleValues(sp.id, time.Time{}, false)...)
	}
	return v
}

// ---- identifiers --------------------------------------------------------------------------

// newGUID returns a random version-4 GUID in lowercase.
func newGUID() string {
	b := make([]byte, 16)
	mustRead(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatGUID(b)
}

// newAssignmentID returns an opaque base64url id like Graph's appRoleAssignment ids.
func newAssignmentID() string {
	b := make([]byte, 32)
	mustRead(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-"

// randomString draws n characters uniformly from secretAlphabet.
func randomString(n int) string {
	limit := 256 - 256%len(secretAlphabet) // reject bytes that would bias the modulo
	out := make([]byte, 0, n)
	b := make([]byte, 1)
	for len(out) < n {
		mustRead(b)
		if int(b[0]) < limit {
			out = append(out, secretAlphabet[int(b[0])%len(secretAlphabet)])
		}
	}
	return string(out)
}

// mustRead fills b from crypto/rand, which never fails on supported platforms.
func mustRead(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("entratest: crypto/rand: " + err.Error())
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// isGUID reports whether s has the 8-4-4-4-12 hex shape.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}
