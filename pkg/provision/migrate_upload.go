package provision

import (
	"context"
	"errors"
	"slices"
	"strings"

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
	if signer := m.proofCert(b); signer != nil {
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

// proofCert returns the certificate that signs a key-roll proof for adding b: this
// machine's current certificate when it is valid now, on the app (as read), and not b
// itself; nil when there is none (the PATCH path then applies).
func (m *migration) proofCert(b *certs.Bundle) *certs.Bundle {
	cur := m.current
	if cur == nil || b == nil || sameCert(cur, b) || m.app == nil || m.cfg.DryRun {
		return nil
	}
	now := m.cfg.Now()
	if certs.Expired(cur.Cert, now) || now.Before(cur.Cert.NotBefore) || !hasKey(m.appKeys, certs.Thumbprint(cur.Cert)) {
		return nil
	}
	return cur
}

// addKey puts b's certificate on the app through addKey, proved by signer's key.
func (m *migration) addKey(ctx context.Context, b, signer *certs.Bundle) error {
	thumb := certs.Thumbprint(b.Cert)
	m.say("Adding certificate %s to the app with addKey (proof signed by certificate %s)...", thumb, certs.Thumbprint(signer.Cert))
	proof, err := m.rollProof(ctx, signer)
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

// removeKey takes the certificate prev off the app through removeKey. The proof is
// signed by prev itself while it is valid (a key the app has trusted longest), else by
// this machine's current certificate. It reports false when the app does not list prev.
func (m *migration) removeKey(ctx context.Context, prev *certs.Bundle) (bool, error) {
	thumb := certs.Thumbprint(prev.Cert)
	keyID := keyIDOf(m.appKeys, thumb)
	if keyID == "" {
		return false, nil
	}
	signer := prev
	if now := m.cfg.Now(); certs.Expired(prev.Cert, now) || now.Before(prev.Cert.NotBefore) {
		signer = m.current
	}
	proof, err := m.rollProof(ctx, signer)
	if err != nil {
		return false, err
	}
	m.appWritten = true
	if err := m.graph.RemoveKey(ctx, m.app.ID, keyID, proof); err != nil {
		return false, m.keyRollFailure(ctx, err, thumb, false, "remove certificate %s from the provisioner app (removeKey)", thumb)
	}
	m.appKeys = withoutKey(m.appKeys, thumb)
	m.keyRolls++
	return true, nil
}

// rollProof signs a key-roll proof for the app with b's key (in memory or in the TPM).
func (m *migration) rollProof(ctx context.Context, b *certs.Bundle) (string, error) {
	signer, err := entra.BundleSigner(b)
	if err != nil {
		return "", wrapf(err, "", "certificate %s cannot sign a key-roll proof", certs.Thumbprint(b.Cert))
	}
	proof, err := entra.RollKeyProof(ctx, m.app.ID, b.Cert, signer, m.cfg.Now())
	if err != nil {
		return "", wrapf(err, "", "")
	}
	return proof, nil
}

// keyRollFailure explains a failed addKey/removeKey. After an answer that leaves it open
// whether Graph applied the change (5xx, a reset), it reads the app: when the change is
// there the failure is none (nil).
func (m *migration) keyRollFailure(ctx context.Context, err error, thumb string, wantPresent bool, format string, args ...any) error {
	if entra.IsProofRefused(err) {
		return graphFailure(err, "the proof is signed by this machine's current certificate, which the app must list and which must be valid: run `entraclaw-verify`; an operator's `entraclaw-migrate` repairs it", format, args...)
	}
	var ge *entra.GraphError
	if errors.As(err, &ge) && ge.StatusCode < 500 {
		return graphFailure(err, hintCreateAdmin, format, args...)
	}
	app, rerr := m.graph.AwaitApplication(ctx, m.app.ID, func(a *entra.Application) bool { return hasKey(a.KeyCredentials, thumb) == wantPresent },
		entra.AwaitOptions{Interval: m.cfg.ReadInterval, Timeout: m.cfg.ReplicationWait})
	if rerr == nil {
		m.say("Graph did not answer clearly, but a read shows the change was applied.")
		m.appKeys = app.KeyCredentials
		return nil
	}
	return graphFailure(err, hintRerun, format, args...)
}

// keyIDOf returns the keyId of the certificate with thumb in keys ("" when absent).
func keyIDOf(keys []entra.KeyCredential, thumb string) string {
	for _, k := range keys {
		if k.MatchesThumbprint(thumb) {
			return k.KeyID
		}
	}
	return ""
}

// patchKeys writes creds as the app's certificates, then reads the app until reads show
// every certificate in creds. A read that stably lacks some of them means another writer
// replaced the list from an older read: the list is written again from that read plus
// what it lacks, up to maxPatchRepairs times. It never returns nil while a certificate
// it wrote is missing.
func (m *migration) patchKeys(ctx context.Context, creds []entra.KeyCredential, what string) error {
	want := make([]string, 0, len(creds))
	for _, k := range creds {
		if t := keyThumb(k); t != "" {
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
		if slices.Contains(missing, keyThumb(k)) {
			if again, ok := k.Reupload(); ok {
				out = append(out, again)
			}
		}
	}
	return out
}

// keyThumb is the SHA-1 thumbprint (lowercase hex) of a key credential, from its body or
// customKeyIdentifier; "" when neither says.
func keyThumb(k entra.KeyCredential) string {
	return k.Thumbprint()
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
