//go:build !windows

package state

import "os"

// restrictToOwner makes f readable and writable by its owner only (0600).
func restrictToOwner(f *os.File) error { return f.Chmod(0o600) }
