package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/machinecert"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
	"github.com/entraclaw/entraclaw-cli/pkg/verify"
)

// Env is the configuration of one run, resolved from flags > env > state file > defaults.
type Env struct {
	*Common
	StatePath string     // resolved path ("" when none was found and none is needed)
	State     *state.Doc // nil when the state file does not exist
	Tenant    string
	Client    string
	Cloud     entra.Cloud
	Store     *keystore.Store
	// Thumbprint is PROVISIONER_CERT_THUMBPRINT from the state file, if any.
	Thumbprint string
	// KeyStore is PROVISIONER_KEY_STORE from the state file ("" when absent: the keyring):
	// Store is that store.
	KeyStore string
}

// StateNeed says how much of the state a command needs.
type StateNeed int

const (
	// NeedProvisioner: state file, tenant and client id are required (token, verify).
	NeedProvisioner StateNeed = iota
	// StateOptional: a missing state file is fine; the default path is ./.entraclaw-state.json (migrate).
	StateOptional
	// StateReplaceable: like StateOptional, and a corrupt or unreadable state file is ignored,
	// because the command is about to replace it (rollback restores a backup over it).
	StateReplaceable
)

// retryDelay is the base of the retry backoff of every token and Graph client the commands
// build (entra.Cloud.RetryDelay); zero is azcore's default, 800 ms doubling. A variable so
// that the end-to-end tests can shorten it in the commands they run (export_test.go).
var retryDelay time.Duration

// Resolve finds and loads the state file and resolves tenant, client, cloud and keyring.
func (c *Common) Resolve(need StateNeed) (*Env, error) {
	cloud, err := entra.ResolveCloud(c.Cloud, c.AuthorityHost, c.GraphEndpoint)
	if err != nil {
		return nil, &Error{Code: ExitUsage, Err: err, Hint: "valid clouds: public, usgov, china; custom hosts must be https:// URLs"}
	}
	if c.CAFile != "" {
		if cloud, err = cloud.WithCAFile(c.CAFile); err != nil {
			return nil, &Error{Code: ExitUsage, Err: err, Hint: "-ca-file / ENTRACLAW_CA_FILE takes a readable PEM file of CA certificates (-----BEGIN CERTIFICATE-----)"}
		}
	}
	cloud.RetryDelay = retryDelay
	e := &Env{Common: c, Cloud: c.warnHosts(cloud), Store: keystore.New(c.KeyringService)}

	path, err := state.Find(c.StateFile, workingDir())
	switch {
	case err == nil:
		e.StatePath = path
	case errors.Is(err, state.ErrNotFound) && need != NeedProvisioner:
		e.StatePath = state.FileName
		if c.StateFile != "" {
			e.StatePath = c.StateFile
		}
	default:
		return nil, err
	}
	doc, err := state.Load(e.StatePath)
	switch {
	case err == nil:
		e.State = doc
	case errors.Is(err, state.ErrNotFound) && need != NeedProvisioner:
	case need == StateReplaceable:
	default:
		return nil, err
	}

	e.Tenant, err = e.pick(c.TenantID, state.KeyTenantID)
	if err != nil {
		return nil, err
	}
	e.Client, err = e.pick(c.ClientID, state.KeyClientID)
	if err != nil {
		return nil, err
	}
	if e.Thumbprint, err = e.pick("", state.KeyThumbprint); err != nil {
		return nil, err
	}
	if e.KeyStore, err = e.pick("", state.KeyKeyStore); err != nil {
		return nil, err
	}
	if err := e.UseKeyStore(e.KeyStore); err != nil {
		return nil, err
	}
	if e.Tenant != "" {
		if err := entra.ValidateTenantID(e.Tenant); err != nil {
			return nil, &Error{Code: ExitUsage, Err: err, Hint: "pass -tenant-id / ENTRACLAW_TENANT_ID or fix TENANT_ID in " + e.StatePath}
		}
	}
	if e.Client != "" {
		if err := entra.ValidateClientID(e.Client); err != nil {
			return nil, &Error{Code: ExitUsage, Err: err, Hint: "pass -client-id / ENTRACLAW_CLIENT_ID or fix PROVISIONER_CLIENT_ID in " + e.StatePath}
		}
	}
	if need == NeedProvisioner {
		if e.Tenant == "" {
			return nil, Errorf(ExitNotSetUp, migrateHint, "no tenant: %s has no TENANT_ID and -tenant-id is not set", e.StatePath)
		}
		if e.Client == "" {
			return nil, Errorf(ExitNotSetUp, migrateHint, "no provisioner app recorded: %s has no PROVISIONER_CLIENT_ID", e.StatePath)
		}
	}
	return e, nil
}

// UseKeyStore points e.Store at the store kind names (a state.KeyKeyStore value; "" is
// the keyring): the OS keyring for keyring and tpm, the TPM-wrapped key files in the
// per-user state directory for tpm-file. A kind this version does not know is an error:
// the store the state file records is never swapped for another silently.
func (e *Env) UseKeyStore(kind string) error {
	switch kind {
	case "", state.KeyStoreKeyring, state.KeyStoreTPM:
		e.Store = keystore.New(e.KeyringService)
	case state.KeyStoreTPMFile:
		dir, err := KeyFileDir()
		if err != nil {
			return Wrap(ExitFailure, "set "+state.RootVariable()+" to a directory of yours, or HOME", err)
		}
		e.Store = keystore.New(e.KeyringService, keystore.WithTPMFiles(dir))
	default:
		return Errorf(ExitFailure, "fix "+state.KeyKeyStore+" in the state file: keyring, tpm or tpm-file (as `entraclaw-migrate -key-store` recorded it)",
			"%s records %s %q, which this version does not know", e.StatePath, state.KeyKeyStore, kind)
	}
	return nil
}

// KeyFileDir is the directory of the TPM-wrapped key files: <per-user state root>/keys
// (~/.local/state/entraclaw/keys on Linux), one directory per keyring service below it.
func KeyFileDir() (string, error) {
	root, err := state.UserRoot()
	if err != nil {
		return "", fmt.Errorf("the directory of the TPM-wrapped key files: %w", err)
	}
	return filepath.Join(root, "keys"), nil
}

// pick returns the flag value when set, else the state file's string value for key.
func (e *Env) pick(flagValue, key string) (string, error) {
	if flagValue != "" || e.State == nil {
		return flagValue, nil
	}
	v, _, err := e.State.String(key)
	if err != nil {
		// err names the file and the key's JSON type, never its value.
		return "", Wrap(ExitFailure, "fix "+key+" in the state file: it must be a JSON string; nothing was changed", err)
	}
	return v, nil
}

// LoadBundle reads this machine's current certificate from the keyring (machinecert's
// wording and exit 3 for missing, corrupt and expired), with missingBundleHint as the
// hint when there is none.
func (e *Env) LoadBundle(now time.Time) (*certs.Bundle, error) {
	b, err := machinecert.Current(e.Store, e.Tenant, now)
	if machinecert.Is(err, machinecert.Missing) {
		return nil, &Error{Code: ExitNotSetUp, Err: err, Hint: e.missingBundleHint()}
	}
	return b, err
}

// FakeKeyringService is the keyring service of entraclaw-fake-entra's certificates, which
// its `. DIR/env` exports as ENTRACLAW_KEYRING_SERVICE.
const FakeKeyringService = "entraclaw-fake-cert"

// missingBundleHint is the hint for a keyring without a bundle for e.Tenant under
// e.KeyringService. go-keyring cannot list items, so it looks (at most two reads, this error
// path only) where a bundle would be after the usual mistakes: the tenant of the state file
// when another was asked for, and the default service when another was asked for, or the
// fake's when the default was (a forgotten `. DIR/env`). It names what it found or where it
// looked.
func (e *Env) missingBundleHint() string {
	type guess struct {
		place keystore.Place
		found string // the hint when place holds a bundle
	}
	var guesses []guess
	if stateTenant, _ := e.pick("", state.KeyTenantID); stateTenant != "" && !strings.EqualFold(stateTenant, e.Tenant) {
		guesses = append(guesses, guess{keystore.Place{Service: e.KeyringService, Tenant: stateTenant},
			fmt.Sprintf("this keyring holds one for tenant %s (TENANT_ID in %s): check -tenant-id / ENTRACLAW_TENANT_ID, which asked for %s", stateTenant, e.StatePath, e.Tenant)})
	}
	if e.KeyringService != keystore.DefaultService {
		guesses = append(guesses, guess{keystore.Place{Service: keystore.DefaultService, Tenant: e.Tenant},
			fmt.Sprintf("the default service %s holds one for tenant %s: -keyring-service / ENTRACLAW_KEYRING_SERVICE asked for %s (is a fake's `. DIR/env` still sourced?)", keystore.DefaultService, e.Tenant, e.KeyringService)})
	} else {
		guesses = append(guesses, guess{keystore.Place{Service: FakeKeyringService, Tenant: e.Tenant},
			fmt.Sprintf("service %s (the fake's) holds one for tenant %s: did you forget `. DIR/env`, which sets ENTRACLAW_KEYRING_SERVICE?", FakeKeyringService, e.Tenant)})
	}
	places := make([]keystore.Place, len(guesses))
	looked := make([]string, len(guesses))
	for i, g := range guesses {
		places[i] = g.place
		looked[i] = fmt.Sprintf("service %s, tenant %s", g.place.Service, g.place.Tenant)
	}
	if i := e.Store.FindBundle(places...); i >= 0 {
		return guesses[i].found
	}
	return "none under " + strings.Join(looked, " or ") + " either: " + migrateHint + ", or pass the -keyring-service / -tenant-id it was set up with"
}

// reportError is rep.Err(), with missingBundleHint as its hint when the keyring-cert check
// failed because the keyring holds no bundle for the tenant (read again to be sure).
func (e *Env) reportError(rep *verify.Report) error {
	err := rep.Err()
	if err == nil {
		return nil
	}
	for _, c := range rep.Checks {
		if c.Name != verify.NameKeyringCert || c.OK || c.CouldNotRun {
			continue
		}
		if has, herr := e.Store.HasBundle(e.Tenant); herr == nil && !has {
			code, _, _ := Classify(err)
			return &Error{Code: code, Err: err, Hint: e.missingBundleHint()}
		}
	}
	return err
}

// CertificateCredential builds the provisioner's certificate credential.
func (e *Env) CertificateCredential(b *certs.Bundle) (azcore.TokenCredential, error) {
	return entra.NewCertificateCredential(e.Cloud, e.Tenant, e.Client, b, entra.CredentialOptions{})
}
