package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// migration is one run of Migrate.
type migration struct {
	run
	cfg  Config
	deps Deps
	sum  Summary

	// From the state file as read by the preflight ("" when absent).
	stateExists                          bool
	stateTenant, stateClient, stateThumb string
	stateKeyStore                        string   // PROVISIONER_KEY_STORE
	stateFederations                     []string // PROVISIONER_FEDERATED_CREDENTIALS, sorted
	stateHasSecret                       bool
	tenant                               string
	graph                                *entra.Graph
	app                                  *entra.Application // nil until found or created
	appCreated                           bool
	appKeys                              []entra.KeyCredential // the app's certificates as step 4 read them, bodies included
	clientSP, graphSP                    *entra.ServicePrincipal
	required                             []entra.AppRole
	granted, missingRoles                []entra.AppRole // of required: granted (before or by this run); left ungranted with a warning
	// This machine's certificates in the keyring, as step 5 read them (nil when absent):
	// current serves tokens (<tenant>), next is a rotation's new certificate until it
	// is proven (<tenant>.next), previous the certificate a rotation replaced until it
	// is off the app (<tenant>.previous).
	current, next, previous *certs.Bundle
	// bundle is the certificate this run proves: next during a rotation, else current.
	bundle *certs.Bundle
	// uploaded lists the thumbprints this run put on the app: a read of the app
	// that lacks one of them is stale and must not be written back.
	uploaded           []string
	needsProof, proven bool
	pre                *prefetched // the preflight's concurrent reads; nil when the client id was unknown
	// rights is what the operator's token says the operator may do.
	rights entra.OperatorRights
	// peeked holds the preflight's reads of this machine's keyring items (by account),
	// each used once by step 5 instead of a second read.
	peeked map[string]peekedItem
	// perms is what the preflight read of the app's permissions and grants.
	perms *permissionPlan
	// passwordsLeft counts the app's client secrets this run has not removed (yet);
	// removedPasswords those it removed.
	passwordsLeft, removedPasswords int
	// appWritten: this run has changed the app object (its permissions, certificates
	// or secrets), so the preflight's read of it is out of date.
	appWritten bool
	// keyRolls counts this run's addKey/removeKey requests, keyPatches its PATCHes of
	// the app's certificates.
	keyRolls, keyPatches int
}

// Migrate moves the provisioner app to certificate authentication, or rotates its
// certificate, in the steps of the runbook; see the package documentation. A failure
// in the preflight changes nothing. With cfg.DryRun it only reads and returns the
// plan in Summary.Actions.
func Migrate(ctx context.Context, cfg Config, deps Deps) (*Summary, error) {
	m, err := newMigration(cfg, deps)
	if err != nil {
		return nil, err
	}
	if !cfg.DryRun {
		unlock, err := lockRun(ctx, cfg.StatePath, "entraclaw-migrate", m.out)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	steps := m.steps()
	if err := m.preflight(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, m.interrupted(stepNames(steps))
		}
		return nil, err
	}
	if err := m.runSteps(ctx, steps); err != nil {
		m.sayKept()
		return nil, err
	}
	if err := m.secretKeptError(); err != nil {
		return nil, err
	}
	m.sum.Changed = !cfg.DryRun && len(m.sum.Actions) > 0
	return &m.sum, nil
}

// finish says how to complete a run interrupted before the steps in pending.
func (m *migration) finish(pending []string) string {
	if len(pending) > 0 && pending[0] == stepPropagation && m.next == nil && (m.previous == nil || m.current == nil || sameCert(m.previous, m.current)) {
		return "only Entra ID's propagation is pending: run `entraclaw-verify -wait 2m` to confirm it (or `entraclaw-migrate` again)"
	}
	if m.next != nil {
		return "run `entraclaw-migrate` again to finish the rotation: it picks up where it stopped; the current certificate keeps serving tokens meanwhile"
	}
	return "run `entraclaw-migrate` again to finish: it picks up where it stopped"
}

// stepPropagation names the propagation wait.
const stepPropagation = "wait for propagation"

// steps are the runbook's steps in order.
func (m *migration) steps() []step {
	// Make-before-break: the client secret (on the app and in the state file) is
	// removed only once the certificate has got a token, so a run that stops earlier
	// leaves the machine with the credential it had.
	return []step{
		{"back up the state file", m.backupState},
		{"find or create the app", m.ensureApp},
		{"permissions and consent", m.ensurePermissions},
		{"federated credentials", m.ensureFederation},
		{"certificate", m.ensureCertificate},
		{"record the thumbprint", m.recordThumbprint},
		{stepPropagation, m.awaitPropagation},
		{"make the new certificate current", m.promoteNext},
		{"remove the previous certificate", m.removePreviousCert},
		{"remove expired certificates of other machines", m.pruneExpired},
		{"remove password credentials", m.removePasswords},
		{"purge the legacy secret", m.purgeSecret},
	}
}

func newMigration(cfg Config, deps Deps) (*migration, error) {
	if cfg.StatePath == "" {
		return nil, errors.New("migrate: no state file path")
	}
	if deps.Store == nil || deps.OperatorCredential == nil || deps.CertCredential == nil {
		return nil, errors.New("migrate: missing keyring or credential dependencies")
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RenewBefore <= 0 {
		cfg.RenewBefore = DefaultRenewBefore
	}
	if cfg.PropagationTimeout <= 0 {
		cfg.PropagationTimeout = DefaultPropagationTimeout
	}
	if cfg.ReplicationWait <= 0 {
		cfg.ReplicationWait = DefaultReplicationWait
	}
	if cfg.CertLifetime <= 0 {
		cfg.CertLifetime = DefaultCertLifetime
	}
	if cfg.ReadInterval <= 0 {
		cfg.ReadInterval = DefaultReadInterval
	}
	if cfg.OperatorAuth == "" {
		cfg.OperatorAuth = OperatorAzureCLI
	}
	m := &migration{cfg: cfg, deps: deps}
	if m.deps.GraphOptions.Progress == nil {
		m.deps.GraphOptions.Progress = func(line string) { m.say("%s", line) }
	}
	m.sum = Summary{DryRun: cfg.DryRun, KeyringBackend: deps.Store.BackendName(), Actions: []string{}, Warnings: []string{}, PropagationWait: "0s"}
	m.run = run{out: cfg.Progress, warnTo: cfg.Warn, dryRun: cfg.DryRun, actions: &m.sum.Actions, warnings: &m.sum.Warnings, finish: m.finish}
	return m, nil
}

// ---- preflight ----

// preflight checks, changing nothing, that the run can get through: the state
// file parses and its directory is writable, the keyring works, the operator
// gets a token, and the app can be read.
func (m *migration) preflight(ctx context.Context) error {
	if err := m.readState(); err != nil {
		return err
	}
	if err := m.checkStoreMove(); err != nil {
		return err
	}
	if err := checkDirWritable(filepath.Dir(m.cfg.StatePath)); err != nil {
		return err
	}
	if !m.cfg.DryRun {
		if err := m.deps.Store.Probe(); err != nil {
			return wrapf(err, m.noKeyringHint(ctx, err), "keyring preflight")
		}
	}
	if err := m.checkKeyStore(ctx); err != nil {
		return err
	}
	if err := m.signInOperator(ctx); err != nil {
		return err
	}
	if err := m.findApp(ctx); err != nil {
		return err
	}
	if err := m.peekKeyring(); err != nil {
		return err
	}
	if err := m.readPermissions(ctx); err != nil {
		return err
	}
	if err := m.checkRights(ctx); err != nil {
		return err
	}
	m.sayNewStateFile()
	m.say("Preflight passed: state file %s, %s, operator signed in to tenant %s.", m.cfg.StatePath, m.sum.KeyringBackend, m.tenant)
	return nil
}

// readState loads the state file (a missing one is fine) and the keys we own.
func (m *migration) readState() error {
	doc, err := state.Load(m.cfg.StatePath)
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	m.stateExists = true
	for key, dst := range map[string]*string{
		state.KeyTenantID:   &m.stateTenant,
		state.KeyClientID:   &m.stateClient,
		state.KeyThumbprint: &m.stateThumb,
		state.KeyKeyStore:   &m.stateKeyStore,
	} {
		if *dst, _, err = doc.String(key); err != nil {
			return wrapf(err, "fix the value in the state file; nothing was changed", "state file %s", m.cfg.StatePath)
		}
	}
	m.stateHasSecret = doc.Has(state.KeyClientSecret)
	m.stateFederations = doc.FederatedCredentials()
	return nil
}

// checkDirWritable creates and removes a temporary file in dir.
func checkDirWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".entraclaw-preflight-*")
	if err != nil {
		return wrapf(err, "run it where the state file's directory is writable, or pass -state-file", "state file directory %s is not writable", dir)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// signInOperator gets the operator's token, resolves the tenant and builds the Graph
// client; a tenant that is not the one in the state file is refused before any change.
func (m *migration) signInOperator(ctx context.Context) error {
	tenant := m.cfg.TenantID
	if tenant == "" {
		tenant = m.stateTenant
	}
	op, err := signIn(ctx, m.cfg.Cloud, m.cfg.OperatorAuth, tenant, m.cfg.StatePath, m.deps)
	if err != nil {
		return err
	}
	m.tenant, m.graph, m.rights = op.tenant, op.graph, op.rights
	m.sum.TenantID = m.tenant
	// A tenant from the state file itself was checked against the token by signIn (a
	// domain name there resolves to the token's tid); one from -tenant-id must match it.
	if m.cfg.TenantID != "" && m.stateTenant != "" && !strings.EqualFold(m.stateTenant, m.tenant) && !strings.EqualFold(m.stateTenant, m.cfg.TenantID) {
		return failf("check -tenant-id / ENTRACLAW_TENANT_ID, or pass -state-file with the state file of tenant "+m.tenant,
			"tenant %s is not TENANT_ID %s of %s; nothing was changed", m.tenant, m.stateTenant, m.cfg.StatePath)
	}
	return nil
}

// operator is a signed-in operator: the tenant it acts in, a Graph client acting
// as it, and what its token says it may do.
type operator struct {
	tenant string
	graph  *entra.Graph
	rights entra.OperatorRights
	roles  []string // the token's application roles (for the provisioner's own token)
}

// signIn gets a token with the operator credential and returns the operator. The
// tenant is the token's tid when tenant is "" or a domain name; a tenant id that
// is not the token's tid (a typo the sign-in did not catch) is refused.
func signIn(ctx context.Context, cloud entra.Cloud, kind, tenant, statePath string, deps Deps) (*operator, error) {
	cred, err := deps.OperatorCredential(tenant)
	if err != nil {
		return nil, operatorError(kind, tenant, err)
	}
	tok, err := entra.FetchGraphClientToken(ctx, cred, cloud.GraphScope())
	if err != nil {
		return nil, operatorError(kind, tenant, err)
	}
	claims, _ := decodeToken(tok.Token)
	tid, _ := claims["tid"].(string)
	switch {
	case tenant == "" && tid == "":
		return nil, failf("pass -tenant-id or set ENTRACLAW_TENANT_ID", "cannot tell the tenant: no TENANT_ID in %s and the operator's token has no tid claim", statePath)
	case tid == "" || strings.EqualFold(tid, tenant):
	case tenant != "" && entra.ValidateTenantID(tenant) == nil:
		return nil, failf("check -tenant-id / ENTRACLAW_TENANT_ID and TENANT_ID in "+statePath+"; if the tenant is right, sign in to it (`az login --tenant "+tenant+"`)",
			"the operator signed in to tenant %s, not %s; nothing was changed", tid, tenant)
	default:
		if err := entra.ValidateTenantID(tid); err != nil {
			return nil, wrapf(err, "pass -tenant-id", "operator token")
		}
		tenant = tid // a domain name (or none): the token says which tenant it is
	}
	graph, err := entra.NewGraph(cloud, cred, deps.GraphOptions)
	if err != nil {
		return nil, err
	}
	return &operator{tenant: tenant, graph: graph, rights: entra.RightsFromClaims(claims), roles: stringList(claims["roles"])}, nil
}

// operatorError explains a failed operator sign-in. A bad flag value behind it
// (entra.ErrInvalidArgument, e.g. a -graph-endpoint az cannot use) is a usage
// error; a host that could not be reached keeps the hint of its typed error (the
// network, -ca-file); anything else is the operator's sign-in to fix. err is typed
// where it entered (entra.AuthError): its text is already one line.
func operatorError(kind, tenant string, err error) error {
	msg := fmt.Sprintf("operator sign-in (-operator-auth %s) failed", kind)
	if errors.Is(err, entra.ErrInvalidArgument) {
		return &Error{msg: msg, err: err, code: exitUsage, hint: hintUsage}
	}
	if entra.IsUnreachable(err) {
		return &Error{msg: msg, err: err}
	}
	login := "az login"
	if tenant != "" {
		login += " --tenant " + tenant
	}
	hint := "sign in with `" + login + "` as an administrator, or use -operator-auth device-code"
	switch kind {
	case OperatorDeviceCode:
		hint = "complete the device-code sign-in as an administrator of the tenant, or use -operator-auth azcli after `" + login + "`"
	case OperatorProvisioner:
		hint = "the provisioner certificate could not get a token: use -operator-auth azcli after `" + login + "`"
	}
	return &Error{msg: msg, err: err, hint: hint}
}

// decodeToken returns the claims of a JWT without verifying it: tokens for Graph
// are not meant to be verified by clients, only read.
func decodeToken(token string) (map[string]any, error) {
	d, err := entra.DecodeJWT(token)
	if err != nil {
		return nil, fmt.Errorf("decode access token: %w", err)
	}
	return d.Claims, nil
}

// findApp finds the provisioner app by client id (flag, else state), else by
// display name. m.app stays nil when there is none.
func (m *migration) findApp(ctx context.Context) error {
	client, fromFlag := m.cfg.ClientID, m.cfg.ClientID != ""
	if !fromFlag {
		client = m.stateClient
	}
	if client != "" {
		app, err := m.lookupClientID(ctx, client)
		if err != nil {
			return err
		}
		if app != nil {
			m.setApp(app)
			return nil
		}
		if fromFlag {
			return failf("check -client-id / ENTRACLAW_CLIENT_ID, -tenant-id and -cloud", "no application with client id %s in tenant %s", client, m.tenant)
		}
		m.warn("PROVISIONER_CLIENT_ID %s recorded in %s was not found in tenant %s; looking the app up by its display name", client, m.cfg.StatePath, m.tenant)
	}
	apps, err := m.graph.ListApplicationsByDisplayName(ctx, entra.ProvisionerDisplayName)
	if err != nil {
		return graphFailure(err, hintCreateAdmin, "look up the provisioner app %q", entra.ProvisionerDisplayName)
	}
	switch len(apps) {
	case 0:
		return nil
	case 1:
		if err := m.refuseAdoption(&apps[0]); err != nil {
			return err
		}
		m.setApp(&apps[0])
		return nil
	}
	ids := make([]string, len(apps))
	for i, a := range apps {
		ids[i] = a.AppID
	}
	return failf("pass -client-id with the one to use", "%d apps are named %q in tenant %s (client ids %s)", len(apps), entra.ProvisionerDisplayName, m.tenant, strings.Join(ids, ", "))
}

// lookupClientID finds the app by client id, asking again for up to
// cfg.ReplicationWait while Graph does not list it (an app created moments ago).
// The first look is the preflight's concurrent prefetch.
func (m *migration) lookupClientID(ctx context.Context, client string) (*entra.Application, error) {
	m.pre = m.prefetch(ctx, client)
	app, err := m.pre.app, m.pre.appErr
	deadline := time.Now().Add(m.cfg.ReplicationWait)
	var b backoff
	for said := false; ; said = true {
		if err != nil {
			return nil, graphFailure(err, hintCreateAdmin, "look up the provisioner app %s", client)
		}
		if app != nil {
			return app, nil
		}
		d := b.delay()
		if time.Now().Add(d).After(deadline) {
			return nil, nil
		}
		if !said {
			m.say("Provisioner app %s not found yet; asking again for up to %s (Graph replication lag)...", client, m.cfg.ReplicationWait)
		}
		if err := sleep(ctx, d); err != nil {
			return nil, err
		}
		app, err = m.graph.GetApplicationByAppID(ctx, client)
	}
}

func (m *migration) setApp(app *entra.Application) {
	m.app = app
	m.passwordsLeft = len(app.PasswordCredentials)
	m.sum.ClientID = app.AppID
	m.sum.AppObjectID = app.ID
}

// setState sets key to value in the state file, creating the file when needed.
// It reports whether the file changed; an equal value writes nothing.
func (m *migration) setState(key, value string) (bool, error) {
	changed, err := state.Update(m.cfg.StatePath, true, func(d *state.Doc) error {
		if cur, ok, _ := d.String(key); ok && cur == value {
			return errUnchanged
		}
		d.Set(key, value)
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	return changed, err
}

var errUnchanged = errors.New("unchanged")

// stringList returns the strings of a JSON array claim (nil for anything else).
func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
