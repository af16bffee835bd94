package machinecert

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/exit"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

const tenant = "11111111-1111-4111-8111-111111111111"

func testStore(t *testing.T) *keystore.Store {
	t.Helper()
	return keystore.New("entraclaw-test-cert", keystore.WithBackend(keystore.NewMemoryBackend()))
}

func generate(t *testing.T, now time.Time, lifetime time.Duration) *certs.Bundle {
	t.Helper()
	b, err := certs.GenerateWithLifetime(now, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOneWording: each kind has one message, one hint and exit 3, and the cause stays
// reachable (a missing item is still keystore.ErrNotFound).
func TestOneWording(t *testing.T) {
	now := time.Now()
	store := testStore(t)
	expired := generate(t, now.Add(-48*time.Hour), 24*time.Hour)
	if err := store.PutBundle(tenant+keystore.NextAccountSuffix, []byte("hunter2 is not a bundle")); err != nil {
		t.Fatal(err)
	}
	if err := store.PutBundle(tenant+keystore.PreviousAccountSuffix, expired.PEM()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, account string
		kind          Kind
		msg, hint     string
		notFound      bool
	}{
		{"missing", tenant, Missing, `no provisioner certificate in the `, "entraclaw-migrate` to set up", true},
		{"corrupt", tenant + ".next", Corrupt, `keyring item service="entraclaw-test-cert" account=` + tenant + `.next is not a usable certificate bundle: `, "-rotate", false},
		{"expired", tenant + ".previous", Expired, "provisioner certificate " + certs.Thumbprint(expired.Cert) + " expired on ", "mint and upload", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Read(store, tc.account)
			if err == nil {
				err = CheckExpiry(store, tc.account, b, now)
			}
			var e *Error
			switch {
			case !errors.As(err, &e) || e.Kind != tc.kind || !Is(err, tc.kind):
				t.Fatalf("error %v, want kind %d", err, tc.kind)
			case !strings.HasPrefix(e.Error(), tc.msg) || strings.ContainsAny(e.Error(), "\n"):
				t.Errorf("message %q, want one line starting %q", e.Error(), tc.msg)
			case !strings.Contains(e.Hint(), tc.hint):
				t.Errorf("hint %q, want %q", e.Hint(), tc.hint)
			case e.ExitCode() != exit.NotSetUp:
				t.Errorf("exit code %d, want %d", e.ExitCode(), exit.NotSetUp)
			case errors.Is(err, keystore.ErrNotFound) != tc.notFound:
				t.Errorf("errors.Is(err, keystore.ErrNotFound) = %v, want %v", !tc.notFound, tc.notFound)
			case strings.Contains(e.Error(), "hunter2"):
				t.Errorf("the message quotes the item: %q", e.Error())
			}
		})
	}
}

// TestCurrent serves a valid certificate and refuses an expired one.
func TestCurrent(t *testing.T) {
	now := time.Now()
	store := testStore(t)
	good := generate(t, now, 24*time.Hour)
	if err := store.PutBundle(tenant, good.PEM()); err != nil {
		t.Fatal(err)
	}
	b, err := Current(store, tenant, now)
	if err != nil || certs.Thumbprint(b.Cert) != certs.Thumbprint(good.Cert) {
		t.Fatalf("Current: %v, %v", b, err)
	}
	if _, err := Current(store, tenant, now.Add(48*time.Hour)); !Is(err, Expired) {
		t.Errorf("two days later: %v, want an Expired error", err)
	}
}

// TestKeyringFailureIsNotAKind: a keyring that cannot answer is its own error, not one of
// the three kinds (callers tell "could not look" from "not there").
func TestKeyringFailureIsNotAKind(t *testing.T) {
	store := testStore(t)
	failure := errors.New("the keyring is locked")
	_, err := Parse(store, tenant, nil, failure)
	var e *Error
	if err != failure || errors.As(err, &e) {
		t.Errorf("Parse with a keyring failure: %v, want it as it is", err)
	}
}
