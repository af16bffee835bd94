//go:build !linux

package keystore

import "time"

// SecretServiceReachable is nil off Linux: -token-cache auto there is the OS keyring, as
// before, and its calls report their own errors.
func SecretServiceReachable(timeout time.Duration) error { return nil }
