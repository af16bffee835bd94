package entratest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ficAction is the application sub-resource holding federated identity credentials.
const ficAction = "federatedIdentityCredentials"

// Limits of a federatedIdentityCredential (Graph resource docs; the per-app maximum from
// the create docs).
const (
	maxFICsPerApp  = 20
	maxFICNameLen  = 120
	maxFICValueLen = 600
)

// ficAudienceMessage is Graph's answer to a credential without exactly one audience.
const ficAudienceMessage = "Federated identity credentials must have exactly one audience."

// federatedCredential is a federated identity credential (FIC) of an application. The STS
// accepts it from activeAt: its creation or last change plus the FIC propagation delay.
// A stored value is never changed in place (a PATCH stores a new one).
type federatedCredential struct {
	id          string
	name        string
	issuer      string
	subject     string
	description string
	audiences   []string
	createdAt   time.Time
	activeAt    time.Time
}

// FICView describes one federated identity credential of an application.
type FICView struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Issuer      string    `json:"issuer"`
	Subject     string    `json:"subject"`
	Audiences   []string  `json:"audiences"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"createdDateTime"`
	// ActiveAt is when the token service starts accepting it (creation or last change
	// plus the FIC propagation delay).
	ActiveAt time.Time `json:"activeAt"`
}

func ficViews(fics []*federatedCredential) []FICView {
	out := []FICView{}
	for _, f := range fics {
		out = append(out, FICView{ID: f.id, Name: f.name, Issuer: f.issuer, Subject: f.subject,
			Audiences: append([]string{}, f.audiences...), Description: f.description,
			CreatedAt: f.createdAt.UTC(), ActiveAt: f.activeAt.UTC()})
	}
	return out
}

// ficJSON renders a credential the way Graph does.
func ficJSON(f *federatedCredential) object {
	return object{
		{"id", f.id},
		{"name", f.name},
		{"issuer", f.issuer},
		{"subject", f.subject},
		{"description", nullable(f.description)},
		{"audiences", append([]string{}, f.audiences...)},
	}
}

func ficContext(s *Server, a *application, suffix string) string {
	return s.metadata("applications('" + a.id + "')/federatedIdentityCredentials" + suffix)
}

// findFIC finds a credential by id or, as Graph also allows, by name (case-insensitive,
// as directory keys are).
func findFIC(fics []*federatedCredential, key string) (int, *federatedCredential) {
	for i, f := range fics {
		if strings.EqualFold(f.id, key) || strings.EqualFold(f.name, key) {
			return i, f
		}
	}
	return -1, nil
}

// listFICs serves GET /applications/{id}/federatedIdentityCredentials ($filter eq on name
// or subject, as documented). Reads follow the application's read lag.
func (s *Server) listFICs(c *graphCall) graphResult {
	a, e := c.lookupApplication()
	if e != nil {
		return failed(e)
	}
	a = c.readView(a)
	f, e := parseFilter(c.query.Get("$filter"), "FederatedIdentityCredential", "name", "subject")
	if e != nil {
		return failed(e)
	}
	sel, e := parseSelect(c.query.Get("$select"), ficJSON(&federatedCredential{}), "federatedIdentityCredential")
	if e != nil {
		return failed(e)
	}
	items := []object{}
	for _, fic := range a.fics {
		if f.matches(map[string]string{"name": fic.name, "subject": fic.subject}) {
			items = append(items, selected(ficJSON(fic), sel))
		}
	}
	return s.page(c, ficContext(s, a, ""), items)
}

// getFIC serves GET /applications/{id}/federatedIdentityCredentials/{id or name} and
// .../federatedIdentityCredentials(name='x').
func (s *Server) getFIC(c *graphCall) graphResult {
	a, e := c.lookupApplication()
	if e != nil {
		return failed(e)
	}
	a = c.readView(a)
	_, fic := findFIC(a.fics, c.path.ficKey)
	if fic == nil {
		return failed(notFound(c.path.ficKey))
	}
	sel, e := parseSelect(c.query.Get("$select"), ficJSON(fic), "federatedIdentityCredential")
	if e != nil {
		return failed(e)
	}
	body := object{{"@odata.context", ficContext(s, a, "/$entity")}}
	return graphResult{status: http.StatusOK, body: append(body, selected(ficJSON(fic), sel)...)}
}

// createFIC serves POST /applications/{id}/federatedIdentityCredentials: 201 with the
// object.
func (s *Server) createFIC(c *graphCall) graphResult {
	a, e := c.lookupApplication()
	if e != nil {
		return failed(e)
	}
	props, e := decodeObject(c.body)
	if e != nil {
		return failed(e)
	}
	fic, e := parseFIC(props, nil)
	if e != nil {
		return failed(e)
	}
	if e := checkFICConflicts(a.fics, fic, nil); e != nil {
		return failed(e)
	}
	if len(a.fics) >= maxFICsPerApp {
		return failed(tooManyFICs())
	}
	fic.id, fic.createdAt, fic.activeAt = newGUID(), c.now, c.now.Add(c.knobs.ficPropagation)
	c.beforePatch(a)
	a.fics = append(append([]*federatedCredential{}, a.fics...), fic)
	body := object{{"@odata.context", ficContext(s, a, "/$entity")}}
	return graphResult{status: http.StatusCreated, body: append(body, ficJSON(fic)...)}
}

// patchFIC serves PATCH of one credential: 204. The name cannot change; the changed
// credential reaches the STS after the FIC propagation delay.
func (s *Server) patchFIC(c *graphCall) graphResult {
	a, e := c.lookupApplication()
	if e != nil {
		return failed(e)
	}
	i, old := findFIC(a.fics, c.path.ficKey)
	if old == nil {
		return failed(notFound(c.path.ficKey))
	}
	props, e := decodeObject(c.body)
	if e != nil {
		return failed(e)
	}
	fic, e := parseFIC(props, old)
	if e != nil {
		return failed(e)
	}
	if e := checkFICConflicts(a.fics, fic, old); e != nil {
		return failed(e)
	}
	fic.activeAt = c.now.Add(c.knobs.ficPropagation)
	c.beforePatch(a)
	fics := append([]*federatedCredential{}, a.fics...)
	fics[i] = fic
	a.fics = fics
	return graphResult{status: http.StatusNoContent}
}

// deleteFIC serves DELETE of one credential: 204. The STS forgets it at once.
func (s *Server) deleteFIC(c *graphCall) graphResult {
	a, e := c.lookupApplication()
	if e != nil {
		return failed(e)
	}
	i, fic := findFIC(a.fics, c.path.ficKey)
	if fic == nil {
		return failed(notFound(c.path.ficKey))
	}
	c.beforePatch(a)
	a.fics = append(append([]*federatedCredential{}, a.fics[:i]...), a.fics[i+1:]...)
	return graphResult{status: http.StatusNoContent}
}

// parseFIC validates a create (old == nil) or PATCH body and returns the resulting
// credential (a new value; old is not changed).
func parseFIC(props map[string]json.RawMessage, old *federatedCredential) (*federatedCredential, *graphError) {
	fic := &federatedCredential{}
	if old != nil {
		copied := *old
		fic = &copied
	}
	for name, raw := range props {
		var e *graphError
		switch name {
		case "name":
			e = setFICName(fic, raw, old)
		case "issuer", "subject", "description":
			e = setFICString(fic, name, raw)
		case "audiences":
			e = setFICAudiences(fic, raw)
		case "id":
			if v, _, de := decodeString(raw, name, "FederatedIdentityCredential"); de != nil || old == nil || v != old.id {
				e = badRequest("Request_BadRequest", "Property 'id' is read-only and cannot be set.")
			}
		default:
			if !strings.HasPrefix(name, "@odata.") {
				e = badRequest("Request_BadRequest", "Property '%s' on type 'microsoft.graph.federatedIdentityCredential' is not supported by this fake.", name)
			}
		}
		if e != nil {
			return nil, e
		}
	}
	for _, req := range []struct{ name, value string }{{"name", fic.name}, {"issuer", fic.issuer}, {"subject", fic.subject}} {
		if req.value == "" {
			return nil, invalidProperty(req.name, "FederatedIdentityCredential")
		}
	}
	if len(fic.audiences) != 1 {
		return nil, badRequest("Request_BadRequest", ficAudienceMessage)
	}
	return fic, nil
}

// setFICName validates the name: at most 120 URL-friendly characters (letters, digits,
// '-' and '_'), immutable once created.
func setFICName(fic *federatedCredential, raw json.RawMessage, old *federatedCredential) *graphError {
	v, ok, e := decodeString(raw, "name", "FederatedIdentityCredential")
	if e != nil || !ok || !validFICName(v) {
		return invalidProperty("name", "FederatedIdentityCredential")
	}
	if old != nil && v != old.name {
		return badRequest("Request_BadRequest", "Property 'name' of a federated identity credential is immutable and cannot be updated.")
	}
	fic.name = v
	return nil
}

func validFICName(v string) bool {
	if v == "" || len(v) > maxFICNameLen {
		return false
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// setFICString sets issuer, subject (required, at most 600 characters) or description
// (null allowed, at most 600). Values are kept exactly as sent: no trimming.
func setFICString(fic *federatedCredential, name string, raw json.RawMessage) *graphError {
	v, ok, e := decodeString(raw, name, "FederatedIdentityCredential")
	if e != nil || len(v) > maxFICValueLen || (name != "description" && (!ok || v == "")) {
		return invalidProperty(name, "FederatedIdentityCredential")
	}
	switch name {
	case "issuer":
		fic.issuer = v
	case "subject":
		fic.subject = v
	default:
		fic.description = v
	}
	return nil
}

// setFICAudiences requires exactly one non-empty audience of at most 600 characters.
func setFICAudiences(fic *federatedCredential, raw json.RawMessage) *graphError {
	var auds []string
	if err := json.Unmarshal(raw, &auds); err != nil {
		return invalidProperty("audiences", "FederatedIdentityCredential")
	}
	if len(auds) != 1 {
		return badRequest("Request_BadRequest", ficAudienceMessage)
	}
	if auds[0] == "" || len(auds[0]) > maxFICValueLen {
		return invalidProperty("audiences", "FederatedIdentityCredential")
	}
	fic.audiences = auds
	return nil
}

// checkFICConflicts refuses a credential whose name (case-insensitive: it is an alternate
// key) or (issuer, subject) pair (compared exactly, as the STS matches them) is already
// used by another credential of the app. The wording of both errors is unverified.
func checkFICConflicts(fics []*federatedCredential, fic, self *federatedCredential) *graphError {
	for _, other := range fics {
		if other == self {
			continue
		}
		if strings.EqualFold(other.name, fic.name) {
			return badRequest("Request_BadRequest", "Another object with the same value for property name already exists.")
		}
		if other.issuer == fic.issuer && other.subject == fic.subject {
			return badRequest("Request_BadRequest", "A federated identity credential with the same issuer and subject already exists on this application ('%s').", other.name)
		}
	}
	return nil
}

// tooManyFICs is the answer to a 21st credential (code and wording unverified; the limit
// of 20 is documented).
func tooManyFICs() *graphError {
	return badRequest("Request_BadRequest", "An application can have at most %d federated identity credentials.", maxFICsPerApp)
}

// ---- test hooks -------------------------------------------------------------------------

// AddFIC adds a federated identity credential to the application out of band (as the
// portal would), with the rules Graph applies to a create. The token service accepts it
// after the FIC propagation delay (WithFICPropagationDelay; at once by default).
func (s *Server) AddFIC(tenantID, appID, name, issuer, subject, audience string) error {
	k := s.currentKnobs()
	now := k.clock()
	body, err := json.Marshal(map[string]any{"name": name, "issuer": issuer, "subject": subject, "audiences": []string{audience}})
	if err != nil {
		return err
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(body, &props); err != nil {
		return err
	}
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	_, a, err := s.lookupApp(tenantID, appID)
	if err != nil {
		return err
	}
	fic, e := parseFIC(props, nil)
	if e == nil {
		e = checkFICConflicts(a.fics, fic, nil)
	}
	if e == nil && len(a.fics) >= maxFICsPerApp {
		e = tooManyFICs()
	}
	if e != nil {
		return fmt.Errorf("entratest: AddFIC: %s", e.message)
	}
	fic.id, fic.createdAt, fic.activeAt = newGUID(), now, now.Add(k.ficPropagation)
	a.fics = append(append([]*federatedCredential{}, a.fics...), fic)
	return nil
}

// FICs returns the application's federated identity credentials as the directory holds
// them (no read lag), propagated or not; nil when the application does not exist.
func (s *Server) FICs(tenantID, appID string) []FICView {
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	_, a, err := s.lookupApp(tenantID, appID)
	if err != nil {
		return nil
	}
	return ficViews(a.fics)
}
