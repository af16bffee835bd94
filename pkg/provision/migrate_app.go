package provision

import (
	"context"
	"fmt"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// ---- the legacy secret in the state file, purged last ----

// purgeSecret deletes PROVISIONER_CLIENT_SECRET from the state file once this machine's certificate is known to get tokens and the app holds no secret
// (backupState kept a copy before the first change).
func (m *migration) purgeSecret(context.Context) error {
	if !m.stateHasSecret || (m.passwordsLeft > 0 && !m.cfg.DryRun) || !(m.certWorks() || m.cfg.DryRun) {
		return nil
	}
	desc := fmt.Sprintf("purge PROVISIONER_CLIENT_SECRET from %s", m.cfg.StatePath)
	if !m.certWorks() {
		desc += " (once the certificate gets a token)"
	}
	return m.change(desc, func() error {
		m.alert("legacy PROVISIONER_CLIENT_SECRET found in state file. Cert-auth supersedes secret-auth; purging the secret from disk.")
		if _, err := state.Update(m.cfg.StatePath, false, func(d *state.Doc) error {
			d.Delete(state.KeyClientSecret)
			return nil
		}); err != nil {
			return wrapf(err, hintRerun, "purge PROVISIONER_CLIENT_SECRET")
		}
		m.stateHasSecret = false
		return nil
	})
}

// backupState copies a state file that holds the secret into the per-user state
// directory before the run's first change, and says where.
func (m *migration) backupState(context.Context) error {
	if !m.stateHasSecret {
		return nil
	}
	// A re-run (after a failure, the secret still in the file) keeps the first run's
	// backup of the same secret instead of writing one more copy of it.
	if same, err := state.NewestBackupHolding(m.cfg.StatePath, state.KeyClientSecret); err == nil && same != "" {
		m.say("State file already backed up to %s (it still holds the secret; delete it once the migration is verified).", same)
		m.keptBackup(same)
		return nil
	}
	return m.change(fmt.Sprintf("back up %s (it holds PROVISIONER_CLIENT_SECRET)", m.cfg.StatePath), func() error {
		backup, err := state.Backup(m.cfg.StatePath, m.cfg.Now())
		if err != nil {
			return wrapf(err, hintRerun, "back up the state file before changing anything")
		}
		m.say("Backed up state file to %s (it still holds the secret; delete it once the migration is verified).", backup)
		m.keptBackup(backup)
		return nil
	})
}

// keptBackup records the backup that holds the secret in the summary.
func (m *migration) keptBackup(path string) {
	m.sum.Backup = path
	m.sum.Warnings = append(m.sum.Warnings, fmt.Sprintf("backup %s still holds the legacy secret: delete it once the migration is verified", path))
}

// ---- step 1: tenant, app, service principal ----

func (m *migration) ensureApp(ctx context.Context) error {
	if m.stateTenant == "" {
		if err := m.recordState(state.KeyTenantID, m.tenant); err != nil {
			return err
		}
	}
	if m.app == nil {
		m.needsProof = true
		err := m.change(fmt.Sprintf("create the app %q (signInAudience %s) and its service principal", entra.ProvisionerDisplayName, entra.SignInAudienceMyOrg), func() error {
			m.say("Creating Provisioner app '%s'...", entra.ProvisionerDisplayName)
			// Graph's upsert on the app's uniqueName, not POST /applications: a retry, or a
			// re-run after a crash whose create was applied, finds the app instead of making
			// a second one.
			app, created, err := m.graph.UpsertApplication(ctx, entra.ProvisionerUniqueName, entra.ProvisionerDisplayName)
			if err != nil {
				return graphFailure(err, hintCreateAdmin, "create the provisioner app")
			}
			m.setApp(app)
			m.appCreated = created
			if created {
				m.say("Created Provisioner app %s (object id %s).", app.AppID, app.ID)
			} else {
				m.say("Found Provisioner app %s (object id %s), created by an earlier run.", app.AppID, app.ID)
			}
			return m.recordState(state.KeyClientID, app.AppID)
		})
		if err != nil || m.app == nil { // a dry run stops here: there is no app to read
			return err
		}
	} else {
		m.say("Using Provisioner app %s (object id %s).", m.app.AppID, m.app.ID)
		if m.stateClient != m.app.AppID {
			if err := m.recordState(state.KeyClientID, m.app.AppID); err != nil {
				return err
			}
		}
	}

	if m.clientSP != nil { // read by the preflight
		return nil
	}
	sp, err := m.servicePrincipal(ctx, m.app.AppID)
	if err != nil {
		return graphFailure(err, hintCreateAdmin, "look up the provisioner app's service principal")
	}
	if sp == nil {
		m.needsProof = true
		return m.change(fmt.Sprintf("create the service principal of the app %s", m.app.AppID), func() error {
			if sp, err = m.graph.CreateServicePrincipal(ctx, m.app.AppID); err != nil {
				return graphFailure(err, hintCreateAdmin, "create the provisioner app's service principal")
			}
			m.clientSP = sp
			m.say("Created the service principal of the Provisioner app.")
			return nil
		})
	}
	m.clientSP = sp
	return nil
}

// recordState sets one key this project owns in the state file (creating the
// file when needed) unless it already holds value.
func (m *migration) recordState(key, value string) error {
	field := m.stateField(key)
	if *field == value {
		return nil
	}
	return m.change(fmt.Sprintf("record %s %s in %s", key, value, m.cfg.StatePath), func() error {
		changed, err := m.setState(key, value)
		if err != nil {
			return wrapf(err, hintRerun, "record %s", key)
		}
		*field = value
		if changed {
			m.say("Recorded %s %s in %s.", key, value, m.cfg.StatePath)
		}
		return nil
	})
}

// stateField is where the run keeps the value of a key we own, as read by the
// preflight and updated by recordState.
func (m *migration) stateField(key string) *string {
	switch key {
	case state.KeyTenantID:
		return &m.stateTenant
	case state.KeyClientID:
		return &m.stateClient
	case state.KeyKeyStore:
		return &m.stateKeyStore
	}
	return &m.stateThumb
}
