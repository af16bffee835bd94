//go:build !unix

package cli

// stdoutWasClosed reports whether the process started with stdout closed; only Unix can tell.
func stdoutWasClosed() bool { return false }
