package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// legacyFilePrefix and legacyFileSuffix frame the tenant id in the name of the
// bundle file the Python tools wrote on Windows, because Credential Manager
// could not hold the bundle.
const (
	legacyFilePrefix = "provisioner-cert-"
	legacyFileSuffix = ".pem"
	legacyDirName    = "entraclaw"
)

func defaultLegacyDir() string {
	if base := os.Getenv("LOCALAPPDATA"); base != "" {
		return filepath.Join(base, legacyDirName)
	}
	return ""
}

// LegacyFile returns the path of the Python era's bundle file for tenant,
// %LOCALAPPDATA%\entraclaw\provisioner-cert-<tenant>.pem, or "" when there is
// none to consult: not Windows, no directory, or a tenant that is not a plain
// file name part.
func (s *Store) LegacyFile(tenant string) string {
	if s.goos != "windows" || s.legacyDir == "" || tenant == "" || tenant == "." || tenant == ".." ||
		strings.ContainsAny(tenant, `/\:`) {
		return ""
	}
	return filepath.Join(s.legacyDir, legacyFilePrefix+tenant+legacyFileSuffix)
}

func (s *Store) readLegacy(tenant string) (data []byte, found bool, err error) {
	path := s.LegacyFile(tenant)
	if path == "" {
		return nil, false, nil
	}
	data, err = os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("read legacy bundle file: %w", err)
	}
	return data, true, nil
}

func (s *Store) legacyExists(tenant string) (bool, error) {
	path := s.LegacyFile(tenant)
	if path == "" {
		return false, nil
	}
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("check legacy bundle file: %w", err)
	}
	return true, nil
}

func (s *Store) removeLegacy(tenant string) (bool, error) {
	path := s.LegacyFile(tenant)
	if path == "" {
		return false, nil
	}
	err := os.Remove(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("remove legacy bundle file: %w", err)
	}
	return true, nil
}

// MigrateLegacy moves the Python era's Windows bundle file of tenant into the
// keyring: it stores the bundle, reads it back, compares, and only then
// removes the file. It returns false with no error when there is no file.
// When the keyring already holds the same bundle it just removes the file;
// when it holds a different one it changes nothing and returns an error.
func (s *Store) MigrateLegacy(tenant string) (migrated bool, err error) {
	data, found, err := s.readLegacy(tenant)
	if err != nil || !found {
		return false, err
	}
	path := s.LegacyFile(tenant)
	want, err := normalizeBundle(data)
	if err != nil {
		return false, fmt.Errorf("legacy bundle file %s: %w", path, err)
	}
	existing, err := s.keyringBundle(tenant)
	switch {
	case errors.Is(err, ErrNotFound):
		if err := s.PutBundle(tenant, want); err != nil {
			return false, fmt.Errorf("migrate legacy bundle file %s: %w", path, err)
		}
		readBack, err := s.keyringBundle(tenant)
		if err != nil {
			return false, fmt.Errorf("read back migrated bundle (legacy file %s kept): %w", path, err)
		}
		if got, err := normalizeBundle(readBack); err != nil || !bytes.Equal(got, want) {
			return false, fmt.Errorf("bundle read back from %s differs from legacy file %s; the file is kept", s.BackendName(), path)
		}
	case err != nil:
		return false, err
	default:
		if got, err := normalizeBundle(existing); err != nil || !bytes.Equal(got, want) {
			return false, fmt.Errorf("%s already holds a different bundle for tenant %s; legacy file %s is kept: remove it once the keyring bundle works", s.BackendName(), tenant, path)
		}
	}
	if err := os.Remove(path); err != nil {
		return false, fmt.Errorf("remove legacy bundle file after migrating it: %w", err)
	}
	return true, nil
}
