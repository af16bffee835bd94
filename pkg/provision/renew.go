package provision

import (
	"cmp"
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/exit"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// Renewal is the provisioner renewing its own certificate, unattended (entraclaw-migrate
// -renew, run daily by the -schedule job). It signs in with this machine's current
// certificate, never as an operator: no lookup by name, no consent, no permission or
// secret changes. When the certificate is not due it reads the keyring and stops,
// sending nothing. When it is due it rotates make-before-break through addKey and
// removeKey, so the token loop never breaks and no other machine's certificate can be
// dropped; a pending rotation (<tenant>.next) is picked up, never a second one started.
// Every attempt is recorded in the state file's renewal record (state.Renewal).

// renewShare and renewJitter: a certificate is due at 2/3 of its lifetime, moved by up to
// ±5% of the lifetime by its thumbprint, so machines that migrated together renew on
// different days (cert-manager renews at 2/3, kubelet at a jittered 70–90%).
const (
	renewShare  = 2.0 / 3
	renewJitter = 0.05
)

// RenewalSummary is what Renew found and did.
type RenewalSummary struct {
	Due           bool   `json:"due"`
	NextDue       string `json:"nextDue"`
	Outcome       string `json:"outcome"`
	GraphRequests int    `json:"graphRequests"`
	GraphWrites   int    `json:"graphWrites"`
}

// RenewalDue is when the certificate is due for renewal: NotAfter - renewBefore when
// renewBefore > 0, else NotBefore + 2/3 of the lifetime + the thumbprint's jitter.
func RenewalDue(c *x509.Certificate, renewBefore time.Duration) time.Time {
	if renewBefore > 0 {
		return c.NotAfter.Add(-renewBefore)
	}
	life := c.NotAfter.Sub(c.NotBefore)
	sum := sha1.Sum(c.Raw)
	f := float64(binary.BigEndian.Uint64(sum[:8])) / float64(^uint64(0)) // in [0, 1]
	offset := time.Duration((renewShare + (2*f-1)*renewJitter) * float64(life))
	return c.NotBefore.Add(offset).Truncate(time.Second)
}

// Renew renews this machine's certificate when it is due; see the comment above.
func Renew(ctx context.Context, cfg Config, deps Deps) (*Summary, error) {
	cfg.OperatorAuth = OperatorProvisioner
	m, err := newMigration(cfg, deps)
	if err != nil {
		return nil, err
	}
	m.sum.Renewal = &RenewalSummary{}
	if !cfg.DryRun {
		unlock, err := lockRun(ctx, cfg.StatePath, "entraclaw-migrate -renew", m.out)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	err = m.renew(ctx)
	if m.graph != nil {
		m.sum.Renewal.GraphRequests = m.graph.RequestCount()
		m.sum.Renewal.GraphWrites = m.keyRolls + m.keyPatches
	}
	if !cfg.DryRun {
		m.recordRenewal(err)
	}
	if err != nil {
		return nil, err
	}
	if n := m.passwordsLeft; m.app != nil && n > 0 {
		return &m.sum, &Error{code: exit.CheckFailed, hint: "an operator's `entraclaw-migrate` removes them (make-before-break)",
			msg: fmt.Sprintf("the certificate is renewed, but the app still has %d client secret(s): renewal never removes them", n)}
	}
	m.sum.Changed = !cfg.DryRun && len(m.sum.Actions) > 0
	return &m.sum, nil
}

// renew is Renew's work; m.sum.Renewal says what it decided.
func (m *migration) renew(ctx context.Context) error {
	if err := m.readState(); err != nil {
		return err
	}
	m.tenant = cmp.Or(m.cfg.TenantID, m.stateTenant)
	client := cmp.Or(m.cfg.ClientID, m.stateClient)
	if m.tenant == "" || client == "" {
		return &Error{code: exitNotSetUp, hint: "an operator runs `entraclaw-migrate` first",
			msg: fmt.Sprintf("nothing to renew: %s has no TENANT_ID and PROVISIONER_CLIENT_ID", m.cfg.StatePath)}
	}
	// The keyring items only (m.app is nil, so the app is not read): not due sends nothing.
	if err := m.readCertificates(ctx, m.cfg.Now()); err != nil {
		return err
	}
	if m.current == nil {
		return &Error{code: exitNotSetUp, hint: "an operator runs `entraclaw-migrate` to put a certificate on this machine",
			msg: fmt.Sprintf("nothing to renew: no certificate in the %s for tenant %s", m.sum.KeyringBackend, m.tenant)}
	}
	now := m.cfg.Now()
	cur := m.current.Cert
	m.sum.Thumbprint, m.sum.CertNotAfter = certs.Thumbprint(cur), cur.NotAfter.UTC().Format(time.RFC3339)
	if certs.Expired(cur, now) {
		m.sum.Renewal.Outcome = state.RenewalExpired
		return &Error{code: exitNotSetUp, hint: "an operator must run `entraclaw-migrate` (an app cannot roll its own keys once none is valid)",
			msg: fmt.Sprintf("certificate %s expired on %s: renewal comes too late", m.sum.Thumbprint, day(cur.NotAfter))}
	}
	due := RenewalDue(cur, m.renewBefore())
	m.sum.Renewal.NextDue = due.UTC().Format(time.RFC3339)
	if m.next == nil && now.Before(due) && !m.cfg.Rotate {
		m.sum.Renewal.Outcome = state.RenewalNotDue
		m.say("Not due: certificate %s expires on %s; renewal is due on %s (in %s).", m.sum.Thumbprint, day(cur.NotAfter), day(due), roundDays(due.Sub(now)))
		return nil
	}
	m.sum.Renewal.Due = true
	if err := m.signInProvisioner(ctx, client); err != nil {
		return err
	}
	reason := "renewal due on " + day(due)
	if err := m.runSteps(ctx, []step{
		{"certificate", func(ctx context.Context) error { return m.placeCertificate(ctx, reason) }},
		{stepPropagation, m.awaitPropagation},
		{"make the new certificate current", m.promoteNext},
		{"remove the previous certificate", m.removePreviousCert},
	}); err != nil {
		return err
	}
	switch {
	case m.next != nil:
		m.sum.Renewal.Outcome = state.RenewalPending
		return failf(m.finish(nil), "certificate %s is on the app but Entra ID has not accepted it yet; certificate %s keeps serving", certs.Thumbprint(m.next.Cert), m.sum.Thumbprint)
	default:
		m.sum.Renewal.Outcome = state.RenewalRenewed
		m.sum.Rotated = true
		m.sum.Renewal.NextDue = RenewalDue(m.current.Cert, m.renewBefore()).UTC().Format(time.RFC3339)
	}
	return nil
}

// renewBefore is -renew-before when it was given, else 0 (the 2/3 rule).
func (m *migration) renewBefore() time.Duration {
	if m.cfg.RenewBeforeSet {
		return m.cfg.RenewBefore
	}
	return 0
}

// signInProvisioner signs in with this machine's certificate, reads the app by client id
// (its object id, keys and secrets: the renewal's one read) and the roles its token
// carries, which the new certificate's token must carry too.
func (m *migration) signInProvisioner(ctx context.Context, client string) error {
	op, err := signIn(ctx, m.cfg.Cloud, OperatorProvisioner, m.tenant, m.cfg.StatePath, m.deps)
	if err != nil {
		return err
	}
	m.graph, m.tenant = op.graph, op.tenant
	m.sum.TenantID = m.tenant
	for _, r := range op.roles {
		m.required = append(m.required, entra.AppRole{Value: r})
	}
	app, err := m.graph.GetApplicationByAppID(ctx, client)
	if err != nil {
		return graphFailure(err, "the provisioner reads its own app with Application.ReadWrite.All; run `entraclaw-verify`", "read the provisioner app %s", client)
	}
	if app == nil {
		return &Error{code: exitNotSetUp, hint: "check PROVISIONER_CLIENT_ID in " + m.cfg.StatePath,
			msg: fmt.Sprintf("no application with client id %s in tenant %s", client, m.tenant)}
	}
	m.setApp(app)
	m.appKeys = app.KeyCredentials
	if !hasKey(m.appKeys, m.sum.Thumbprint) {
		return failf("an operator's `entraclaw-migrate` puts it back (another machine or person removed it)",
			"this machine's certificate %s is not on the app, so it cannot prove a renewal", m.sum.Thumbprint)
	}
	return nil
}

// recordRenewal writes the attempt's outcome to the renewal record; a record that
// cannot be written is a warning (the renewal itself stands).
func (m *migration) recordRenewal(runErr error) {
	r := m.sum.Renewal
	now := m.cfg.Now().UTC()
	err := state.UpdateRenewal(m.cfg.StatePath, func(rec *state.Renewal) {
		rec.Attempted = now
		rec.Error = ""
		if r.Outcome == "" {
			r.Outcome = state.RenewalFailed
		}
		rec.Outcome = r.Outcome
		if due, err := time.Parse(time.RFC3339, r.NextDue); err == nil {
			rec.NextDue = due
		}
		switch r.Outcome {
		case state.RenewalRenewed, state.RenewalNotDue:
			rec.ConsecutiveFailures = 0
		default:
			rec.ConsecutiveFailures++
			if runErr != nil {
				rec.Error, _, _ = strings.Cut(runErr.Error(), "\n")
			}
		}
		if b := m.current; b != nil {
			rec.Thumbprint, rec.NotAfter = certs.Thumbprint(b.Cert), b.Cert.NotAfter.UTC()
		}
	})
	if err != nil {
		m.warn("the renewal record was not written: %v", err)
	}
}

func roundDays(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	return d.Round(time.Minute).String()
}
