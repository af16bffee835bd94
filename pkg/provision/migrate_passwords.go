package provision

import (
	"context"
	"fmt"
)

// ---- step 4: password credentials ----

func (m *migration) removePasswords(ctx context.Context) error {
	if m.app == nil {
		return nil
	}
	// Read the app again unless this run just created it (or has changed nothing since
	// the preflight read it): a secret added since is removed too, and step 5 works
	// from these certificates.
	app := m.app
	if !m.appCreated {
		fresh, err := m.freshApp(ctx)
		if err != nil {
			return graphFailure(err, hintCreateAdmin, "read the provisioner app's credentials")
		}
		app = fresh
	}
	m.appKeys = app.KeyCredentials
	n := len(app.PasswordCredentials)
	if n == 0 {
		return nil
	}
	return m.change(fmt.Sprintf("remove %d password credential(s) from the app", n), func() error {
		for i, pw := range app.PasswordCredentials {
			if err := m.graph.RemovePassword(ctx, app.ID, pw.KeyID); err != nil {
				return graphFailure(err, hintCreateAdmin, "remove password credential %s from the provisioner app (%d of %d removed; stopped before uploading a certificate)", pw.KeyID, i, n)
			}
		}
		m.sum.PasswordsRemoved = n
		m.say("Removed %d legacy password credential(s) from Provisioner app (cert-auth only from here on).", n)
		return nil
	})
}
