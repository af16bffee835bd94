package provision

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
)

// ---- -prune-expired: retired machines' certificates ----

// pruneExpired removes from the app the certificates that expired more than
// cfg.PruneExpired ago and are not this machine's: a retired machine's certificate
// otherwise stays on the app forever, and every key counts towards the app's size limit.
// Each goes through removeKey when this machine's current certificate can sign the
// proof, else by one PATCH from a fresh read. Never by default; a dry run lists them.
func (m *migration) pruneExpired(ctx context.Context) error {
	if m.cfg.PruneExpired <= 0 || m.app == nil {
		return nil
	}
	app, err := m.freshApp(ctx)
	if err != nil {
		return graphFailure(err, hintCreateAdmin, "read the provisioner app's certificates")
	}
	m.appKeys = app.KeyCredentials
	cutoff := m.cfg.Now().Add(-m.cfg.PruneExpired)
	var stale []entra.KeyCredential
	for _, k := range m.appKeys {
		end := k.End()
		if !end.IsZero() && end.Before(cutoff) && !m.isMine(k) {
			stale = append(stale, k)
		}
	}
	if len(stale) == 0 {
		m.say("No certificate on the app expired more than %s ago.", roundDays(m.cfg.PruneExpired))
		return nil
	}
	for _, k := range stale {
		thumb := k.Thumbprint()
		desc := fmt.Sprintf("remove certificate %s (%q, expired %s) from the app: it expired more than %s ago", thumb, k.Name(), day(k.End()), roundDays(m.cfg.PruneExpired))
		if err := m.change(desc, func() error { return m.pruneOne(ctx, k) }); err != nil {
			return err
		}
	}
	return nil
}

// pruneOne removes one expired certificate of another machine: through removeKey when
// this machine's certificate can sign the proof, else by a PATCH without that key.
func (m *migration) pruneOne(ctx context.Context, k entra.KeyCredential) error {
	thumb := k.Thumbprint()
	if signer := m.proofSigner(m.current); signer != nil {
		if err := m.rollOff(ctx, k.KeyID, thumb, signer); err != nil {
			return err
		}
	} else {
		keys, err := m.consistentKeys(ctx, m.appKeys)
		if err != nil {
			return err
		}
		rest := slices.DeleteFunc(slices.Clone(keys), func(c entra.KeyCredential) bool { return c.KeyID == k.KeyID })
		if err := m.patchKeys(ctx, rest, "remove expired certificate "+thumb+" from the provisioner app"); err != nil {
			return err
		}
	}
	m.say("Removed expired certificate %s from the app.", thumb)
	return nil
}

// isMine reports whether k is one of this machine's certificates (current, pending or
// previous).
func (m *migration) isMine(k entra.KeyCredential) bool {
	for _, b := range []*certs.Bundle{m.current, m.next, m.previous} {
		if b != nil && strings.EqualFold(k.Thumbprint(), certs.Thumbprint(b.Cert)) {
			return true
		}
	}
	return false
}
