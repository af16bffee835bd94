package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
)

// ---- step 2: permissions and admin consent ----

// requiredRoles are the permissions the provisioner needs (entra.ProvisionerRoles: the
// base ones, then every grantable Agent ID role in Graph's order); a tenant whose Graph
// service principal lacks a base role cannot be migrated.
func requiredRoles(graphSP *entra.ServicePrincipal) ([]entra.AppRole, error) {
	roles, missing := entra.ProvisionerRoles(graphSP)
	if len(missing) > 0 {
		return nil, failf("", "the Microsoft Graph service principal of this tenant has no app role %s", missing[0])
	}
	return roles, nil
}

func (m *migration) ensurePermissions(ctx context.Context) error {
	p := m.perms // read by the preflight
	m.required, m.graphSP = p.required, p.graphSP
	n := len(m.required)
	m.say("Ensuring %d Graph application permissions on provisioner app...", n)
	if m.app == nil {
		return m.change(fmt.Sprintf("add %d Graph application permissions to the app and grant admin consent for them", n), nil)
	}
	// What is granted already: a newly published role that this operator may not
	// grant must not block a rotation the operator is allowed to do.
	m.granted = append([]entra.AppRole(nil), p.granted...)
	missing, baseGranted := p.missing, p.baseGranted

	if m.cfg.OperatorAuth == OperatorProvisioner && baseGranted && len(missing) > 0 {
		// The app's own certificate may change the app but not grant consent: declaring
		// roles it cannot grant would only make verify fail.
		return m.degrade(errProvisionerCannotGrant, "declare and grant")
	}

	rra, added := p.rra, p.declareCount
	if p.rra == nil {
		rra, added = withRequiredRoles(m.app.RequiredResourceAccess, m.required)
	}
	if added == 0 {
		m.say("Provisioner app already has the required Graph permissions")
	} else {
		m.needsProof = true
		err := m.change(fmt.Sprintf("add %d Graph application permission(s) to the app", added), func() error {
			m.appWritten = true
			if err := m.graph.SetRequiredResourceAccess(ctx, m.app.ID, rra); err != nil {
				return graphFailure(err, hintCreateAdmin, "add the Graph permissions to the provisioner app")
			}
			m.app.RequiredResourceAccess = rra
			m.sum.PermissionsAdded = added
			m.say("Added %d Graph application permission(s) to the Provisioner app.", added)
			return nil
		})
		if err != nil {
			return m.degrade(err, "declare the permissions")
		}
	}

	if m.clientSP == nil {
		return m.change(fmt.Sprintf("grant admin consent for %d Graph application permissions", n), nil)
	}
	if len(missing) == 0 {
		m.say("Admin consent already granted for all %d permissions.", n)
		return nil
	}
	m.needsProof = true
	err := m.change(fmt.Sprintf("grant admin consent for %d Graph application permission(s)", len(missing)), func() error {
		created := 0
		for _, r := range missing {
			isNew, err := m.graph.GrantAppRole(ctx, p.graphSP.ID, m.clientSP.ID, r.ID)
			if err != nil {
				return graphFailure(err, hintConsentAdmin, "grant admin consent for %s (%d of %d granted)", r.Value, created, len(missing))
			}
			m.granted = append(m.granted, r)
			if isNew {
				created++
			}
		}
		m.sum.GrantsAdded = created
		m.say("Admin consent granted (%d new grant(s)).", created)
		return nil
	})
	if err != nil {
		return m.degrade(err, "grant admin consent")
	}
	return nil
}

// degrade turns a refusal into a warning when only newly published Agent ID roles are
// missing: the provisioner keeps working with the roles it has.
func (m *migration) degrade(err error, what string) error {
	missing := m.perms.missing
	if !m.perms.baseGranted || !(entra.IsForbidden(err) || errors.Is(err, errProvisionerCannotGrant)) {
		return err
	}
	values := make([]string, len(missing))
	for i, r := range missing {
		values[i] = r.Value
	}
	m.warn("could not %s for %d newly published permission(s) (%s) as %s: an administrator must run `entraclaw-migrate -operator-auth azcli` (Privileged Role Administrator or Global Administrator); carrying on with the %d granted",
		what, len(missing), strings.Join(values, ", "), m.cfg.OperatorAuth, len(m.granted))
	m.missingRoles = missing
	return nil
}

// errProvisionerCannotGrant: -operator-auth provisioner may not grant admin consent.
var errProvisionerCannotGrant = errors.New("the provisioner's own certificate cannot grant admin consent")

// proofRoles are the roles a token must carry for the certificate to count as
// accepted: every required role, less those this run could not get granted.
func (m *migration) proofRoles() []entra.AppRole {
	if len(m.missingRoles) == 0 {
		return m.required
	}
	return m.granted
}

// withRequiredRoles returns rra with every role of roles declared as an
// application permission on Microsoft Graph, keeping everything else as it
// was, and how many roles it added.
func withRequiredRoles(rra []entra.RequiredResourceAccess, roles []entra.AppRole) ([]entra.RequiredResourceAccess, int) {
	out := make([]entra.RequiredResourceAccess, len(rra))
	copy(out, rra)
	idx := -1
	for i, r := range out {
		if strings.EqualFold(r.ResourceAppID, entra.GraphAppID) {
			idx = i
			break
		}
	}
	if idx < 0 {
		out = append(out, entra.RequiredResourceAccess{ResourceAppID: entra.GraphAppID})
		idx = len(out) - 1
	}
	entry := out[idx]
	have := map[string]bool{}
	for _, a := range entry.ResourceAccess {
		if a.Type == entra.ResourceAccessRole {
			have[strings.ToLower(a.ID)] = true
		}
	}
	access := append([]entra.ResourceAccess(nil), entry.ResourceAccess...)
	added := 0
	for _, r := range roles {
		if !have[strings.ToLower(r.ID)] {
			access = append(access, entra.ResourceAccess{ID: r.ID, Type: entra.ResourceAccessRole})
			added++
		}
	}
	entry.ResourceAccess = access
	out[idx] = entry
	return out, added
}
