package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/machinecert"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
	"github.com/entraclaw/entraclaw-cli/pkg/tpmkey"
)

// A rotation is make-before-break. This machine's certificates live in three
// keyring items of the tenant:
//
//	<tenant>           current: the one the token binary, the cache and verify use
//	<tenant>.next      a rotation's new certificate, until it has produced a token
//	                   with every role (then it becomes current)
//	<tenant>.previous  the certificate a rotation replaced, until it is off the app
//
// The steps: generate next and store it; upload it (the app keeps current); wait
// until next gets a token with every role; then copy current to previous, next to
// current, record its thumbprint and delete next; then remove previous from the
// app (from a read that shows the new certificate) and the keyring. Until the
// promotion the current certificate keeps serving, so an interrupted rotation
// leaves tokens working; a plain re-run reads the three items and finishes the job.

// ---- step 3: this machine's certificate ----

func (m *migration) ensureCertificate(ctx context.Context) error {
	now := m.cfg.Now()
	if err := m.readCertificates(ctx, now); err != nil {
		return err
	}
	return m.placeCertificate(ctx, m.renewalReason(now))
}

// readCertificates reads the app's certificates and this machine's three keyring items,
// and tidies a pending certificate that was already promoted or is too old.
func (m *migration) readCertificates(ctx context.Context, now time.Time) error {
	store := m.deps.Store
	if m.app != nil && !m.appCreated {
		// The app's certificates as they are now (the preflight's read while nothing
		// has changed): an upload keeps every one of them.
		app, err := m.freshApp(ctx)
		if err != nil {
			return graphFailure(err, hintCreateAdmin, "read the provisioner app's certificates")
		}
		m.appKeys = app.KeyCredentials
	}
	if !m.cfg.DryRun {
		moved, err := store.MigrateLegacy(m.tenant)
		if err != nil {
			return wrapf(err, "", "move the legacy certificate file into the %s", m.sum.KeyringBackend)
		}
		if moved {
			m.peeked = nil // the preflight read the keyring before the move
			m.say("Moved the legacy certificate file %s into the %s.", store.LegacyFile(m.tenant), m.sum.KeyringBackend)
			*m.actions = append(*m.actions, "move the legacy certificate file into the "+m.sum.KeyringBackend)
		}
	}
	var err error
	if m.current, err = m.readItem(m.tenant, false); err != nil {
		return err
	}
	if m.next, err = m.readItem(m.tenant+NextAccountSuffix, true); err != nil {
		return err
	}
	if m.previous, err = m.readItem(m.tenant+PreviousAccountSuffix, true); err != nil {
		return err
	}
	if m.previous != nil && !m.trustedPrevious(ctx, m.previous) {
		m.previous = nil
	}
	if m.next != nil && m.current != nil && sameCert(m.next, m.current) {
		// Promoted, but interrupted before <tenant>.next was deleted.
		if err := m.deleteItem(NextAccountSuffix, "it was already promoted"); err != nil {
			return err
		}
		m.next = nil
	}
	if m.next != nil && certs.ExpiresWithin(m.next.Cert, now, m.cfg.RenewBefore) {
		// A pending certificate from long ago: start afresh, and drop it from the app.
		if err := m.deleteItem(NextAccountSuffix, "the pending certificate expires on "+day(m.next.Cert.NotAfter)); err != nil {
			return err
		}
		m.appKeys = withoutKey(m.appKeys, certs.Thumbprint(m.next.Cert))
		m.next = nil
	}
	return nil
}

// trustedPrevious reports whether the <tenant>.previous item b may be removed from the
// app as this machine's old certificate: it must be the certificate this machine's last
// rotation replaced (the renewal record says which), and its key must sign for its
// certificate. A planted item (another machine's certificate with a key block that
// cannot sign for it) is left alone with a warning, and nothing is removed.
func (m *migration) trustedPrevious(ctx context.Context, b *certs.Bundle) bool {
	thumb := certs.Thumbprint(b.Cert)
	account := m.tenant + PreviousAccountSuffix
	rec, _ := state.LoadRenewal(m.cfg.StatePath)
	if rec == nil || !strings.EqualFold(rec.Replaced, thumb) {
		m.warn("keyring item service=%q account=%s holds certificate %s, which no rotation on this machine replaced: it is ignored and not removed from the app; delete the item if you do not know it", m.cfg.KeyringService, account, thumb)
		return false
	}
	if err := entra.ProvePossession(ctx, b); err != nil {
		m.warn("keyring item service=%q account=%s: certificate %s cannot be proven (%v): it is ignored and not removed from the app", m.cfg.KeyringService, account, thumb, err)
		return false
	}
	return true
}

// renewalReason says why this machine needs a new certificate ("" when it does not).
func (m *migration) renewalReason(now time.Time) string {
	reason := ""
	switch current := m.current; {
	case current == nil:
		reason = "none in the keyring"
	case certs.Expired(current.Cert, now):
		reason = "the certificate in the keyring expired on " + day(current.Cert.NotAfter)
	case certs.ExpiresWithin(current.Cert, now, m.cfg.RenewBefore):
		reason = "the certificate in the keyring expires on " + day(current.Cert.NotAfter)
	case m.cfg.Rotate:
		reason = "-rotate"
	case !hasKey(m.appKeys, certs.Thumbprint(current.Cert)) && current.Cert.NotAfter.Sub(current.Cert.NotBefore) > m.cfg.CertLifetime+time.Hour:
		// Never accepted by the app, and longer-lived than asked: a tenant policy capping
		// certificate lifetime refused it. Replace it rather than upload it again.
		reason = "the certificate in the keyring is not on the app and outlives -cert-lifetime"
	case m.cfg.KeyStore == KeyStoreTPM && !current.TPMBound():
		reason = "-key-store tpm: the current key is in the keyring"
	case m.cfg.KeyStore == KeyStoreKeyring && current.TPMBound():
		reason = "-key-store keyring: the current key is in the TPM"
	}
	return reason
}

// placeCertificate makes the certificate this run proves and puts it on the app: the
// pending one, a new one (current at once on a first migration, else <tenant>.next while
// the current one keeps serving), or the current one, uploaded when the app lacks it.
func (m *migration) placeCertificate(ctx context.Context, reason string) error {
	switch {
	case m.current == nil && m.next != nil:
		// Nothing serves yet (first migration, or the current item was deleted):
		// the pending certificate becomes current at once.
		m.bundle, m.current = m.next, m.next
		m.needsProof = true
		if err := m.change(fmt.Sprintf("store the pending certificate %s as this machine's certificate", certs.Thumbprint(m.next.Cert)), func() error {
			if err := m.putItem("", m.next); err != nil {
				return err
			}
			return m.deleteItem(NextAccountSuffix, "it is current now")
		}); err != nil {
			return err
		}
		m.next = nil
	case m.current == nil:
		// First migration: nothing serves tokens yet, so the new certificate is current at once.
		m.needsProof = true
		return m.change(fmt.Sprintf("generate a new certificate (%s), store it in the %s and upload it to the app", reason, m.sum.KeyringBackend), func() error {
			b, err := m.generate(ctx)
			if err != nil {
				return err
			}
			if err := m.putItem("", b); err != nil {
				return err
			}
			if b.TPMBound() {
				m.say("Cert stored in %s; its private key stays in the TPM.", m.storedWhere(m.tenant))
			} else {
				m.say("Cert private key stored in %s.", m.storedWhere(m.tenant))
			}
			m.current, m.bundle = b, b
			return m.upload(ctx, b)
		})
	case m.next != nil:
		m.say("Continuing the rotation to certificate %s (pending since %s).", certs.Thumbprint(m.next.Cert), day(m.next.Cert.NotBefore))
		m.bundle = m.next
		m.sum.Rotated = true
		m.needsProof = true
	case reason != "":
		m.sum.Rotated = true
		m.needsProof = true
		return m.change(fmt.Sprintf("generate a new certificate (%s), store it in the %s as account %s and upload it to the app; certificate %s keeps serving until the new one gets a token",
			reason, m.sum.KeyringBackend, m.tenant+NextAccountSuffix, certs.Thumbprint(m.current.Cert)), func() error {
			b, err := m.generate(ctx)
			if err != nil {
				return err
			}
			if err := m.putItem(NextAccountSuffix, b); err != nil {
				return err
			}
			what := "New cert private key stored"
			if b.TPMBound() {
				what = "New cert (private key in the TPM) stored"
			}
			m.say("%s in %s; certificate %s keeps serving until the new one gets a token.",
				what, m.storedWhere(m.tenant+NextAccountSuffix), certs.Thumbprint(m.current.Cert))
			m.next, m.bundle = b, b
			return m.upload(ctx, b)
		})
	default:
		m.bundle = m.current
	}

	b := m.bundle
	thumb := certs.Thumbprint(b.Cert)
	if hasKey(m.appKeys, thumb) {
		if b == m.current {
			m.say("Provisioner certificate %s in the %s is already on the app (expires %s).", thumb, m.sum.KeyringBackend, day(b.Cert.NotAfter))
		}
		return nil
	}
	m.needsProof = true
	return m.change(fmt.Sprintf("upload the keyring certificate %s to the app", thumb), func() error { return m.upload(ctx, b) })
}

// Values of Config.KeyStore, as recorded in the state file (state.KeyKeyStore).
const (
	KeyStoreKeyring = state.KeyStoreKeyring
	KeyStoreTPM     = state.KeyStoreTPM
	// KeyStoreTPMFile keeps the certificate items as TPM-wrapped key files
	// (keystore.WithTPMFiles): the key is created in the TPM, and no Secret Service is needed.
	KeyStoreTPMFile = state.KeyStoreTPMFile
)

// checkKeyStore checks, changing nothing, that -key-store names a store this run may use:
// one it knows, with a TPM to use for tpm and tpm-file.
func (m *migration) checkKeyStore(ctx context.Context) error {
	if err := CheckKeyStoreName(m.cfg.KeyStore); err != nil {
		return &Error{err: err, code: exitUsage, hint: hintUsage}
	}
	if m.cfg.KeyStore == KeyStoreTPM || m.cfg.KeyStore == KeyStoreTPMFile {
		if err := tpmkey.Check(ctx, ""); err != nil {
			return &Error{err: err} // one line that says what to do; nothing was changed
		}
	}
	return nil
}

// KeyStores are the values Config.KeyStore (-key-store) takes; "" keeps the recorded one.
var KeyStores = []string{KeyStoreKeyring, KeyStoreTPM, KeyStoreTPMFile}

// CheckKeyStoreName accepts "" and the names in KeyStores: the one rule for -key-store.
func CheckKeyStoreName(name string) error {
	if name == "" || slices.Contains(KeyStores, name) {
		return nil
	}
	return fmt.Errorf("-key-store must be %s, not %q", strings.Join(KeyStores, ", "), name)
}

// inFiles reports whether this run's store keeps the items as TPM-wrapped key files.
func (m *migration) inFiles() bool { return m.deps.Store.KeyFileDir() != "" }

// recordedKeyStore is the store the state file records for this machine's certificate:
// PROVISIONER_KEY_STORE, else the keyring when a thumbprint is recorded (versions before
// the key), else "" (no certificate yet, or purged by rollback).
func (m *migration) recordedKeyStore() string {
	switch {
	case m.stateKeyStore != "":
		return m.stateKeyStore
	case m.stateThumb != "":
		return KeyStoreKeyring
	}
	return ""
}

// checkStoreMove refuses, before any change, a run whose store is not the recorded one
// while a certificate is recorded: moving between the keyring and the key files cannot
// be make-before-break (a Store holds its three items in one place, and the token
// binary reads the recorded store only), so it is a purge and a new migration. Between
// keyring and tpm (both in the keyring) it is a rotation like any other.
func (m *migration) checkStoreMove() error {
	recorded := m.recordedKeyStore()
	if recorded == "" || m.stateThumb == "" || (recorded == KeyStoreTPMFile) == m.inFiles() {
		return nil
	}
	if recorded != KeyStoreKeyring && recorded != KeyStoreTPM && recorded != KeyStoreTPMFile {
		return &Error{msg: fmt.Sprintf("%s records %s %q, which this version does not know; nothing was changed", m.cfg.StatePath, state.KeyKeyStore, recorded),
			hint: "fix " + state.KeyKeyStore + " in the state file: keyring, tpm or tpm-file"}
	}
	asked := m.cfg.KeyStore
	from := "the " + keystore.NameSecretService + " (" + state.KeyKeyStore + " " + recorded + ")"
	if recorded == KeyStoreTPMFile {
		from = "a TPM-wrapped key file (" + state.KeyKeyStore + " tpm-file)"
	}
	return &Error{
		code: exitUsage,
		msg: fmt.Sprintf("-key-store %s: this machine's certificate %s is in %s, and moving it to the other store cannot be make-before-break; nothing was changed",
			asked, m.stateThumb, from),
		hint: fmt.Sprintf("run `entraclaw-rollback -purge-cert` (back to a client secret, this machine's certificate deleted), then `entraclaw-migrate -key-store %s`", asked),
	}
}

// newKeyStore is where a new key goes: the key files when the run's store is the files,
// else -key-store, else where the current key is, else the keyring.
func (m *migration) newKeyStore() string {
	switch {
	case m.inFiles():
		return KeyStoreTPMFile
	case m.cfg.KeyStore != "":
		return m.cfg.KeyStore
	case m.current != nil && m.current.TPMBound():
		return KeyStoreTPM
	}
	return KeyStoreKeyring
}

// generate makes a new certificate valid for cfg.CertLifetime: its key in memory (to be
// stored in the keyring), or with -key-store tpm or tpm-file in the TPM.
func (m *migration) generate(ctx context.Context) (*certs.Bundle, error) {
	if store := m.newKeyStore(); store == KeyStoreTPM || store == KeyStoreTPMFile {
		m.say("Generating cert for Provisioner in the TPM (RSA 2048, non-exportable, %d days)...", int(m.cfg.CertLifetime.Hours()/24))
		return tpmkey.Generate(ctx, "", m.cfg.Now(), m.cfg.CertLifetime)
	}
	m.say("Generating cert for Provisioner (RSA 2048, %d days)...", int(m.cfg.CertLifetime.Hours()/24))
	return certs.GenerateWithLifetime(m.cfg.Now(), m.cfg.CertLifetime)
}

// storedWhere names where the item of account is, for messages: the key file, or the
// keyring with its service and account.
func (m *migration) storedWhere(account string) string {
	if path := m.deps.Store.KeyFile(account); path != "" {
		return "TPM-wrapped key file " + path
	}
	return fmt.Sprintf("%s (service='%s', account=%s)", m.sum.KeyringBackend, m.cfg.KeyringService, account)
}

// readItem reads and parses one of this machine's certificate items; nil when
// there is none. An item that does not parse holds no usable key: the current
// one is reported and replaced; a next or previous one is deleted (a dry run
// plans that), so no run reports it again.
func (m *migration) readItem(account string, deleteUnusable bool) (*certs.Bundle, error) {
	b, err := m.readBundle(account)
	var unusable *machinecert.Error
	switch {
	case err == nil:
		return b, nil
	case machinecert.Is(err, machinecert.Missing):
		return nil, nil
	case !errors.As(err, &unusable):
		return nil, wrapf(err, "", "read keyring account %s from the %s", account, m.sum.KeyringBackend)
	}
	parseErr := unusable.Err
	if !deleteUnusable {
		m.warn("%v; it will be replaced", unusable)
		return nil, nil
	}
	return nil, m.change(fmt.Sprintf("delete keyring account %s: it is not a usable certificate bundle (%v)", account, parseErr), func() error {
		if err := m.removeAccount(account); err != nil {
			return err
		}
		m.say("Deleted keyring item service='%s' account=%s: it was not a usable certificate bundle (%v).", m.cfg.KeyringService, account, parseErr)
		return nil
	})
}

// putItem stores b under the tenant's account with suffix ("" for current).
func (m *migration) putItem(suffix string, b *certs.Bundle) error {
	account := m.tenant + suffix
	if err := m.deps.Store.PutBundle(account, b.PEM()); err != nil {
		return wrapf(err, "", "store certificate %s in the %s as account %s", certs.Thumbprint(b.Cert), m.sum.KeyringBackend, account)
	}
	return nil
}

// deleteItem deletes the tenant's account with suffix, saying why.
func (m *migration) deleteItem(suffix, why string) error {
	account := m.tenant + suffix
	return m.change(fmt.Sprintf("delete keyring account %s (%s)", account, why), func() error { return m.removeAccount(account) })
}

// removeAccount deletes one keyring account; one that is already gone is fine.
func (m *migration) removeAccount(account string) error {
	if err := m.deps.Store.DeleteBundle(account); err != nil && !errors.Is(err, keystore.ErrNotFound) {
		return wrapf(err, "", "delete keyring account %s", account)
	}
	return nil
}

func sameCert(a, b *certs.Bundle) bool { return certs.Thumbprint(a.Cert) == certs.Thumbprint(b.Cert) }

func hasKey(keys []entra.KeyCredential, thumb string) bool { return findKey(keys, thumb) != nil }

// findKey returns the credential of the certificate with thumb in keys (nil when absent).
func findKey(keys []entra.KeyCredential, thumb string) *entra.KeyCredential {
	for i := range keys {
		if keys[i].MatchesThumbprint(thumb) {
			return &keys[i]
		}
	}
	return nil
}

func withoutKey(keys []entra.KeyCredential, thumb string) []entra.KeyCredential {
	var out []entra.KeyCredential
	for _, k := range keys {
		if !k.MatchesThumbprint(thumb) {
			out = append(out, k)
		}
	}
	return out
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// ---- step 6: the thumbprint in the state file ----

// recordThumbprint records the current certificate's thumbprint. During a
// rotation the current certificate is still the old one: the new one's is
// recorded when it is promoted.
func (m *migration) recordThumbprint(context.Context) error {
	b := m.current
	if b == nil {
		return nil
	}
	m.sum.Thumbprint = certs.Thumbprint(b.Cert)
	m.sum.CertNotAfter = b.Cert.NotAfter.UTC().Format(time.RFC3339)
	m.sum.PrivateKey = KeyStoreKeyring
	switch {
	case m.inFiles():
		m.sum.PrivateKey = KeyStoreTPMFile
	case b.TPMBound():
		m.sum.PrivateKey = KeyStoreTPM
	}
	if err := m.recordState(state.KeyThumbprint, m.sum.Thumbprint); err != nil {
		return err
	}
	// The store is recorded with the certificate it holds: every binary then reads
	// that store, and never looks elsewhere. A missing key means the keyring (every
	// state file before the key), so a keyring machine's file is left as it was.
	if m.sum.PrivateKey == KeyStoreKeyring && m.stateKeyStore == "" {
		return nil
	}
	return m.recordState(state.KeyKeyStore, m.sum.PrivateKey)
}

// ---- step 8: the new certificate becomes current ----

// promoteNext makes a rotation's new certificate current once it has produced a
// token with every role: the old one is kept as <tenant>.previous until step 9
// has removed it from the app.
func (m *migration) promoteNext(context.Context) error {
	next, old := m.next, m.current
	if next == nil {
		return nil
	}
	thumb := certs.Thumbprint(next.Cert)
	if !m.proven {
		if !m.cfg.DryRun {
			m.warn("rotation pending: certificate %s is on the app but Entra ID has not given it a token with every role yet; certificate %s keeps serving; run `entraclaw-migrate` again to finish the rotation",
				thumb, certs.Thumbprint(old.Cert))
			return nil
		}
		return m.change(fmt.Sprintf("make certificate %s current once it gets a token, and keep %s as account %s until it is off the app", thumb, certs.Thumbprint(old.Cert), m.tenant+PreviousAccountSuffix), nil)
	}
	return m.change(fmt.Sprintf("make certificate %s current (certificate %s is kept as account %s until it is off the app)", thumb, certs.Thumbprint(old.Cert), m.tenant+PreviousAccountSuffix), func() error {
		// Recorded first: only the certificate a rotation replaced is trusted as .previous.
		if err := state.UpdateRenewal(m.cfg.StatePath, func(r *state.Renewal) { r.Replaced = certs.Thumbprint(old.Cert) }); err != nil {
			return wrapf(err, "", "record the certificate this rotation replaces")
		}
		if m.previous == nil || !sameCert(m.previous, old) {
			if err := m.putItem(PreviousAccountSuffix, old); err != nil {
				return err
			}
			m.previous = old
		}
		if err := m.putItem("", next); err != nil {
			return err
		}
		m.current, m.next = next, nil
		if err := m.recordThumbprint(context.Background()); err != nil {
			return err
		}
		if err := m.removeAccount(m.tenant + NextAccountSuffix); err != nil {
			return err
		}
		if path := m.deps.Store.KeyFile(m.tenant + PreviousAccountSuffix); path != "" {
			m.say("Certificate %s is current now; %s is kept as %s until it is off the app.", thumb, certs.Thumbprint(old.Cert), path)
		} else {
			m.say("Certificate %s is current now; %s is kept as keyring account %s until it is off the app.", thumb, certs.Thumbprint(old.Cert), m.tenant+PreviousAccountSuffix)
		}
		return nil
	})
}

// ---- step 9: this machine's previous certificate ----

// removePreviousCert removes the certificate a rotation replaced from the app
// and the keyring, once the current one has produced a token: never is the only
// certificate that still works deleted.
func (m *migration) removePreviousCert(ctx context.Context) error {
	prev, cur := m.previous, m.current
	if prev == nil || cur == nil {
		return nil
	}
	account := m.tenant + PreviousAccountSuffix
	thumb := certs.Thumbprint(prev.Cert)
	if sameCert(prev, cur) {
		return m.deleteItem(PreviousAccountSuffix, "it is the current certificate")
	}
	if !m.proven {
		if !m.cfg.DryRun {
			m.warn("kept this machine's previous certificate %s on the app (and as keyring account %s): the current certificate has not produced a token yet; run entraclaw-migrate again later to remove it", thumb, account)
			return nil
		}
		return m.change(fmt.Sprintf("remove this machine's previous certificate %s from the app once the current one gets a token", thumb), nil)
	}
	return m.change(fmt.Sprintf("remove this machine's previous certificate %s from the app and delete keyring account %s", thumb, account), func() error {
		removed, err := m.takeOffApp(ctx, prev)
		if err != nil {
			return err
		}
		if removed {
			m.sum.PreviousCertRemoved = true
			// Entra ID's token service learns of a removal late, as of an upload: the
			// certificate can still get tokens for a while (issue 22), so say so rather
			// than imply it is dead now. Its private key is deleted below.
			m.say("Removed this machine's previous certificate %s from the app (Entra ID may accept it for a few more minutes).", thumb)
		}
		if err := m.removeAccount(account); err != nil {
			return err
		}
		m.previous = nil
		if err := clearTokenCache(ctx, m.deps.Store, m.tenant, m.app.AppID, thumb); err != nil {
			m.warn("tokens cached with the previous certificate %s were not removed: %v", thumb, err)
		}
		return nil
	})
}

// takeOffApp removes this machine's certificate b from the app: through removeKey when a
// certificate of this machine can sign the proof (b itself while it is valid: the key the
// app has trusted longest; else the current one), else by a PATCH from a fresh read that
// shows the current certificate (a stale one would drop it). It reports whether the app
// listed b.
func (m *migration) takeOffApp(ctx context.Context, b *certs.Bundle) (bool, error) {
	thumb := certs.Thumbprint(b.Cert)
	key := findKey(m.appKeys, thumb)
	if key == nil {
		app, err := m.graph.GetApplication(ctx, m.app.ID)
		if err != nil {
			return false, graphFailure(err, hintCreateAdmin, "read the provisioner app's certificates")
		}
		m.appKeys = app.KeyCredentials
		if key = findKey(m.appKeys, thumb); key == nil {
			return false, nil
		}
	}
	if signer := m.proofSigner(b, m.current); signer != nil {
		return true, m.rollOff(ctx, key.KeyID, thumb, signer)
	}
	if cur := m.current; cur != nil {
		m.uploaded = appendUnique(m.uploaded, certs.Thumbprint(cur.Cert))
	}
	keys, err := m.consistentKeys(ctx, m.appKeys)
	if err != nil || !hasKey(keys, thumb) {
		return false, err
	}
	return true, m.patchKeys(ctx, withoutKey(keys, thumb), "remove this machine's previous certificate "+thumb+" from the provisioner app")
}

func appendUnique(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, s)
}

// noKeyringHint is the hint of a first migration (no certificate recorded) that found no
// Secret Service: with a usable TPM, -key-store tpm-file, which needs none; without one,
// the honest options. Never a throw-away keyring: its key would be gone when it exits,
// while the certificate stays valid on the app for a year. "" keeps the keyring's own
// hint (a locked keyring, a later run: the recorded store is not switched silently).
func (m *migration) noKeyringHint(ctx context.Context, err error) string {
	var unavailable *keystore.UnavailableError
	if m.inFiles() || !errors.As(err, &unavailable) || !unavailable.NotReachable() {
		return ""
	}
	switch m.recordedKeyStore() {
	case "":
	case KeyStoreKeyring, KeyStoreTPM:
		// The certificate is recorded in the keyring: that is where it is read, so the
		// fix is the keyring, not a suggestion to move (which is a purge and a migration).
		return "this machine's certificate is recorded in the keyring: start its Secret Service (log in to a desktop session, or have your systemd user session run gnome-keyring-daemon; `loginctl enable-linger` keeps it for cron and timers); " +
			"to keep the key without a keyring, move it with `entraclaw-rollback -purge-cert`, then `entraclaw-migrate -key-store tpm-file` (a TPM); for CI, workload identity federation needs no stored key"
	default:
		return ""
	}
	if tpmErr := tpmkey.Check(ctx, ""); tpmErr == nil {
		return "this machine has a usable TPM: `entraclaw-migrate -key-store tpm-file` keeps the key in the TPM and its wrapped form in a private file of yours, with no Secret Service (see docs/operator-guide.md, Servers, cron and systemd)"
	}
	return "there is no Secret Service and no usable TPM here; either use a machine with a TPM (`entraclaw-migrate -key-store tpm-file`, no Secret Service needed), " +
		"or start a Secret Service in your systemd user session (gnome-keyring-daemon unlocked at login, `loginctl enable-linger` for timers), " +
		"or, for CI, sign in with workload identity federation instead of keeping a key"
}
