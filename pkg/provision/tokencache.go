package provision

import (
	"context"
	"errors"

	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// clearTokenCache removes the app's cached tokens (issue 8 §2: rotation, rollback and
// purge remove the cache items they make stale): all of them, or only those minted with
// the given certificates. The token binary validates what it reads anyway, so a failure
// here is a warning for the caller, not an error.
func clearTokenCache(ctx context.Context, store *keystore.Store, tenant, client string, thumbprints ...string) error {
	if store == nil || tenant == "" || client == "" {
		return nil
	}
	err := store.TokenCache().WithContext(ctx).DeleteCachedTokens(tenant, client, thumbprints...)
	var unavailable *keystore.UnavailableError
	if store.KeyFileDir() != "" && errors.As(err, &unavailable) && unavailable.NotReachable() {
		// The key files are for machines without a Secret Service: where it is not
		// there, no token could have been cached in it, and a warning on every rotation
		// would be noise.
		return nil
	}
	return err
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
