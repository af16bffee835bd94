package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// runLockSuffix names the lock file that serialises whole runs of entraclaw-migrate
// and entraclaw-rollback on one state file (state.Update's own per-write lock is a
// different file).
const runLockSuffix = ".migrate.lock"

// lockRun takes the exclusive run lock of the state file at statePath, waiting
// (and saying so once on progress) while another run holds it, until ctx is done.
func lockRun(ctx context.Context, statePath, program string, progress io.Writer) (unlock func(), err error) {
	path := statePath + runLockSuffix
	unlock, err = state.LockFile(ctx, path, func() {
		fmt.Fprintf(progress, "waiting for another %s to finish (lock %s)\n", program, path)
	})
	var pathErr *fs.PathError
	switch {
	case err == nil:
		return unlock, nil
	case errors.As(err, &pathErr) && pathErr.Op == "open":
		return nil, wrapf(err, "run it where the state file's directory is writable, or pass -state-file", "cannot create the lock file next to the state file")
	case ctx.Err() != nil:
		return nil, wrapf(err, "", "waiting for the lock %s", path)
	default:
		return nil, wrapf(err, "", "lock %s", path)
	}
}
