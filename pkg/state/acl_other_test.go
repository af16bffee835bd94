//go:build !windows

package state

import "testing"

// assertOwnerOnly is the Windows ACL check; elsewhere the mode bits are checked instead.
func assertOwnerOnly(t *testing.T, path string) {
	t.Helper()
	t.Fatalf("assertOwnerOnly(%s) called outside Windows", path)
}

// underWine is true only for Windows test binaries run under Wine.
func underWine() bool { return false }
