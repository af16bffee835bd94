package provision

import (
	"context"

	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/token"
)

// clearTokenCache removes the app's cached tokens (issue 8 §2: rotation, rollback and
// purge remove the cache items they make stale): all of them, or only those minted with
// the given certificates. pkg/token owns the cache; a failure is a warning for the caller.
func clearTokenCache(ctx context.Context, store *keystore.Store, tenant, client string, thumbprints ...string) error {
	return token.Cache{Store: store, Tenant: tenant, Client: client}.Clear(ctx, thumbprints...)
}

// clearTokenCache: every rollback (whatever it removes) leaves no token cached before
// it; the next entraclaw-provisioner-token mints afresh.
func (r *rollback) clearTokenCache(ctx context.Context) {
	if r.dryRun || r.app == nil {
		return
	}
	if err := clearTokenCache(ctx, r.deps.Store, r.tenant, r.app.AppID); err != nil {
		r.warn("the app's cached tokens were not removed (%v); entraclaw-provisioner-token -no-cache refreshes them", err)
	}
}
