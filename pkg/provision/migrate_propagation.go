package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
)

// ---- step 7: propagation ----

// awaitPropagation polls until the certificate this run proves (a rotation's new
// one, else the current one) gets a token with every role. It runs when this run
// changed something, and when a rotation is unfinished: a pending new certificate
// or a previous one still to remove needs that proof first.
func (m *migration) awaitPropagation(ctx context.Context) error {
	unfinished := m.next != nil || (m.previous != nil && m.current != nil && !sameCert(m.previous, m.current))
	if !m.needsProof && !unfinished {
		return nil
	}
	if m.cfg.DryRun {
		return m.change(fmt.Sprintf("wait up to %s for Entra ID to accept the certificate with all %d roles", m.cfg.PropagationTimeout, len(m.proofRoles())), nil)
	}
	if m.bundle == nil || m.app == nil {
		return nil
	}
	m.say("Waiting for Entra ID to accept the new certificate and roles...")
	status := m.cfg.Status
	if status == nil {
		status = noStatus{}
	}
	defer status.Done("")
	thumb := certs.Thumbprint(m.bundle.Cert)
	start := time.Now()
	status.Start(m.cfg.PropagationTimeout) // its clock and the time left count from here
	pollCtx, cancel := context.WithTimeout(ctx, m.cfg.PropagationTimeout)
	defer cancel()
	b := backoff{max: propagationBackoffMax}
	notYet := ""
	for {
		reason, err := m.tryToken(pollCtx)
		if err != nil && entra.IsThrottled(err) {
			// Entra ID's answer to a tight loop of identical requests: not yet, ask less often.
			b.atLeast(min(entra.ThrottleDelay(err), m.cfg.PropagationTimeout/4))
			reason, err = "throttled (AADSTS50196/429)", nil
		}
		if err != nil && pollCtx.Err() == nil {
			return err
		}
		if err == nil && reason == "" {
			status.Done("")
			wait := time.Since(start)
			m.proven, m.sum.Propagated = true, true
			m.sum.PropagationWait = wait.Round(time.Millisecond).String()
			m.say("Propagation complete after %.1fs.", wait.Seconds())
			return nil
		}
		if reason != "" {
			notYet = reason
			status.Update(fmt.Sprintf("Entra ID to accept certificate %s with all %d roles (%s)", thumb, len(m.proofRoles()), reason))
		}
		if sleep(pollCtx, b.delay()) != nil {
			break
		}
	}
	if ctx.Err() != nil {
		m.say("Interrupted while waiting for Entra ID after %.1fs (%s).", time.Since(start).Seconds(), orNoAnswer(notYet))
		return ctx.Err()
	}
	m.sum.PropagationWait = time.Since(start).Round(time.Millisecond).String()
	if err := m.checkOnApp(ctx, m.bundle); err != nil {
		return err
	}
	if m.next != nil {
		m.warn("Entra ID had not accepted the new certificate with all %d roles after %s (%s)", len(m.proofRoles()), m.cfg.PropagationTimeout, orNoAnswer(notYet))
		return nil
	}
	m.warn("Entra ID had not accepted the new certificate with all %d roles after %s (%s); the migration itself is complete: run `entraclaw-verify -wait 2m` to confirm", len(m.proofRoles()), m.cfg.PropagationTimeout, orNoAnswer(notYet))
	return nil
}

// noStatus shows nothing.
type noStatus struct{}

func (noStatus) Start(time.Duration) {}
func (noStatus) Update(string)       {}
func (noStatus) Done(string)         {}

func orNoAnswer(notYet string) string {
	if notYet == "" {
		return "no answer in time"
	}
	return notYet
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
		if code, ok := entra.NotYet(err); ok { // "Entra ID does not know this yet"
			return fmt.Sprintf("last answer AADSTS%d", code), nil
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
	for _, r := range m.proofRoles() {
		if !have[r.Value] {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Sprintf("the last token lacked %d of the roles", missing), nil
	}
	return "", nil
}

// checkOnApp is the answer to a propagation wait that ran out: when reads of the app
// agree that b's certificate is not on it (another writer replaced the list from an
// older read), the run fails saying so rather than waiting for a certificate that is
// gone or reporting success. A re-run uploads it again.
func (m *migration) checkOnApp(ctx context.Context, b *certs.Bundle) error {
	thumb := certs.Thumbprint(b.Cert)
	_, err := m.graph.AwaitApplication(ctx, m.app.ID, func(a *entra.Application) bool { return hasKey(a.KeyCredentials, thumb) },
		entra.AwaitOptions{Interval: m.cfg.ReadInterval, Timeout: m.cfg.ReplicationWait, Consecutive: 1})
	switch {
	case errors.Is(err, entra.ErrReadsInconsistent):
		kept := "run `entraclaw-migrate` again to upload it"
		if m.next != nil && m.current != nil {
			kept = fmt.Sprintf("certificate %s keeps serving", certs.Thumbprint(m.current.Cert))
		} else if k := m.keptCredential(); k != "" {
			kept = "kept: " + k
		}
		return failf(hintRerun, "certificate %s is not on the app: another writer removed it after this run added it; %s", thumb, kept)
	case err != nil:
		return graphFailure(err, hintCreateAdmin, "read the provisioner app's certificates")
	}
	return nil
}
