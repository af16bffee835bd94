package entratest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

// AppDisplayName is the display name of the provisioner application.
const AppDisplayName = "EntraClaw Agent ID Provisioner"

// Scenario names accepted by Seed.
const (
	ScenarioLegacy   = "legacy"
	ScenarioMigrated = "migrated"
	ScenarioEmpty    = "empty"
)

// Scenario is what Seed created: the ids a test needs and the state file to write.
type Scenario struct {
	Name               string
	TenantID           string
	ClientID           string // the provisioner's appId; "" for empty
	AppObjectID        string
	ServicePrincipalID string
	// ClientSecret is the provisioner's one password credential (legacy only).
	ClientSecret string
	// Bundle is the certificate registered on the app and its key (migrated only); put it
	// in the keyring to play the migrated machine.
	Bundle *certs.Bundle
	// StateJSON is the .entraclaw-state.json content, Python style (2-space indent,
	// trailing newline); nil for empty.
	StateJSON []byte
}

// Seed creates a new tenant filled according to the named scenario:
//
//   - "legacy": the provisioner app (AzureADMyOrg) with one client secret, all 25 required
//     permissions declared and granted (propagated), its service principal, and a state
//     file holding PROVISIONER_CLIENT_SECRET among foreign keys;
//   - "migrated": the same app with no secret and one certificate (Bundle) uploaded long
//     ago, and a state file holding PROVISIONER_CERT_THUMBPRINT instead of the secret;
//   - "empty": the tenant alone (with the Microsoft Graph service principal).
//
// Each call creates a separate tenant, so one server can hold several scenarios.
func (s *Server) Seed(name string) (*Scenario, error) {
	now := s.now()
	var bundle *certs.Bundle
	switch name {
	case ScenarioLegacy, ScenarioEmpty:
	case ScenarioMigrated:
		b, err := certs.Generate(now.Add(-48 * time.Hour))
		if err != nil {
			return nil, fmt.Errorf("entratest: seed %s: %w", name, err)
		}
		bundle = b
	default:
		return nil, fmt.Errorf("entratest: unknown scenario %q (want legacy, migrated or empty)", name)
	}

	published := s.currentKnobs().publishedRoles
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	t := s.dir.addTenant(now, published)
	sc := &Scenario{Name: name, TenantID: t.id, Bundle: bundle}
	if name == ScenarioEmpty {
		return sc, nil
	}

	past := now.Add(-30 * 24 * time.Hour)
	a := t.addApplication(AppDisplayName, "AzureADMyOrg", past, past)
	graphAccess := resourceAccessEntry{ResourceAppID: GraphAppID}
	for _, value := range RequiredRoleValues() {
		id, _ := GraphRoleID(value)
		graphAccess.ResourceAccess = append(graphAccess.ResourceAccess, resourceAccess{ID: id, Type: "Role"})
	}
	a.requiredResourceAccess = []resourceAccessEntry{graphAccess}
	// The runbook's operator "already owns the Provisioner app": the operator kind "owner".
	ownerID := newGUID()
	t.operators["owner"] = ownerID
	a.owners = []string{ownerID}
	sp := t.addServicePrincipal(a, past, past)
	for _, ra := range graphAccess.ResourceAccess {
		t.addAssignment(sp.id, t.graphSP.id, ra.ID, past, past, past)
	}
	sc.ClientID, sc.AppObjectID, sc.ServicePrincipalID = a.appID, a.id, sp.id

	credentialKey, credentialValue := "", ""
	if name == ScenarioLegacy {
		p := newPasswordCredential("entraclaw provisioner", past, past.AddDate(2, 0, 0))
		a.passwordCredentials = []*passwordCredential{p}
		sc.ClientSecret = p.secret
		credentialKey, credentialValue = "PROVISIONER_CLIENT_SECRET", p.secret
	} else {
		uploaded := now.Add(-48 * time.Hour)
		k := newKeyCredential(bundle.Cert, bundle.Cert.NotBefore, bundle.Cert.NotAfter, uploaded, uploaded)
		a.keyCredentials = []*keyCredential{k}
		credentialKey, credentialValue = "PROVISIONER_CERT_THUMBPRINT", certs.Thumbprint(bundle.Cert)
	}
	sc.StateJSON = pythonStyleJSON([][2]string{
		{"TENANT_ID", t.id},
		{"PROVISIONER_CLIENT_ID", a.appID},
		{credentialKey, credentialValue},
		{"BLUEPRINT_APP_ID", newGUID()},
		{"BLUEPRINT_OBJECT_ID", newGUID()},
		{"BLUEPRINT_CERT_THUMBPRINT", strings.ReplaceAll(newGUID()+newGUID(), "-", "")[:40]},
		{"AGENT_ID", newGUID()},
		{"AGENT_OBJECT_ID", newGUID()},
		{"AGENT_USER_ID", newGUID()},
		{"AGENT_USER_UPN", "entraclaw-agent@" + t.domain},
		{"BOT_APP_ID", newGUID()},
	})
	return sc, nil
}

// pythonStyleJSON renders string pairs the way Python's json.dump(indent=2) does, with a
// trailing newline.
func pythonStyleJSON(pairs [][2]string) []byte {
	var buf bytes.Buffer
	buf.WriteString("{\n")
	for i, p := range pairs {
		k, _ := json.Marshal(p[0])
		v, _ := json.Marshal(p[1])
		buf.WriteString("  ")
		buf.Write(k)
		buf.WriteString(": ")
		buf.Write(v)
		if i < len(pairs)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("}\n")
	return buf.Bytes()
}
