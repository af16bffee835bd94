// Command entraclaw-provisioner-token prints a Microsoft Graph access token for the
// EntraClaw provisioner app, minted with the certificate held in the OS keyring.
package main

import (
	"os"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
)

func main() { os.Exit(cli.Main("entraclaw-provisioner-token", cli.RunToken)) }
