package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/provision"
)

const migrateSummary = `entraclaw-migrate moves the "EntraClaw Agent ID Provisioner" app from a client secret to a
self-signed certificate whose private key lives only in the OS keyring:

    find or create the app and its service principal, declare and grant its Graph
    permissions, generate and upload this machine's certificate, record its thumbprint,
    wait until Entra ID issues a token for it with all roles, and only then delete every
    client secret on the app and purge PROVISIONER_CLIENT_SECRET from the state file (a
    backup is kept). A run that stops earlier leaves the secret working.

Before the first change a preflight checks the keyring, the operator's sign-in, tenant and
roles, and the state file; a dry run makes the same checks. Every step checks before it acts,
so running it again is safe and an interrupted run converges. It also renews the certificate
(-renew-before, -rotate); other machines' certificates on the app are never touched. The
operator (-operator-auth) needs an administrator role the first time.`

// migrateOptions are entraclaw-migrate's own flags, parsed and checked.
type migrateOptions struct {
	rotate, dryRun, adopt, renew   bool
	renewBefore, propagation       time.Duration
	certLifetime, prune            days
	keyStore, operatorAuth, action string // action: -schedule's
	federations                    []*provision.Federation
	fed                            *federationFlags
}

// RunMigrate is entraclaw-migrate: parse, then -schedule or the run.
func RunMigrate(ctx context.Context, args []string, stdio Stdio) error {
	o, c, err := parseMigrate(args, stdio)
	if err != nil {
		return err
	}
	if o.action != "" {
		return runSchedule(ctx, o.action, c, stdio)
	}
	return runMigrate(ctx, o, c, stdio)
}

// parseMigrate reads and checks the flags (exit 2 for every bad value or combination),
// with no keyring and no network.
func parseMigrate(args []string, stdio Stdio) (*migrateOptions, *Common, error) {
	fs, c := NewFlagSet("entraclaw-migrate", migrateSummary, stdio)
	fs.Lookup("state-file").Usage = migrateStateFileUsage
	o := &migrateOptions{certLifetime: days(provision.DefaultCertLifetime)}
	fs.BoolVar(&o.rotate, "rotate", false, "replace this machine's certificate even if it is still valid")
	fs.DurationVar(&o.renewBefore, "renew-before", provision.DefaultRenewBefore, "replace the certificate when it expires within this time")
	fs.Var(&o.certLifetime, "cert-lifetime", "lifetime of a new certificate, in days (180d) or as a duration; lower it when the tenant's app-management policy caps certificate lifetime")
	fs.StringVar(&o.keyStore, "key-store", "", "the `store` of a new private key: keyring; tpm (created in this machine's TPM and never leaves it; the keyring item then holds only the certificate and the TPM's wrapped key); or tpm-file (the same, kept in a private file of the per-user state directory: no Secret Service needed, for servers and cron). The state file records the choice and every binary uses it. Default: the recorded store, keyring for the first; keyring <-> tpm rotates the key, to or from tpm-file needs `entraclaw-rollback -purge-cert` first")
	fs.BoolVar(&o.dryRun, "dry-run", false, "read everything and print the plan; change nothing")
	fs.BoolVar(&o.adopt, "adopt", false, "with no state file found, take over the existing app named \""+entra.ProvisionerDisplayName+"\" into a new ./.entraclaw-state.json (otherwise refused: its real state file may be elsewhere)")
	fs.DurationVar(&o.propagation, "propagation-timeout", provision.DefaultPropagationTimeout, "how long to wait for Entra ID to accept the new certificate and roles")
	fs.StringVar(&o.operatorAuth, "operator-auth", entra.OperatorAzureCLI, "`kind` of operator that changes the app: azcli (az login), device-code, or provisioner (the app's own certificate)")
	fs.BoolVar(&o.renew, "renew", false, "renew this machine's certificate if it is due (at 2/3 of its lifetime, ±5% by thumbprint; -renew-before overrides), as the provisioner itself through addKey/removeKey: unattended, no operator; not due sends nothing (command line only)")
	fs.StringVar(&o.action, "schedule", "", "`action` install, uninstall or print: the daily job (systemd user timer, launchd agent, Task Scheduler task) that runs -renew for this state file (command line only)")
	fs.Var(&o.prune, "prune-expired", "remove certificates of other machines from the app that expired more than this `age` ago (30d); -dry-run lists them (command line only)")
	o.fed = registerFederationFlags(fs)
	if err := c.Parse(fs, args); err != nil {
		return nil, nil, err
	}
	if err := o.check(c); err != nil {
		return nil, nil, err
	}
	return o, c, nil
}

// check validates the flags and their combinations (exit 2).
func (o *migrateOptions) check(c *Common) error {
	var err error
	if o.federations, err = o.fed.parse(o.operatorAuth); err != nil {
		return err
	}
	if o.action != "" {
		return nil // -schedule checks its action itself
	}
	if err := DurationFlag("renew-before", o.renewBefore, false); err != nil {
		return err
	}
	if err := DurationFlag("propagation-timeout", o.propagation, false); err != nil {
		return err
	}
	if time.Duration(o.certLifetime) > provision.MaxCertLifetime {
		return UsageError("-cert-lifetime %s is longer than 365 days: Entra ID refuses a certificate credential that ends more than a year after it starts", o.certLifetime.String())
	}
	if time.Duration(o.certLifetime) <= o.renewBefore {
		return UsageError("-cert-lifetime %s must be longer than -renew-before %s (every run would rotate)", o.certLifetime.String(), o.renewBefore.String())
	}
	if err := provision.CheckKeyStoreName(o.keyStore); err != nil {
		return UsageError("%v", err)
	}
	if o.renew {
		if c.IsSet("operator-auth") && o.operatorAuth != entra.OperatorProvisioner {
			return UsageError("-renew signs in as the provisioner itself; it does not take -operator-auth %s", o.operatorAuth)
		}
		if o.rotate || o.adopt || o.prune != 0 || len(o.federations)+len(o.fed.unfederate) > 0 {
			return UsageError("-renew does not combine with -rotate, -adopt, -prune-expired or -federate")
		}
		o.operatorAuth = entra.OperatorProvisioner
	}
	return checkOperatorAuth(o.operatorAuth)
}

// runMigrate wires the keyring and credentials and runs the migration (or the renewal).
func runMigrate(ctx context.Context, o *migrateOptions, c *Common, stdio Stdio) error {
	env, deps, err := provisionSetup(c, StateOptional, o.operatorAuth, stdio)
	if err != nil {
		return err
	}
	if o.keyStore != "" && !o.renew {
		// The store named for this run: a first migration keeps its items there; one that
		// would move a recorded certificate to the other store is refused by the preflight.
		// -renew stays in the recorded store.
		if err := env.UseKeyStore(o.keyStore); err != nil {
			return err
		}
	}
	env.Store = env.Store.WithContext(ctx) // keyring waits end at Ctrl-C
	deps.Store = env.Store
	run := provision.Migrate
	if o.renew {
		run = provision.Renew
	}
	sum, err := run(ctx, o.config(c, env, stdio), deps)
	if sum != nil && c.JSON() {
		if werr := WriteJSON(stdio.Out, sum); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	if !c.JSON() {
		printMigrateSummary(stdio, sum)
	}
	return nil
}

// config is the provision.Config of this run.
func (o *migrateOptions) config(c *Common, env *Env, stdio Stdio) provision.Config {
	return provision.Config{
		StatePath:          env.StatePath,
		StateFileNamed:     c.StateFile != "",
		StateSearchDir:     workingDir(),
		Adopt:              o.adopt,
		TenantID:           c.TenantID,
		ClientID:           c.ClientID,
		Cloud:              env.Cloud,
		KeyringService:     env.KeyringService,
		OperatorAuth:       o.operatorAuth,
		Rotate:             o.rotate,
		RenewBefore:        o.renewBefore,
		RenewBeforeSet:     c.IsSet("renew-before"),
		PruneExpired:       time.Duration(o.prune),
		Federate:           o.federations,
		Unfederate:         o.fed.unfederate,
		CertLifetime:       time.Duration(o.certLifetime),
		KeyStore:           o.keyStore,
		PropagationTimeout: o.propagation,
		DryRun:             o.dryRun,
		Progress:           stdio.Err,
		Warn:               warnLine(stdio, "entraclaw-migrate"),
		Status:             NewStatusLine(stdio.Err, stdio.ErrTTY, "entraclaw-migrate"),
	}
}

func printMigrateSummary(stdio Stdio, sum *provision.Summary) {
	p := newPainter(stdio)
	w := stdio.Err
	switch r := sum.Renewal; {
	case r != nil && !r.Due:
		return // the not-due line says it all
	case r != nil:
		fmt.Fprintf(w, "%s certificate %s is current (expires %s); next renewal due %s; %d Graph request(s), %d of them writes.\n",
			p.green("Renewed:"), sum.Thumbprint, sum.CertNotAfter, r.NextDue, r.GraphRequests, r.GraphWrites)
		return
	case sum.DryRun:
		fmt.Fprintf(w, "%s %d action(s) planned; nothing was changed.\n", p.yellow("Dry run:"), len(sum.Actions))
		return
	case !sum.Changed:
		fmt.Fprintf(w, "%s nothing to do: app %s already uses certificate %s (expires %s) from the %s.\n",
			p.green("Already migrated:"), sum.ClientID, sum.Thumbprint, sum.CertNotAfter, sum.KeyringBackend)
		return
	}
	fmt.Fprintf(w, "%s app %s uses certificate %s (expires %s) from the %s; %d client secret(s) removed.\n",
		p.green("Migration complete:"), sum.ClientID, sum.Thumbprint, sum.CertNotAfter, sum.KeyringBackend, sum.PasswordsRemoved)
	if sum.Propagated {
		fmt.Fprintln(w, "Next: TOKEN=$(entraclaw-provisioner-token) works now; `entraclaw-verify` runs the runbook's checks.")
	} else {
		fmt.Fprintln(w, "Next: `entraclaw-verify -wait 2m` until Entra ID has caught up.")
	}
}

func checkOperatorAuth(kind string) error {
	switch kind {
	case entra.OperatorAzureCLI, entra.OperatorDeviceCode, entra.OperatorProvisioner:
		return nil
	}
	return UsageError("-operator-auth must be %s, %s or %s, not %q", entra.OperatorProvisioner, entra.OperatorAzureCLI, entra.OperatorDeviceCode, kind)
}

// provisionSetup validates -operator-auth, resolves the configuration and wires its keyring and credentials into pkg/provision.
func provisionSetup(c *Common, need StateNeed, operatorAuth string, stdio Stdio) (*Env, provision.Deps, error) {
	if err := checkOperatorAuth(operatorAuth); err != nil {
		return nil, provision.Deps{}, err
	}
	env, err := c.Resolve(need)
	if err != nil {
		return nil, provision.Deps{}, err
	}
	deps, err := provisionDeps(env, operatorAuth, stdio)
	return env, deps, err
}

// provisionDeps wires the keyring and credentials of env into pkg/provision.
func provisionDeps(env *Env, operatorAuth string, stdio Stdio) (provision.Deps, error) {
	deps := provision.Deps{
		Store: env.Store,
		CertCredential: func(tenant, client string, b *certs.Bundle) (azcore.TokenCredential, error) {
			return entra.NewCertificateCredential(env.Cloud, tenant, client, b, entra.CredentialOptions{})
		},
	}
	if operatorAuth != entra.OperatorProvisioner {
		deps.OperatorCredential = func(tenant string) (azcore.TokenCredential, error) {
			return entra.NewOperatorCredential(operatorAuth, env.Cloud, tenant, stdio.Err, entra.CredentialOptions{})
		}
		return deps, nil
	}
	if env.Tenant == "" || env.Client == "" {
		return deps, UsageError("-operator-auth provisioner needs the tenant and client id (TENANT_ID and PROVISIONER_CLIENT_ID in the state file, or -tenant-id and -client-id)")
	}
	bundle, err := env.LoadBundle(time.Now())
	if err != nil {
		code, _, _ := Classify(err)
		return deps, &Error{Code: code, Err: err,
			Hint: "-operator-auth provisioner signs in with this machine's certificate; without a usable one use -operator-auth azcli (or device-code)"}
	}
	deps.OperatorCredential = func(string) (azcore.TokenCredential, error) {
		return env.CertificateCredential(bundle)
	}
	return deps, nil
}
