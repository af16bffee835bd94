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

	"github.com/golang-jwt/jwt/v5"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// migration is one run of Migrate.
type migration struct {
	cfg  Config
	deps Deps
	out  io.Writer
	sum  Summary

	// From the state file as read by the preflight ("" when absent).
	stateExists                          bool
	stateTenant, stateClient, stateThumb string
	stateHasSecret                       bool
	tenant                               string
	graph                                *entra.Graph
	app                                  *entra.Application // nil until found or created
	appCreated                           bool
	appKeys                              []entra.KeyCredential // the app's certificates as step 4 read them, bodies included
	clientSP, graphSP                    *entra.ServicePrincipal
	required                             []entra.AppRole
	bundle                               *certs.Bundle // this machine's certificate once step 5 ran
	previous                             *certs.Bundle // the <tenant>.previous item once step 5 read it; nil when none
	needsProof, proven                   bool
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
	if err := m.preflight(ctx); err != nil {
		return nil, err
	}
	steps := []func(context.Context) error{
		m.purgeSecret,
		m.ensureApp,
		m.ensurePermissions,
		m.removePasswords,
		m.ensureCertificate,
		m.recordThumbprint,
		m.awaitPropagation,
		m.removePreviousCert,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	m.sum.Changed = !cfg.DryRun && len(m.sum.Actions) > 0
	return &m.sum, nil
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
	if cfg.OperatorAuth == "" {
		cfg.OperatorAuth = OperatorAzureCLI
	}
	m := &migration{cfg: cfg, deps: deps, out: cfg.Progress}
	if m.deps.GraphOptions.Progress == nil {
		m.deps.GraphOptions.Progress = func(line string) { m.say("%s", line) }
	}
	m.sum = Summary{DryRun: cfg.DryRun, KeyringBackend: deps.Store.BackendName(), Actions: []string{}, Warnings: []string{}, PropagationWait: "0s"}
	return m, nil
}

// say prints one progress line.
func (m *migration) say(format string, args ...any) {
	fmt.Fprintf(m.out, format+"\n", args...)
}

// did records an action taken.
func (m *migration) did(format string, args ...any) {
	m.sum.Actions = append(m.sum.Actions, fmt.Sprintf(format, args...))
}

// plan records and prints an action a dry run would take.
func (m *migration) plan(format string, args ...any) {
	action := fmt.Sprintf(format, args...)
	m.sum.Actions = append(m.sum.Actions, action)
	m.say("dry run: would %s", action)
}

// warn records and prints a warning.
func (m *migration) warn(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	m.sum.Warnings = append(m.sum.Warnings, w)
	m.say("WARNING: %s", w)
}

// ---- preflight ----

// preflight checks, changing nothing, that the run can get through: the state
// file parses and its directory is writable, the keyring works, the operator
// gets a token, and the app can be read.
func (m *migration) preflight(ctx context.Context) error {
	if err := m.readState(); err != nil {
		return err
	}
	if m.cfg.DryRun {
		// A real run proved this by creating its lock file.
		if err := checkDirWritable(filepath.Dir(m.cfg.StatePath)); err != nil {
			return err
		}
	} else if err := m.deps.Store.Probe(); err != nil {
		return wrapf(err, "", "keyring preflight")
	}
	if err := m.signInOperator(ctx); err != nil {
		return err
	}
	if err := m.findApp(ctx); err != nil {
		return err
	}
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
	} {
		if *dst, _, err = doc.String(key); err != nil {
			return wrapf(err, "fix the value in the state file; nothing was changed", "state file %s", m.cfg.StatePath)
		}
	}
	m.stateHasSecret = doc.Has(state.KeyClientSecret)
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

// signInOperator gets the operator's token, resolves the tenant and builds the Graph client.
func (m *migration) signInOperator(ctx context.Context) error {
	tenant := m.cfg.TenantID
	if tenant == "" {
		tenant = m.stateTenant
	}
	var err error
	m.tenant, m.graph, err = signIn(ctx, m.cfg.Cloud, m.cfg.OperatorAuth, tenant, m.cfg.StatePath, m.deps)
	m.sum.TenantID = m.tenant
	return err
}

// signIn gets a token with the operator credential and returns the tenant (the
// token's tid when tenant is "") and a Graph client acting as the operator.
func signIn(ctx context.Context, cloud entra.Cloud, kind, tenant, statePath string, deps Deps) (string, *entra.Graph, error) {
	cred, err := deps.OperatorCredential(tenant)
	if err != nil {
		return "", nil, operatorError(kind, tenant, err)
	}
	tok, err := entra.FetchToken(ctx, cred, cloud.GraphScope())
	if err != nil {
		return "", nil, operatorError(kind, tenant, err)
	}
	if tenant == "" {
		claims, err := decodeToken(tok.Token)
		tid, _ := claims["tid"].(string)
		if err != nil || tid == "" {
			return "", nil, failf("pass -tenant-id or set ENTRACLAW_TENANT_ID", "cannot tell the tenant: no TENANT_ID in %s and the operator's token has no tid claim", statePath)
		}
		if err := entra.ValidateTenantID(tid); err != nil {
			return "", nil, wrapf(err, "pass -tenant-id", "operator token")
		}
		tenant = tid
	}
	graph, err := entra.NewGraph(cloud, cred, deps.GraphOptions)
	if err != nil {
		return "", nil, err
	}
	return tenant, graph, nil
}

// operatorError explains a failed operator sign-in. A bad flag value behind it
// (entra.ErrInvalidArgument, e.g. a -graph-endpoint az cannot use) is a usage
// error; anything else is the operator's sign-in to fix.
func operatorError(kind, tenant string, err error) error {
	cause := signInError{err}
	if errors.Is(err, entra.ErrInvalidArgument) {
		return &Error{msg: fmt.Sprintf("operator sign-in (-operator-auth %s) failed", kind), err: cause, code: exitUsage, hint: hintUsage}
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
	return &Error{msg: fmt.Sprintf("operator sign-in (-operator-auth %s) failed", kind), err: cause, hint: hint}
}

// signInError is a failed operator sign-in, described in one line by
// entra.DescribeAuthError. It answers errors.Is for its cause but, being already
// described, does not unwrap to the SDK's errors for the command line to describe
// them again (and drop the "operator sign-in" context on the way).
type signInError struct{ err error }

func (e signInError) Error() string        { return entra.DescribeAuthError(e.err) }
func (e signInError) Is(target error) bool { return errors.Is(e.err, target) }

// decodeToken returns the claims of a JWT without verifying it: tokens for Graph
// are not meant to be verified by clients, only read.
func decodeToken(token string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return nil, fmt.Errorf("decode access token: %w", err)
	}
	return claims, nil
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
func (m *migration) lookupClientID(ctx context.Context, client string) (*entra.Application, error) {
	deadline := time.Now().Add(m.cfg.ReplicationWait)
	var b backoff
	for said := false; ; said = true {
		app, err := m.graph.FindApplicationByAppID(ctx, client)
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
	}
}

func (m *migration) setApp(app *entra.Application) {
	m.app = app
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

// ---- step 1: the legacy secret ----

func (m *migration) purgeSecret(context.Context) error {
	if !m.stateHasSecret {
		return nil
	}
	if m.cfg.DryRun {
		m.plan("back up %s and purge PROVISIONER_CLIENT_SECRET from it", m.cfg.StatePath)
		return nil
	}
	backup, err := state.Backup(m.cfg.StatePath, m.cfg.Now())
	if err != nil {
		return wrapf(err, hintRerun, "back up the state file before purging the secret")
	}
	m.say("Backed up state file to %s (it still holds the secret; delete it once the migration is verified).", backup)
	m.say("WARNING: legacy PROVISIONER_CLIENT_SECRET found in state file. Cert-auth supersedes secret-auth; purging the secret from disk.")
	if _, err := state.Update(m.cfg.StatePath, false, func(d *state.Doc) error {
		d.Delete(state.KeyClientSecret)
		return nil
	}); err != nil {
		return wrapf(err, hintRerun, "purge PROVISIONER_CLIENT_SECRET")
	}
	m.did("purged PROVISIONER_CLIENT_SECRET from %s (backup %s)", m.cfg.StatePath, backup)
	m.sum.Warnings = append(m.sum.Warnings, fmt.Sprintf("backup %s still holds the legacy secret: delete it once the migration is verified", backup))
	return nil
}

// ---- step 2: tenant, app, service principal ----

func (m *migration) ensureApp(ctx context.Context) error {
	if m.stateTenant == "" {
		if m.cfg.DryRun {
			m.plan("record TENANT_ID %s in %s", m.tenant, m.cfg.StatePath)
		} else if changed, err := m.setState(state.KeyTenantID, m.tenant); err != nil {
			return wrapf(err, hintRerun, "record TENANT_ID")
		} else if changed {
			m.say("Recorded TENANT_ID %s in %s.", m.tenant, m.cfg.StatePath)
			m.did("recorded TENANT_ID %s", m.tenant)
		}
	}
	if m.app == nil {
		if m.cfg.DryRun {
			m.plan("create the app %q (signInAudience %s) and its service principal", entra.ProvisionerDisplayName, entra.SignInAudienceMyOrg)
			m.needsProof = true
			return nil
		}
		m.say("Creating Provisioner app '%s'...", entra.ProvisionerDisplayName)
		app, err := m.graph.CreateApplication(ctx, entra.ProvisionerDisplayName)
		if err != nil {
			return graphFailure(err, hintCreateAdmin, "create the provisioner app")
		}
		m.setApp(app)
		m.appCreated, m.needsProof = true, true
		m.did("created the app %s (object id %s)", app.AppID, app.ID)
		if err := m.recordClientID(); err != nil {
			return err
		}
		m.say("Created Provisioner app %s; recorded PROVISIONER_CLIENT_ID in %s.", app.AppID, m.cfg.StatePath)
	} else {
		m.say("Using Provisioner app %s (object id %s).", m.app.AppID, m.app.ID)
		if m.stateClient != m.app.AppID {
			if m.cfg.DryRun {
				m.plan("record PROVISIONER_CLIENT_ID %s in %s", m.app.AppID, m.cfg.StatePath)
			} else if err := m.recordClientID(); err != nil {
				return err
			}
		}
	}

	sp, err := m.graph.FindServicePrincipal(ctx, m.app.AppID)
	if err != nil {
		return graphFailure(err, hintCreateAdmin, "look up the provisioner app's service principal")
	}
	if sp == nil {
		if m.cfg.DryRun {
			m.plan("create the service principal of the app %s", m.app.AppID)
			m.needsProof = true
			return nil
		}
		if sp, err = m.graph.CreateServicePrincipal(ctx, m.app.AppID); err != nil {
			return graphFailure(err, hintCreateAdmin, "create the provisioner app's service principal")
		}
		m.needsProof = true
		m.did("created the service principal %s", sp.ID)
		m.say("Created the service principal of the Provisioner app.")
	}
	m.clientSP = sp
	return nil
}

func (m *migration) recordClientID() error {
	changed, err := m.setState(state.KeyClientID, m.app.AppID)
	if err != nil {
		return wrapf(err, hintRerun, "record PROVISIONER_CLIENT_ID %s", m.app.AppID)
	}
	if changed {
		m.did("recorded PROVISIONER_CLIENT_ID %s", m.app.AppID)
	}
	return nil
}

// ---- step 3: permissions and admin consent ----

// requiredRoles resolves the permissions the provisioner needs from the Graph
// service principal's app roles: the base ones, then every role whose value
// contains AgentIdentity or AgentIdUser, in the order Graph lists them.
func requiredRoles(graphSP *entra.ServicePrincipal) ([]entra.AppRole, error) {
	byValue := map[string]entra.AppRole{}
	for _, r := range graphSP.AppRoles {
		byValue[r.Value] = r
	}
	var roles []entra.AppRole
	seen := map[string]bool{}
	add := func(r entra.AppRole) {
		if !seen[r.ID] {
			seen[r.ID] = true
			roles = append(roles, r)
		}
	}
	for _, v := range entra.BaseProvisionerRoles {
		r, ok := byValue[v]
		if !ok {
			return nil, failf("", "the Microsoft Graph service principal of this tenant has no app role %s", v)
		}
		add(r)
	}
	for _, r := range graphSP.AppRoles {
		if entra.IsAgentIDRole(r.Value) {
			add(r)
		}
	}
	return roles, nil
}

func (m *migration) ensurePermissions(ctx context.Context) error {
	graphSP, err := m.graph.FindServicePrincipal(ctx, entra.GraphAppID)
	if err != nil {
		return graphFailure(err, hintCreateAdmin, "read the Microsoft Graph service principal")
	}
	if graphSP == nil {
		return failf("", "tenant %s has no Microsoft Graph service principal (appId %s)", m.tenant, entra.GraphAppID)
	}
	if m.required, err = requiredRoles(graphSP); err != nil {
		return err
	}
	m.graphSP = graphSP
	n := len(m.required)
	m.say("Ensuring %d Graph application permissions on provisioner app...", n)
	if m.app == nil {
		m.plan("add %d Graph application permissions to the app and grant admin consent for them", n)
		return nil
	}

	rra, added := withRequiredRoles(m.app.RequiredResourceAccess, m.required)
	switch {
	case added == 0:
		m.say("Provisioner app already has the required Graph permissions")
	case m.cfg.DryRun:
		m.plan("add %d Graph application permission(s) to the app", added)
		m.needsProof = true
	default:
		if err := m.graph.SetRequiredResourceAccess(ctx, m.app.ID, rra); err != nil {
			return graphFailure(err, hintCreateAdmin, "add the Graph permissions to the provisioner app")
		}
		m.app.RequiredResourceAccess = rra
		m.sum.PermissionsAdded = added
		m.needsProof = true
		m.did("added %d Graph application permission(s) to the app", added)
		m.say("Added %d Graph application permission(s) to the Provisioner app.", added)
	}

	if m.clientSP == nil {
		m.plan("grant admin consent for %d Graph application permissions", n)
		return nil
	}
	assignments, err := m.graph.ListAppRoleAssignments(ctx, m.clientSP.ID)
	if err != nil {
		return graphFailure(err, hintConsentAdmin, "list the provisioner's granted permissions")
	}
	granted := map[string]bool{}
	for _, a := range assignments {
		if strings.EqualFold(a.ResourceID, graphSP.ID) {
			granted[strings.ToLower(a.AppRoleID)] = true
		}
	}
	var missing []entra.AppRole
	for _, r := range m.required {
		if !granted[strings.ToLower(r.ID)] {
			missing = append(missing, r)
		}
	}
	switch {
	case len(missing) == 0:
		m.say("Admin consent already granted for all %d permissions.", n)
		return nil
	case m.cfg.DryRun:
		m.plan("grant admin consent for %d Graph application permission(s)", len(missing))
		m.needsProof = true
		return nil
	}
	created := 0
	for _, r := range missing {
		isNew, err := m.graph.GrantAppRole(ctx, graphSP.ID, m.clientSP.ID, r.ID)
		if err != nil {
			return graphFailure(err, hintConsentAdmin, "grant admin consent for %s (%d of %d granted)", r.Value, created, len(missing))
		}
		if isNew {
			created++
		}
	}
	if created > 0 {
		m.sum.GrantsAdded = created
		m.needsProof = true
		m.did("granted admin consent for %d Graph application permission(s)", created)
		m.say("Admin consent granted (%d new grant(s)).", created)
	} else {
		m.say("Admin consent already granted for all %d permissions.", n)
	}
	return nil
}

// withRequiredRoles returns rra with every role of roles declared as an
// application permission on Microsoft Graph, keeping everything else as it
// was, and how many roles it added.
func withRequiredRoles(rra []entra.RequiredResourceAccess, roles []entra.AppRole) ([]entra.RequiredResourceAccess, int) {
	out := make([]entra.RequiredResourceAccess, len(rra))
	copy(out, rra)
	idx := -1
	for i, r := range out {
		if strings.EqualFold(r.ResourceAppID, entra.GraphAppID) {
			idx = i
			break
		}
	}
	if idx < 0 {
		out = append(out, entra.RequiredResourceAccess{ResourceAppID: entra.GraphAppID})
		idx = len(out) - 1
	}
	entry := out[idx]
	have := map[string]bool{}
	for _, a := range entry.ResourceAccess {
		if a.Type == entra.ResourceAccessRole {
			have[strings.ToLower(a.ID)] = true
		}
	}
	access := append([]entra.ResourceAccess(nil), entry.ResourceAccess...)
	added := 0
	for _, r := range roles {
		if !have[strings.ToLower(r.ID)] {
			access = append(access, entra.ResourceAccess{ID: r.ID, Type: entra.ResourceAccessRole})
			added++
		}
	}
	entry.ResourceAccess = access
	out[idx] = entry
	return out, added
}

// ---- step 4: password credentials ----

func (m *migration) removePasswords(ctx context.Context) error {
	if m.app == nil {
		return nil
	}
	// Read the app again unless this run just created it: a secret added since the
	// preflight is removed too, and step 5 works from these certificates.
	app := m.app
	if !m.appCreated {
		fresh, err := m.graph.GetApplication(ctx, m.app.ID)
		if err != nil {
			return graphFailure(err, hintCreateAdmin, "read the provisioner app's credentials")
		}
		app = fresh
	}
	m.appKeys = app.KeyCredentials
	n := len(app.PasswordCredentials)
	switch {
	case n == 0:
		return nil
	case m.cfg.DryRun:
		m.plan("remove %d password credential(s) from the app", n)
		return nil
	}
	for i, pw := range app.PasswordCredentials {
		if err := m.graph.RemovePassword(ctx, app.ID, pw.KeyID); err != nil {
			return graphFailure(err, hintCreateAdmin, "remove password credential %s from the provisioner app (%d of %d removed; stopped before uploading a certificate)", pw.KeyID, i, n)
		}
	}
	m.sum.PasswordsRemoved = n
	m.did("removed %d password credential(s) from the app", n)
	m.say("Removed %d legacy password credential(s) from Provisioner app (cert-auth only from here on).", n)
	return nil
}

// ---- step 5: this machine's certificate ----

func (m *migration) ensureCertificate(ctx context.Context) error {
	store := m.deps.Store
	now := m.cfg.Now()
	if !m.cfg.DryRun {
		moved, err := store.MigrateLegacy(m.tenant)
		if err != nil {
			return wrapf(err, "", "move the legacy certificate file into the %s", m.sum.KeyringBackend)
		}
		if moved {
			m.say("Moved the legacy certificate file %s into the %s.", store.LegacyFile(m.tenant), m.sum.KeyringBackend)
			m.did("moved the legacy certificate file into the %s", m.sum.KeyringBackend)
		}
	}
	current, err := m.readCurrent()
	if err != nil {
		return err
	}
	if err := m.readPrevious(); err != nil {
		return err
	}
	reason := ""
	switch {
	case current == nil:
		reason = "none in the keyring"
	case certs.Expired(current.Cert, now):
		reason = "the certificate in the keyring expired on " + day(current.Cert.NotAfter)
	case certs.ExpiresWithin(current.Cert, now, m.cfg.RenewBefore):
		reason = "the certificate in the keyring expires on " + day(current.Cert.NotAfter)
	case m.cfg.Rotate:
		reason = "-rotate"
	}

	keys := m.appKeys
	if reason == "" {
		m.bundle = current
		thumb := certs.Thumbprint(current.Cert)
		if hasKey(keys, thumb) {
			m.say("Provisioner certificate %s in the %s is already on the app (expires %s).", thumb, m.sum.KeyringBackend, day(current.Cert.NotAfter))
			return nil
		}
		if m.cfg.DryRun {
			m.plan("upload the keyring certificate %s to the app", thumb)
			m.needsProof = true
			return nil
		}
		return m.upload(ctx, keys, current)
	}

	if m.cfg.DryRun {
		m.plan("generate a new certificate (%s), store it in the %s and upload it to the app", reason, m.sum.KeyringBackend)
		if current != nil {
			m.plan("remove this machine's previous certificate %s from the app once the new one gets a token", certs.Thumbprint(current.Cert))
		}
		m.needsProof = true
		return nil
	}
	if current != nil {
		if keys, err = m.keepAsPrevious(current, keys); err != nil {
			return err
		}
	}
	m.say("Generating cert for Provisioner (RSA 2048, 365 days)...")
	b, err := certs.Generate(now)
	if err != nil {
		return err
	}
	if err := store.PutBundle(m.tenant, b.PEM()); err != nil {
		return wrapf(err, "", "store the new certificate in the %s", m.sum.KeyringBackend)
	}
	m.say("Cert private key stored in %s (service='%s', account=%s).", m.sum.KeyringBackend, m.cfg.KeyringService, m.tenant)
	m.did("generated certificate %s (%s) and stored it in the %s", certs.Thumbprint(b.Cert), reason, m.sum.KeyringBackend)
	m.sum.Rotated = current != nil
	return m.upload(ctx, keys, b)
}

// keepAsPrevious saves this machine's current certificate under the
// <tenant>.previous item, so that a run interrupted mid-rotation still knows it
// and removes it from the app later. An older previous certificate whose key
// this drops is removed from keys (the list to upload) at the same time: with
// its private key gone nobody can use it any more.
func (m *migration) keepAsPrevious(current *certs.Bundle, keys []entra.KeyCredential) ([]entra.KeyCredential, error) {
	account := m.tenant + PreviousAccountSuffix
	if older := m.previous; older != nil {
		if thumb := certs.Thumbprint(older.Cert); thumb != certs.Thumbprint(current.Cert) && hasKey(keys, thumb) {
			keys = withoutKey(keys, thumb)
			m.did("dropped this machine's older certificate %s from the app", thumb)
			m.say("Dropping this machine's older certificate %s from the app (its key is being replaced).", thumb)
		}
	}
	if err := m.deps.Store.PutBundle(account, current.PEM()); err != nil {
		return nil, wrapf(err, "", "keep the current certificate in the %s as %s", m.sum.KeyringBackend, account)
	}
	m.previous = current
	return keys, nil
}

// upload adds b's certificate to the app's certificates (the list as read, so
// every other certificate stays).
func (m *migration) upload(ctx context.Context, keys []entra.KeyCredential, b *certs.Bundle) error {
	thumb := certs.Thumbprint(b.Cert)
	m.say("Uploading public cert to app (SHA-1 thumb: %s)...", thumb)
	creds := append(append([]entra.KeyCredential(nil), keys...), entra.NewKeyCredential(b.Cert, keyDisplayName()))
	if err := m.graph.SetKeyCredentials(ctx, m.app.ID, creds); err != nil {
		return graphFailure(err, hintCreateAdmin, "upload certificate %s to the provisioner app", thumb)
	}
	m.bundle = b
	m.sum.CertUploaded = true
	m.needsProof = true
	m.did("uploaded certificate %s to the app", thumb)
	return nil
}

// readCurrent reads and parses this machine's certificate bundle; nil when there
// is none. An item that does not parse is reported as a warning and treated as
// absent (a new certificate replaces it).
func (m *migration) readCurrent() (*certs.Bundle, error) {
	account := m.tenant
	pem, err := m.deps.Store.GetBundle(account)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, wrapf(err, "", "read the certificate from the %s", m.sum.KeyringBackend)
	}
	b, err := certs.ParseBundle(pem)
	if err != nil {
		m.warn("keyring item service=%q account=%s is not a usable certificate bundle (%v); it will be replaced", m.cfg.KeyringService, account, err)
		return nil, nil
	}
	return b, nil
}

// readPrevious reads this machine's previous certificate (the <tenant>.previous
// item) into m.previous, once per run. An item that does not parse holds no
// usable key: it is deleted (a dry run plans that), so no run reports it again.
func (m *migration) readPrevious() error {
	account := m.tenant + PreviousAccountSuffix
	pem, err := m.deps.Store.GetBundle(account)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return wrapf(err, "", "read this machine's previous certificate from the %s", m.sum.KeyringBackend)
	}
	b, parseErr := certs.ParseBundle(pem)
	if parseErr == nil {
		m.previous = b
		return nil
	}
	if m.cfg.DryRun {
		m.plan("delete keyring account %s: it is not a usable certificate bundle (%v)", account, parseErr)
		return nil
	}
	if err := m.deps.Store.DeleteBundle(account); err != nil && !errors.Is(err, keystore.ErrNotFound) {
		return wrapf(err, "", "delete the unusable keyring account %s", account)
	}
	m.did("deleted keyring account %s: it was not a usable certificate bundle", account)
	m.say("Deleted keyring item service='%s' account=%s: it was not a usable certificate bundle (%v).", m.cfg.KeyringService, account, parseErr)
	return nil
}

// keyDisplayName names this machine's certificate on the app.
func keyDisplayName() string {
	name := "CN=" + certs.CommonName
	if host, err := os.Hostname(); err == nil && host != "" {
		name += " (" + host + ")"
	}
	if len(name) > 90 {
		name = name[:90]
	}
	return name
}

func hasKey(keys []entra.KeyCredential, thumb string) bool {
	for _, k := range keys {
		if k.MatchesThumbprint(thumb) {
			return true
		}
	}
	return false
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

func (m *migration) recordThumbprint(context.Context) error {
	if m.bundle == nil {
		return nil
	}
	thumb := certs.Thumbprint(m.bundle.Cert)
	m.sum.Thumbprint = thumb
	m.sum.CertNotAfter = m.bundle.Cert.NotAfter.UTC().Format(time.RFC3339)
	if m.cfg.DryRun {
		if m.stateThumb != thumb {
			m.plan("record PROVISIONER_CERT_THUMBPRINT %s in %s", thumb, m.cfg.StatePath)
		}
		return nil
	}
	changed, err := m.setState(state.KeyThumbprint, thumb)
	if err != nil {
		return wrapf(err, hintRerun, "record PROVISIONER_CERT_THUMBPRINT")
	}
	if changed {
		m.did("recorded PROVISIONER_CERT_THUMBPRINT %s", thumb)
		m.say("Recorded PROVISIONER_CERT_THUMBPRINT %s in %s.", thumb, m.cfg.StatePath)
	}
	return nil
}

// ---- step 7: propagation ----

// stsNotYet are the AADSTS codes that mean "Entra ID does not know this yet":
// the certificate (700027), the service principal (7000229) or the app (700016).
var stsNotYet = []int{700027, 7000229, 700016}

func (m *migration) awaitPropagation(ctx context.Context) error {
	pending := m.previousPending()
	if m.cfg.DryRun {
		if m.needsProof || pending != nil {
			m.plan("wait up to %s for Entra ID to accept the certificate with all %d roles", m.cfg.PropagationTimeout, len(m.required))
		}
		return nil
	}
	if !m.needsProof && pending == nil {
		return nil
	}
	m.say("Waiting for Entra ID to accept the new certificate and roles...")
	start := time.Now()
	pollCtx, cancel := context.WithTimeout(ctx, m.cfg.PropagationTimeout)
	defer cancel()
	var b backoff
	notYet := ""
	for {
		reason, err := m.tryToken(pollCtx)
		if err != nil && pollCtx.Err() == nil {
			return err
		}
		if err == nil && reason == "" {
			wait := time.Since(start)
			m.proven, m.sum.Propagated = true, true
			m.sum.PropagationWait = wait.Round(time.Millisecond).String()
			m.say("Propagation complete after %.1fs.", wait.Seconds())
			return nil
		}
		if reason != "" {
			notYet = reason
		}
		if sleep(pollCtx, b.delay()) != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	m.sum.PropagationWait = time.Since(start).Round(time.Millisecond).String()
	if notYet == "" {
		notYet = "no answer in time"
	}
	m.warn("Entra ID had not accepted the new certificate with all %d roles after %s (%s); the migration itself is complete: run `entraclaw-verify -wait 2m` to confirm", len(m.required), m.cfg.PropagationTimeout, notYet)
	return nil
}

// tryToken asks for a token with a fresh certificate credential. It returns
// a reason when Entra ID is not there yet, and an error for any other failure.
func (m *migration) tryToken(ctx context.Context) (notYet string, err error) {
	cred, err := m.deps.CertCredential(m.tenant, m.app.AppID, m.bundle)
	if err != nil {
		return "", err
	}
	tok, err := entra.FetchToken(ctx, cred, m.cfg.Cloud.GraphScope())
	if err != nil {
		if sts, ok := entra.AsSTSError(err); ok {
			for _, code := range stsNotYet {
				if sts.HasCode(code) {
					return fmt.Sprintf("last answer AADSTS%d", code), nil
				}
			}
		}
		return "", wrapf(err, "", "the new certificate could not get a token")
	}
	claims, err := decodeToken(tok.Token)
	if err != nil {
		return "", err
	}
	have := map[string]bool{}
	if roles, ok := claims["roles"].([]any); ok {
		for _, r := range roles {
			if s, ok := r.(string); ok {
				have[s] = true
			}
		}
	}
	missing := 0
	for _, r := range m.required {
		if !have[r.Value] {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Sprintf("the last token lacked %d of the roles", missing), nil
	}
	return "", nil
}

// ---- step 8: this machine's previous certificate ----

// previousPending returns this machine's previous certificate when it is a
// different one than the current (a rotation not yet finished).
func (m *migration) previousPending() *certs.Bundle {
	prev := m.previous
	if m.bundle == nil || prev == nil || certs.Thumbprint(prev.Cert) == certs.Thumbprint(m.bundle.Cert) {
		return nil
	}
	return prev
}

func (m *migration) removePreviousCert(ctx context.Context) error {
	prev := m.previous
	if m.bundle == nil || prev == nil {
		return nil
	}
	account := m.tenant + PreviousAccountSuffix
	thumb := certs.Thumbprint(prev.Cert)
	if thumb != certs.Thumbprint(m.bundle.Cert) {
		if m.cfg.DryRun {
			m.plan("remove this machine's previous certificate %s from the app once the current one gets a token", thumb)
			return nil
		}
		if !m.proven {
			m.warn("kept this machine's previous certificate %s on the app (and as keyring account %s): the new certificate has not produced a token yet; run entraclaw-migrate again later to remove it", thumb, account)
			return nil
		}
		app, err := m.graph.GetApplication(ctx, m.app.ID)
		if err != nil {
			return graphFailure(err, hintCreateAdmin, "read the provisioner app's certificates")
		}
		if keys := app.KeyCredentials; hasKey(keys, thumb) {
			if err := m.graph.SetKeyCredentials(ctx, m.app.ID, withoutKey(keys, thumb)); err != nil {
				return graphFailure(err, hintCreateAdmin, "remove this machine's previous certificate %s from the provisioner app", thumb)
			}
			m.sum.PreviousCertRemoved = true
			m.did("removed this machine's previous certificate %s from the app", thumb)
			m.say("Removed this machine's previous certificate %s from the app.", thumb)
		}
	} else if m.cfg.DryRun {
		m.plan("delete the stale keyring account %s", account)
		return nil
	}
	if err := m.deps.Store.DeleteBundle(account); err != nil && !errors.Is(err, keystore.ErrNotFound) {
		return wrapf(err, "", "delete keyring account %s", account)
	}
	m.previous = nil
	m.did("deleted keyring account %s", account)
	return nil
}
