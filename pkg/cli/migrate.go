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

// RunMigrate is entraclaw-migrate.
func RunMigrate(ctx context.Context, args []string, stdio Stdio) error {
	fs, c := NewFlagSet("entraclaw-migrate", migrateSummary, stdio)
	fs.Lookup("state-file").Usage = migrateStateFileUsage
	rotate := fs.Bool("rotate", false, "replace this machine's certificate even if it is still valid")
	renewBefore := fs.Duration("renew-before", provision.DefaultRenewBefore, "replace the certificate when it expires within this time")
	certLifetime := days(provision.DefaultCertLifetime)
	fs.Var(&certLifetime, "cert-lifetime", "lifetime of a new certificate, in days (180d) or as a duration; lower it when the tenant's app-management policy caps certificate lifetime")
	keyStore := fs.String("key-store", "", "the `store` of a new private key: keyring; tpm (created in this machine's TPM and never leaves it; the keyring item then holds only the certificate and the TPM's wrapped key); or tpm-file (the same, kept in a private file of the per-user state directory: no Secret Service needed, for servers and cron). The state file records the choice and every binary uses it. Default: the recorded store, keyring for the first; keyring <-> tpm rotates the key, to or from tpm-file needs `entraclaw-rollback -purge-cert` first")
	dryRun := fs.Bool("dry-run", false, "read everything and print the plan; change nothing")
	adopt := fs.Bool("adopt", false, "with no state file found, take over the existing app named \""+entra.ProvisionerDisplayName+"\" into a new ./.entraclaw-state.json (otherwise refused: its real state file may be elsewhere)")
	propagation := fs.Duration("propagation-timeout", provision.DefaultPropagationTimeout, "how long to wait for Entra ID to accept the new certificate and roles")
	operatorAuth := fs.String("operator-auth", entra.OperatorAzureCLI, "`kind` of operator that changes the app: azcli (az login), device-code, or provisioner (the app's own certificate)")
	renew := fs.Bool("renew", false, "renew this machine's certificate if it is due (at 2/3 of its lifetime, ±5% by thumbprint; -renew-before overrides), as the provisioner itself through addKey/removeKey: unattended, no operator; not due sends nothing (command line only)")
	schedule := fs.String("schedule", "", "`action` install, uninstall or print: the daily job (systemd user timer, launchd agent, Task Scheduler task) that runs -renew for this state file (command line only)")
	var prune days
	fs.Var(&prune, "prune-expired", "remove certificates of other machines from the app that expired more than this `age` ago (30d); -dry-run lists them (command line only)")
	fed := registerFederationFlags(fs)
	if err := c.Parse(fs, args); err != nil {
		return err
	}
	federations, err := fed.parse(*operatorAuth)
	if err != nil {
		return err
	}
	if *schedule != "" {
		return runSchedule(ctx, *schedule, c, stdio)
	}
	if err := DurationFlag("renew-before", *renewBefore, false); err != nil {
		return err
	}
	if err := DurationFlag("propagation-timeout", *propagation, false); err != nil {
		return err
	}
	if time.Duration(certLifetime) > provision.MaxCertLifetime {
		return UsageError("-cert-lifetime %s is longer than 365 days: Entra ID refuses a certificate credential that ends more than a year after it starts", certLifetime.String())
	}
	if time.Duration(certLifetime) <= *renewBefore {
		return UsageError("-cert-lifetime %s must be longer than -renew-before %s (every run would rotate)", certLifetime.String(), renewBefore.String())
	}
	if err := provision.CheckKeyStoreName(*keyStore); err != nil {
		return UsageError("%v", err)
	}
	if *renew {
		if c.IsSet("operator-auth") && *operatorAuth != entra.OperatorProvisioner {
			return UsageError("-renew signs in as the provisioner itself; it does not take -operator-auth %s", *operatorAuth)
		}
		if *rotate || *adopt || prune != 0 || len(federations)+len(fed.unfederate) > 0 {
			return UsageError("-renew does not combine with -rotate, -adopt, -prune-expired or -federate")
		}
		*operatorAuth = entra.OperatorProvisioner
	}
	env, deps, err := provisionSetup(c, StateOptional, *operatorAuth, stdio)
	if err != nil {
		return err
	}
	if *keyStore != "" && !*renew {
		// The store named for this run: a first migration keeps its items there; one that
		// would move a recorded certificate to the other store is refused by the preflight.
		// -renew stays in the recorded store.
		if err := env.UseKeyStore(*keyStore); err != nil {
			return err
		}
	}
	env.Store = env.Store.WithContext(ctx) // keyring waits end at Ctrl-C
	deps.Store = env.Store
	run := provision.Migrate
	if *renew {
		run = provision.Renew
	}
	sum, err := run(ctx, provision.Config{
		StatePath:          env.StatePath,
		StateFileNamed:     c.StateFile != "",
		StateSearchDir:     workingDir(),
		Adopt:              *adopt,
		TenantID:           c.TenantID,
		ClientID:           c.ClientID,
		Cloud:              env.Cloud,
		KeyringService:     env.KeyringService,
		OperatorAuth:       *operatorAuth,
		Rotate:             *rotate,
		RenewBefore:        *renewBefore,
		RenewBeforeSet:     c.IsSet("renew-before"),
		PruneExpired:       time.Duration(prune),
		Federate:           federations,
		Unfederate:         fed.unfederate,
		CertLifetime:       time.Duration(certLifetime),
		KeyStore:           *keyStore,
		PropagationTimeout: *propagation,
		DryRun:             *dryRun,
		Progress:           stdio.Err,
		Warn:               warnLine(stdio, "entraclaw-migrate"),
		Status:             NewStatusLine(stdio.Err, stdio.ErrTTY, "entraclaw-migrate"),
	}, deps)
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
