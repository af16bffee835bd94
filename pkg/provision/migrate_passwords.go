package provision

import (
	"context"
	"fmt"
)

// ---- the client secret, last: on the app, then in the state file ----

// removePasswords deletes every password credential on the app, once this machine's
// certificate is known to get tokens (a dry run plans it on that condition).
func (m *migration) removePasswords(ctx context.Context) error {
	if m.app == nil || !(m.certWorks() || m.cfg.DryRun) {
		return nil
	}
	// Read the app again unless this run has changed nothing since the preflight read
	// it: a secret added since is removed too.
	app, err := m.freshApp(ctx)
	if err != nil {
		return graphFailure(err, hintCreateAdmin, "read the provisioner app's credentials")
	}
	n := len(app.PasswordCredentials)
	m.passwordsLeft = n
	if n == 0 {
		return nil
	}
	desc := fmt.Sprintf("remove %d password credential(s) from the app", n)
	if !m.certWorks() {
		desc += " (once the certificate gets a token)"
	}
	return m.change(desc, func() error {
		m.appWritten = true
		for i, pw := range app.PasswordCredentials {
			if err := m.graph.RemovePassword(ctx, app.ID, pw.KeyID); err != nil {
				return graphFailure(err, hintCreateAdmin, "remove password credential %s from the provisioner app (%d of %d removed; the certificate works)", pw.KeyID, i, n)
			}
			m.passwordsLeft--
			m.removedPasswords++
		}
		m.sum.PasswordsRemoved = n
		m.say("Removed %d legacy password credential(s) from Provisioner app (cert-auth only from here on).", n)
		return nil
	})
}
