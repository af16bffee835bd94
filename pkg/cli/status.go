package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/machinecert"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// statusReport is `entraclaw-verify -offline`: what this machine holds, read from the
// state file and the keyring only (like `gh auth status`). It never holds a secret.
type statusReport struct {
	OK                 bool             `json:"ok"`
	StateFile          string           `json:"stateFile"`
	Config             statusConfig     `json:"config"`
	Tenant             string           `json:"tenant"`
	Client             string           `json:"client"`
	RecordedThumbprint string           `json:"recordedThumbprint"`
	KeyStore           statusKeyStore   `json:"keyStore"`
	TokenCache         statusTokenCache `json:"tokenCache"`
	Certificate        *statusCert      `json:"certificate"`
	CachedTokens       []statusToken    `json:"cachedTokens"`
	SecretInStateFile  bool             `json:"secretInStateFile"`
	BackupsWithSecret  []string         `json:"backupsWithSecret"`
	Renewal            statusRenewal    `json:"renewal"`
	Problems           []string         `json:"problems"`
	// Warnings are remarks that do not fail the status (a renewal record that does not
	// parse); text output prints them on stderr.
	Warnings []string          `json:"warnings"`
	exit     int               // 0, ExitCheckFailed or ExitNotSetUp
	notes    map[string]string // text-only remarks per line
	hints    []string          // what fixes the problems, for the error's hint
}

// statusConfig is the config file layer: the file read ("" when none was) and its lines
// that set a value of this run (a flag or variable beats the file).
type statusConfig struct {
	File   string   `json:"file"`
	Values []string `json:"values"`
	absent string   // the default file looked for, when there was none
}

type statusKeyStore struct {
	Backend string `json:"backend"`
	Service string `json:"service"`
	Account string `json:"account"`
	// File is the TPM-wrapped key file of the current certificate ("" in a keyring).
	File string `json:"file,omitempty"`
}

// statusTokenCache is the token cache -token-cache chose: its kind (keyring, kernel or
// none) and the status line that names it.
type statusTokenCache struct {
	Kind        string `json:"kind"`
	Description string `json:"description"`
}

type statusCert struct {
	Thumbprint   string `json:"thumbprint"`
	NotAfter     string `json:"notAfter"`
	DaysLeft     int    `json:"daysLeft"`
	Expired      bool   `json:"expired"`
	MatchesState bool   `json:"matchesState"`
	// PrivateKey is where the private key is: "keyring" (in the item), "tpm" (the
	// item holds only the TPM's wrapped key; the TPM is not opened offline) or "tpm-file"
	// (the TPM's wrapped key in a file).
	PrivateKey string `json:"privateKey"`
	cert       *x509.Certificate
}

// statusRenewal is the renewal record (state.Renewal) as the status shows it: the last
// attempt of entraclaw-migrate -renew and the job installed to run it.
type statusRenewal struct {
	// Recorded: there is a record that parses; when false, nothing below is known.
	Recorded  bool   `json:"recorded"`
	Attempted string `json:"attempted"` // RFC 3339, "" when no attempt ran
	Outcome   string `json:"outcome"`
	Error     string `json:"error"`
	NextDue   string `json:"nextDue"` // RFC 3339, "" when unknown
	// ConsecutiveFailures counts the failed attempts since the last success.
	ConsecutiveFailures int `json:"consecutiveFailures"`
	// Schedule describes the installed renewal job, "" when none is installed.
	Schedule string `json:"schedule"`
}

type statusToken struct {
	Scope      string `json:"scope"`
	Thumbprint string `json:"thumbprint"`
	ExpiresOn  string `json:"expiresOn"`
	Valid      bool   `json:"valid"`
}

// runStatus gathers and prints the offline status. Exit 4 when the certificate expires
// within expiresIn or a client secret is on disk (state file or backup); exit 3, which wins,
// when there is no usable certificate at all (none, unparsable or expired).
func runStatus(env *Env, expiresIn time.Duration, stdio Stdio, c *Common) error {
	now := time.Now()
	var err error
	if env.Store, err = c.withTokenCache(env.Store, false); err != nil {
		return err
	}
	st := &statusReport{
		StateFile: env.StatePath, Config: statusConfigOf(c), Tenant: env.Tenant, Client: env.Client,
		RecordedThumbprint: strings.ToLower(env.Thumbprint),
		KeyStore:           statusKeyStore{Backend: env.Store.BackendName(), Service: env.KeyringService, Account: env.Tenant, File: env.Store.KeyFile(env.Tenant)},
		TokenCache:         statusTokenCache{Kind: env.Store.TokenCacheKind(), Description: c.describeTokenCache(env.Store)},
		CachedTokens:       []statusToken{}, BackupsWithSecret: []string{}, Problems: []string{},
		Warnings: []string{}, notes: map[string]string{},
	}
	if err := st.readCertificate(env, now, expiresIn); err != nil {
		return err
	}
	problem := st.problem
	st.readRenewal(env.StatePath, now)

	scope := env.Cloud.GraphScope()
	tokens, err := appTokens(env).Find(scope, env.Thumbprint)
	if err != nil {
		st.notes["token"] = "could not read the token cache: " + oneLine(err.Error())
	}
	for _, t := range tokens {
		st.CachedTokens = append(st.CachedTokens, statusToken{Scope: scope, Thumbprint: t.Thumbprint,
			ExpiresOn: t.ExpiresOn.UTC().Format(time.RFC3339), Valid: t.ExpiresOn.After(now)})
	}

	if env.State != nil && env.State.Has(state.KeyClientSecret) {
		st.SecretInStateFile = true
		problem(ExitCheckFailed, "%s still holds %s: run `entraclaw-migrate`", env.StatePath, state.KeyClientSecret)
	}
	backups, err := state.Backups(env.StatePath)
	if err != nil {
		st.notes["backups"] = "could not list the backups: " + oneLine(err.Error())
	}
	for _, b := range backups {
		if doc, err := state.Load(b); err == nil && doc.Has(state.KeyClientSecret) {
			st.BackupsWithSecret = append(st.BackupsWithSecret, b)
		}
	}
	if n := len(st.BackupsWithSecret); n > 0 {
		problem(ExitCheckFailed, "%d state backup(s) still hold %s; once rollback is no longer needed: shred -u %s",
			n, state.KeyClientSecret, strings.Join(st.BackupsWithSecret, " "))
	}
	st.OK = len(st.Problems) == 0

	if c.JSON() {
		if err := WriteJSON(stdio.Out, st); err != nil {
			return err
		}
	} else {
		if err := printStatus(stdio.Out, st, stdoutPainter(stdio)); err != nil {
			return err
		}
		for _, w := range st.Warnings {
			fmt.Fprintf(stdio.Err, "entraclaw-verify: %s %s\n", newPainter(stdio).yellow("warning:"), w)
		}
	}
	switch st.exit {
	case 0:
		return nil
	case ExitNotSetUp:
		return Errorf(ExitNotSetUp, migrateHint, "not set up: %s", st.Problems[0])
	default:
		return Errorf(ExitCheckFailed, strings.Join(st.hints, "; "), "%d problem(s): %s", len(st.Problems), strings.Join(st.Problems, "; "))
	}
}

func printStatus(w io.Writer, st *statusReport, p painter) error {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "  %-15s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	b.WriteString("entraclaw status (offline: read from the state file and the keyring; nothing sent over the network)\n")
	line("state file", "%s", st.StateFile)
	line("config file", "%s", st.Config.text())
	line("app", "%s in tenant %s", st.Client, st.Tenant)
	if c := st.Certificate; c != nil {
		match := p.green("matches PROVISIONER_CERT_THUMBPRINT")
		if !c.MatchesState {
			match = p.red("state file records " + orNone(st.RecordedThumbprint))
		}
		line("certificate", "%s (%s)", c.Thumbprint, match)
		when := fmt.Sprintf("%s (in %d days)", c.NotAfter, c.DaysLeft)
		if c.Expired {
			when = p.red(c.NotAfter + " (expired)")
		}
		line("expires", "%s", when)
		switch c.PrivateKey {
		case state.KeyStoreTPMFile:
			line("private key", "TPM-wrapped file %s (this machine's TPM)", st.KeyStore.File)
		case state.KeyStoreTPM:
			line("private key", "in this machine's TPM (the keyring item holds only its wrapped blob)")
		default:
			line("private key", "in the keyring item")
		}
	} else {
		line("certificate", "%s", p.red("none in the keyring"))
	}
	if st.KeyStore.File != "" {
		line("key store", "%s, %s", st.KeyStore.Backend, st.KeyStore.File)
	} else {
		line("key store", "%s, service %q, account %s", st.KeyStore.Backend, st.KeyStore.Service, st.KeyStore.Account)
	}
	line("token cache", "%s", st.TokenCache.Description)
	switch {
	case st.notes["token"] != "":
		line("cached token", "%s", st.notes["token"])
	case len(st.CachedTokens) == 0:
		line("cached token", "none (the next entraclaw-provisioner-token asks Entra ID)")
	}
	for _, t := range st.CachedTokens {
		validity := "valid until " + t.ExpiresOn
		if !t.Valid {
			validity = "expired at " + t.ExpiresOn
		}
		line("cached token", "%s, for %s (certificate %s)", validity, t.Scope, t.Thumbprint)
	}
	secrets := p.green("none")
	var where []string
	if st.SecretInStateFile {
		where = append(where, "the state file")
	}
	where = append(where, st.BackupsWithSecret...)
	if len(where) > 0 {
		secrets = p.red("PROVISIONER_CLIENT_SECRET in " + strings.Join(where, ", "))
	}
	line("secret on disk", "%s", secrets)
	st.Renewal.print(line, p)
	if n := st.notes["backups"]; n != "" {
		line("backups", "%s", n)
	}
	if st.OK {
		b.WriteString("OK\n")
	} else {
		fmt.Fprintf(&b, "%d problem(s)\n", len(st.Problems))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// text is the status line: the file and what it set, or why none was read.
func (sc statusConfig) text() string {
	switch {
	case sc.File == "" && sc.absent != "":
		return "none (" + sc.absent + " is not present)"
	case sc.File == "":
		return "none"
	case len(sc.Values) == 0:
		return sc.File + " (read; it set nothing for this command)"
	}
	return sc.File + " (set " + strings.Join(sc.Values, ", ") + ")"
}

// statusConfigOf reports the config file c's Parse read.
func statusConfigOf(c *Common) statusConfig {
	sc := statusConfig{Values: []string{}}
	switch {
	case c.config == nil:
	case c.config.Read:
		sc.File = c.config.Path
		sc.Values = append(sc.Values, c.config.Values...)
	default:
		sc.absent = c.config.Path
	}
	return sc
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// problem records one problem; "not set up" (3: run migrate) wins over "a problem" (4).
func (st *statusReport) problem(code int, format string, args ...any) {
	st.Problems = append(st.Problems, fmt.Sprintf(format, args...))
	if st.exit != ExitNotSetUp {
		st.exit = code
	}
}

// readCertificate reads this machine's certificate into the report, with its problems:
// machinecert's wording for a missing, corrupt or expired certificate, and its advice.
func (st *statusReport) readCertificate(env *Env, now time.Time, expiresIn time.Duration) error {
	b, err := machinecert.Read(env.Store, env.Tenant)
	var unusable *machinecert.Error
	switch {
	case errors.As(err, &unusable):
		st.problem(ExitNotSetUp, "%s: %s", unusable.Error(), unusable.Hint())
		return nil
	case err != nil:
		return err
	}
	thumb := certs.Thumbprint(b.Cert)
	left := b.Cert.NotAfter.Sub(now)
	st.Certificate = &statusCert{
		Thumbprint: thumb, NotAfter: b.Cert.NotAfter.UTC().Format(time.RFC3339),
		DaysLeft: int(left.Hours() / 24), Expired: certs.Expired(b.Cert, now),
		MatchesState: thumb == st.RecordedThumbprint, PrivateKey: "keyring", cert: b.Cert,
	}
	switch {
	case st.KeyStore.File != "":
		st.Certificate.PrivateKey = state.KeyStoreTPMFile
	case b.TPMBound():
		st.Certificate.PrivateKey = state.KeyStoreTPM
	}
	if err := machinecert.CheckExpiry(env.Store, env.Tenant, b, now); errors.As(err, &unusable) {
		st.problem(ExitNotSetUp, "%s: %s", unusable.Error(), unusable.Hint())
	} else if certs.ExpiresWithin(b.Cert, now, expiresIn) {
		st.problem(ExitCheckFailed, "certificate %s expires on %s (in %d days, within -expires-in %s): run `entraclaw-migrate` to renew it",
			thumb, b.Cert.NotAfter.UTC().Format("2006-01-02"), st.Certificate.DaysLeft, expiresIn)
	}
	if !st.Certificate.MatchesState {
		st.problem(ExitCheckFailed, "the keyring certificate %s is not the one the state file records (%s): run `entraclaw-migrate`", thumb, orNone(st.RecordedThumbprint))
	}
	return nil
}
