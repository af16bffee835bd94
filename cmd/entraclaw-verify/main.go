// Command entraclaw-verify runs the migration runbook's checks: no client secret in the
// state file, no password credentials on the app, the keyring certificate matches the
// state and the app, and a fresh token carries the required roles.
package main

import (
	"os"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
)

func main() { os.Exit(cli.Main("entraclaw-verify", cli.RunVerify)) }
