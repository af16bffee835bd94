package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/machinecert"
)

// strayCertificates lists the unexpired certificates on the app that carry this
// machine's name (entra.MachineKeyName, as entraclaw-migrate names them) but that none
// of this machine's keyring items for the tenant holds: the current one, <tenant>.next
// and <tenant>.previous (a rotation under way). Nil when the app or the keyring cannot
// say: no verdict without both. Expired ones are otherExpiredCertWarnings'.
func (r *run) strayCertificates(ctx context.Context) []StrayCertificate {
	keys, err := r.applicationKeys(ctx)
	if err != nil {
		return nil
	}
	candidates := namedAfter(keys, entra.MachineKeyName(), r.now)
	if len(candidates) == 0 {
		return nil
	}
	held, ok := r.heldThumbprints()
	if !ok {
		return nil
	}
	var strays []StrayCertificate
	for _, k := range candidates {
		if slices.ContainsFunc(held, k.MatchesThumbprint) {
			continue
		}
		strays = append(strays, StrayCertificate{Thumbprint: displayThumbprint(k), KeyID: k.KeyID, Expires: k.End().UTC().Format(time.RFC3339)})
	}
	return strays
}

// namedAfter returns the keys named name that have not expired at now.
func namedAfter(keys []entra.KeyCredential, name string, now time.Time) []entra.KeyCredential {
	var out []entra.KeyCredential
	for _, k := range keys {
		if k.Name() == name && (k.End().IsZero() || k.End().After(now)) {
			out = append(out, k)
		}
	}
	return out
}

// heldThumbprints are the thumbprints of this machine's keyring items for the tenant;
// false when the keyring could not answer or an item does not parse.
func (r *run) heldThumbprints() ([]string, bool) {
	var held []string
	b, err := r.loadBundle()
	switch {
	case err == nil:
		held = append(held, certs.Thumbprint(b.Cert))
	case !machinecert.Is(err, machinecert.Missing):
		return nil, false
	}
	for _, suffix := range []string{keystore.NextAccountSuffix, keystore.PreviousAccountSuffix} {
		b, err := machinecert.Read(r.deps.Store, r.cfg.Tenant+suffix)
		if machinecert.Is(err, machinecert.Missing) {
			continue
		}
		if err != nil {
			return nil, false
		}
		held = append(held, certs.Thumbprint(b.Cert))
	}
	return held, true
}

// strayWarning says what a stray certificate is and how to remove it.
func (r *run) strayWarning(s StrayCertificate) string {
	return fmt.Sprintf("stray certificate %s on the app (keyId %s, expires %s): it bears this machine's name %q, but no keyring item of service %q holds it, "+
		"so its private key is probably gone while it can still sign in until it expires; unless another machine or keyring with this name uses it, remove it: "+
		"`az ad app credential delete --id %s --key-id %s --cert`",
		orNone(s.Thumbprint), s.KeyID, strings.SplitN(s.Expires, "T", 2)[0], entra.MachineKeyName(), r.deps.Store.Service(), r.cfg.Client, s.KeyID)
}
