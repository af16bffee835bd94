package keystore

import (
	"bytes"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// certAccountSuffix marks the item that holds the certificate PEM when a
// bundle is stored as two items: the key PEM under <tenant>, the certificate
// PEM under <tenant>.cert.
const certAccountSuffix = ".cert"

const (
	pemBegin     = "-----BEGIN"
	pemCertBegin = "-----BEGIN CERTIFICATE-----"
	// tpmKeyBlock is certs.TPMKeyBlockType (keystore imports none of our packages): a
	// reference to a key held by a TPM, which takes the private key's place in a bundle.
	tpmKeyBlock = "ENTRACLAW TPM KEY"
)

// Item size limits of go-keyring's backends.
const (
	// Windows Credential Manager: blob size, and service names below 512 bytes.
	windowsMaxBlob    = 2560
	windowsMaxService = 511
	// macOS: go-keyring writes "add-generic-password -U -s <svc> -a <user> -w
	// go-keyring-base64:<base64>\n" to `security -i`, which reads at most 4095
	// bytes per line.
	macMaxCommandLine = 4095
	macFixedCommand   = len("add-generic-password -U -s ") + len(" -a ") + len(" -w ") + len("\n")
	macValuePrefix    = len("go-keyring-base64:")
)

// maxValueLen returns the largest value in bytes the backend can store under
// account, and whether there is a limit at all (Secret Service has none). A
// negative limit means no value fits.
func (s *Store) maxValueLen(account string) (limit int, limited bool) {
	switch s.goos {
	case "windows":
		if len(s.service) > windowsMaxService {
			return -1, true
		}
		return windowsMaxBlob, true
	case "darwin":
		room := macMaxCommandLine - macFixedCommand - shellQuotedLen(s.service) - shellQuotedLen(account) - macValuePrefix
		if room < 0 {
			return -1, true
		}
		// base64 turns every started group of 3 bytes into 4 characters.
		return room / 4 * 3, true
	}
	return 0, false
}

func (s *Store) fits(account string, size int) bool {
	limit, limited := s.maxValueLen(account)
	return !limited || size <= limit
}

// shellQuotedLen is the length of s after go-keyring's shell quoting: strings
// with a byte outside [A-Za-z0-9_@%+=:,./-] (or empty ones) go in single
// quotes, each ' inside becoming '"'"'.
func shellQuotedLen(s string) int {
	if s == "" {
		return 2
	}
	for i := 0; i < len(s); i++ {
		if !shellSafe(s[i]) {
			return 2 + len(s) + 4*strings.Count(s, "'")
		}
	}
	return len(s)
}

func shellSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("_@%+=:,./-", c) >= 0
}

// decodeSecurityHex undoes `security -w`, which prints values holding a
// non-printable byte (a PEM's newlines) as bare lowercase hex when another
// program, such as Python keyring, stored them.
func decodeSecurityHex(v string) string {
	if v == "" || len(v)%2 != 0 {
		return v
	}
	for i := 0; i < len(v); i++ {
		if !('0' <= v[i] && v[i] <= '9' || 'a' <= v[i] && v[i] <= 'f') {
			return v
		}
	}
	decoded, err := hex.DecodeString(v)
	if err != nil || !bytes.HasPrefix(decoded, []byte(pemBegin)) {
		return v
	}
	return string(decoded)
}

func checkTenant(tenant string) error {
	if strings.TrimSpace(tenant) == "" {
		return errors.New("empty tenant id for the keyring item")
	}
	return nil
}

func (s *Store) itemError(action, account string, err error) error {
	return fmt.Errorf("%s keyring item %s/%s: %w", action, s.service, account, err)
}

func (s *Store) notFound(tenant string) error {
	return fmt.Errorf("no certificate bundle for tenant %s in %s (service %q): %w", tenant, s.BackendName(), s.service, ErrNotFound)
}

// GetBundle returns the PEM bundle stored for tenant: the single item, or the
// key item joined after the <tenant>.cert item. On macOS hex-printed values
// are decoded; on Windows the Python era's bundle file is read when the
// keyring has no item. A key item with no certificate anywhere is returned as
// is, for the caller's parser to report.
func (s *Store) GetBundle(tenant string) ([]byte, error) {
	bundle, err := s.keyringBundle(tenant)
	if !errors.Is(err, ErrNotFound) {
		return bundle, err
	}
	data, found, err := s.readLegacy(tenant)
	switch {
	case err != nil:
		return nil, err
	case found:
		return data, nil
	}
	return nil, s.notFound(tenant)
}

// keyringBundle is GetBundle without the legacy file.
func (s *Store) keyringBundle(tenant string) ([]byte, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	v, err := s.get(tenant)
	if errors.Is(err, ErrNotFound) {
		return nil, s.notFound(tenant)
	}
	if err != nil {
		return nil, s.itemError("read", tenant, err)
	}
	if strings.Contains(v, pemCertBegin) {
		return []byte(v), nil
	}
	cert, err := s.get(tenant + certAccountSuffix)
	switch {
	case errors.Is(err, ErrNotFound):
		return []byte(v), nil
	case err != nil:
		return nil, s.itemError("read", tenant+certAccountSuffix, err)
	}
	return []byte(cert + v), nil
}

// HasBundle reports whether GetBundle would find a bundle for tenant.
func (s *Store) HasBundle(tenant string) (bool, error) {
	if err := checkTenant(tenant); err != nil {
		return false, err
	}
	_, err := s.get(tenant)
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, ErrNotFound):
		return false, s.itemError("read", tenant, err)
	}
	return s.legacyExists(tenant)
}

// PutBundle stores a PEM bundle (certificate and private key) for tenant. When
// the backend cannot hold it in one item (Windows Credential Manager, or a
// long macOS command line) it writes the certificate PEM under <tenant>.cert
// and then the key PEM under <tenant>; otherwise it writes one item and
// removes a stale <tenant>.cert.
func (s *Store) PutBundle(tenant string, bundle []byte) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	if len(bundle) == 0 {
		return errors.New("empty certificate bundle")
	}
	if s.fits(tenant, len(bundle)) {
		if err := s.set(tenant, string(bundle)); err != nil {
			return s.itemError("write", tenant, err)
		}
		if err := s.del(tenant + certAccountSuffix); err != nil && !errors.Is(err, ErrNotFound) {
			return s.itemError("remove stale", tenant+certAccountSuffix, err)
		}
		return nil
	}
	certPEM, keyPEM, err := splitBundle(bundle)
	if err != nil {
		return err
	}
	items := []struct {
		account string
		value   []byte
	}{
		{tenant + certAccountSuffix, certPEM},
		{tenant, keyPEM},
	}
	for _, item := range items {
		if !s.fits(item.account, len(item.value)) {
			return s.itemError("write", item.account, s.tooLarge(item.account, len(item.value)))
		}
	}
	for _, item := range items {
		if err := s.set(item.account, string(item.value)); err != nil {
			return s.itemError("write", item.account, err)
		}
	}
	return nil
}

// DeleteBundle removes the key and certificate items of tenant, and on
// Windows the Python era's bundle file. It returns an error wrapping
// ErrNotFound only when none of them existed.
func (s *Store) DeleteBundle(tenant string) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	existed := false
	for _, account := range []string{tenant, tenant + certAccountSuffix} {
		err := s.del(account)
		switch {
		case err == nil:
			existed = true
		case !errors.Is(err, ErrNotFound):
			return s.itemError("delete", account, err)
		}
	}
	removed, err := s.removeLegacy(tenant)
	if err != nil {
		return err
	}
	if !existed && !removed {
		return s.notFound(tenant)
	}
	return nil
}

// splitBundle returns the certificate blocks and the private key blocks (or the TPM
// key block) of a PEM bundle, each re-encoded.
func splitBundle(bundle []byte) (certPEM, keyPEM []byte, err error) {
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			certPEM = append(certPEM, pem.EncodeToMemory(block)...)
		case strings.HasSuffix(block.Type, "PRIVATE KEY"), block.Type == tpmKeyBlock:
			keyPEM = append(keyPEM, pem.EncodeToMemory(block)...)
		}
	}
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, nil, errors.New("certificate bundle must hold a CERTIFICATE and a PRIVATE KEY (or " + tpmKeyBlock + ") PEM block")
	}
	return certPEM, keyPEM, nil
}

// normalizeBundle returns the bundle's certificate blocks followed by its key
// blocks, in the encoding splitBundle produces.
func normalizeBundle(bundle []byte) ([]byte, error) {
	certPEM, keyPEM, err := splitBundle(bundle)
	if err != nil {
		return nil, err
	}
	return append(certPEM, keyPEM...), nil
}
