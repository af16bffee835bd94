package provision

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/machinecert"
)

// The preflight's reads beyond the app: this machine's keyring items, the app's
// permissions and grants, and the operator's rights over what the run will change.
// They change nothing, a dry run makes them too, and step 2 to 5 use what they read.

// peekedItem is one keyring read of the preflight, parsed (machinecert.Read): a bundle, or
// a missing or corrupt item's *machinecert.Error.
type peekedItem struct {
	bundle *certs.Bundle
	err    error
}

// present reports whether the keyring holds the item, usable or not.
func (p peekedItem) present() bool {
	return p.bundle != nil || machinecert.Is(p.err, machinecert.Corrupt)
}

// peekKeyring reads this machine's three certificate items: a keyring that cannot
// be read fails the preflight (a dry run included), and step 5 uses the reads.
func (m *migration) peekKeyring() error {
	m.peeked = map[string]peekedItem{}
	for _, suffix := range []string{"", NextAccountSuffix, PreviousAccountSuffix} {
		account := m.tenant + suffix
		b, err := machinecert.Read(m.deps.Store, account)
		var unusable *machinecert.Error
		if err != nil && !errors.As(err, &unusable) {
			return wrapf(err, "", "keyring preflight: read account %s from the %s", account, m.sum.KeyringBackend)
		}
		m.peeked[account] = peekedItem{b, err}
	}
	return nil
}

// readBundle reads and parses one keyring account: the preflight's read the first time,
// else anew.
func (m *migration) readBundle(account string) (*certs.Bundle, error) {
	if p, ok := m.peeked[account]; ok {
		delete(m.peeked, account)
		return p.bundle, p.err
	}
	return machinecert.Read(m.deps.Store, account)
}

// certNeedsAppChange reports, from the preflight's keyring reads, whether step 5
// will change the app's certificates (upload one, or finish a rotation).
func (m *migration) certNeedsAppChange() bool {
	item := func(suffix string) peekedItem { return m.peeked[m.tenant+suffix] }
	if item(NextAccountSuffix).present() || item(PreviousAccountSuffix).present() || m.cfg.Rotate {
		return true
	}
	b := item("").bundle
	if b == nil || m.app == nil {
		return true
	}
	switch {
	case certs.ExpiresWithin(b.Cert, m.cfg.Now(), m.cfg.RenewBefore),
		!hasKey(m.app.KeyCredentials, certs.Thumbprint(b.Cert)),
		m.cfg.KeyStore == KeyStoreTPM && !b.TPMBound(),
		m.cfg.KeyStore == KeyStoreKeyring && b.TPMBound():
		return true
	}
	return false
}

// permissionPlan is what step 3 will do: the roles required, those granted, and
// how many must still be declared on the app.
type permissionPlan struct {
	graphSP      *entra.ServicePrincipal
	required     []entra.AppRole
	granted      []entra.AppRole
	missing      []entra.AppRole
	baseGranted  bool // every base role is granted (only Agent ID roles may be missing)
	rra          []entra.RequiredResourceAccess
	declareCount int
}

// readPermissions reads the Graph service principal, the provisioner's service
// principal and its grants, and plans step 3. Without an app there is nothing to
// read: the app, its permissions and its grants are all to be made.
func (m *migration) readPermissions(ctx context.Context) error {
	graphSP, err := m.servicePrincipal(ctx, entra.GraphAppID)
	if err != nil {
		return graphFailure(err, hintCreateAdmin, "read the Microsoft Graph service principal")
	}
	if graphSP == nil {
		return failf("", "tenant %s has no Microsoft Graph service principal (appId %s)", m.tenant, entra.GraphAppID)
	}
	required, err := requiredRoles(graphSP)
	if err != nil {
		return err
	}
	p := &permissionPlan{graphSP: graphSP, required: required}
	m.perms = p
	if m.app == nil {
		p.missing, p.declareCount = required, len(required)
		return nil
	}
	if m.clientSP, err = m.servicePrincipal(ctx, m.app.AppID); err != nil {
		return graphFailure(err, hintCreateAdmin, "look up the provisioner app's service principal")
	}
	granted := map[string]bool{}
	if m.clientSP != nil {
		assignments, err := m.graph.ListAppRoleAssignments(ctx, m.clientSP.ID)
		if err != nil {
			return graphFailure(err, hintConsentAdmin, "list the provisioner's granted permissions")
		}
		for _, a := range assignments {
			if strings.EqualFold(a.ResourceID, graphSP.ID) {
				granted[strings.ToLower(a.AppRoleID)] = true
			}
		}
	}
	p.baseGranted = m.clientSP != nil
	for _, r := range required {
		if granted[strings.ToLower(r.ID)] {
			p.granted = append(p.granted, r)
			continue
		}
		p.missing = append(p.missing, r)
		if !entra.IsAgentIDRole(r.Value) {
			p.baseGranted = false
		}
	}
	p.rra, p.declareCount = withRequiredRoles(m.app.RequiredResourceAccess, required)
	return nil
}

// checkRights refuses, before any change, a run that the operator's roles do not
// allow: Graph would answer 403 half-way. A token that lists no roles is let through.
func (m *migration) checkRights(ctx context.Context) error {
	r := m.rights
	if !r.Known {
		return nil
	}
	var lacks []string
	// Only Agent ID roles published since the last grant may be left ungranted (with a
	// warning); anything else needs a grant now.
	if needGrant := m.app == nil || m.clientSP == nil || !m.perms.baseGranted; needGrant && !r.MayGrantAppRoles() {
		if r.App {
			lacks = append(lacks, "granting admin consent needs an administrator (`-operator-auth azcli` as Privileged Role Administrator or Global Administrator)")
		} else {
			lacks = append(lacks, fmt.Sprintf("granting admin consent for %d Graph permission(s) needs Privileged Role Administrator or Global Administrator", len(m.perms.missing)))
		}
	}
	// Registering a new app is open to every user in most tenants; changing one is not.
	needChange := m.app != nil && (m.clientSP == nil || len(m.app.PasswordCredentials) > 0 || m.perms.declareCount > 0 || m.certNeedsAppChange() ||
		len(m.cfg.Federate)+len(m.cfg.Unfederate) > 0)
	if needChange {
		lack, err := lacksChangeRight(ctx, m.graph, r, m.app, "changing the app (client secrets, permissions, certificates)")
		if err != nil {
			return err
		}
		if lack != "" {
			lacks = append(lacks, lack)
		}
	}
	return rightsError(r, m.cfg.OperatorAuth, lacks)
}

// lacksChangeRight says what the operator lacks for the change of app named by what
// ("" when nothing): an administrator role, or ownership of the app.
func lacksChangeRight(ctx context.Context, graph *entra.Graph, r entra.OperatorRights, app *entra.Application, what string) (string, error) {
	if !r.Known || r.MayChangeApps() {
		return "", nil
	}
	if r.App {
		return what + " needs the Application.ReadWrite.All permission", nil
	}
	if r.ObjectID != "" {
		ids, err := graph.OwnerIDs(ctx, app.ID)
		if err != nil {
			return "", graphFailure(err, hintCreateAdmin, "read the provisioner app's owners")
		}
		for _, id := range ids {
			if strings.EqualFold(id, r.ObjectID) {
				return "", nil
			}
		}
	}
	return what + " needs Application Administrator, Cloud Application Administrator or Global Administrator, or ownership of the app", nil
}

// rightsError is the preflight's refusal of an operator lacking what the run needs.
func rightsError(r entra.OperatorRights, kind string, lacks []string) error {
	if len(lacks) == 0 {
		return nil
	}
	who := r.Name
	if who == "" {
		who = "the operator"
	}
	return &Error{
		msg:  fmt.Sprintf("%s (-operator-auth %s) may not do what this run needs: %s; nothing was changed", who, kind, strings.Join(lacks, "; ")),
		hint: "sign in as an administrator who holds the role (`az login`, or -operator-auth device-code), or ask one to run it",
	}
}

// refuseAdoption refuses to take over an app found by its display name into a state
// file that does not exist yet, unless the operator named the file or passed -adopt:
// run from the wrong directory, that would kill the secret of the real state file.
func (m *migration) refuseAdoption(app *entra.Application) error {
	if m.stateExists || m.cfg.StateFileNamed || m.cfg.Adopt {
		return nil
	}
	return failf(fmt.Sprintf("run it where that app's state file is (or pass -state-file PATH); to adopt the app into a new state file %s, pass -adopt", m.cfg.StatePath),
		"no state file found (%s), and the app %q already exists in tenant %s (client id %s): not adopting it into a new state file; nothing was changed",
		m.lookedIn(), entra.ProvisionerDisplayName, m.tenant, app.AppID)
}

// lookedIn says where the state file was looked for.
func (m *migration) lookedIn() string {
	if m.cfg.StateFileNamed || m.cfg.StateSearchDir == "" {
		return "looked for " + m.cfg.StatePath
	}
	return fmt.Sprintf("looked for %s in %s and every directory above it", filepath.Base(m.cfg.StatePath), m.cfg.StateSearchDir)
}

// sayNewStateFile says, prominently, that the run creates a state file.
func (m *migration) sayNewStateFile() {
	if m.stateExists {
		return
	}
	path, err := filepath.Abs(m.cfg.StatePath)
	if err != nil {
		path = m.cfg.StatePath
	}
	verb := "creating"
	if m.cfg.DryRun {
		verb = "would create"
	}
	m.warn("no state file found (%s) — %s one here: %s", m.lookedIn(), verb, path)
}

// keptCredential describes the client secret a run has left in place ("" when none).
func (m *migration) keptCredential() string {
	var kept []string
	if m.stateHasSecret {
		kept = append(kept, "PROVISIONER_CLIENT_SECRET in "+m.cfg.StatePath)
	}
	if m.passwordsLeft > 0 {
		kept = append(kept, fmt.Sprintf("%d client secret(s) on the app", m.passwordsLeft))
	}
	return strings.Join(kept, " and ")
}

// sayKept says, after a failed step, that the secret still works.
func (m *migration) sayKept() {
	kept := m.keptCredential()
	switch {
	case kept == "" || m.cfg.DryRun:
	case m.removedPasswords > 0:
		// Some secrets are gone: which one the state file held is not known, so only the
		// certificate (which got a token before any was removed) is sure to work.
		m.say("The certificate works; %s are left for a re-run to remove.", kept)
	default:
		m.say("The client secret was kept and still works (%s): it is removed only once the certificate gets a token.", kept)
	}
}

// secretKeptError fails a run that ends with the secret still in place because the
// certificate did not get a token in time: the migration is not done.
func (m *migration) secretKeptError() error {
	kept := m.keptCredential()
	if kept == "" || m.cfg.DryRun || m.certWorks() {
		return nil
	}
	return &Error{
		msg: fmt.Sprintf("the certificate did not get a token with all roles within -propagation-timeout %s; the client secret was kept and still works (%s)",
			m.cfg.PropagationTimeout, kept),
		hint: "run `entraclaw-migrate` again to finish once Entra ID has caught up (it waits again, then removes the secret), or raise -propagation-timeout",
	}
}

// certWorks reports whether this machine's certificate is known to get tokens: this
// run proved it, or nothing changed that needs proof (it was on the app already).
func (m *migration) certWorks() bool {
	return m.proven || (!m.needsProof && m.bundle != nil)
}
