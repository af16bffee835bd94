//go:build unix

package keystore

import (
	"io/fs"
	"os"
	"syscall"
)

// ownedByMe reports whether info is a file of this process's user.
func ownedByMe(info fs.FileInfo) (owned, supported bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid(), true
}
