package entratest

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"time"
)

// Sign-in audiences Graph accepts.
var signInAudiences = []string{"AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"}

// defaultSignInAudience is what Graph sets when a create request names none.
const defaultSignInAudience = "AzureADandPersonalMicrosoftAccount"

// applicationJSON renders an application. keyCredentials[].key is null unless withKeys.
func applicationJSON(t *tenant, a *application, withKeys bool) object {
	keys := []object{}
	for _, k := range a.keyCredentials {
		keys = append(keys, keyCredentialJSON(k, withKeys))
	}
	passwords := []object{}
	for _, p := range a.passwordCredentials {
		passwords = append(passwords, passwordCredentialJSON(p, false))
	}
	rra := []resourceAccessEntry{}
	rra = append(rra, a.requiredResourceAccess...)
	return object{
		{"id", a.id},
		{"deletedDateTime", nil},
		{"appId", a.appID},
		{"createdDateTime", graphTime(a.createdAt)},
		{"description", nil},
		{"displayName", a.displayName},
		{"identifierUris", []string{}},
		{"publisherDomain", t.domain},
		{"signInAudience", a.signInAudience},
		{"tags", []string{}},
		{"uniqueName", nullable(a.uniqueName)},
		{"appRoles", []object{}},
		{"keyCredentials", keys},
		{"passwordCredentials", passwords},
		{"requiredResourceAccess", rra},
	}
}

func keyCredentialJSON(k *keyCredential, withKey bool) object {
	var key any
	if withKey {
		key = base64.StdEncoding.EncodeToString(k.der)
	}
	return object{
		{"customKeyIdentifier", k.customKeyIdentifier},
		{"displayName", k.displayName},
		{"endDateTime", graphTime(k.end)},
		{"key", key},
		{"keyId", k.keyID},
		{"startDateTime", graphTime(k.start)},
		{"type", k.keyType},
		{"usage", k.usage},
	}
}

// passwordCredentialJSON renders a password credential; secretText only when withSecret
// (the addPassword response).
func passwordCredentialJSON(p *passwordCredential, withSecret bool) object {
	var displayName, secret any
	if p.displayName != "" {
		displayName = p.displayName
	}
	if withSecret {
		secret = p.secret
	}
	return object{
		{"customKeyIdentifier", nil},
		{"displayName", displayName},
		{"endDateTime", graphTime(p.end)},
		{"hint", p.hint},
		{"keyId", p.keyID},
		{"secretText", secret},
		{"startDateTime", graphTime(p.start)},
	}
}

// lookupApplication resolves the application a path names, honouring replication lag.
func (c *graphCall) lookupApplication() (*application, *graphError) {
	var a *application
	switch {
	case c.path.byAppID:
		a = c.t.appByAppID(c.path.appID)
	case c.path.uniqueName != "":
		a = c.t.appByUniqueName(c.path.uniqueName)
	default:
		a = c.t.appByObjectID(c.path.id)
	}
	if a == nil || !visible(a.visibleAt, c.now) {
		return nil, notFound(c.path.key())
	}
	return a, nil
}

// listApplications serves GET /applications with $filter on displayName or appId. Keys
// are always null in lists.
func (s *Server) listApplications(c *graphCall) graphResult {
	f, e := parseFilter(c.query.Get("$filter"), "Application", "displayName", "appId")
	if e != nil {
		return failed(e)
	}
	sel, e := parseSelect(c.query.Get("$select"), applicationJSON(c.t, &application{}, false), "application")
	if e != nil {
		return failed(e)
	}
	items := []object{}
	for _, a := range c.t.apps {
		if !visible(a.visibleAt, c.now) {
			continue
		}
		a = c.readView(a)
		if f.matches(map[string]string{"displayName": a.displayName, "appId": a.appID}) {
			items = append(items, selected(applicationJSON(c.t, a, false), sel))
		}
	}
	return s.page(c, s.metadata("applications"), items)
}

// getApplication serves GET /applications/{id} and /applications(appId='x'). The
// certificate bodies are returned only when $select names keyCredentials.
func (s *Server) getApplication(c *graphCall) graphResult {
	a, e := c.lookupApplication()
	if e != nil {
		return failed(e)
	}
	a = c.readView(a)
	sel, e := parseSelect(c.query.Get("$select"), applicationJSON(c.t, a, false), "application")
	if e != nil {
		return failed(e)
	}
	body := object{{"@odata.context", s.metadata("applications/$entity")}}
	body = append(body, selected(applicationJSON(c.t, a, containsString(sel, "keyCredentials")), sel)...)
	return graphResult{status: http.StatusOK, body: body}
}

// appChanges are validated changes to an application, applied all at once.
type appChanges struct {
	displayName    *string
	signInAudience *string
	keyCredentials []*keyCredential
	setKeys        bool
	rra            []resourceAccessEntry
	setRRA         bool
}

// parseAppChanges validates the properties of a create (a == nil) or PATCH body.
func parseAppChanges(c *graphCall, a *application, props map[string]json.RawMessage) (*appChanges, *graphError) {
	ch := &appChanges{}
	for name, raw := range props {
		switch {
		case strings.HasPrefix(name, "@odata."):
		case name == "displayName":
			v, ok, e := decodeString(raw, name, "Application")
			if e != nil || !ok || strings.TrimSpace(v) == "" {
				return nil, invalidProperty(name, "Application")
			}
			ch.displayName = &v
		case name == "signInAudience":
			v, ok, e := decodeString(raw, name, "Application")
			if e != nil || !ok || !containsString(signInAudiences, v) {
				return nil, invalidProperty(name, "Application")
			}
			ch.signInAudience = &v
		case name == "keyCredentials":
			var existing []*keyCredential
			if a != nil {
				existing = a.keyCredentials
			}
			keys, e := parseKeyCredentials(raw, existing, c.now, c.knobs.propagationDelay)
			if e != nil {
				return nil, e
			}
			if e := checkCertLifetime(keys, existing, c.knobs.certLifetimeCap); e != nil {
				return nil, e
			}
			if e := checkKeyCount(len(keys), c.knobs.maxKeyCredentials); e != nil {
				return nil, e
			}
			ch.keyCredentials, ch.setKeys = keys, true
		case name == "requiredResourceAccess":
			rra, e := parseRequiredResourceAccess(raw)
			if e != nil {
				return nil, e
			}
			ch.rra, ch.setRRA = rra, true
		case name == "passwordCredentials":
			return nil, badRequest("Request_BadRequest", "Property 'passwordCredentials' cannot be set on an application directly; use addPassword and removePassword.")
		case (name == "id" || name == "appId") && a != nil:
			v, _, e := decodeString(raw, name, "Application")
			if e != nil || (name == "id" && v != a.id) || (name == "appId" && v != a.appID) {
				return nil, badRequest("Request_BadRequest", "Property '%s' is read-only and cannot be set.", name)
			}
		default:
			return nil, badRequest("Request_BadRequest", "Property '%s' on type 'microsoft.graph.application' is not supported by this fake.", name)
		}
	}
	return ch, nil
}

func (ch *appChanges) apply(a *application, now time.Time, removalDelay time.Duration) {
	if ch.displayName != nil {
		a.displayName = *ch.displayName
	}
	if ch.signInAudience != nil {
		a.signInAudience = *ch.signInAudience
	}
	if ch.setKeys {
		a.replaceKeys(ch.keyCredentials, now, removalDelay)
	}
	if ch.setRRA {
		a.requiredResourceAccess = ch.rra
	}
}

// createApplication serves POST /applications: 201 with the full object. The default
// signInAudience is AzureADandPersonalMicrosoftAccount, as on the real service.
func (s *Server) createApplication(c *graphCall) graphResult {
	return s.newApplication(c, "")
}

// newApplication creates an application from the request body (uniqueName, when not
// empty, from an upsert's path): 201 with the full object.
func (s *Server) newApplication(c *graphCall, uniqueName string) graphResult {
	props, e := decodeObject(c.body)
	if e != nil {
		return failed(e)
	}
	if _, ok := props["displayName"]; !ok {
		return failed(invalidProperty("displayName", "Application"))
	}
	ch, e := parseAppChanges(c, nil, props)
	if e != nil {
		return failed(e)
	}
	audience := defaultSignInAudience
	if ch.signInAudience != nil {
		audience = *ch.signInAudience
	}
	a := c.t.addApplication(*ch.displayName, audience, c.now, c.now.Add(c.knobs.replicationLag))
	a.uniqueName = uniqueName
	ch.apply(a, c.now, c.knobs.keyRemovalDelay)
	body := object{{"@odata.context", s.metadata("applications/$entity")}}
	body = append(body, applicationJSON(c.t, a, false)...)
	return graphResult{status: http.StatusCreated, body: body}
}

// patchApplication serves PATCH /applications/{id}: each collection sent replaces the
// stored one; 204 with no body. PATCH /applications(uniqueName='x') with "Prefer:
// create-if-missing" is Graph's upsert: it creates the application (201 with the object)
// when none has that uniqueName, else updates it (204); without the header a missing
// uniqueName is 404.
//
// An upsert repeated inside the replication window updates the application its first
// attempt created (204), although reads do not see it yet. Decision (issue 22): the
// upsert is a write keyed on uniqueName, an alternate key the directory keeps unique, and
// writes are served by the primary that created the object; answering 404 would break the
// one thing the upsert is for (a retry after a lost answer). Graph docs application-upsert
// say only "creates if it doesn't exist, else updates"; the lag case is unverified.
func (s *Server) patchApplication(c *graphCall) graphResult {
	a, e := c.lookupApplication()
	upsert := c.path.uniqueName != "" && strings.Contains(strings.ToLower(c.r.Header.Get("Prefer")), "create-if-missing")
	if e != nil && upsert {
		if a = c.t.appByUniqueName(c.path.uniqueName); a == nil {
			return s.upsertCreate(c)
		}
		e = nil
	}
	if e != nil {
		return failed(e)
	}
	c.beforePatch(a)
	props, e := decodeObject(c.body)
	if e != nil {
		return failed(e)
	}
	ch, e := parseAppChanges(c, a, props)
	if e != nil {
		return failed(e)
	}
	ch.apply(a, c.now, c.knobs.keyRemovalDelay)
	return graphResult{status: http.StatusNoContent}
}

// upsertCreate creates the application an upsert names: 201 with the full object.
func (s *Server) upsertCreate(c *graphCall) graphResult {
	if !c.caller.may(accessWrite) {
		return failed(errInsufficientPrivileges)
	}
	return s.newApplication(c, c.path.uniqueName)
}

// checkCertLifetime applies the tenant's asymmetricKeyLifetime policy to the new
// certificates in keys (those not already stored).
func checkCertLifetime(keys, existing []*keyCredential, max time.Duration) *graphError {
	if max <= 0 {
		return nil
	}
	for _, k := range keys {
		stored := false
		for _, old := range existing {
			stored = stored || old == k
		}
		if !stored && k.end.Sub(k.start) > max {
			return badRequest("CredentialInvalidLifetimeAsPerAppPolicy",
				"Credential lifetime exceeds the max value allowed as per assigned policy '%s'. The maximum lifetime for asymmetric keys (certificates) in this tenant is %d days.",
				appManagementPolicyID, int(max.Hours()/24))
		}
	}
	return nil
}

// checkKeyCount refuses a write that would leave n key credentials on an application when
// the limit max (0: none) is lower. Graph's limit is the object's total size; the fake
// counts keys instead (WithMaxKeyCredentials).
func checkKeyCount(n, max int) *graphError {
	if max > 0 && n > max {
		return badRequest("Directory_ResourceSizeExceeded",
			"The size of the object has exceeded its limit. Please reduce the number of values and retry your request")
	}
	return nil
}

// appManagementPolicyID names the fake tenant's app-management policy in policy errors.
const appManagementPolicyID = "00000000-0000-0000-0000-00000000a11c"

// keyCredentialInput is one element of keyCredentials in a request.
type keyCredentialInput struct {
	CustomKeyIdentifier json.RawMessage `json:"customKeyIdentifier"`
	DisplayName         json.RawMessage `json:"displayName"`
	EndDateTime         json.RawMessage `json:"endDateTime"`
	Key                 json.RawMessage `json:"key"`
	KeyID               json.RawMessage `json:"keyId"`
	StartDateTime       json.RawMessage `json:"startDateTime"`
	Type                json.RawMessage `json:"type"`
	Usage               json.RawMessage `json:"usage"`
}

// parseKeyCredentials validates a keyCredentials collection with replace semantics. An
// entry whose keyId names a stored credential keeps that credential (its key may be null,
// as every read returns it); changing its dates, type, usage or certificate is rejected
// with KeyNotUpdatable. A new entry needs type AsymmetricX509Cert, usage Verify and key =
// base64 of the certificate's DER (base64 of PEM text is accepted too); its dates default
// to the certificate's and must lie within them (KeyCredentialsInvalidEndDate /
// KeyCredentialsInvalidStartDate). customKeyIdentifier defaults to the uppercase hex SHA-1
// thumbprint (the real format is unconfirmed; compare case-insensitively).
func parseKeyCredentials(raw json.RawMessage, existing []*keyCredential, now time.Time, propagation time.Duration) ([]*keyCredential, *graphError) {
	var inputs []keyCredentialInput
	if err := json.Unmarshal(raw, &inputs); err != nil {
		return nil, invalidProperty("keyCredentials", "Application")
	}
	out := []*keyCredential{}
	seen := map[string]bool{}
	for _, in := range inputs {
		keyID, hasKeyID, e := decodeString(in.KeyID, "keyId", "KeyCredential")
		if e != nil || (hasKeyID && !isGUID(keyID)) {
			return nil, invalidProperty("keyId", "KeyCredential")
		}
		keyID = strings.ToLower(keyID)
		if hasKeyID && seen[keyID] {
			return nil, badRequest("Request_BadRequest", "Duplicate keyId '%s' in keyCredentials.", keyID)
		}
		seen[keyID] = true
		var stored *keyCredential
		for _, k := range existing {
			if hasKeyID && strings.EqualFold(k.keyID, keyID) {
				stored = k
			}
		}
		if stored != nil {
			if e := checkUnchanged(in, stored); e != nil {
				return nil, e
			}
			out = append(out, stored)
			continue
		}
		k, e := newKeyCredentialFromInput(in, now, propagation)
		if e != nil {
			return nil, e
		}
		if hasKeyID {
			k.keyID = keyID
		}
		out = append(out, k)
	}
	return out, nil
}

// checkUnchanged rejects a resent credential whose properties differ from the stored ones.
func checkUnchanged(in keyCredentialInput, k *keyCredential) *graphError {
	notUpdatable := badRequest("KeyNotUpdatable", "Update to existing credential with KeyId '%s' is not allowed.", k.keyID)
	if key, ok, e := decodeString(in.Key, "key", "KeyCredential"); e != nil {
		return e
	} else if ok {
		cert, e := parseCertificateKey(key)
		if e != nil {
			return e
		}
		if !bytes.Equal(cert.Raw, k.der) {
			return notUpdatable
		}
	}
	for _, pair := range []struct {
		raw    json.RawMessage
		name   string
		stored string
	}{
		{in.Type, "type", k.keyType},
		{in.Usage, "usage", k.usage},
		{in.DisplayName, "displayName", k.displayName},
		{in.CustomKeyIdentifier, "customKeyIdentifier", k.customKeyIdentifier},
	} {
		v, ok, e := decodeString(pair.raw, pair.name, "KeyCredential")
		if e != nil {
			return e
		}
		if ok && !strings.EqualFold(v, pair.stored) {
			return notUpdatable
		}
	}
	for _, pair := range []struct {
		raw    json.RawMessage
		name   string
		stored time.Time
	}{
		{in.StartDateTime, "startDateTime", k.start},
		{in.EndDateTime, "endDateTime", k.end},
	} {
		t, ok, e := parseGraphTime(pair.raw, pair.name, "KeyCredential")
		if e != nil {
			return e
		}
		if ok && !t.Equal(pair.stored) {
			return notUpdatable
		}
	}
	return nil
}

// keyLifetimeSlack is how far past one year after its start a certificate credential may
// end: a 365-day certificate sent with a start a few minutes after its NotBefore, or one a
// clock a little ahead of ours minted, must still pass.
const keyLifetimeSlack = 10 * time.Minute

// newKeyCredentialFromInput validates a new certificate credential. Its end may be at most
// one year (plus keyLifetimeSlack) after its start, the limit Graph's "add a certificate"
// how-to documents (whether Graph v1.0 enforces it is unverified).
func newKeyCredentialFromInput(in keyCredentialInput, now time.Time, propagation time.Duration) (*keyCredential, *graphError) {
	typ, _, e := decodeString(in.Type, "type", "KeyCredential")
	if e != nil {
		return nil, e
	}
	if typ != "AsymmetricX509Cert" {
		return nil, badRequest("Request_BadRequest", "The value for the property \"type\" in one of your credentials is invalid. Acceptable values are AsymmetricX509Cert, X509CertAndPassword.")
	}
	usage, _, e := decodeString(in.Usage, "usage", "KeyCredential")
	if e != nil {
		return nil, e
	}
	switch usage {
	case "Verify":
	case "Sign":
		return nil, badRequest("Request_BadRequest", "A credential with usage \"Sign\" needs a private key (type X509CertAndPassword); certificates of type AsymmetricX509Cert must have usage \"Verify\".")
	default:
		return nil, badRequest("Request_BadRequest", "The value for the property \"usage\" in one of your credentials is invalid. Acceptable values are Sign, Verify.")
	}
	key, ok, e := decodeString(in.Key, "key", "KeyCredential")
	if e != nil || !ok || key == "" {
		return nil, invalidProperty("key", "KeyCredential")
	}
	cert, e := parseCertificateKey(key)
	if e != nil {
		return nil, e
	}
	start, hasStart, e := parseGraphTime(in.StartDateTime, "startDateTime", "KeyCredential")
	if e != nil {
		return nil, e
	}
	if !hasStart {
		start = cert.NotBefore
	}
	end, hasEnd, e := parseGraphTime(in.EndDateTime, "endDateTime", "KeyCredential")
	if e != nil {
		return nil, e
	}
	if !hasEnd {
		end = cert.NotAfter
	}
	if end.After(cert.NotAfter) || !end.After(start) || end.After(start.AddDate(1, 0, 0).Add(keyLifetimeSlack)) {
		return nil, badRequest("KeyCredentialsInvalidEndDate", "Key credential end date is invalid.")
	}
	if start.Before(cert.NotBefore) {
		return nil, badRequest("KeyCredentialsInvalidStartDate", "Key credential start date is invalid.")
	}
	k := newKeyCredential(cert, start, end, now, now.Add(propagation))
	if v, ok, e := decodeString(in.DisplayName, "displayName", "KeyCredential"); e != nil {
		return nil, e
	} else if ok && v != "" {
		k.displayName = truncate(v, 90)
	}
	if v, ok, e := decodeString(in.CustomKeyIdentifier, "customKeyIdentifier", "KeyCredential"); e != nil {
		return nil, e
	} else if ok && v != "" {
		k.customKeyIdentifier = v
	}
	return k, nil
}

// parseCertificateKey decodes a keyCredential key: base64 of DER, base64 of PEM text, or
// (leniently) PEM text itself. Anything carrying a private key is refused.
func parseCertificateKey(key string) (*x509.Certificate, *graphError) {
	invalid := badRequest("Request_BadRequest", "Invalid value specified for property 'key' of resource 'KeyCredential'; expected the base64 encoding of an X.509 certificate.")
	data := []byte(key)
	if !strings.HasPrefix(strings.TrimSpace(key), "-----BEGIN") {
		decoded, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(key), ""))
		if err != nil {
			return nil, invalid
		}
		data = decoded
	}
	if bytes.Contains(data, []byte("PRIVATE KEY")) {
		return nil, badRequest("Request_BadRequest", "The key of a key credential must be a public certificate; a private key was sent.")
	}
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE" {
			return nil, invalid
		}
		data = block.Bytes
	}
	cert, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, invalid
	}
	return cert, nil
}

// parseRequiredResourceAccess validates a requiredResourceAccess collection.
func parseRequiredResourceAccess(raw json.RawMessage) ([]resourceAccessEntry, *graphError) {
	invalid := invalidProperty("requiredResourceAccess", "Application")
	var entries []resourceAccessEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, invalid
	}
	total := 0
	for i, entry := range entries {
		if !isGUID(entry.ResourceAppID) {
			return nil, invalid
		}
		if entry.ResourceAccess == nil {
			entries[i].ResourceAccess = []resourceAccess{}
		}
		for _, ra := range entry.ResourceAccess {
			if !isGUID(ra.ID) || (ra.Type != "Role" && ra.Type != "Scope") {
				return nil, invalid
			}
		}
		total += len(entry.ResourceAccess)
	}
	if len(entries) > 50 || total > 400 {
		return nil, badRequest("Request_BadRequest", "requiredResourceAccess may name at most 50 resources and 400 permissions.")
	}
	if entries == nil {
		entries = []resourceAccessEntry{}
	}
	return entries, nil
}

// addPassword serves POST /applications/{id}/addPassword: the service generates the
// secret (40 characters) and returns it only in this response. Defaults: start now, end
// start + 2 years.
func (s *Server) addPassword(c *graphCall) graphResult {
	a, e := c.lookupApplication()
	if e != nil {
		return failed(e)
	}
	if c.knobs.passwordAdditionBlocked {
		return failed(badRequest("CredentialTypeNotAllowedAsPerAppPolicy",
			"Credential type not allowed as per assigned policy '%s'. Adding passwords (client secrets) to applications is blocked in this tenant.", appManagementPolicyID))
	}
	start, end, displayName := c.now, time.Time{}, ""
	if len(bytes.TrimSpace(c.body)) > 0 {
		props, e := decodeObject(c.body)
		if e != nil {
			return failed(e)
		}
		if raw, ok := props["passwordCredential"]; ok && string(raw) != "null" {
			var in map[string]json.RawMessage
			if err := json.Unmarshal(raw, &in); err != nil {
				return failed(invalidProperty("passwordCredential", "PasswordCredential"))
			}
			if _, ok := in["secretText"]; ok {
				return failed(badRequest("Request_BadRequest", "The secretText of a password credential is generated by the service and cannot be chosen."))
			}
			if v, ok, e := decodeString(in["displayName"], "displayName", "PasswordCredential"); e != nil {
				return failed(e)
			} else if ok {
				displayName = v
			}
			if t, ok, e := parseGraphTime(in["startDateTime"], "startDateTime", "PasswordCredential"); e != nil {
				return failed(e)
			} else if ok {
				start = t
			}
			if t, ok, e := parseGraphTime(in["endDateTime"], "endDateTime", "PasswordCredential"); e != nil {
				return failed(e)
			} else if ok {
				end = t
			}
		}
	}
	if end.IsZero() {
		end = start.AddDate(2, 0, 0)
	}
	if !end.After(start) {
		return failed(badRequest("Request_BadRequest", "The end date of the password credential must be after its start date."))
	}
	p := newPasswordCredential(displayName, start, end)
	a.passwordCredentials = append(a.passwordCredentials, p)
	body := object{{"@odata.context", s.metadata("microsoft.graph.passwordCredential")}}
	body = append(body, passwordCredentialJSON(p, true)...)
	return graphResult{status: http.StatusOK, body: body}
}

// removePassword serves POST /applications/{id}/removePassword {"keyId"}: 204. An unknown
// keyId is 400 Request_BadRequest (the real service's answer is undocumented).
func (s *Server) removePassword(c *graphCall) graphResult {
	a, e := c.lookupApplication()
	if e != nil {
		return failed(e)
	}
	props, e := decodeObject(c.body)
	if e != nil {
		return failed(e)
	}
	keyID, ok, e := decodeString(props["keyId"], "keyId", "PasswordCredential")
	if e != nil || !ok || !isGUID(keyID) {
		return failed(invalidProperty("keyId", "PasswordCredential"))
	}
	for i, p := range a.passwordCredentials {
		if strings.EqualFold(p.keyID, keyID) {
			a.passwordCredentials = append(a.passwordCredentials[:i:i], a.passwordCredentials[i+1:]...)
			return graphResult{status: http.StatusNoContent}
		}
	}
	return failed(badRequest("Request_BadRequest", "No password credential with keyId '%s' exists on application '%s'.", keyID, a.appID))
}

// listOwners serves GET /applications/{id}/owners: the application's owners as
// directoryObjects (users here), which Graph lists to anyone who may read the app.
func (s *Server) listOwners(c *graphCall) graphResult {
	a, e := c.lookupApplication()
	if e != nil {
		return failed(e)
	}
	sel, e := parseSelect(c.query.Get("$select"), ownerJSON(c.t, ""), "directoryObject")
	if e != nil {
		return failed(e)
	}
	items := []object{}
	for _, oid := range a.owners {
		o := ownerJSON(c.t, oid)
		// Graph keeps the type annotation whatever $select names.
		items = append(items, append(object{o[0]}, selected(o[1:], sel)...))
	}
	return s.page(c, s.metadata("directoryObjects"), items)
}

// ownerJSON is an owner as Graph lists it: a user, with its type annotation.
func ownerJSON(t *tenant, oid string) object {
	name, upn := "", ""
	for kind, id := range t.operators {
		if id == oid && oid != "" {
			name, upn = "Fake "+kind, kind+"@"+t.domain
		}
	}
	return object{{"@odata.type", "#microsoft.graph.user"}, {"id", oid}, {"displayName", name}, {"userPrincipalName", upn}}
}
