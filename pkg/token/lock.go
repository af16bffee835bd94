package token

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// lockWait bounds the wait for another process minting the same token; after it the
// token is requested anyway.
const lockWait = time.Minute

// LockPath is the per-user lock file of one token cache key under root, the per-user
// state directory (state.UserRoot: $XDG_STATE_HOME/entraclaw, ~/Library/Application
// Support/entraclaw, %LOCALAPPDATA%\entraclaw): root/token-<sha256(key), 16 hex digits>.lock.
func LockPath(root, key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(root, "token-"+hex.EncodeToString(sum[:8])+".lock")
}

// lock takes the per-user lock of key, so that one process mints while the others wait
// and then find its token in the cache. The lock is only a guard against bursts: when it
// cannot be created or is held for more than lockWait, the caller goes on without it
// (unlock is then a no-op). Only the end of ctx (Ctrl-C) is an error.
func lock(ctx context.Context, root, key string, note func(string)) (unlock func(), err error) {
	noop := func() {}
	if root == "" {
		return noop, nil
	}
	path := LockPath(root, key)
	lctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	unlock, err = state.LockFile(lctx, path, func() { note("waiting for another entraclaw-provisioner-token (" + path + ")") })
	switch {
	case err == nil:
		return unlock, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		note(fmt.Sprintf("%s held for more than %s; requesting a token anyway", path, lockWait))
	default:
		note("token lock skipped: " + err.Error())
	}
	return noop, nil
}
