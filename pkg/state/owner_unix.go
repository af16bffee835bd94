//go:build unix

package state

import (
	"io/fs"
	"os"
	"syscall"
)

// OwnedByMe reports whether the file described by info belongs to this process's user.
func OwnedByMe(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}

// PrivateMode reports whether only the owner can read or write the file: no
// group or other permission bits (0600, 0400, 0700).
func PrivateMode(info fs.FileInfo) bool { return info.Mode().Perm()&0o077 == 0 }
