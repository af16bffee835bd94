package provision

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// runLockSuffix names the lock file that serialises whole runs of entraclaw-migrate
// and entraclaw-rollback on one state file (state.Update's own per-write lock is a
// different file).
const runLockSuffix = ".migrate.lock"

// runLockPoll is how often a waiting run retries the lock.
const runLockPoll = 100 * time.Millisecond

// lockRun takes the exclusive run lock of the state file at statePath, waiting
// (and saying so once on progress) while another run holds it, until ctx is done.
func lockRun(ctx context.Context, statePath, program string, progress io.Writer) (unlock func(), err error) {
	path := statePath + runLockSuffix
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, wrapf(err, "run it where the state file's directory is writable, or pass -state-file", "cannot create the lock file next to the state file")
	}
	said := false
	for {
		locked, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, wrapf(err, "", "lock %s", path)
		}
		if locked {
			return func() {
				_ = unlockFile(f)
				f.Close()
			}, nil
		}
		if !said {
			fmt.Fprintf(progress, "waiting for another %s to finish (lock %s)\n", program, path)
			said = true
		}
		if err := sleep(ctx, runLockPoll); err != nil {
			f.Close()
			return nil, wrapf(err, "", "waiting for the lock %s", path)
		}
	}
}
