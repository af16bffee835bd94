package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockTimeout bounds how long a writer waits for another process to release the lock.
const lockTimeout = 30 * time.Second

// maxBackupsPerSecond bounds the ".1", ".2", ... counter Backup tries.
const maxBackupsPerSecond = 1000

// Update changes the state file at path under an exclusive lock. It locks the
// file's WriteLock (in its per-user directory, keyed by the resolved path), re-reads the file, and calls fn with its content.
// A missing file is an error wrapping ErrNotFound unless create is true, in which
// case fn starts from an empty Doc. When fn returns an error nothing is written
// and that error is returned as is. Otherwise, when the marshalled bytes differ
// from the file (or the file did not exist), Update writes them atomically with
// mode 0600 and reports true. A symlinked path is written through to its target.
func Update(path string, create bool, fn func(*Doc) error) (bool, error) {
	target, err := resolveTarget(path)
	if err != nil {
		return false, err
	}
	unlock, err := lock(path, target)
	if err != nil {
		return false, err
	}
	defer unlock()

	old, err := readFile(target, path)
	exists := err == nil
	var doc *Doc
	switch {
	case exists:
		if doc, err = parseFile(path, old); err != nil {
			return false, err
		}
	case create && errors.Is(err, ErrNotFound):
		doc = &Doc{path: path}
	default:
		return false, err
	}
	if err := fn(doc); err != nil {
		return false, err
	}
	data := doc.Marshal()
	if exists && bytes.Equal(data, old) {
		return false, nil
	}
	if len(data) > MaxFileSize {
		return false, fmt.Errorf("update state file %s: the result would be %d bytes, more than the %d-byte limit", path, len(data), MaxFileSize)
	}
	if err := writeAtomic(path, target, data); err != nil {
		return false, err
	}
	return true, nil
}

// WriteFile replaces the state file at path with data, verbatim, under the same
// lock and with the same atomic 0600 write as Update. data must parse as a state
// file (a *FormatError naming path otherwise); rollback uses it to restore a backup.
func WriteFile(path string, data []byte) error {
	if _, err := parseFile(path, data); err != nil {
		return err
	}
	target, err := resolveTarget(path)
	if err != nil {
		return err
	}
	unlock, err := lock(path, target)
	if err != nil {
		return err
	}
	defer unlock()
	return writeAtomic(path, target, data)
}

// backupPrefix names the backups in a state file's per-user directory:
// state.json.bak.<unix seconds>[.<counter>].
const backupPrefix = "state.json.bak."

// Backup copies the state file at path into its per-user directory (see UserDir)
// as state.json.bak.<unix seconds of now>, mode 0600, and returns the new file's
// name. It never overwrites: when that name is taken it appends ".1", ".2", ...
func Backup(path string, now time.Time) (string, error) {
	data, err := readFile(path, path)
	if err != nil {
		return "", err
	}
	dir, err := EnsureUserDir(path)
	if err != nil {
		return "", fmt.Errorf("back up state file %s: %w", path, err)
	}
	base := filepath.Join(dir, backupPrefix+strconv.FormatInt(now.Unix(), 10))
	for i := range maxBackupsPerSecond {
		name := base
		if i > 0 {
			name += "." + strconv.Itoa(i)
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", dirError("back up", path, filepath.Dir(name), err)
		}
		if err := writeAndClose(f, data); err != nil {
			os.Remove(name)
			return "", fmt.Errorf("back up state file %s: %w", path, err)
		}
		if err := syncDir(filepath.Dir(name)); err != nil {
			return "", fmt.Errorf("back up state file %s: wrote %s but could not sync its directory: %w", path, name, err)
		}
		return name, nil
	}
	return "", fmt.Errorf("back up state file %s: %s and %d numbered variants already exist", path, base, maxBackupsPerSecond-1)
}

// NewestBackupHolding returns the newest backup of the state file at path in its
// per-user directory when its string key has the value the file holds now, else "". A
// caller about to back the file up again (a re-run after a failure) can keep that backup,
// from before the first run's changes, instead of writing one more copy of a secret.
func NewestBackupHolding(path, key string) (string, error) {
	doc, err := Load(path)
	if err != nil {
		return "", err
	}
	want, ok, _ := doc.String(key)
	if !ok {
		return "", nil
	}
	backups, err := Backups(path)
	if err != nil {
		return "", err
	}
	for _, b := range backups {
		if IsLegacyBackup(path, b) {
			continue
		}
		old, err := Load(b)
		if err != nil {
			return "", nil
		}
		if got, ok, _ := old.String(key); ok && got == want {
			return b, nil
		}
		return "", nil
	}
	return "", nil
}

// Backups lists the backups of the state file at path, newest first (by the unix
// seconds in the name, then the ".N" counter): those Backup made in the per-user
// directory, and those earlier versions left next to the file
// (<name>.bak.<unix>). Which of them to trust is the caller's decision: a file
// next to the state file may have been planted (see IsLegacyBackup, OwnedByMe,
// PrivateMode).
func Backups(path string) ([]string, error) {
	type backup struct {
		name             string
		seconds, counter int64
	}
	var found []backup
	scan := func(dir, prefix string, missingOK bool) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if missingOK && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("list backups of state file %s: %w", path, err)
		}
		for _, e := range entries {
			suffix, ok := strings.CutPrefix(e.Name(), prefix)
			if !ok || !e.Type().IsRegular() {
				continue
			}
			if seconds, counter, ok := parseBackupSuffix(suffix); ok {
				found = append(found, backup{filepath.Join(dir, e.Name()), seconds, counter})
			}
		}
		return nil
	}
	if err := scan(filepath.Dir(path), filepath.Base(path)+".bak.", false); err != nil {
		return nil, err
	}
	if dir, err := UserDir(path); err == nil {
		if err := scan(dir, backupPrefix, true); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(found, func(a, b backup) int {
		if a.seconds != b.seconds {
			return cmpDesc(a.seconds, b.seconds)
		}
		return cmpDesc(a.counter, b.counter)
	})
	names := make([]string, len(found))
	for i, b := range found {
		names[i] = b.name
	}
	return names, nil
}

// IsLegacyBackup reports whether backup, one of Backups(path), lies next to the
// state file (made by an earlier version) rather than in the per-user directory.
func IsLegacyBackup(path, backup string) bool {
	return filepath.Dir(backup) == filepath.Dir(path)
}

func cmpDesc(a, b int64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// parseBackupSuffix parses "<seconds>" or "<seconds>.<counter>", digits only.
func parseBackupSuffix(suffix string) (seconds, counter int64, ok bool) {
	secText, counterText, hasCounter := strings.Cut(suffix, ".")
	if seconds, ok = parseDigits(secText); !ok {
		return 0, 0, false
	}
	if hasCounter {
		if counter, ok = parseDigits(counterText); !ok {
			return 0, 0, false
		}
	}
	return seconds, counter, true
}

func parseDigits(s string) (int64, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// resolveTarget returns the file a write to path must replace: path itself, or
// the final target when path is a symlink, so that the link survives the rename.
func resolveTarget(path string) (string, error) {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, nil
	}
	if err != nil {
		return "", fmt.Errorf("write state file: %w", err)
	}
	if info.Mode()&fs.ModeSymlink == 0 {
		return path, nil
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("write state file %s: cannot resolve the symlink: %w", path, err)
	}
	return target, nil
}

// lock takes the exclusive write lock of the state file target (its WriteLock in
// the per-user directory), waiting up to lockTimeout, and returns the function
// that releases it. Errors name the file as display.
func lock(display, target string) (unlock func(), err error) {
	lockPath, err := LockPath(target, WriteLock)
	if err != nil {
		return nil, fmt.Errorf("lock state file %s: %w", display, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lockTimeout)
	defer cancel()
	unlock, err = LockFile(ctx, lockPath, nil)
	var pathErr *fs.PathError
	switch {
	case err == nil:
		return unlock, nil
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("lock state file %s: another process has held %s for more than %s", display, lockPath, lockTimeout)
	case errors.As(err, &pathErr) && pathErr.Op == "open":
		return nil, dirError("lock", display, filepath.Dir(lockPath), err)
	default:
		return nil, fmt.Errorf("lock state file %s: %w", display, err)
	}
}

// LockFile takes an exclusive lock (flock / LockFileEx) on the file at path, creating it
// with mode 0600 if needed. While another process holds it, LockFile waits until ctx is
// done, calling onWait (if not nil) once. The returned function releases the lock; the
// operating system also releases it when the process dies.
func LockFile(ctx context.Context, path string, onWait func()) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		locked, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		if locked {
			return func() {
				unlockFile(f)
				f.Close()
			}, nil
		}
		if onWait != nil {
			onWait()
			onWait = nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// writeAtomic replaces target with data through a 0600 temporary file in the
// same directory: write, fsync, rename over, fsync the directory. On failure the
// temporary file is removed and target is untouched. Errors name the file as display.
func writeAtomic(display, target string, data []byte) error {
	dir := filepath.Dir(target)
	tmp, err := os.CreateTemp(dir, filepath.Base(target)+".tmp-*")
	if err != nil {
		return dirError("write", display, dir, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write state file %s: %w", display, err)
	}
	if err := writeAndClose(tmp, data); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write state file %s: %w", display, err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write state file %s: %w", display, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write state file %s: written, but directory %s could not be synced: %w", display, dir, err)
	}
	return nil
}

// writeAndClose writes data to f with mode 0600 (on Windows: an owner-only ACL), fsyncs and
// closes it. f is closed on every path.
func writeAndClose(f *os.File, data []byte) error {
	err := restrictToOwner(f)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	return err
}

// syncDir fsyncs a directory so that a rename or create in it is durable.
// Windows cannot open directories for syncing; there it does nothing.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if closeErr := d.Close(); err == nil {
		err = closeErr
	}
	return err
}

// dirError explains a failure to create a file in dir, naming dir when it is not writable.
func dirError(op, display, dir string, err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("%s state file %s: directory %s is not writable: %w", op, display, dir, err)
	}
	return fmt.Errorf("%s state file %s: %w", op, display, err)
}
