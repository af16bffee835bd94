package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// RerunCommand is how to return to certificate authentication after a rollback.
const RerunCommand = "entraclaw-migrate && entraclaw-verify -wait 2m"

// RollbackConfig is the input of Rollback.
type RollbackConfig struct {
	// StatePath is the state file to restore.
	StatePath string
	// Backup is the backup to restore; "" means the newest <StatePath>.bak.*.
	Backup string
	// TenantID and ClientID override the restored file's TENANT_ID and PROVISIONER_CLIENT_ID.
	TenantID, ClientID string
	Cloud              entra.Cloud
	KeyringService     string
	OperatorAuth       string
	// SecretLifetime is how long the new client secret is valid (DefaultSecretLifetime when 0).
	SecretLifetime time.Duration
	// PurgeCert deletes this machine's certificate from the keyring.
	PurgeCert bool
	// RemoveAppCert removes this machine's certificate from the app.
	RemoveAppCert bool
	Progress      io.Writer
	Now           func() time.Time
}

// RollbackSummary is what Rollback did. It never holds the secret.
type RollbackSummary struct {
	TenantID          string   `json:"tenantId"`
	ClientID          string   `json:"clientId"`
	AppObjectID       string   `json:"appObjectId"`
	RestoredFrom      string   `json:"restoredFrom"`
	SecretKeyID       string   `json:"secretKeyId"`
	SecretExpires     string   `json:"secretExpires"`
	CertPurged        bool     `json:"certPurged"`
	AppCertRemoved    bool     `json:"appCertRemoved"`
	RemovedThumbprint string   `json:"removedThumbprint,omitempty"`
	RerunCommand      string   `json:"rerunCommand"`
	Actions           []string `json:"actions"`
	Warnings          []string `json:"warnings"`
}

// Rollback returns the provisioner app to secret authentication in an emergency:
// it restores the state file from a backup (validated first, written atomically),
// adds a short-lived client secret to the app and writes it to the state file as
// PROVISIONER_CLIENT_SECRET, and optionally deletes this machine's certificate
// from the keyring and from the app. Everything that can fail is read before
// the first change.
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
	out := cfg.Progress
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	sum := &RollbackSummary{RerunCommand: RerunCommand, Actions: []string{}, Warnings: []string{}}
	warn := func(format string, args ...any) {
		w := fmt.Sprintf(format, args...)
		sum.Warnings = append(sum.Warnings, w)
		say("WARNING: %s", w)
	}

	unlock, err := lockRun(ctx, cfg.StatePath, "entraclaw-migrate or entraclaw-rollback", out)
	if err != nil {
		return nil, err
	}
	defer unlock()

	// Read everything first.
	source, data, err := rollbackSource(cfg)
	if err != nil {
		return nil, err
	}
	sum.RestoredFrom = source
	doc, err := state.Parse(data)
	switch {
	case err != nil && source == cfg.StatePath:
		// No backup, and the state file itself is broken: say what Load would say.
		_, err = state.Load(source)
		return nil, wrapf(err, "there is no backup to restore either: pass -backup with a good one", "")
	case err != nil:
		return nil, wrapf(err, "pass -backup with a good backup", "%s is not a usable state file", source)
	case source == cfg.StatePath:
		warn("no backup of %s found: keeping the state file as it is", cfg.StatePath)
	}
	tenant, client := cfg.TenantID, cfg.ClientID
	if tenant == "" {
		tenant, _, _ = doc.String(state.KeyTenantID)
	}
	if client == "" {
		client, _, _ = doc.String(state.KeyClientID)
	}
	if client == "" {
		return nil, &Error{code: exitNotSetUp, msg: fmt.Sprintf("%s has no PROVISIONER_CLIENT_ID: there is no provisioner app to roll back", source),
			hint: "pass -client-id, or -backup with a backup that has it"}
	}
	if cfg.PurgeCert {
		if err := deps.Store.Probe(); err != nil {
			return nil, wrapf(err, "", "keyring preflight")
		}
	}
	tenant, graph, err := signIn(ctx, cfg.Cloud, cfg.OperatorAuth, tenant, cfg.StatePath, deps)
	if err != nil {
		return nil, err
	}
	sum.TenantID, sum.ClientID = tenant, client
	app, err := graph.FindApplicationByAppID(ctx, client)
	if err != nil {
		return nil, graphFailure(err, hintCreateAdmin, "look up the provisioner app %s", client)
	}
	if app == nil {
		return nil, failf("check -client-id, -tenant-id and the backup", "no application with client id %s in tenant %s", client, tenant)
	}
	sum.AppObjectID = app.ID
	var machineCert *certs.Bundle
	if cfg.RemoveAppCert {
		pem, err := deps.Store.GetBundle(tenant)
		switch {
		case errors.Is(err, keystore.ErrNotFound):
			warn("-remove-app-cert: no certificate for tenant %s in the %s, so none is removed from the app", tenant, deps.Store.BackendName())
		case err != nil:
			return nil, wrapf(err, "", "read this machine's certificate")
		default:
			if machineCert, err = certs.ParseBundle(pem); err != nil {
				return nil, wrapf(err, "", "keyring item service=%q account=%s", cfg.KeyringService, tenant)
			}
		}
	}

	// The secret first: the app must stay usable whatever fails later.
	now := cfg.Now()
	end := now.Add(cfg.SecretLifetime)
	pw, err := graph.AddPassword(ctx, app.ID, "entraclaw rollback "+now.UTC().Format(time.RFC3339), end)
	if err != nil {
		return nil, graphFailure(err, hintCreateAdmin, "add a client secret to the provisioner app")
	}
	sum.SecretKeyID = pw.KeyID
	sum.SecretExpires = end.UTC().Format(time.RFC3339)
	if expires := pw.End(); !expires.IsZero() {
		sum.SecretExpires = expires.UTC().Format(time.RFC3339)
	}
	sum.Actions = append(sum.Actions, fmt.Sprintf("added client secret %s (expires %s) to the app", pw.KeyID, sum.SecretExpires))
	lost := fmt.Sprintf("the new client secret %s is on the app but not in the state file: remove it (az ad app credential delete --id %s --key-id %s) and run entraclaw-rollback again", pw.KeyID, client, pw.KeyID)
	// One atomic write restores the backup and adds the new secret: the file never
	// holds the backup's secret, deleted from the app by the migration, on its own.
	doc.Set(state.KeyClientSecret, pw.SecretText.Reveal())
	if err := state.WriteFile(cfg.StatePath, doc.Marshal()); err != nil {
		if source != cfg.StatePath {
			return nil, wrapf(err, lost, "restore %s from %s with the new PROVISIONER_CLIENT_SECRET", cfg.StatePath, source)
		}
		return nil, wrapf(err, lost, "write PROVISIONER_CLIENT_SECRET")
	}
	if source != cfg.StatePath {
		say("Restored %s from %s.", cfg.StatePath, source)
		sum.Actions = append(sum.Actions, "restored the state file from "+source)
	}
	sum.Actions = append(sum.Actions, "wrote PROVISIONER_CLIENT_SECRET to "+cfg.StatePath)
	say("Added client secret %s to the Provisioner app and wrote it to %s as PROVISIONER_CLIENT_SECRET.", pw.KeyID, cfg.StatePath)

	if machineCert != nil {
		thumb := certs.Thumbprint(machineCert.Cert)
		fresh, err := graph.GetApplication(ctx, app.ID)
		if err != nil {
			return nil, graphFailure(err, hintCreateAdmin, "read the provisioner app's certificates")
		}
		if keys := fresh.KeyCredentials; hasKey(keys, thumb) {
			if err := graph.SetKeyCredentials(ctx, app.ID, withoutKey(keys, thumb)); err != nil {
				return nil, graphFailure(err, hintCreateAdmin, "remove certificate %s from the provisioner app", thumb)
			}
			sum.AppCertRemoved, sum.RemovedThumbprint = true, thumb
			sum.Actions = append(sum.Actions, "removed certificate "+thumb+" from the app")
			say("Removed this machine's certificate %s from the Provisioner app.", thumb)
		} else {
			warn("-remove-app-cert: certificate %s is not on the app", thumb)
		}
	}
	if cfg.PurgeCert {
		purged := false
		for _, account := range []string{tenant, tenant + PreviousAccountSuffix} {
			err := deps.Store.DeleteBundle(account)
			switch {
			case err == nil:
				purged = true
			case !errors.Is(err, keystore.ErrNotFound):
				return nil, wrapf(err, "", "delete keyring account %s", account)
			}
		}
		sum.CertPurged = purged
		if purged {
			sum.Actions = append(sum.Actions, "deleted this machine's certificate from the "+deps.Store.BackendName())
			say("Deleted this machine's certificate from the %s (service='%s', account=%s).", deps.Store.BackendName(), cfg.KeyringService, tenant)
		} else {
			warn("-purge-cert: the %s held no certificate for tenant %s", deps.Store.BackendName(), tenant)
		}
	}

	warn("ROLLED BACK TO SECRET AUTH: PROVISIONER_CLIENT_SECRET is back in %s in plain text", cfg.StatePath)
	warn("the secret expires at %s; re-run the migration before then: %s", sum.SecretExpires, RerunCommand)
	return sum, nil
}

// rollbackSource picks the file to restore and reads it: cfg.Backup, else the
// newest backup, else the state file itself.
func rollbackSource(cfg RollbackConfig) (string, []byte, error) {
	source := cfg.Backup
	if source == "" {
		backups, err := state.Backups(cfg.StatePath)
		if err != nil {
			return "", nil, err
		}
		source = cfg.StatePath
		if len(backups) > 0 {
			source = backups[0]
		}
	}
	data, err := os.ReadFile(source)
	if errors.Is(err, os.ErrNotExist) {
		if source == cfg.StatePath {
			return "", nil, &Error{code: exitNotSetUp, msg: fmt.Sprintf("nothing to roll back: neither %s nor a backup of it exists", cfg.StatePath),
				hint: "pass -state-file, or -backup with the backup to restore"}
		}
		return "", nil, failf("pass -backup with an existing file", "backup %s does not exist", source)
	}
	if err != nil {
		return "", nil, err
	}
	return source, data, nil
}
