package verify

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/machinecert"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
	"github.com/entraclaw/entraclaw-cli/pkg/tpmkey"
)

// DefaultExpiresIn is how far ahead of its expiry the provisioner certificate is warned
// about, by verify and by entraclaw-provisioner-token.
const DefaultExpiresIn = 30 * 24 * time.Hour

// DefaultMaxAppKeys is how many certificates (keyCredentials) the app may hold before
// keyring-cert warns. Every renewal adds one and every machine has its own; each makes
// the app object larger, and Graph refuses to add one once the object is too large
// (Directory_ResourceSizeExceeded), which would stop every renewal.
const DefaultMaxAppKeys = 20

// Config says what to verify.
type Config struct {
	// StatePath is the state file; it is read afresh by every Run.
	StatePath string
	// Tenant and Client are the provisioner's tenant and application (client) id.
	Tenant, Client string
	Cloud          entra.Cloud
	// Checks selects checks by name; empty runs all of them.
	Checks []string
	// ExpiresIn is how far ahead of its expiry the keyring certificate is warned
	// about; 0 means DefaultExpiresIn.
	ExpiresIn time.Duration
	// MaxAppKeys is how many certificates the app may hold before keyring-cert warns;
	// 0 means DefaultMaxAppKeys.
	MaxAppKeys int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Deps are the services the checks use.
type Deps struct {
	// Store is the keyring holding the provisioner's certificate bundle.
	Store *keystore.Store
	// GraphCredential reads Graph; nil means TokenCredential, else the provisioner's own
	// certificate credential built from the keyring bundle.
	GraphCredential azcore.TokenCredential
	// TokenCredential, when set, is the provisioner's credential instead of the keyring
	// certificate: a federated one (-credential federated), whose tokens the token check
	// mints and checks; the default checks are then those DefaultChecks gives it.
	TokenCredential azcore.TokenCredential
	// Credential tunes the certificate credentials (transport, retries).
	Credential entra.CredentialOptions
	// Graph tunes the Graph client.
	Graph entra.GraphOptions
	// Stderr receives Wait's progress lines; nil discards them.
	Stderr io.Writer
	// Progress, when set, receives each failing report of Wait instead of Stderr's line.
	Progress func(*Report)
}

// Run performs the selected checks. A check that fails does not stop the others.
// The error is non-nil only for a bad configuration (an unknown check name).
func Run(ctx context.Context, cfg Config, deps Deps) (*Report, error) {
	doc, docErr := state.Load(cfg.StatePath)
	selected := cfg.Checks
	if len(selected) == 0 {
		selected = DefaultChecks(doc, deps.TokenCredential != nil)
	}
	for _, name := range selected {
		if !slices.Contains(CheckNames(), name) {
			return nil, fmt.Errorf("unknown check %q: valid checks are %s", name, strings.Join(CheckNames(), ", "))
		}
	}
	if deps.Store == nil {
		return nil, errors.New("verify: no keyring store")
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	if cfg.ExpiresIn <= 0 {
		cfg.ExpiresIn = DefaultExpiresIn
	}
	if cfg.MaxAppKeys <= 0 {
		cfg.MaxAppKeys = DefaultMaxAppKeys
	}
	r := &run{cfg: cfg, deps: deps, now: now(), readsTogether: slices.Contains(selected, NameToken),
		readsFICs: slices.Contains(selected, NameFederated) || slices.Contains(selected, NameNoPasswords)}
	r.doc, r.docErr = doc, docErr
	r.ficsChecked = slices.Contains(selected, NameFederated)

	checks := map[string]func(context.Context) Result{
		NameSecretPurged: r.secretPurged,
		NameNoPasswords:  r.noPasswords,
		NameFederated:    r.federatedCredentials,
		NameKeyringCert:  r.keyringCert,
		NameToken:        r.token,
	}
	var results []Result
	for _, name := range CheckNames() {
		if slices.Contains(selected, name) {
			results = append(results, checks[name](ctx))
		}
	}
	return NewReport(results...), nil
}

// run holds what one Run has read, so each source is read at most once.
type run struct {
	cfg  Config
	deps Deps
	now  time.Time
	// readsTogether: the token check needs both the app and Graph's service principal,
	// so the first of them to be needed reads both, concurrently (one round trip).
	readsTogether bool
	// readsFICs: the app's federated credentials are read with the app (the same round
	// trip); ficsChecked: federated-credentials runs (else no-passwords flags any FIC).
	readsFICs, ficsChecked bool

	doc    *state.Doc
	docErr error

	bundleRead bool
	bundle     *certs.Bundle
	bundleErr  error

	cred    azcore.TokenCredential
	credErr error

	graph    *entra.Graph
	graphErr error

	appRead bool
	app     *entra.Application
	appErr  error

	graphSPRead bool
	graphSP     *entra.ServicePrincipal
	graphSPErr  error

	ficsRead bool
	fics     []entra.FederatedIdentityCredential
	ficsErr  error
}

// ---- checks --------------------------------------------------------------------------

// secretPurged: the state file holds no PROVISIONER_CLIENT_SECRET. Warns about
// backups that still hold one.
func (r *run) secretPurged(context.Context) Result {
	path := r.cfg.StatePath
	var res Result
	switch {
	case r.docErr != nil:
		res = fail(NameSecretPurged, "could not read the state file: "+oneLine(r.docErr.Error()))
	case r.doc.Has(state.KeyClientSecret):
		res = fail(NameSecretPurged, fmt.Sprintf("%s still holds %s; run `entraclaw-migrate` to purge it", path, state.KeyClientSecret))
	default:
		res = pass(NameSecretPurged, fmt.Sprintf("%s holds no %s", path, state.KeyClientSecret))
	}
	res.Warnings = append(res.Warnings, r.backupWarnings()...)
	return res
}

// backupWarnings names the state backups that still hold the client secret.
func (r *run) backupWarnings() []string {
	backups, err := state.Backups(r.cfg.StatePath)
	if err != nil {
		return []string{"could not list the state backups: " + oneLine(err.Error())}
	}
	var holding []string
	for _, b := range backups {
		if doc, err := state.Load(b); err == nil && doc.Has(state.KeyClientSecret) {
			holding = append(holding, b)
		}
	}
	if len(holding) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%d state backup(s) still hold %s: %s; once rollback is no longer needed, remove them with `shred -u %s`",
		len(holding), state.KeyClientSecret, strings.Join(holding, ", "), strings.Join(holding, " "))}
}

// noPasswords: the app has no password credentials (client secrets).
func (r *run) noPasswords(ctx context.Context) Result {
	app, err := r.application(ctx)
	switch {
	case r.notYet(err) != "":
		return notYetChecked(NameNoPasswords, "not yet checked ("+r.notYet(err)+")")
	case err != nil:
		return couldNotRun(NameNoPasswords, "could not read the app: "+describe(err))
	case app == nil:
		return fail(NameNoPasswords, r.appMissing())
	}
	n := len(app.PasswordCredentials)
	var ficWarning string
	if n == 0 && !r.ficsChecked {
		// The supplementary read of the app's federated credentials: a FIC found is a
		// failure; a read that failed (beside a read of the app that worked) is a warning,
		// so a passing password check is not held up by it.
		switch unknown, err := r.unrecordedFICs(ctx); {
		case err != nil:
			ficWarning = "the app's federated credentials could not be read (" + describe(err) + "); `entraclaw-verify -check " + NameFederated + "` checks them"
		case unknown != "":
			return fail(NameNoPasswords, "app "+app.AppID+" has 0 password credentials but "+unknown)
		}
	}
	if n == 0 {
		res := pass(NameNoPasswords, fmt.Sprintf("app %s has 0 password credentials", app.AppID))
		if ficWarning != "" {
			res.Warnings = append(res.Warnings, ficWarning)
		}
		return res
	}
	found := make([]string, n)
	for i, p := range app.PasswordCredentials {
		found[i] = describePassword(p)
	}
	return fail(NameNoPasswords, fmt.Sprintf("app %s has %d password credential(s): %s; run `entraclaw-migrate` to remove them",
		app.AppID, n, strings.Join(found, ", ")))
}

// describePassword names a password credential by its metadata; Graph never returns
// the secret itself except when adding it, and it is not printed here either.
func describePassword(p entra.PasswordCredential) string {
	var attrs []string
	if p.DisplayName != "" {
		attrs = append(attrs, fmt.Sprintf("displayName %q", p.DisplayName))
	}
	if p.Hint != "" {
		attrs = append(attrs, fmt.Sprintf("hint %q", p.Hint))
	}
	if end := p.End(); !end.IsZero() {
		attrs = append(attrs, "ends "+end.UTC().Format(time.DateOnly))
	}
	if len(attrs) == 0 {
		return "keyId " + p.KeyID
	}
	return fmt.Sprintf("keyId %s (%s)", p.KeyID, strings.Join(attrs, ", "))
}

// keyringCert: the keyring bundle exists and parses, matches the state file's
// thumbprint, is registered on the app and has not expired. Metadata only.
func (r *run) keyringCert(ctx context.Context) Result {
	res := r.keyringCertVerdict(ctx)
	res.Warnings = append(res.Warnings, r.otherExpiredCertWarnings(ctx)...)
	res.Warnings = append(res.Warnings, r.keyCountWarnings(ctx)...)
	res.Strays = r.strayCertificates(ctx)
	for _, s := range res.Strays {
		res.Warnings = append(res.Warnings, r.strayWarning(s))
	}
	return res
}

func (r *run) keyringCertVerdict(ctx context.Context) Result {
	b, err := r.loadBundle()
	if err != nil {
		if isUnavailable(err) {
			return couldNotRun(NameKeyringCert, oneLine(err.Error()))
		}
		var fileErr *keystore.FileError
		if errors.As(err, &fileErr) {
			// A key file that may not be used as it is: its own fix, not a new migration.
			return fail(NameKeyringCert, oneLine(err.Error())+"; "+fileErr.Hint())
		}
		return fail(NameKeyringCert, oneLine(err.Error())+"; run `entraclaw-migrate`")
	}
	thumb := certs.Thumbprint(b.Cert)
	notAfter := b.Cert.NotAfter.UTC().Format(time.RFC3339)
	var problems, warnings []string

	switch recorded := r.recordedThumbprint(); {
	case r.docErr != nil:
		problems = append(problems, "cannot compare with the state file: "+oneLine(r.docErr.Error()))
	case recorded == "":
		problems = append(problems, fmt.Sprintf("%s has no %s", r.cfg.StatePath, state.KeyThumbprint))
	case !strings.EqualFold(recorded, thumb):
		problems = append(problems, fmt.Sprintf("keyring certificate %s does not match %s %s in %s", thumb, state.KeyThumbprint, recorded, r.cfg.StatePath))
	}
	if err := machinecert.CheckExpiry(r.deps.Store, r.cfg.Tenant, b, r.now); err != nil {
		problems = append(problems, err.Error())
	} else if certs.ExpiresWithin(b.Cert, r.now, r.cfg.ExpiresIn) {
		days := int(b.Cert.NotAfter.Sub(r.now).Hours() / 24)
		warnings = append(warnings, fmt.Sprintf("provisioner certificate %s expires on %s (in %d days); run `entraclaw-migrate` to rotate it",
			thumb, b.Cert.NotAfter.UTC().Format(time.DateOnly), days))
	}

	keys, keysErr := r.applicationKeys(ctx)
	onApp := false
	if keysErr == nil {
		onApp = slices.ContainsFunc(keys, func(k entra.KeyCredential) bool { return k.MatchesThumbprint(thumb) })
		if !onApp {
			problems = append(problems, fmt.Sprintf("certificate %s is not registered on the app (%d other certificate(s) there)", thumb, len(keys)))
		}
	}

	var res Result
	switch {
	case len(problems) > 0:
		res = fail(NameKeyringCert, strings.Join(problems, "; ")+"; run `entraclaw-migrate`")
	case r.notYet(keysErr) != "":
		res = notYetChecked(NameKeyringCert, fmt.Sprintf("not yet checked on the app (%s); thumbprint %s matches the state file, expires %s",
			r.notYet(keysErr), thumb, notAfter))
	case keysErr != nil:
		res = couldNotRun(NameKeyringCert, fmt.Sprintf("thumbprint %s matches the state file, expires %s, but could not read the app's certificates: %s",
			thumb, notAfter, describe(keysErr)))
	default:
		where := "in the " + r.deps.Store.BackendName()
		if b.TPMBound() {
			where += ", private key bound to this machine's TPM"
		}
		if path := r.deps.Store.KeyFile(r.cfg.Tenant); path != "" {
			where = "private key: TPM-wrapped file " + path + " (this machine's TPM)"
		}
		res = pass(NameKeyringCert, fmt.Sprintf("thumbprint %s matches the state file and the app, expires %s, %s", thumb, notAfter, where))
	}
	res.Warnings = append(res.Warnings, warnings...)
	return res
}

// otherExpiredCertWarnings names expired certificates on the app other than this
// machine's (other machines' certificates are never touched by the tools).
func (r *run) otherExpiredCertWarnings(ctx context.Context) []string {
	keys, err := r.applicationKeys(ctx)
	if err != nil {
		return nil
	}
	mine := ""
	if b, err := r.loadBundle(); err == nil {
		mine = certs.Thumbprint(b.Cert)
	}
	var warnings []string
	for _, k := range keys {
		end := k.End()
		if end.IsZero() || end.After(r.now) || (mine != "" && k.MatchesThumbprint(mine)) {
			continue
		}
		warnings = append(warnings, fmt.Sprintf("the app holds another certificate that expired on %s: thumbprint %s, keyId %s; remove it from the app registration if no machine needs it",
			end.UTC().Format(time.DateOnly), orNone(displayThumbprint(k)), k.KeyID))
	}
	return warnings
}

// keyCountWarnings warns when the app holds more certificates than MaxAppKeys: a warning,
// not a failure, since every certificate still works; the fix is to prune the expired ones
// before Graph refuses the next renewal's.
func (r *run) keyCountWarnings(ctx context.Context) []string {
	keys, err := r.applicationKeys(ctx)
	if err != nil || len(keys) <= r.cfg.MaxAppKeys {
		return nil
	}
	return []string{fmt.Sprintf("the app holds %d certificates (keyCredentials), more than -max-app-keys %d; Graph refuses new ones once the app object is too large (Directory_ResourceSizeExceeded), which stops renewals: remove the expired ones with `entraclaw-migrate -prune-expired 30d`",
		len(keys), r.cfg.MaxAppKeys)}
}

// token: a token minted in this Run with the keyring certificate is an app-only Graph
// token for this app and tenant, from a certificate, with every required role.
func (r *run) token(ctx context.Context) Result {
	if r.deps.TokenCredential != nil {
		return r.checkMintedToken(ctx, r.deps.TokenCredential)
	}
	b, err := r.currentBundle()
	switch {
	case err != nil && isUnavailable(err):
		return couldNotRun(NameToken, "no certificate to request a token with: "+oneLine(err.Error()))
	case machinecert.Is(err, machinecert.Expired):
		return fail(NameToken, err.Error()+"; Entra ID issues no token for it; run `entraclaw-migrate`")
	case err != nil:
		return fail(NameToken, "no certificate to request a token with: "+oneLine(err.Error()))
	}
	cred, err := r.provisionerCredential(b)
	if err != nil {
		return fail(NameToken, oneLine(err.Error()))
	}
	return r.checkMintedToken(ctx, cred)
}

// checkMintedToken mints a Graph token with cred and checks its claims.
func (r *run) checkMintedToken(ctx context.Context, cred azcore.TokenCredential) Result {
	// As the Graph client asks (EnableCAE): the credential caches CAE and non-CAE tokens
	// apart, and only a matching request is served the token the Graph client minted
	// earlier in this Run. Its failure is typed (entra.AuthError).
	at, err := entra.FetchGraphClientToken(ctx, cred, r.cfg.Cloud.GraphScope())
	if err != nil && entra.IsThrottled(err) {
		res := couldNotRun(NameToken, "not yet: Entra ID is throttling token requests: "+describe(err))
		res.Throttled = true
		return res
	}
	if err != nil {
		if _, rejected := entra.AsSTSError(err); rejected {
			res := fail(NameToken, "token request rejected: "+describe(err))
			_, res.notYet = entra.NotYet(err)
			return res
		}
		if errors.Is(err, tpmkey.ErrForeignKey) {
			// A verdict, not an outage: this machine cannot sign with the key it holds.
			return fail(NameToken, "could not request a token: "+describe(err))
		}
		return couldNotRun(NameToken, "could not request a token: "+describe(err))
	}
	d, err := entra.DecodeJWT(at.Token)
	if err != nil {
		return fail(NameToken, err.Error())
	}

	sp, spErr := r.graphServicePrincipal(ctx)
	if spErr == nil && sp == nil {
		spErr = errors.New("the tenant has no Microsoft Graph service principal")
	}
	// The roles the app declares decide what is required (RoleRule); when the app cannot
	// be read, every published Agent ID role is.
	app, appErr := r.application(ctx)
	if appErr != nil {
		app = nil
	}
	if res, revoked := revokedByChallenge(spErr, appErr); revoked {
		return res
	}
	roles := RoleRule(sp, app)
	res := checkClaims(d, Expectations{
		GraphEndpoint: r.cfg.Cloud.GraphEndpoint, Tenant: r.cfg.Tenant, Client: r.cfg.Client,
		Roles: roles.Required, Now: r.now,
	})
	if res.OK && spErr != nil {
		res = couldNotRun(NameToken, res.Detail+"; but the Agent ID roles were not checked: could not read Graph's app roles: "+describe(spErr))
	}
	if len(roles.Undeclared) > 0 {
		res.Warnings = append(res.Warnings, undeclaredRolesWarning(roles.Undeclared))
	}
	return res
}

// revokedByChallenge: a Graph read failed because the token service refused this app a
// token (Graph's CAE claims challenge for a long-lived token, then AADSTS7000112 for a
// disabled app, for example). The token in hand is then revoked however long it has
// left, so the token check fails rather than passing on it.
func revokedByChallenge(errs ...error) (Result, bool) {
	for _, err := range errs {
		_, notYet := entra.NotYet(err) // propagation right after an upload: not a revocation
		if _, ok := entra.AsSTSError(err); ok && !notYet && !entra.IsThrottled(err) {
			return fail(NameToken, "token request rejected when Graph asked for a fresh token: "+describe(err)), true
		}
	}
	return Result{}, false
}

// ---- sources -------------------------------------------------------------------------

// loadBundle reads and parses the keyring bundle once (machinecert.Read). Errors are a
// *machinecert.Error (missing, which wraps keystore.ErrNotFound, or corrupt) or the
// keyring's own (*keystore.UnavailableError, *keystore.FileError).
func (r *run) loadBundle() (*certs.Bundle, error) {
	if !r.bundleRead {
		r.bundleRead = true
		r.bundle, r.bundleErr = machinecert.Read(r.deps.Store, r.cfg.Tenant)
	}
	return r.bundle, r.bundleErr
}

// currentBundle is loadBundle refusing an expired certificate (machinecert's Expired).
func (r *run) currentBundle() (*certs.Bundle, error) {
	b, err := r.loadBundle()
	if err == nil {
		err = machinecert.CheckExpiry(r.deps.Store, r.cfg.Tenant, b, r.now)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// recordedThumbprint is PROVISIONER_CERT_THUMBPRINT from the state file, or "".
func (r *run) recordedThumbprint() string {
	if r.doc == nil {
		return ""
	}
	s, _, _ := r.doc.String(state.KeyThumbprint)
	return strings.TrimSpace(s)
}

// provisionerCredential builds the certificate credential for the keyring bundle b once.
// The Graph client and the token check share it: the token check is then handed, from
// the credential's memory, the token minted for Graph moments earlier in this Run instead
// of signing in a second time. Every Run (every -wait attempt) builds its own.
func (r *run) provisionerCredential(b *certs.Bundle) (azcore.TokenCredential, error) {
	if r.cred == nil && r.credErr == nil {
		r.cred, r.credErr = entra.NewCertificateCredential(r.cfg.Cloud, r.cfg.Tenant, r.cfg.Client, b, r.deps.Credential)
	}
	return r.cred, r.credErr
}

// graphClient builds the Graph client once: with Deps.GraphCredential, else with the
// provisioner's certificate.
func (r *run) graphClient() (*entra.Graph, error) {
	if r.graph != nil || r.graphErr != nil {
		return r.graph, r.graphErr
	}
	cred := r.deps.GraphCredential
	if cred == nil {
		cred = r.deps.TokenCredential
	}
	if cred == nil {
		b, err := r.currentBundle()
		if err != nil {
			r.graphErr = fmt.Errorf("no provisioner certificate to read Graph with (%s); pass -operator-auth azcli to read it as yourself", oneLine(err.Error()))
			return nil, r.graphErr
		}
		if cred, err = r.provisionerCredential(b); err != nil {
			r.graphErr = err
			return nil, err
		}
	}
	r.graph, r.graphErr = entra.NewGraph(r.cfg.Cloud, cred, r.deps.Graph)
	return r.graph, r.graphErr
}

// application reads the app by client id once, in one request, its certificates with
// their bodies; nil, nil when there is none.
func (r *run) application(ctx context.Context) (*entra.Application, error) {
	if r.appRead {
		return r.app, r.appErr
	}
	r.readGraph(ctx, true, r.readsTogether)
	return r.app, r.appErr
}

// readGraph reads the app and/or Graph's service principal, both at once when asked
// for both, and records the results.
func (r *run) readGraph(ctx context.Context, app, sp bool) {
	g, err := r.graphClient()
	if err != nil {
		if app {
			r.appRead, r.appErr = true, err
		}
		if sp {
			r.graphSPRead, r.graphSPErr = true, err
		}
		if r.readsFICs {
			r.ficsRead, r.ficsErr = true, err
		}
		return
	}
	var wg sync.WaitGroup
	if app && !r.appRead {
		r.appRead = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.app, r.appErr = g.GetApplicationByAppID(ctx, r.cfg.Client)
		}()
	}
	if sp && !r.graphSPRead {
		r.graphSPRead = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.graphSP, r.graphSPErr = g.FindServicePrincipal(ctx, entra.GraphAppID)
		}()
	}
	if r.readsFICs && !r.ficsRead {
		r.ficsRead = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.fics, r.ficsErr = g.ListFederatedCredentialsByAppID(ctx, r.cfg.Client)
		}()
	}
	wg.Wait()
}

func (r *run) appMissing() string {
	return fmt.Sprintf("no application with appId %s in tenant %s; run `entraclaw-migrate`", r.cfg.Client, r.cfg.Tenant)
}

// applicationKeys is the app's certificates with their bodies; an error when the app
// could not be read or does not exist.
func (r *run) applicationKeys(ctx context.Context) ([]entra.KeyCredential, error) {
	app, err := r.application(ctx)
	switch {
	case err != nil:
		return nil, err
	case app == nil:
		return nil, errors.New(r.appMissing())
	}
	return app.KeyCredentials, nil
}

// graphServicePrincipal reads Microsoft Graph's service principal (its app roles) once.
func (r *run) graphServicePrincipal(ctx context.Context) (*entra.ServicePrincipal, error) {
	if r.graphSPRead {
		return r.graphSP, r.graphSPErr
	}
	r.readGraph(ctx, r.readsTogether, true)
	return r.graphSP, r.graphSPErr
}

// notYet says why Graph cannot be read yet, "" when it can or fails for another reason:
// Graph is read with the provisioner's own certificate, and Entra ID refuses it with a
// code that right after a migration means "not yet" (the certificate, app or service
// principal has not propagated). The token check is then the one to wait for.
func (r *run) notYet(err error) string {
	code, ok := entra.NotYet(err)
	if !ok || r.deps.GraphCredential != nil {
		return ""
	}
	switch code {
	case 700016:
		return "the app is not known to Entra ID yet: AADSTS700016"
	case 7000229:
		return "the app's service principal is not known to Entra ID yet: AADSTS7000229"
	}
	return fmt.Sprintf("the certificate is not accepted yet: AADSTS%d", code)
}

// ---- helpers -------------------------------------------------------------------------

// displayThumbprint names a key credential in a message: the SHA-1 thumbprint of its
// certificate body, or its customKeyIdentifier as Graph has it when there is no body.
// Whether it is a given certificate is KeyCredential.MatchesThumbprint's to say.
func displayThumbprint(k entra.KeyCredential) string {
	if k.Key != nil {
		if der, err := base64.StdEncoding.DecodeString(*k.Key); err == nil && len(der) > 0 {
			sum := sha1.Sum(der)
			return hex.EncodeToString(sum[:])
		}
	}
	if k.CustomKeyIdentifier != nil {
		return strings.ToLower(*k.CustomKeyIdentifier)
	}
	return ""
}

func isUnavailable(err error) bool {
	var u *keystore.UnavailableError
	return errors.As(err, &u)
}

// describe turns an error from Graph or the STS into one line for a detail. A check has
// no hint line of its own, so the typed error's hint follows its one-line text.
func describe(err error) string {
	msg := oneLine(err.Error())
	var ae *entra.AuthError
	if errors.As(err, &ae) && ae.Hint() != "" {
		msg += "; " + ae.Hint()
	}
	return msg
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}
