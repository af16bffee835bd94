package cli

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/provision"
)

const rollbackSummary = `entraclaw-rollback is the emergency return to secret authentication. It backs up the state
file, adds a short-lived client secret to the provisioner app and writes it to the state file as
PROVISIONER_CLIENT_SECRET, in plain text, keeping every other key. A state file that is missing
or corrupt is restored from the newest backup this user made (or -backup). A secret that an
earlier rollback wrote is removed from the app. -purge-cert deletes this machine's certificates
from the recorded key store (keyring or TPM-wrapped key files) and the store's record, so the
next entraclaw-migrate may choose another; -remove-app-cert removes its certificate from the app.

Return to certificate authentication as soon as possible:

    entraclaw-migrate && entraclaw-verify -wait 2m`

// rollbackConfirmation is what the operator types to go ahead.
const rollbackConfirmation = "rollback"

// RunRollback is entraclaw-rollback.
func RunRollback(ctx context.Context, args []string, stdio Stdio) error {
	o, c, err := parseRollback(args, stdio)
	if err != nil {
		return err
	}
	return runRollback(ctx, o, c, stdio)
}

// rollbackOptions are entraclaw-rollback's own flags, parsed and checked.
type rollbackOptions struct {
	backup, operatorAuth          string
	lifetime                      time.Duration
	purgeCert, removeAppCert, yes bool
}

// parseRollback reads and checks the flags (exit 2 for every bad value or combination,
// and for a missing -yes where no terminal can answer), with no keyring and no network.
func parseRollback(args []string, stdio Stdio) (*rollbackOptions, *Common, error) {
	fs, c := NewFlagSet("entraclaw-rollback", rollbackSummary, stdio)
	o := &rollbackOptions{}
	fs.StringVar(&o.backup, "backup", "", "state file backup to restore when the state file is missing or corrupt (default: the newest private backup of this user, same tenant and app)")
	fs.DurationVar(&o.lifetime, "secret-lifetime", provision.DefaultSecretLifetime, "lifetime of the new client secret")
	fs.BoolVar(&o.purgeCert, "purge-cert", false, "also delete this machine's certificates from the key store the state file records (the keyring, or the TPM-wrapped key files)")
	fs.BoolVar(&o.removeAppCert, "remove-app-cert", false, "also remove this machine's certificate from the app")
	fs.BoolVar(&o.yes, "yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	fs.StringVar(&o.operatorAuth, "operator-auth", entra.OperatorAzureCLI, "`kind` of operator that changes the app: azcli (az login), device-code, or provisioner (the app's own certificate)")
	if err := c.Parse(fs, args); err != nil {
		return nil, nil, err
	}
	if err := DurationFlag("secret-lifetime", o.lifetime, false); err != nil {
		return nil, nil, err
	}
	if err := checkOperatorAuth(o.operatorAuth); err != nil {
		return nil, nil, err
	}
	if !o.yes && !stdio.InTTY {
		return nil, nil, &Error{Code: ExitUsage, Msg: "refusing to roll back without -yes when stdin is not a terminal",
			Hint: "add -yes to roll back without the prompt: entraclaw-rollback -yes"}
	}
	return o, c, nil
}

// runRollback asks (without -yes), then rolls back and says what it did.
func runRollback(ctx context.Context, o *rollbackOptions, c *Common, stdio Stdio) error {
	env, deps, err := provisionSetup(c, StateReplaceable, o.operatorAuth, stdio)
	if err != nil {
		return err
	}
	env.Store = env.Store.WithContext(ctx) // keyring waits end at Ctrl-C
	deps.Store = env.Store
	if !o.yes {
		if err := confirmRollback(stdio); err != nil {
			return err
		}
	}
	sum, err := provision.Rollback(ctx, provision.RollbackConfig{
		StatePath:      env.StatePath,
		Backup:         o.backup,
		TenantID:       c.TenantID,
		ClientID:       c.ClientID,
		Cloud:          env.Cloud,
		KeyringService: env.KeyringService,
		OperatorAuth:   o.operatorAuth,
		SecretLifetime: o.lifetime,
		PurgeCert:      o.purgeCert,
		RemoveAppCert:  o.removeAppCert,
		Progress:       stdio.Err,
		Warn:           warnLine(stdio, "entraclaw-rollback"),
	}, deps)
	if err != nil {
		return err
	}
	if c.JSON() {
		return WriteJSON(stdio.Out, sum)
	}
	p := newPainter(stdio)
	fmt.Fprintf(stdio.Err, "%s app %s has client secret %s until %s; it is in %s.\n",
		p.yellow("Rolled back to secret auth:"), sum.ClientID, sum.SecretKeyID, sum.SecretExpires, env.StatePath)
	fmt.Fprintf(stdio.Err, "Return to certificate auth as soon as possible: %s\n", sum.RerunCommand)
	return nil
}

// confirmRollback asks on stderr and reads the answer from stdin.
func confirmRollback(stdio Stdio) error {
	p := newPainter(stdio)
	fmt.Fprintf(stdio.Err, "entraclaw-rollback: %s this puts a client secret for the provisioner app back into the state file in plain text.\n", p.red("warning:"))
	fmt.Fprintf(stdio.Err, "Type '%s' to continue: ", rollbackConfirmation)
	line, err := bufio.NewReader(stdio.In).ReadString('\n')
	if strings.TrimSpace(line) != rollbackConfirmation {
		if err != nil {
			fmt.Fprintln(stdio.Err)
		}
		return Errorf(ExitFailure, "", "rollback cancelled; nothing was changed")
	}
	return nil
}
