package keystore

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/zalando/go-keyring"
)

// The TPM-wrapped key files (-key-store tpm-file): on a machine without a Secret
// Service (a server, a cron job, a systemd timer) the certificate items are files
//
//	<dir>/<service>/<account>.pem    0600, in directories 0700, owned by the user
//
// holding what the keyring item of -key-store tpm holds: the certificate and the TPM
// key block (the key's public area and its private area encrypted by this TPM's
// storage key, useless to any other TPM). A value holding anything else, above all a
// private key in the clear, is refused: there is no plain-file store. Files are written
// atomically (temporary file, fsync, rename, fsync of the directory), so a rotation's
// <tenant>.next and <tenant>.previous are as safe as in the keyring. The token cache
// is not a certificate item: its services go to the keyring the Store had before.

// NameTPMFiles is BackendName of a Store whose items are TPM-wrapped key files.
const NameTPMFiles = "TPM-wrapped key files"

// ErrPlainKey is the refusal to write a value that is not a certificate with a TPM key
// block to a file: a private key in the clear never goes to disk.
var ErrPlainKey = errors.New("only a certificate and its TPM-wrapped key (" + tpmKeyBlock + ") may be kept in a file: a private key in the clear is never written to disk")

// maxKeyFileSize bounds a read: a certificate and a TPM key block take about 3 KB.
const maxKeyFileSize = 64 << 10

// FileError is a key file or directory that may not be used as it is, or could not be
// read or written: the path, what is wrong, and the fix. Its message holds no value.
type FileError struct {
	Path    string
	Problem string
	Fix     string
	Err     error
}

func (e *FileError) Error() string {
	msg := NameTPMFiles + ": " + e.Path + " " + e.Problem
	if e.Err != nil {
		msg += ": " + oneLine(e.Err.Error())
	}
	return msg
}

func (e *FileError) Unwrap() error { return e.Err }

// Hint says how to fix it.
func (e *FileError) Hint() string { return e.Fix }

// WithTPMFiles keeps the Store's certificate items as TPM-wrapped key files under dir
// (dir/<service>/<account>.pem) instead of in the keyring; the token cache services
// (TokenCacheService) still go to the keyring given before it (the OS keyring unless
// WithBackend came first). Not on Windows, whose file permissions are ACLs: there every
// call fails with a *FileError.
func WithTPMFiles(dir string) Option {
	return func(s *Store) { s.backend = &tpmFiles{dir: dir, other: s.backend} }
}

// KeyFile returns the file that holds account's certificate item, "" when the Store
// keeps its items in a keyring.
func (s *Store) KeyFile(account string) string {
	if f, ok := s.backend.(*tpmFiles); ok && !isCacheService(s.service) {
		return f.path(s.service, account)
	}
	return ""
}

// KeyFileDir returns the directory of the Store's key files, "" for a keyring.
func (s *Store) KeyFileDir() string {
	if f, ok := s.backend.(*tpmFiles); ok && !isCacheService(s.service) {
		return filepath.Join(f.dir, escapeName(s.service))
	}
	return ""
}

// asFileError finds the file store's own error (a *FileError, which says what to fix) in
// err, so the Store passes it on instead of dressing it up as an unavailable keyring.
func asFileError(err error) (*FileError, bool) {
	var fe *FileError
	ok := errors.As(err, &fe)
	return fe, ok
}

// tpmFiles is the Backend of WithTPMFiles.
type tpmFiles struct {
	dir   string
	other Backend // the token cache's keyring
}

func isCacheService(svc string) bool { return strings.HasSuffix(svc, "-token-cache") }

func (f *tpmFiles) serviceBackendName(svc string) string {
	if isCacheService(svc) {
		return ""
	}
	return NameTPMFiles
}

func (f *tpmFiles) path(svc, account string) string {
	return filepath.Join(f.dir, escapeName(svc), escapeName(account)+".pem")
}

func (f *tpmFiles) Get(svc, account string) (string, error) {
	if isCacheService(svc) {
		return f.other.Get(svc, account)
	}
	if err := f.checkDirs(svc, false); err != nil {
		return "", err
	}
	path := f.path(svc, account)
	value, err := readKeyFile(path)
	if err != nil {
		return "", err
	}
	// A file written by hand (or by anything but this store) could hold a key in the
	// clear: it is not used, and the user is told to destroy it.
	if err := checkTPMOnly(value); err != nil {
		return "", &FileError{Path: path, Problem: "is refused", Err: err,
			Fix: "shred -u " + path + " (a private key in the clear on disk must be considered exposed), then run `entraclaw-migrate -key-store tpm-file`"}
	}
	return value, nil
}

func (f *tpmFiles) Set(svc, account, value string) error {
	if isCacheService(svc) {
		return f.other.Set(svc, account, value)
	}
	path := f.path(svc, account)
	if err := checkTPMOnly(value); err != nil {
		return &FileError{Path: path, Problem: "was not written", Err: err,
			Fix: "-key-store tpm-file keeps only keys created in the TPM; for a key in memory use -key-store keyring"}
	}
	if err := f.checkDirs(svc, true); err != nil {
		return err
	}
	if err := checkExistingFile(path); err != nil {
		return err
	}
	return writeAtomic(path, []byte(value))
}

func (f *tpmFiles) Delete(svc, account string) error {
	if isCacheService(svc) {
		return f.other.Delete(svc, account)
	}
	if err := f.checkDirs(svc, false); err != nil {
		return err
	}
	path := f.path(svc, account)
	err := os.Remove(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return keyring.ErrNotFound
	case err != nil:
		return &FileError{Path: path, Problem: "could not be deleted", Err: err, Fix: "check the file's owner and permissions, then run the command again"}
	}
	return syncDir(filepath.Dir(path))
}

// probe makes the directories (private, the user's) and writes and removes a file in them.
func (f *tpmFiles) probe(svc string) error {
	if isCacheService(svc) {
		return errors.New("the token cache has no key files")
	}
	if err := f.checkDirs(svc, true); err != nil {
		return err
	}
	dir := filepath.Join(f.dir, escapeName(svc))
	tmp, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return &FileError{Path: dir, Problem: "is not writable", Err: err, Fix: "check the directory's owner and permissions (chmod 700 " + dir + ")"}
	}
	name := tmp.Name()
	tmp.Close()
	return os.Remove(name)
}

// checkDirs checks dir's parent, dir and dir/<svc>: each must be a directory of this
// user that no one else may write (dir and dir/<svc>: nor read). With create, missing
// ones are made 0700; without it, a missing one means no item (keyring.ErrNotFound).
func (f *tpmFiles) checkDirs(svc string, create bool) error {
	if err := checkParentDir(filepath.Dir(f.dir)); err != nil {
		return err
	}
	for _, dir := range []string{f.dir, filepath.Join(f.dir, escapeName(svc))} {
		info, err := os.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) && create {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return &FileError{Path: dir, Problem: "could not be created", Err: err, Fix: "check the owner and permissions of " + filepath.Dir(dir)}
			}
			info, err = os.Lstat(dir)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return keyring.ErrNotFound
		}
		if err != nil {
			return &FileError{Path: dir, Problem: "cannot be read", Err: err, Fix: "check the owner and permissions of " + filepath.Dir(dir)}
		}
		if err := checkPrivate(dir, info, true); err != nil {
			return err
		}
	}
	return nil
}

// checkParentDir refuses a parent of the key directory that another user owns or may
// write to (they could swap the key directory); a missing one is made by checkDirs.
func checkParentDir(dir string) error {
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &FileError{Path: dir, Problem: "cannot be read", Err: err, Fix: "check its owner and permissions"}
	}
	if err := checkOwner(dir, info); err != nil {
		return err
	}
	if info.Mode().Perm()&0o022 != 0 {
		return &FileError{Path: dir, Problem: fmt.Sprintf("may be written by other users (mode %04o)", info.Mode().Perm()),
			Fix: "chmod 700 " + dir}
	}
	return nil
}

// checkExistingFile refuses to replace a key file that is not a private file of this user.
func checkExistingFile(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &FileError{Path: path, Problem: "cannot be read", Err: err, Fix: "check its owner and permissions"}
	}
	return checkPrivate(path, info, false)
}

// checkPrivate refuses a symlink, the wrong kind of file, another user's file or one
// that others may read or write, saying how to fix it.
func checkPrivate(path string, info fs.FileInfo, wantDir bool) error {
	kind, mode := "file", "600"
	if wantDir {
		kind, mode = "directory", "700"
	}
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		return &FileError{Path: path, Problem: "is a symbolic link, refused: a key " + kind + " must be a " + kind + " of its own",
			Fix: "replace the link with a " + kind + " (move it away; entraclaw-migrate makes a new one)"}
	case info.IsDir() != wantDir || (!wantDir && !info.Mode().IsRegular()):
		return &FileError{Path: path, Problem: "is not a " + kind, Fix: "move it away and run the command again"}
	}
	if err := checkOwner(path, info); err != nil {
		return err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return &FileError{Path: path, Problem: fmt.Sprintf("is not private (mode %04o; other users may open it), refused", info.Mode().Perm()),
			Fix: "chmod " + mode + " " + path}
	}
	return nil
}

func checkOwner(path string, info fs.FileInfo) error {
	if ok, supported := ownedByMe(info); !supported {
		return &FileError{Path: path, Problem: "cannot be checked: " + NameTPMFiles + " need Linux or macOS file permissions",
			Fix: "use -key-store tpm (the TPM-wrapped key in Windows Credential Manager) on this system"}
	} else if !ok {
		return &FileError{Path: path, Problem: "belongs to another user, refused",
			Fix: "run as the user who owns it, or move it away and run `entraclaw-migrate -key-store tpm-file` as this user"}
	}
	return nil
}

// readKeyFile reads a key file after checking it, and checks that what was opened is
// the file checked (not a link swapped in between).
func readKeyFile(path string) (string, error) {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", keyring.ErrNotFound
	}
	if err != nil {
		return "", &FileError{Path: path, Problem: "cannot be read", Err: err, Fix: "check its owner and permissions"}
	}
	if err := checkPrivate(path, info, false); err != nil {
		return "", err
	}
	file, err := os.Open(path)
	if err != nil {
		return "", &FileError{Path: path, Problem: "cannot be read", Err: err, Fix: "check its owner and permissions"}
	}
	defer file.Close()
	opened, err := file.Stat()
	if err != nil || !os.SameFile(info, opened) {
		return "", &FileError{Path: path, Problem: "changed while it was read", Fix: "run the command again"}
	}
	data, err := io.ReadAll(io.LimitReader(file, maxKeyFileSize+1))
	if err != nil {
		return "", &FileError{Path: path, Problem: "cannot be read", Err: err, Fix: "check the disk"}
	}
	if len(data) > maxKeyFileSize {
		return "", &FileError{Path: path, Problem: fmt.Sprintf("is larger than %d bytes: not a key file", maxKeyFileSize), Fix: "move it away and run `entraclaw-migrate`"}
	}
	return string(data), nil
}

// writeAtomic writes data to path through a 0600 temporary file in the same directory,
// synced before it is renamed over path, and syncs the directory: a crash leaves the
// old file or the new one, never a part.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	fail := func(err error) error {
		return &FileError{Path: path, Problem: "could not be written", Err: err, Fix: "check the disk and the directory's permissions, then run the command again"}
	}
	if err != nil {
		return fail(err)
	}
	name := tmp.Name()
	defer os.Remove(name) // after the rename there is nothing left to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(name, path); err != nil {
		return fail(err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil // the rename is done; only its durability across a crash is unsure
	}
	defer d.Close()
	_ = d.Sync()
	return nil
}

// checkTPMOnly accepts a value made only of PEM blocks (whitespace between them), each a
// CERTIFICATE or a TPM key block, with at least one TPM key block: what -key-store tpm
// stores. Anything else could hold a private key in the clear.
func checkTPMOnly(value string) error {
	rest := []byte(value)
	tpmKeys := 0
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		if !bytes.HasPrefix(rest, []byte(pemBegin)) {
			return fmt.Errorf("%w (the value holds text outside PEM blocks)", ErrPlainKey)
		}
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return fmt.Errorf("%w (the value holds a broken PEM block)", ErrPlainKey)
		}
		switch block.Type {
		case "CERTIFICATE":
		case tpmKeyBlock:
			tpmKeys++
		default:
			return fmt.Errorf("%w (the value holds a %s block)", ErrPlainKey, block.Type)
		}
	}
	if tpmKeys == 0 {
		return fmt.Errorf("%w (the value holds no %s block)", ErrPlainKey, tpmKeyBlock)
	}
	return nil
}

// escapeName makes a service or account name one safe path element: bytes outside
// [A-Za-z0-9_.@-] and a leading dot become %XX, so no name can climb out of its
// directory or hide as a dot file.
func escapeName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		safe := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.@-", c) >= 0
		if !safe || (i == 0 && c == '.') {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	if b.Len() == 0 {
		return "%"
	}
	return b.String()
}
