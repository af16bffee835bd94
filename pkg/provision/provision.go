// Package provision moves the EntraClaw provisioner app from a client secret to a
// certificate held in the OS keyring (Migrate, which also rotates the certificate),
// and back to a short-lived secret in an emergency (Rollback).
//
// Every step reads the current state of the state file, the keyring and Entra ID
// before it acts, so a run interrupted at any point converges when it is run again.
// Progress lines go to Config.Progress; nothing here ever prints a secret, a
// private key or a token.
package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/exit"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// Defaults of the Config durations.
const (
	DefaultRenewBefore        = 720 * time.Hour
	DefaultPropagationTimeout = 3 * time.Minute
	DefaultReplicationWait    = 30 * time.Second
	DefaultSecretLifetime     = 24 * time.Hour
	DefaultCertLifetime       = certs.DefaultLifetime
	DefaultReadInterval       = time.Second
	// MaxCertLifetime: Graph refuses a key credential whose end is more than a year
	// after its start.
	MaxCertLifetime = 365 * 24 * time.Hour
)

// Operator authentication kinds of Config.OperatorAuth.
const (
	OperatorAzureCLI    = entra.OperatorAzureCLI
	OperatorDeviceCode  = entra.OperatorDeviceCode
	OperatorProvisioner = entra.OperatorProvisioner
)

// Suffixes of the tenant id that name the keyring items of a rotation in progress
// (see migrate_certificate.go); keystore owns the names.
const (
	NextAccountSuffix     = keystore.NextAccountSuffix
	PreviousAccountSuffix = keystore.PreviousAccountSuffix
)

// Config is the input of Migrate.
type Config struct {
	// StatePath is the state file; it need not exist.
	StatePath string
	// StateFileNamed says the state file was named (-state-file / ENTRACLAW_STATE_FILE)
	// rather than found; StateSearchDir is where the search for one started.
	StateFileNamed bool
	StateSearchDir string
	// Adopt lets a run without a state file take over an app found by its display name.
	Adopt bool
	// TenantID and ClientID override the state file's TENANT_ID and
	// PROVISIONER_CLIENT_ID (from -tenant-id / -client-id or their env vars).
	TenantID, ClientID string
	Cloud              entra.Cloud
	// KeyringService is the keyring service of the certificate items (for messages).
	KeyringService string
	// OperatorAuth names the operator credential: azcli, device-code or provisioner.
	OperatorAuth string
	// Rotate replaces this machine's certificate even when it is still usable.
	Rotate bool
	// RenewBefore replaces a certificate that expires within this long.
	RenewBefore time.Duration
	// RenewBeforeSet says RenewBefore was chosen (-renew-before); otherwise Renew's
	// due time is 2/3 of the lifetime with the thumbprint's jitter.
	RenewBeforeSet bool
	// Federate lists the federated identity credentials to put on the app (-federate),
	// Unfederate the names of those to take off (-unfederate).
	Federate   []*Federation
	Unfederate []string
	// PruneExpired, when > 0, removes from the app the certificates of other machines
	// that expired more than this long ago.
	PruneExpired time.Duration
	// PropagationTimeout bounds the wait until the certificate gets a token with the roles.
	PropagationTimeout time.Duration
	// ReplicationWait bounds how long a recorded client id that Graph does not list
	// is looked up again (replication lag) before the app is looked up by name.
	ReplicationWait time.Duration
	// KeyStore is where a new private key is kept: KeyStoreKeyring (in the keyring item)
	// or KeyStoreTPM (created in the TPM, never leaves it; the item holds the TPM's
	// wrapped blob). "" keeps the current key where it is and makes new keys in the
	// keyring; naming the other store than the current key's rotates it.
	KeyStore string
	// CertLifetime is how long a new certificate is valid (DefaultCertLifetime when 0);
	// a tenant's app-management policy may cap it below a year.
	CertLifetime time.Duration
	// ReadInterval is the pause between the re-reads that wait for Graph's reads to
	// show this run's writes (DefaultReadInterval when 0).
	ReadInterval time.Duration
	// DryRun reads everything and reports the plan without changing anything.
	DryRun bool
	// Progress receives the progress lines for people (stderr); nil discards them.
	Progress io.Writer
	// Warn receives each warning as one line for people, without a prefix; nil writes
	// it to Progress as "warning: …".
	Warn func(string)
	// Status shows what the propagation wait is waiting for (a line updated in place on
	// a terminal, one line per change of state elsewhere); nil shows nothing.
	Status StatusReporter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// StatusReporter is a status line for a long wait: Start begins it with the wait's
// limit (for the time left), Update says what is pending now (repeated text is not a
// change), Done ends the line.
type StatusReporter interface {
	Start(limit time.Duration)
	Update(pending string)
	Done(final string)
}

// Deps are the outside world Migrate and Rollback talk to.
type Deps struct {
	// Store is the keyring holding the certificate bundle.
	Store *keystore.Store
	// OperatorCredential returns the credential that reads and changes the app.
	// tenant is "" when it is not known yet.
	OperatorCredential func(tenant string) (azcore.TokenCredential, error)
	// CertCredential returns a new certificate credential for the provisioner app.
	// Each call must return a fresh credential: propagation polling must not be
	// answered from a credential's token cache.
	CertCredential func(tenant, client string, b *certs.Bundle) (azcore.TokenCredential, error)
	// GraphOptions tune the Graph client (transport, retries).
	GraphOptions entra.GraphOptions
}

// Summary is what Migrate did or, in a dry run, would do.
type Summary struct {
	TenantID       string `json:"tenantId"`
	ClientID       string `json:"clientId"`
	AppObjectID    string `json:"appObjectId"`
	Thumbprint     string `json:"thumbprint"`
	CertNotAfter   string `json:"certNotAfter"`
	KeyringBackend string `json:"keyringBackend"`
	// PrivateKey is where the current certificate's private key is: "keyring" (in the
	// item) or "tpm" (in this machine's TPM; the item holds its wrapped blob).
	PrivateKey          string   `json:"privateKey,omitempty"`
	Backup              string   `json:"backup,omitempty"`
	Actions             []string `json:"actions"`
	PasswordsRemoved    int      `json:"passwordsRemoved"`
	PermissionsAdded    int      `json:"permissionsAdded"`
	GrantsAdded         int      `json:"grantsAdded"`
	CertUploaded        bool     `json:"certUploaded"`
	Rotated             bool     `json:"rotated"`
	PreviousCertRemoved bool     `json:"previousCertRemoved"`
	Propagated          bool     `json:"propagated"`
	PropagationWait     string   `json:"propagationWait"`
	// Renewal (Renew only): due or not, when the next one is due, and the Graph
	// requests it made.
	Renewal  *RenewalSummary `json:"renewal,omitempty"`
	Changed  bool            `json:"changed"`
	DryRun   bool            `json:"dryRun"`
	Warnings []string        `json:"warnings"`
}

// Error is a failed step with the exit code and the hint the command line shows.
type Error struct {
	msg  string
	err  error
	code int
	hint string
}

func (e *Error) Error() string {
	switch {
	case e.err == nil:
		return e.msg
	case e.msg == "":
		return e.err.Error()
	}
	return e.msg + ": " + e.err.Error()
}

func (e *Error) Unwrap() error { return e.err }

// ExitCode is 1 (the operation failed) unless the error says otherwise.
func (e *Error) ExitCode() int {
	if e.code == 0 {
		return exit.Failure
	}
	return e.code
}

// Hint says what to do next: the step's own hint, else the wrapped error's
// (e.g. how to unlock the keyring).
func (e *Error) Hint() string {
	var h interface{ Hint() string }
	if e.hint == "" && errors.As(e.err, &h) {
		return h.Hint()
	}
	return e.hint
}

// The exit codes this package decides (pkg/exit).
const (
	exitUsage       = exit.Usage
	exitNotSetUp    = exit.NotSetUp
	exitInterrupted = exit.Interrupted
)

func failf(hint string, format string, args ...any) *Error {
	return &Error{msg: fmt.Sprintf(format, args...), hint: hint}
}

func wrapf(err error, hint string, format string, args ...any) *Error {
	return &Error{msg: fmt.Sprintf(format, args...), err: err, hint: hint}
}

// Hints for the failures people can fix themselves.
const (
	hintUsage        = "fix the value the error names (run with -h for usage)"
	hintRerun        = "fix the cause and run entraclaw-migrate again: it picks up where it stopped"
	hintConsentAdmin = "an administrator must run it: granting admin consent needs the Privileged Role Administrator or Global Administrator role (`az login` as one, or -operator-auth device-code)"
	hintCreateAdmin  = "an administrator must run it: creating or changing the app needs the Application Administrator or Cloud Application Administrator role (`az login` as one, or -operator-auth device-code)"
)

// graphFailure wraps a Graph error, pointing at the roles an operator needs when
// Graph answered 403.
func graphFailure(err error, adminHint string, format string, args ...any) *Error {
	hint := hintRerun
	if policy, ok := entra.PolicyHint(err); ok {
		hint = policy
	} else if entra.IsForbidden(err) {
		hint = adminHint
	}
	return wrapf(err, hint, format, args...)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff yields the delays of the propagation and replication polls: 250 ms,
// growing by half each time, capped at max (2 s when zero).
type backoff struct{ next, max time.Duration }

const (
	backoffStart = 250 * time.Millisecond
	backoffMax   = 2 * time.Second
	// propagationBackoffMax caps the propagation poll: Entra ID answers clients that ask
	// for the same token in a tight loop with AADSTS50196, and propagation takes minutes.
	propagationBackoffMax = 10 * time.Second
)

func (b *backoff) delay() time.Duration {
	if b.next == 0 {
		b.next = backoffStart
	}
	if b.max == 0 {
		b.max = backoffMax
	}
	d := b.next
	b.next = min(b.next*3/2, b.max)
	return d
}

// atLeast makes the next delay at least d (a throttled answer's Retry-After).
func (b *backoff) atLeast(d time.Duration) {
	b.next = max(b.next, d)
}
