package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/machinecert"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// RerunCommand is how to return to certificate authentication after a rollback.
const RerunCommand = "entraclaw-migrate && entraclaw-verify -wait 2m"

// rollbackSecretName prefixes the display name of the client secrets Rollback adds.
const rollbackSecretName = "entraclaw rollback"

// RollbackConfig is the input of Rollback.
type RollbackConfig struct {
	// StatePath is the state file to roll back.
	StatePath string
	// Backup is the backup to restore when the state file is missing or corrupt, or
	// lacks the tenant or app; "" means the newest trusted backup (see Rollback).
	Backup string
	// TenantID and ClientID override the state file's TENANT_ID and PROVISIONER_CLIENT_ID.
	TenantID, ClientID string
	Cloud              entra.Cloud
	KeyringService     string
	OperatorAuth       string
	// SecretLifetime is how long the new client secret is valid (DefaultSecretLifetime when 0).
	SecretLifetime time.Duration
	// PurgeCert deletes this machine's certificates from the keyring.
	PurgeCert bool
	// RemoveAppCert removes this machine's certificate from the app.
	RemoveAppCert bool
	Progress      io.Writer
	// Warn receives each warning as one line for people, without a prefix; nil writes
	// it to Progress as "warning: …".
	Warn func(string)
	Now  func() time.Time
}

// RollbackSummary is what Rollback did. It never holds the secret.
type RollbackSummary struct {
	TenantID    string `json:"tenantId"`
	ClientID    string `json:"clientId"`
	AppObjectID string `json:"appObjectId"`
	// Backup is the copy of the state file made before the rollback changed it.
	Backup string `json:"backup,omitempty"`
	// RestoredFrom is the backup whose keys were restored ("" when none was needed).
	RestoredFrom        string `json:"restoredFrom,omitempty"`
	SecretKeyID         string `json:"secretKeyId"`
	SecretExpires       string `json:"secretExpires"`
	ReplacedSecretKeyID string `json:"replacedSecretKeyId,omitempty"`
	CertPurged          bool   `json:"certPurged"`
	AppCertRemoved      bool   `json:"appCertRemoved"`
	RemovedThumbprint   string `json:"removedThumbprint,omitempty"`
	// RemovedThumbprints lists every certificate of this machine removed from the app:
	// the current one, a pending rotation's and a replaced one still on it.
	RemovedThumbprints []string `json:"removedThumbprints,omitempty"`
	RerunCommand       string   `json:"rerunCommand"`
	Actions            []string `json:"actions"`
	Warnings           []string `json:"warnings"`
}

// rollback is one run of Rollback.
type rollback struct {
	run
	cfg  RollbackConfig
	deps Deps
	sum  *RollbackSummary

	doc          *state.Doc // the state file to write: the current one, or a backup when it is broken
	current      bool       // doc is the current state file (else a restored backup)
	oldSecret    string     // the PROVISIONER_CLIENT_SECRET the current file holds, "" when none
	tenant       string
	graph        *entra.Graph
	app          *entra.Application
	machineCert  *certs.Bundle   // this machine's current certificate
	pendingCerts []*certs.Bundle // its .next and .previous certificates, proven to be its own
	secret       *entra.PasswordCredential
	replaceables []entra.PasswordCredential // earlier rollback secrets the new one replaces
}

// Rollback returns the provisioner app to secret authentication in an emergency.
// It reads everything first (the state file, a backup when the file is broken,
// the app); then backs up the current file, adds a short-lived client secret to
// the app, and writes it to the state file as PROVISIONER_CLIENT_SECRET, keeping
// every other key of the current file (a backup is read only to repair a missing
// or corrupt file, or one without the tenant or app). The rollback secret that
// the file held before (a repeated rollback) is removed from the app, so none is
// left valid in no file. Optionally it deletes this machine's certificate from
// the app and the keyring.
//
// The backup used is -backup, else the newest one that a planted or foreign file
// cannot win: a regular file owned by this user, readable by nobody else, that
// parses, and names the same tenant and app as the current file; those in the
// per-user directory before those that earlier versions left next to the file.
func Rollback(ctx context.Context, cfg RollbackConfig, deps Deps) (*RollbackSummary, error) {
	if cfg.StatePath == "" {
		return nil, errors.New("rollback: no state file path")
	}
	if deps.Store == nil || deps.OperatorCredential == nil {
		return nil, errors.New("rollback: missing keyring or credential dependencies")
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SecretLifetime <= 0 {
		cfg.SecretLifetime = DefaultSecretLifetime
	}
	if cfg.OperatorAuth == "" {
		cfg.OperatorAuth = OperatorAzureCLI
	}
	sum := &RollbackSummary{RerunCommand: RerunCommand, Actions: []string{}, Warnings: []string{}}
	r := &rollback{cfg: cfg, deps: deps, sum: sum}
	r.run = run{out: cfg.Progress, warnTo: cfg.Warn, actions: &sum.Actions, warnings: &sum.Warnings,
		finish: func([]string) string {
			return "run `entraclaw-rollback` again: it reads the state file afresh (a secret it added but did not write is replaced)"
		}}

	unlock, err := lockRun(ctx, cfg.StatePath, "entraclaw-migrate or entraclaw-rollback", r.out)
	if err != nil {
		return nil, err
	}
	defer unlock()

	steps := []step{
		{"back up the state file", r.backUp},
		{"add a client secret to the app", r.addSecret},
		{"write the state file", r.writeState},
		{"remove the replaced rollback secret", r.removeReplacedSecret},
		{"remove the certificate", r.removeCertificate},
	}
	if err := r.preflight(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, r.interrupted(stepNames(steps))
		}
		return nil, err
	}
	if err := r.runSteps(ctx, steps); err != nil {
		return nil, err
	}
	r.warn("ROLLED BACK TO SECRET AUTH: PROVISIONER_CLIENT_SECRET is back in %s in plain text", cfg.StatePath)
	r.warn("the secret expires at %s; re-run the migration before then: %s", sum.SecretExpires, RerunCommand)
	return sum, nil
}

// ---- preflight: everything that can fail is read before the first change ----

func (r *rollback) preflight(ctx context.Context) error {
	if err := checkDirWritable(filepath.Dir(r.cfg.StatePath)); err != nil {
		return err
	}
	if err := r.readState(); err != nil {
		return err
	}
	tenant, client := r.cfg.TenantID, r.cfg.ClientID
	if tenant == "" {
		tenant, _, _ = r.doc.String(state.KeyTenantID)
	}
	if client == "" {
		client, _, _ = r.doc.String(state.KeyClientID)
	}
	if client == "" {
		return &Error{code: exitNotSetUp, msg: fmt.Sprintf("%s has no PROVISIONER_CLIENT_ID: there is no provisioner app to roll back", r.cfg.StatePath),
			hint: "pass -client-id, or -backup with a backup that has it"}
	}
	if r.cfg.PurgeCert {
		if err := r.deps.Store.Probe(); err != nil {
			return wrapf(err, "", "keyring preflight")
		}
	}
	op, err := signIn(ctx, r.cfg.Cloud, r.cfg.OperatorAuth, tenant, r.cfg.StatePath, r.deps)
	if err != nil {
		return err
	}
	r.tenant, r.graph = op.tenant, op.graph
	r.sum.TenantID, r.sum.ClientID = r.tenant, client
	if r.app, err = r.graph.FindApplicationByAppID(ctx, client); err != nil {
		return graphFailure(err, hintCreateAdmin, "look up the provisioner app %s", client)
	}
	if r.app == nil {
		return failf("check -client-id, -tenant-id and the backup", "no application with client id %s in tenant %s", client, r.tenant)
	}
	r.sum.AppObjectID = r.app.ID
	lack, err := lacksChangeRight(ctx, r.graph, op.rights, r.app, "adding a client secret to the app")
	if err != nil {
		return err
	}
	if lack != "" {
		return rightsError(op.rights, r.cfg.OperatorAuth, []string{lack})
	}
	if r.oldSecret != "" {
		app, err := r.graph.GetApplication(ctx, r.app.ID)
		if err != nil {
			return graphFailure(err, hintCreateAdmin, "read the provisioner app's client secrets")
		}
		for _, pw := range app.PasswordCredentials {
			if strings.HasPrefix(pw.DisplayName, rollbackSecretName) && pw.Hint != "" && strings.HasPrefix(r.oldSecret, pw.Hint) {
				r.replaceables = append(r.replaceables, pw)
			}
		}
	}
	if r.cfg.RemoveAppCert {
		return r.readMachineCerts(ctx)
	}
	return nil
}

// readMachineCerts reads the certificates -remove-app-cert takes off the app: the
// current one and, during a rotation, <tenant>.next and <tenant>.previous (each still a
// working credential while it is on the app). A .next or .previous is taken only when
// its key signs for its certificate, and a .previous only when it is the certificate
// this machine's rotation replaced: a planted item must not make rollback remove
// another machine's certificate.
func (r *rollback) readMachineCerts(ctx context.Context) error {
	b, err := machinecert.Read(r.deps.Store, r.tenant)
	switch {
	case machinecert.Is(err, machinecert.Missing):
		r.warn("-remove-app-cert: no certificate for tenant %s in the %s, so none is removed from the app", r.tenant, r.deps.Store.BackendName())
	case err != nil:
		return wrapf(err, "", "read this machine's certificate")
	default:
		r.machineCert = b
	}
	rec, _ := state.LoadRenewal(r.cfg.StatePath)
	for _, suffix := range []string{NextAccountSuffix, PreviousAccountSuffix} {
		account := r.tenant + suffix
		b, err := machinecert.Read(r.deps.Store, account)
		if machinecert.Is(err, machinecert.Missing) {
			continue
		}
		if err == nil {
			err = entra.ProvePossession(ctx, b)
		}
		if err == nil && suffix == PreviousAccountSuffix && (rec == nil || !strings.EqualFold(rec.Replaced, certs.Thumbprint(b.Cert))) {
			err = errors.New("it is not the certificate this machine's rotation replaced")
		}
		if err != nil {
			if !machinecert.Is(err, machinecert.Corrupt) { // machinecert's wording names the item
				err = fmt.Errorf("keyring item service=%q account=%s: %w", r.cfg.KeyringService, account, err)
			}
			r.warn("-remove-app-cert: %v; it is left out", err)
			continue
		}
		r.pendingCerts = append(r.pendingCerts, b)
	}
	return nil
}

// readState reads the current state file and, when it is missing or broken or
// lacks the tenant or app, the backup that repairs it.
func (r *rollback) readState() error {
	doc, loadErr := state.Load(r.cfg.StatePath)
	switch {
	case loadErr == nil:
		r.doc, r.current = doc, true
		r.oldSecret, _, _ = doc.String(state.KeyClientSecret)
		tenant, _, _ := doc.String(state.KeyTenantID)
		client, _, _ := doc.String(state.KeyClientID)
		if r.cfg.Backup == "" && (tenant != "" || r.cfg.TenantID != "") && (client != "" || r.cfg.ClientID != "") {
			return nil // nothing to restore
		}
	case errors.Is(loadErr, state.ErrNotFound), errors.Is(loadErr, state.ErrCorrupt):
	default:
		return loadErr
	}

	source, backup, err := r.chooseBackup()
	if err != nil {
		return err
	}
	if backup == nil {
		if r.doc != nil {
			return nil // the current file, as it is: preflight says what it lacks
		}
		if errors.Is(loadErr, state.ErrNotFound) {
			return &Error{code: exitNotSetUp, msg: fmt.Sprintf("nothing to roll back: neither %s nor a usable backup of it exists", r.cfg.StatePath),
				hint: "pass -state-file, or -backup with the backup to restore"}
		}
		return wrapf(loadErr, "there is no backup to restore either: pass -backup with a good one", "")
	}
	r.sum.RestoredFrom = source
	if r.doc == nil {
		r.doc = backup
		r.warn("%s is missing or corrupt: restoring it from %s", r.cfg.StatePath, source)
		return nil
	}
	for _, key := range []string{state.KeyTenantID, state.KeyClientID} {
		if v, ok, _ := backup.String(key); ok && !r.doc.Has(key) {
			r.doc.Set(key, v)
		}
	}
	return nil
}

// chooseBackup returns the backup to restore and its content: cfg.Backup as
// given, else the newest trusted one (nil when there is none). Every backup it
// passes over is a warning that says why.
func (r *rollback) chooseBackup() (string, *state.Doc, error) {
	if r.cfg.Backup != "" {
		// A device or a FIFO (-backup /dev/zero) is a bad argument; state.Load reads
		// regular files only, through a size limit.
		if info, err := os.Stat(r.cfg.Backup); err == nil && !info.Mode().IsRegular() {
			return "", nil, &Error{code: exitUsage, msg: fmt.Sprintf("-backup %s is not a regular file", r.cfg.Backup), hint: "pass -backup with a backup of the state file"}
		}
		doc, err := state.Load(r.cfg.Backup)
		if errors.Is(err, state.ErrNotFound) {
			return "", nil, failf("pass -backup with an existing file", "backup %s does not exist", r.cfg.Backup)
		}
		if err != nil {
			return "", nil, wrapf(err, "pass -backup with a good backup", "%s is not a usable state file", r.cfg.Backup)
		}
		return r.cfg.Backup, doc, nil
	}
	backups, err := state.Backups(r.cfg.StatePath)
	if err != nil {
		return "", nil, err
	}
	// The per-user directory's backups first: only this tool writes there. Those
	// that earlier versions left next to the state file, in the work tree, after.
	slices.SortStableFunc(backups, func(a, b string) int {
		la, lb := state.IsLegacyBackup(r.cfg.StatePath, a), state.IsLegacyBackup(r.cfg.StatePath, b)
		switch {
		case la == lb:
			return 0
		case lb:
			return -1
		}
		return 1
	})
	for _, b := range backups {
		doc, why := r.trust(b)
		if why == "" {
			return b, doc, nil
		}
		r.warn("not restoring %s: %s (pass -backup to use it anyway)", b, why)
	}
	return "", nil, nil
}

// trust reads a backup and says why it must not be restored ("" when it may).
func (r *rollback) trust(path string) (*state.Doc, string) {
	info, err := os.Lstat(path)
	switch {
	case err != nil:
		return nil, err.Error()
	case !info.Mode().IsRegular():
		return nil, "not a regular file"
	case !state.OwnedByMe(info):
		return nil, "it belongs to another user"
	case !state.PrivateMode(info):
		return nil, fmt.Sprintf("mode %#o: others can read or write it (a backup is 0600)", info.Mode().Perm())
	}
	doc, err := state.Load(path)
	if err != nil {
		return nil, "it is not a valid state file"
	}
	if _, ok, _ := doc.String(state.KeyClientID); !ok {
		return nil, "it has no PROVISIONER_CLIENT_ID"
	}
	if r.doc == nil {
		// No readable state file to compare with: only a backup of this machine's
		// tenant (named by -tenant-id, else holding a certificate in this keyring).
		tenant, _, _ := doc.String(state.KeyTenantID)
		switch {
		case r.cfg.TenantID != "" && !strings.EqualFold(tenant, r.cfg.TenantID):
			return nil, fmt.Sprintf("its TENANT_ID %s is not -tenant-id %s", tenant, r.cfg.TenantID)
		case r.cfg.TenantID == "" && !r.keyringHolds(tenant):
			return nil, fmt.Sprintf("the state file is unreadable and this machine's keyring holds no certificate of its TENANT_ID %q", tenant)
		}
	}
	if r.doc != nil {
		for _, key := range []string{state.KeyTenantID, state.KeyClientID} {
			want, ok, _ := r.doc.String(key)
			got, _, _ := doc.String(key)
			if ok && want != "" && got != want {
				return nil, fmt.Sprintf("its %s %s is not the state file's %s", key, got, want)
			}
		}
	}
	return doc, ""
}

// keyringHolds reports whether this machine's keyring holds a certificate of tenant.
func (r *rollback) keyringHolds(tenant string) bool {
	if tenant == "" {
		return false
	}
	ok, err := r.deps.Store.HasBundle(tenant)
	return err == nil && ok
}

// ---- the changes ----

func (r *rollback) backUp(context.Context) error {
	if _, err := os.Lstat(r.cfg.StatePath); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return r.change("back up "+r.cfg.StatePath, func() error {
		backup, err := state.Backup(r.cfg.StatePath, r.cfg.Now())
		if err != nil {
			return wrapf(err, "", "back up the state file before the rollback")
		}
		r.sum.Backup = backup
		r.say("Backed up %s to %s.", r.cfg.StatePath, backup)
		return nil
	})
}

// addSecret comes first among the changes to the app: it must stay usable whatever fails later.
func (r *rollback) addSecret(ctx context.Context) error {
	now := r.cfg.Now()
	end := now.Add(r.cfg.SecretLifetime)
	return r.change("add a client secret to the app", func() error {
		name := rollbackSecretName + " " + now.UTC().Format(time.RFC3339)
		if host, err := os.Hostname(); err == nil && host != "" {
			name = rollbackSecretName + " (" + host + ") " + now.UTC().Format(time.RFC3339)
		}
		pw, err := r.graph.AddPassword(ctx, r.app.ID, name, end)
		if err != nil {
			r.removeUnanswered(name)
			return graphFailure(err, hintCreateAdmin, "add a client secret to the provisioner app")
		}
		r.secret = pw
		r.sum.SecretKeyID = pw.KeyID
		r.sum.SecretExpires = end.UTC().Format(time.RFC3339)
		if expires := pw.End(); !expires.IsZero() {
			r.sum.SecretExpires = expires.UTC().Format(time.RFC3339)
		}
		return nil
	})
}

// removeUnanswered removes a secret named name that an addPassword whose answer was
// lost (a 5xx or a reset after Graph applied it) may have left on the app: its text
// never reached us, so it would stay valid in no file. Best effort.
func (r *rollback) removeUnanswered(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app, err := r.graph.GetApplication(ctx, r.app.ID)
	if err != nil {
		return
	}
	for _, pw := range app.PasswordCredentials {
		if pw.DisplayName == name && r.graph.RemovePassword(ctx, r.app.ID, pw.KeyID) == nil {
			r.say("Removed client secret %s: it was added, but its text never arrived.", pw.KeyID)
		}
	}
}

// writeState sets PROVISIONER_CLIENT_SECRET (and what a restore must bring back)
// in one atomic write. A current file is updated under its lock, so keys other
// tools wrote meanwhile stay; a broken one is replaced by the restored backup.
func (r *rollback) writeState(context.Context) error {
	pw := r.secret
	lost := fmt.Sprintf("the new client secret %s is on the app but not in the state file: remove it (az ad app credential delete --id %s --key-id %s) and run entraclaw-rollback again", pw.KeyID, r.sum.ClientID, pw.KeyID)
	own := func(d *state.Doc) {
		for _, key := range []string{state.KeyTenantID, state.KeyClientID} {
			if v, ok, _ := r.doc.String(key); ok && !d.Has(key) {
				d.Set(key, v)
			}
		}
		d.Set(state.KeyClientSecret, pw.SecretText.Reveal())
		if r.cfg.PurgeCert {
			d.Delete(state.KeyThumbprint) // the certificate it names is being deleted
			d.Delete(state.KeyKeyStore)   // and with it the store's record: the next migrate may choose again
		}
	}
	return r.change("write PROVISIONER_CLIENT_SECRET to "+r.cfg.StatePath, func() error {
		var err error
		if r.current {
			_, err = state.Update(r.cfg.StatePath, false, func(d *state.Doc) error { own(d); return nil })
		} else {
			own(r.doc)
			err = state.WriteFile(r.cfg.StatePath, r.doc.Marshal())
		}
		if err != nil {
			return wrapf(err, lost, "write PROVISIONER_CLIENT_SECRET to %s", r.cfg.StatePath)
		}
		if r.sum.RestoredFrom != "" {
			r.say("Restored %s from %s.", r.cfg.StatePath, r.sum.RestoredFrom)
		}
		r.say("Added client secret %s to the Provisioner app and wrote it to %s as PROVISIONER_CLIENT_SECRET.", pw.KeyID, r.cfg.StatePath)
		return nil
	})
}

// removeReplacedSecret removes the rollback secret the state file held before:
// it is in no file any more, and must not stay valid on the app.
func (r *rollback) removeReplacedSecret(ctx context.Context) error {
	for _, pw := range r.replaceables {
		if pw.KeyID == r.secret.KeyID {
			continue
		}
		err := r.change(fmt.Sprintf("remove the replaced rollback secret %s from the app", pw.KeyID), func() error {
			if err := r.graph.RemovePassword(ctx, r.app.ID, pw.KeyID); err != nil {
				return graphFailure(err, hintCreateAdmin, "remove the replaced rollback secret %s (the state file holds the new one already)", pw.KeyID)
			}
			r.sum.ReplacedSecretKeyID = pw.KeyID
			r.say("Removed the rollback secret %s that the state file held before from the Provisioner app.", pw.KeyID)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *rollback) removeCertificate(ctx context.Context) error {
	defer r.clearTokenCache(ctx)
	if err := r.removeMachineCerts(ctx); err != nil {
		return err
	}
	if !r.cfg.PurgeCert {
		return nil
	}
	backend := r.deps.Store.BackendName()
	return r.change("delete this machine's certificates from the "+backend, func() error {
		purged := false
		for _, account := range []string{r.tenant, r.tenant + NextAccountSuffix, r.tenant + PreviousAccountSuffix} {
			err := r.deps.Store.DeleteBundle(account)
			switch {
			case err == nil:
				purged = true
			case !errors.Is(err, keystore.ErrNotFound):
				return wrapf(err, "", "delete keyring account %s", account)
			}
		}
		r.sum.CertPurged = purged
		if purged {
			r.say("Deleted this machine's certificate from the %s (service='%s', account=%s).", backend, r.cfg.KeyringService, r.tenant)
		} else {
			r.warn("-purge-cert: the %s held no certificate for tenant %s", backend, r.tenant)
		}
		return nil
	})
}

// removeMachineCerts takes every certificate this machine holds off the app, in one
// PATCH from a fresh read.
func (r *rollback) removeMachineCerts(ctx context.Context) error {
	var held []*certs.Bundle
	var thumbs []string
	for _, b := range append([]*certs.Bundle{r.machineCert}, r.pendingCerts...) {
		if b != nil && !slices.Contains(thumbs, certs.Thumbprint(b.Cert)) {
			held, thumbs = append(held, b), append(thumbs, certs.Thumbprint(b.Cert))
		}
	}
	if len(held) == 0 {
		return nil
	}
	return r.change("remove certificate(s) "+strings.Join(thumbs, ", ")+" from the app", func() error {
		removed, err := r.takeOffApp(ctx, held)
		if err != nil {
			return err
		}
		if len(removed) == 0 {
			return nil
		}
		r.sum.AppCertRemoved, r.sum.RemovedThumbprints = true, removed
		if r.machineCert != nil && removed[0] == certs.Thumbprint(r.machineCert.Cert) {
			r.sum.RemovedThumbprint = removed[0]
		}
		if len(removed) == 1 {
			r.say("Removed this machine's certificate %s from the Provisioner app.", removed[0])
		} else {
			r.say("Removed this machine's certificates %s from the Provisioner app.", strings.Join(removed, ", "))
		}
		return nil
	})
}

// takeOffApp removes the certificates held from the app and returns those it removed (in
// order). Each still valid one goes through removeKey, proved by its own key, which
// changes that key alone: another machine adding its certificate meanwhile keeps it. The
// rest (expired, or refused) go in one PATCH from the fresh read.
func (r *rollback) takeOffApp(ctx context.Context, held []*certs.Bundle) ([]string, error) {
	fresh, err := r.graph.GetApplication(ctx, r.app.ID)
	if err != nil {
		return nil, graphFailure(err, hintCreateAdmin, "read the provisioner app's certificates")
	}
	keys := fresh.KeyCredentials
	now := time.Now()
	var removed, patched []string
	for _, b := range held {
		thumb := certs.Thumbprint(b.Cert)
		key := findKey(keys, thumb)
		if key == nil {
			r.warn("-remove-app-cert: certificate %s is not on the app", thumb)
			continue
		}
		removed = append(removed, thumb)
		valid := !certs.Expired(b.Cert, now) && !now.Before(b.Cert.NotBefore)
		if !valid || removeKeyWithProof(ctx, r.graph, r.app.ID, key.KeyID, b, now) != nil {
			patched = append(patched, thumb)
		}
	}
	if len(patched) > 0 {
		rest := keys
		for _, thumb := range removed {
			rest = withoutKey(rest, thumb)
		}
		if err := r.graph.SetKeyCredentials(ctx, r.app.ID, rest); err != nil {
			return nil, graphFailure(err, hintCreateAdmin, "remove certificate(s) %s from the provisioner app", strings.Join(patched, ", "))
		}
	}
	return removed, nil
}
