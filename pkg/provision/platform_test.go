package provision_test

import (
	"io/fs"
	"runtime"
)

// privateMode reports whether a file the tools wrote has mode 0600. Windows has no mode bits
// (os.Stat says -rw-rw-rw- for every writable file): there pkg/state protects the file with an
// owner-only ACL instead, which pkg/state's own tests assert.
func privateMode(info fs.FileInfo) bool {
	return runtime.GOOS == "windows" || info.Mode().Perm() == 0o600
}
