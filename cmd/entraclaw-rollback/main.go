// Command entraclaw-rollback returns the EntraClaw provisioner app to a
// short-lived client secret in an emergency.
package main

import (
	"os"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
)

func main() { os.Exit(cli.Main("entraclaw-rollback", cli.RunRollback)) }
