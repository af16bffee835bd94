// Package machinecert reads this machine's certificate items in the keyring: the current
// one under the tenant, and during a rotation <tenant>.next and <tenant>.previous. It
// reads and parses them, and says in one wording, with one hint and one exit code, that an
// item is missing, is not a usable certificate bundle, or holds an expired certificate.
//
// It is the lowest package that can own that rule: keystore stores bytes and must not parse
// certificates, certs parses bytes and must not read the keyring, and every package above
// them (cli, verify, provision, token) reads these items.
package machinecert

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/exit"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

// Kind is what is wrong with a certificate item.
type Kind int

const (
	// Missing: the keyring holds no item under the account.
	Missing Kind = iota + 1
	// Corrupt: the item is not a usable certificate bundle (garbage, a key that does not
	// match the certificate, an encrypted key, ...).
	Corrupt
	// Expired: the item's certificate is past its NotAfter.
	Expired
)

// Error is a certificate item that cannot be used. Its message is one line and never
// contains the item's value.
type Error struct {
	Kind    Kind
	Backend string // the keyring's name (keystore.Store.BackendName)
	Service string // the keyring service
	Account string // the tenant, or the tenant with a rotation suffix
	// Thumbprint and NotAfter are the expired certificate's (Kind Expired).
	Thumbprint string
	NotAfter   time.Time
	// Err is the cause: the keyring's not-found error (Missing; errors.Is(err,
	// keystore.ErrNotFound) holds) or the parser's error (Corrupt).
	Err error
}

func (e *Error) Error() string {
	switch e.Kind {
	case Missing:
		return fmt.Sprintf("no provisioner certificate in the %s (service=%q, account=%s)", e.Backend, e.Service, e.Account)
	case Corrupt:
		return fmt.Sprintf("keyring item service=%q account=%s is not a usable certificate bundle: %s", e.Service, e.Account, oneLine(e.Err))
	case Expired:
		return fmt.Sprintf("provisioner certificate %s expired on %s", e.Thumbprint, e.NotAfter.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("keyring item service=%q account=%s cannot be used", e.Service, e.Account)
}

func (e *Error) Unwrap() error { return e.Err }

// Hint says what to run about it.
func (e *Error) Hint() string {
	switch e.Kind {
	case Corrupt:
		return "run `entraclaw-migrate -rotate` to replace it"
	case Expired:
		return "run `entraclaw-migrate` to mint and upload a new certificate"
	}
	return "run `entraclaw-migrate` to set up certificate authentication"
}

// ExitCode is 3 (not set up) for all three kinds: each is fixed by running entraclaw-migrate.
func (e *Error) ExitCode() int { return exit.NotSetUp }

// Is reports whether err is (or wraps) an *Error of kind k.
func Is(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// Read reads and parses the certificate item account of store. A missing item and one that
// does not parse are *Error (Missing, Corrupt); a keyring that cannot answer is keystore's
// error as it is. An expired certificate is returned: see Current and CheckExpiry.
func Read(store *keystore.Store, account string) (*certs.Bundle, error) {
	pem, err := store.GetBundle(account)
	return Parse(store, account, pem, err)
}

// Parse is Read for an item already read: pem and err are what store.GetBundle(account)
// returned.
func Parse(store *keystore.Store, account string, pem []byte, err error) (*certs.Bundle, error) {
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		return nil, newError(store, account, Missing, err)
	case err != nil:
		return nil, err
	}
	b, err := certs.ParseBundle(pem)
	if err != nil {
		return nil, newError(store, account, Corrupt, err)
	}
	return b, nil
}

// Current reads tenant's current certificate and refuses it (an Expired *Error) when it
// has expired at now.
func Current(store *keystore.Store, tenant string, now time.Time) (*certs.Bundle, error) {
	b, err := Read(store, tenant)
	if err != nil {
		return nil, err
	}
	if err := CheckExpiry(store, tenant, b, now); err != nil {
		return nil, err
	}
	return b, nil
}

// CheckExpiry is the Expired *Error of b, read from account of store, when its certificate
// has expired at now; nil while it is valid.
func CheckExpiry(store *keystore.Store, account string, b *certs.Bundle, now time.Time) error {
	if !certs.Expired(b.Cert, now) {
		return nil
	}
	e := newError(store, account, Expired, nil)
	e.Thumbprint, e.NotAfter = certs.Thumbprint(b.Cert), b.Cert.NotAfter
	return e
}

func newError(store *keystore.Store, account string, k Kind, cause error) *Error {
	return &Error{Kind: k, Backend: store.BackendName(), Service: store.Service(), Account: account, Err: cause}
}

// oneLine is err's message on one line: a parser's error may quote several.
func oneLine(err error) string {
	if err == nil {
		return "unknown error"
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
