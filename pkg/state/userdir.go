package state

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Nothing but the state file itself lives in the user's work tree: the locks and
// backups of a state file live in a per-user directory of their own, keyed by the
// state file's resolved path, so that `git add -A` can never stage a backup that
// holds a secret and two paths to one file (a symlink and its target) share one lock.
//
//	Linux, BSD   $XDG_STATE_HOME/entraclaw (default ~/.local/state/entraclaw)
//	macOS        ~/Library/Application Support/entraclaw
//	Windows      %LOCALAPPDATA%\entraclaw
//
// Under it, each state file has a directory named after the first 16 bytes of the
// SHA-256 of its resolved absolute path, holding its locks, its backups, and a file
// "state-file" that names the state file for people. Directories are 0700, files 0600.

// dirName is the name of the per-user directory under the platform's root.
const dirName = "entraclaw"

// Lock names under a state file's directory.
const (
	// WriteLock serialises writes of the state file (Update, WriteFile).
	WriteLock = "write.lock"
	// RunLock serialises whole runs of entraclaw-migrate and entraclaw-rollback.
	RunLock = "run.lock"
)

// UserRoot returns the per-user directory that holds every state file's locks and
// backups, without creating it.
func UserRoot() (string, error) {
	var base string
	switch runtime.GOOS {
	case "windows":
		base = os.Getenv("LOCALAPPDATA")
		if base == "" {
			return "", errors.New("LOCALAPPDATA is not set")
		}
	case "darwin":
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		base = filepath.Join(home, "Library", "Application Support")
	default:
		base = os.Getenv("XDG_STATE_HOME")
		if base == "" || !filepath.IsAbs(base) {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			base = filepath.Join(home, ".local", "state")
		}
	}
	return filepath.Join(base, dirName), nil
}

// ResolvedPath returns the absolute path of the state file with every symlink
// resolved; for a file that does not exist yet, its directory is resolved.
func ResolvedPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		return resolved, nil
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return abs, nil
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}

// UserDir returns the per-user directory of the state file at path (see the
// package comment on the layout) without creating it.
func UserDir(path string) (string, error) {
	root, err := UserRoot()
	if err != nil {
		return "", fmt.Errorf("per-user state directory: %w", err)
	}
	resolved, err := ResolvedPath(path)
	if err != nil {
		return "", fmt.Errorf("per-user state directory of %s: %w", path, err)
	}
	if top := workTree(filepath.Dir(resolved)); top != "" && within(root, top) {
		return "", fmt.Errorf("%w: %s is inside %s, the work tree of %s, where `git add -A` would stage backups that hold the secret; set %s to a directory outside it",
			ErrUserDirInWorkTree, root, top, resolved, RootVariable())
	}
	sum := sha256.Sum256([]byte(resolved))
	return filepath.Join(root, hex.EncodeToString(sum[:16])), nil
}

// RootVariable names the environment variable UserRoot is made from on this OS.
func RootVariable() string {
	switch runtime.GOOS {
	case "windows":
		return "LOCALAPPDATA"
	case "darwin":
		return "HOME"
	}
	return "XDG_STATE_HOME"
}

// ErrUserDirInWorkTree: the per-user directory would sit in the state file's work tree.
var ErrUserDirInWorkTree = errors.New("per-user state directory is inside the work tree")

// workTree returns the work tree holding dir: the nearest directory at or above it
// with a .git, else dir itself unless dir is the home directory ("" then: a state
// file in the home directory is not in a work tree).
func workTree(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if home, err := os.UserHomeDir(); err == nil && sameDir(home, dir) {
		return ""
	}
	return dir
}

// within reports whether path is dir or below it (after resolving symlinks).
func within(path, dir string) bool {
	path, dir = resolveDir(path), resolveDir(dir)
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func sameDir(a, b string) bool { return resolveDir(a) == resolveDir(b) }

// resolveDir resolves the symlinks of the longest existing prefix of path.
func resolveDir(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	for p, rest := abs, ""; ; {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return abs
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// EnsureUserDir creates the per-user directory of the state file at path (0700,
// and its root 0700) with its "state-file" note, and returns it.
func EnsureUserDir(path string) (string, error) {
	dir, err := UserDir(path)
	if err != nil {
		return "", err
	}
	if err := mkdirPrivate(filepath.Dir(dir)); err != nil {
		return "", fmt.Errorf("create the per-user state directory %s: %w", filepath.Dir(dir), err)
	}
	if err := mkdirPrivate(dir); err != nil {
		return "", fmt.Errorf("create the per-user state directory %s: %w", dir, err)
	}
	note := filepath.Join(dir, "state-file")
	if _, err := os.Stat(note); errors.Is(err, fs.ErrNotExist) {
		resolved, _ := ResolvedPath(path)
		_ = os.WriteFile(note, []byte(resolved+"\n"), 0o600)
	}
	return dir, nil
}

// mkdirPrivate creates dir (and its parents) and makes sure dir itself is 0700
// and owned by this user: a directory another user made there is refused.
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if !OwnedByMe(info) {
		return fmt.Errorf("%s belongs to another user", dir)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// LockPath returns the path of the named lock (WriteLock, RunLock) of the state
// file at path, creating its directory.
func LockPath(path, name string) (string, error) {
	dir, err := EnsureUserDir(path)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}
