package keystore

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

// fakeBackend emulates go-keyring on one OS: Windows' 2560-byte blob limit,
// macOS's `security -i` command line (base64 prefix, 4096-byte check, the
// silent loss of a 4096-byte line, hex printing of values other programs
// stored), or Secret Service's raw unlimited values.
type fakeBackend struct {
	goos string

	mu    sync.Mutex
	items map[string]string // "svc\x00user" -> the data the OS holds
	sets  []string          // accounts of Set calls, in order

	// Injected failures and hooks; nil means normal behaviour.
	errFor   func(op, user string) error
	onGet    func(user, v string) string
	blockAll chan struct{}
}

func newFake(goos string) *fakeBackend {
	return &fakeBackend{goos: goos, items: map[string]string{}}
}

func itemKey(svc, user string) string { return svc + "\x00" + user }

func (f *fakeBackend) wait() {
	if f.blockAll != nil {
		<-f.blockAll
	}
}

func (f *fakeBackend) injected(op, user string) error {
	if f.errFor == nil {
		return nil
	}
	return f.errFor(op, user)
}

var goKeyringUnsafe = regexp.MustCompile(`[^\w@%+=:,./-]`)

// goKeyringQuote is go-keyring's vendored shellescape.Quote.
func goKeyringQuote(s string) string {
	if s == "" {
		return "''"
	}
	if goKeyringUnsafe.MatchString(s) {
		return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
	}
	return s
}

func macCommand(svc, user, v string) string {
	encoded := "go-keyring-base64:" + base64.StdEncoding.EncodeToString([]byte(v))
	return fmt.Sprintf("add-generic-password -U -s %s -a %s -w %s\n", goKeyringQuote(svc), goKeyringQuote(user), goKeyringQuote(encoded))
}

func (f *fakeBackend) Set(svc, user, v string) error {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, user)
	if err := f.injected("set", user); err != nil {
		return err
	}
	switch f.goos {
	case "windows":
		if len(v) > 2560 || len(svc) >= 512 {
			return keyring.ErrSetDataTooBig
		}
	case "darwin":
		cmd := macCommand(svc, user, v)
		switch {
		case len(cmd) > 4096:
			return keyring.ErrSetDataTooBig
		case len(cmd) == 4096:
			// security -i reads 4095 bytes, fails the add, then succeeds on
			// the empty rest of the line: exit 0, nothing stored.
			return nil
		}
		v = "go-keyring-base64:" + base64.StdEncoding.EncodeToString([]byte(v))
	}
	f.items[itemKey(svc, user)] = v
	return nil
}

// putForeign stores data as another program (Python keyring) would.
func (f *fakeBackend) putForeign(svc, user, data string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items[itemKey(svc, user)] = data
}

// raw returns the data the OS holds for an item.
func (f *fakeBackend) raw(svc, user string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.items[itemKey(svc, user)]
	return v, ok
}

func (f *fakeBackend) setOrder() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sets...)
}

func (f *fakeBackend) Get(svc, user string) (string, error) {
	f.wait()
	if err := f.injected("get", user); err != nil {
		return "", err
	}
	f.mu.Lock()
	v, ok := f.items[itemKey(svc, user)]
	f.mu.Unlock()
	if !ok {
		return "", keyring.ErrNotFound
	}
	if f.goos == "darwin" {
		v = goKeyringDarwinGet(v)
	}
	if f.onGet != nil {
		v = f.onGet(user, v)
	}
	return v, nil
}

// goKeyringDarwinGet is what go-keyring returns for data the keychain holds:
// `security -w` prints it raw if every byte is printable ASCII and as bare
// hex otherwise; go-keyring trims it and decodes its own prefixes.
func goKeyringDarwinGet(data string) string {
	out := data + "\n"
	for i := 0; i < len(data); i++ {
		if data[i] < 0x20 || data[i] > 0x7e {
			out = hex.EncodeToString([]byte(data)) + "\n"
			break
		}
	}
	out = strings.TrimSpace(out)
	if rest, ok := strings.CutPrefix(out, "go-keyring-base64:"); ok {
		decoded, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			panic(err)
		}
		return string(decoded)
	}
	return out
}

func (f *fakeBackend) Delete(svc, user string) error {
	f.wait()
	if err := f.injected("delete", user); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.items[itemKey(svc, user)]; !ok {
		return keyring.ErrNotFound
	}
	delete(f.items, itemKey(svc, user))
	return nil
}

var (
	bundleOnce sync.Once
	bundlePEM  []byte
	bundleErr  error
)

// testBundle returns a certificate PEM followed by a PKCS#8 key PEM, like
// certs.Bundle.PEM, generated once per test binary.
func testBundle(t *testing.T) []byte {
	t.Helper()
	bundleOnce.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			bundleErr = err
			return
		}
		template := &x509.Certificate{
			SerialNumber: big.NewInt(42),
			Subject:      pkix.Name{CommonName: "entraclaw-provisioner", Organization: []string{"EntraClaw"}},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
		if err != nil {
			bundleErr = err
			return
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			bundleErr = err
			return
		}
		bundlePEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	})
	if bundleErr != nil {
		t.Fatal(bundleErr)
	}
	return append([]byte(nil), bundlePEM...)
}
