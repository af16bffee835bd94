package provision

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
)

// Two ways put a certificate on the app. The normal renewal, when this machine holds a
// currently valid certificate that is on the app, is Graph's addKey (and removeKey for
// the old one): one key changes, atomically, with a proof signed by a key the app
// already trusts, and no Graph permission is needed. Machines sharing the app then
// cannot drop each other's certificates. Without such a certificate (the first
// migration, recovery after expiry) only an operator's PATCH of the whole list can; it
// is built from a read that shows every certificate this run uploaded, re-read after
// writing, and repaired until its own certificate and every certificate it kept are
// there (another writer's PATCH from an older read may have dropped one).

// maxPatchRepairs bounds how often a PATCH of the certificates is written again because a
// later read lacked a certificate it wrote.
const maxPatchRepairs = 3

// upload adds b's certificate to the app.
func (m *migration) upload(ctx context.Context, b *certs.Bundle) error {
	thumb := certs.Thumbprint(b.Cert)
	if signer := m.proofSigner(m.current); signer != nil && !sameCert(signer, b) && !m.cfg.DryRun {
		return m.addKey(ctx, b, signer)
	}
	m.say("Uploading public cert to app (SHA-1 thumb: %s)...", thumb)
	keys, err := m.consistentKeys(ctx, m.appKeys)
	if err != nil {
		return err
	}
	creds := append(append([]entra.KeyCredential(nil), keys...), entra.NewKeyCredential(b.Cert, entra.MachineKeyName()))
	if err := m.patchKeys(ctx, creds, "upload certificate "+thumb+" to the provisioner app"); err != nil {
		return err
	}
	m.uploaded = appendUnique(m.uploaded, thumb)
	m.sum.CertUploaded = true
	m.needsProof = true
	return nil
}

// proofSigner is the first of candidates that can sign a key-roll proof for the app: valid
// now and listed on the app (as last read); nil when none can (the PATCH path applies).
func (m *migration) proofSigner(candidates ...*certs.Bundle) *certs.Bundle {
	if m.app == nil {
		return nil
	}
	now := m.cfg.Now()
	for _, b := range candidates {
		if b != nil && !certs.Expired(b.Cert, now) && !now.Before(b.Cert.NotBefore) && hasKey(m.appKeys, certs.Thumbprint(b.Cert)) {
			return b
		}
	}
	return nil
}

// addKey puts b's certificate on the app through addKey, proved by signer's key.
func (m *migration) addKey(ctx context.Context, b, signer *certs.Bundle) error {
	thumb := certs.Thumbprint(b.Cert)
	m.say("Adding certificate %s to the app with addKey (proof signed by certificate %s)...", thumb, certs.Thumbprint(signer.Cert))
	proof, err := rollProof(ctx, m.app.ID, signer, m.cfg.Now())
	if err != nil {
		return err
	}
	m.appWritten = true // even a failed addKey may have been applied
	added, err := m.graph.AddKey(ctx, m.app.ID, b.Cert, entra.MachineKeyName(), proof)
	if err != nil {
		return m.keyRollFailure(ctx, err, thumb, true, "add certificate %s to the provisioner app (addKey)", thumb)
	}
	m.appKeys = append(withoutKey(m.appKeys, thumb), *added)
	m.uploaded = appendUnique(m.uploaded, thumb)
	m.sum.CertUploaded = true
	m.needsProof = true
	m.keyRolls++
	return nil
}

// rollOff takes the key credential keyID (certificate thumb) off the app through
// removeKey, with a proof signed by signer.
func (m *migration) rollOff(ctx context.Context, keyID, thumb string, signer *certs.Bundle) error {
	m.appWritten = true // even a failed removeKey may have been applied
	if err := removeKeyWithProof(ctx, m.graph, m.app.ID, keyID, signer, m.cfg.Now()); err != nil {
		return m.keyRollFailure(ctx, err, thumb, false, "remove certificate %s from the provisioner app (removeKey)", thumb)
	}
	m.appKeys = withoutKey(m.appKeys, thumb)
	m.keyRolls++
	return nil
}

// removeKeyWithProof removes the key credential keyID from the app (object id appID)
// through removeKey, with a proof signed by signer: one key changes, so no other
// machine's certificate can be dropped on the way. Migrate and rollback share it.
func removeKeyWithProof(ctx context.Context, graph *entra.Graph, appID, keyID string, signer *certs.Bundle, now time.Time) error {
	proof, err := rollProof(ctx, appID, signer, now)
	if err != nil {
		return err
	}
	return graph.RemoveKey(ctx, appID, keyID, proof)
}

// rollProof signs a key-roll proof for the app with b's key (in memory or in the TPM).
func rollProof(ctx context.Context, appID string, b *certs.Bundle, now time.Time) (string, error) {
	signer, err := entra.BundleSigner(b)
	if err != nil {
		return "", wrapf(err, "", "certificate %s cannot sign a key-roll proof", certs.Thumbprint(b.Cert))
	}
	return entra.RollKeyProof(ctx, appID, b.Cert, signer, now)
}

// keyRollFailure explains a failed addKey/removeKey. A refused proof, or a refused
// addKey, is the failure. Otherwise Graph may have done it anyway (a 5xx or a reset after
// applying it), or, for a removal, someone else already did (another machine pruning the
// same certificate: 400, no such key): it reads the app, and when the app is as wanted the
// failure is none (nil).
func (m *migration) keyRollFailure(ctx context.Context, err error, thumb string, wantPresent bool, format string, args ...any) error {
	if entra.IsProofRefused(err) {
		return graphFailure(err, "the proof is signed by this machine's certificate, which the app must list and which must be valid: run `entraclaw-verify`; an operator's `entraclaw-migrate` repairs it", format, args...)
	}
	var ge *entra.GraphError
	if wantPresent && errors.As(err, &ge) && ge.StatusCode < 500 {
		return graphFailure(err, hintCreateAdmin, format, args...)
	}
	// One read that shows the change settles it: lagging reads show the past, not a future.
	app, rerr := m.graph.AwaitApplication(ctx, m.app.ID, func(a *entra.Application) bool { return hasKey(a.KeyCredentials, thumb) == wantPresent },
		entra.AwaitOptions{Interval: m.cfg.ReadInterval, Timeout: m.cfg.ReplicationWait, Consecutive: 1})
	if rerr == nil {
		m.say("Graph did not answer clearly, but a read shows the change was applied.")
		m.appKeys = app.KeyCredentials
		return nil
	}
	return graphFailure(err, hintRerun, format, args...)
}

// patchKeys writes creds as the app's certificates, then reads the app until reads show
// every certificate in creds. A read that stably lacks some of them means another writer
// replaced the list from an older read: the list is written again from that read plus
// what it lacks, up to maxPatchRepairs times. It never returns nil while a certificate
// it wrote is missing.
func (m *migration) patchKeys(ctx context.Context, creds []entra.KeyCredential, what string) error {
	want := make([]string, 0, len(creds))
	for _, k := range creds {
		if t := k.Thumbprint(); t != "" {
			want = append(want, t)
		}
	}
	lacks := func(keys []entra.KeyCredential) []string {
		var out []string
		for _, t := range want {
			if !hasKey(keys, t) {
				out = append(out, t)
			}
		}
		return out
	}
	for attempt := 0; ; attempt++ {
		m.appWritten = true // even a failed PATCH may have been applied
		if err := m.graph.SetKeyCredentials(ctx, m.app.ID, creds); err != nil {
			return graphFailure(err, hintCreateAdmin, "%s", what)
		}
		m.keyPatches++
		// One read that shows them all will do; reads that lack one are retried while
		// Graph's reads may lag behind the write.
		app, err := m.graph.AwaitApplication(ctx, m.app.ID, func(a *entra.Application) bool { return len(lacks(a.KeyCredentials)) == 0 },
			entra.AwaitOptions{Interval: m.cfg.ReadInterval, Timeout: m.cfg.ReplicationWait, Consecutive: 1})
		if err == nil {
			m.readAfterWrite(app)
			return nil
		}
		if !errors.Is(err, entra.ErrReadsInconsistent) || app == nil {
			return graphFailure(err, hintCreateAdmin, "read the provisioner app's certificates after writing them")
		}
		missing := lacks(app.KeyCredentials)
		if attempt+1 >= maxPatchRepairs {
			return failf(hintRerun, "%s: after %d writes the app still lacks certificate(s) %s (another writer keeps replacing the list)", what, attempt+1, strings.Join(missing, ", "))
		}
		m.warn("the app lacks certificate(s) %s after this run wrote them: another writer replaced the list from an older read; writing them again", strings.Join(missing, ", "))
		creds = append(slices.Clone(app.KeyCredentials), keepMissing(creds, missing)...)
	}
}

// keepMissing returns the credentials of creds whose certificates are in missing, as new
// uploads (with their bodies).
func keepMissing(creds []entra.KeyCredential, missing []string) []entra.KeyCredential {
	var out []entra.KeyCredential
	for _, k := range creds {
		if slices.Contains(missing, k.Thumbprint()) {
			if again, ok := k.Reupload(); ok {
				out = append(out, again)
			}
		}
	}
	return out
}

// consistentKeys returns keys when it holds every certificate this run uploaded.
// Otherwise the read was stale (Graph reads lag behind writes, and a PATCH built from
// a stale read would drop a certificate): it reads the app again until several reads
// in a row show them all, for up to cfg.ReplicationWait, and returns the last read.
func (m *migration) consistentKeys(ctx context.Context, keys []entra.KeyCredential) ([]entra.KeyCredential, error) {
	has := func(keys []entra.KeyCredential) bool {
		for _, thumb := range m.uploaded {
			if !hasKey(keys, thumb) {
				return false
			}
		}
		return true
	}
	if has(keys) {
		return keys, nil
	}
	m.say("Graph does not show certificate(s) %s yet (reads lag behind writes); reading the app again before changing its certificates...", strings.Join(m.uploaded, ", "))
	app, err := m.graph.AwaitApplication(ctx, m.app.ID, func(a *entra.Application) bool { return has(a.KeyCredentials) },
		entra.AwaitOptions{Interval: m.cfg.ReadInterval, Timeout: m.cfg.ReplicationWait})
	switch {
	case errors.Is(err, entra.ErrReadsInconsistent):
		return nil, failf(hintRerun, "Graph still returns the provisioner app without certificate(s) %s, uploaded by this run, after %s: not writing its certificates from a stale read", strings.Join(m.uploaded, ", "), m.cfg.ReplicationWait)
	case err != nil:
		return nil, graphFailure(err, hintCreateAdmin, "read the provisioner app's certificates")
	}
	return app.KeyCredentials, nil
}

// readAfterWrite keeps a read of the app that shows this run's writes: later steps use it
// instead of reading the app again.
func (m *migration) readAfterWrite(app *entra.Application) {
	m.appKeys = app.KeyCredentials
	if m.pre != nil {
		m.pre.app = app
	} else {
		m.pre = &prefetched{app: app}
	}
	m.appWritten = false
}
