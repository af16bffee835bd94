//go:build unix

package cli

import "golang.org/x/sys/unix"

// stdoutWasClosed reports whether the process started with stdout closed
// (`entraclaw-provisioner-token >&-`). The Go runtime then opens /dev/null read-write on
// fd 1 before main runs, so writes succeed and go nowhere; a shell redirection to
// /dev/null opens it write-only.
func stdoutWasClosed() bool {
	fl, err := unix.FcntlInt(1, unix.F_GETFL, 0)
	if err != nil {
		return true
	}
	if fl&unix.O_ACCMODE != unix.O_RDWR {
		return false
	}
	var out, null unix.Stat_t
	if unix.Fstat(1, &out) != nil || unix.Stat("/dev/null", &null) != nil {
		return false
	}
	return out.Mode&unix.S_IFMT == unix.S_IFCHR && out.Rdev == null.Rdev
}
