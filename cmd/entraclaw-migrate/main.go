// Command entraclaw-migrate moves the EntraClaw provisioner app from a client
// secret to a certificate held in the OS keyring, idempotently; it also rotates
// the certificate.
package main

import (
	"os"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
)

func main() { os.Exit(cli.Main("entraclaw-migrate", cli.RunMigrate)) }
