// Command bare is the benchmark's floor for a token cached in the kernel keyring: a Go
// program that only starts, prints one line and exits. pkg/cli's BenchmarkTokenCachedKernel
// builds it with the same flags as the binaries and times it interleaved with them.
package main

import "os"

func main() {
	_, _ = os.Stdout.WriteString("bare\n")
}
