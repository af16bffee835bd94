package entratest

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"sync"
)

// sharedKeys are the RSA signing keys of the fake (its token signer and its OIDC issuers),
// shared by every server of one process. A 2048-bit key costs about 100 ms of CPU and a
// server needs four (the signer and three issuers, more after RotateOIDCKey); the test
// suites start hundreds of servers, so generating them per server was most of their CPU.
// Within one server the keys stay distinct: sharedKey(0) signs its access tokens and the
// n-th OIDC key it hands out is sharedKey(n). Servers of one process signing with the same
// keys is invisible to a client, which talks to one server and trusts only its CA.
var sharedKeys struct {
	mu   sync.Mutex
	keys []*rsa.PrivateKey
}

// tokenSignerKey is the index of the access-token signing key; OIDC keys follow it.
const tokenSignerKey = 0

// sharedKey returns the process's n-th signing key, generating it (and any before it) on
// first use.
func sharedKey(n int) (*rsa.PrivateKey, error) {
	sharedKeys.mu.Lock()
	defer sharedKeys.mu.Unlock()
	for len(sharedKeys.keys) <= n {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("entratest: signing key: %w", err)
		}
		sharedKeys.keys = append(sharedKeys.keys, key)
	}
	return sharedKeys.keys[n], nil
}
