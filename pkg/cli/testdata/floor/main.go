// Command floor is the benchmark's floor for a cached token: the smallest Go program that
// reads one Secret Service item with go-keyring (the module's version) and prints it,
// like `TOKEN=$(entraclaw-provisioner-token)` prints the cached token. pkg/cli's
// BenchmarkTokenCached builds it with the same flags as the binaries and times it
// interleaved with them. Usage: floor SERVICE ACCOUNT.
package main

import (
	"fmt"
	"os"

	"github.com/zalando/go-keyring"
)

func main() {
	v, err := keyring.Get(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	fmt.Println(v)
}
