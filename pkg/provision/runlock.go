package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// lockRun takes the exclusive run lock of the state file at statePath (state.RunLock
// in its per-user directory, keyed by the resolved path, so a symlink and its target
// share it), waiting (and saying so once on progress) while another run holds it,
// until ctx is done. state.Update's own per-write lock is a different file.
func lockRun(ctx context.Context, statePath, program string, progress io.Writer) (unlock func(), err error) {
	path, err := state.LockPath(statePath, state.RunLock)
	if err != nil {
		return nil, wrapf(err, "check that your home directory is writable", "cannot create the run lock of %s", statePath)
	}
	unlock, err = state.LockFile(ctx, path, func() {
		fmt.Fprintf(progress, "waiting for another %s to finish (lock %s)\n", program, path)
	})
	var pathErr *fs.PathError
	switch {
	case err == nil:
		return unlock, nil
	case errors.As(err, &pathErr) && pathErr.Op == "open":
		return nil, wrapf(err, "check that the per-user state directory is writable", "cannot create the run lock %s", path)
	case ctx.Err() != nil:
		return nil, wrapf(err, "", "waiting for the lock %s", path)
	default:
		return nil, wrapf(err, "", "lock %s", path)
	}
}
