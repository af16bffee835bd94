// Command entraclaw-fake-entra runs a local fake of Entra ID + Microsoft Graph (pkg/entratest)
// for tests, demos and dry runs: `entraclaw-fake-entra -workdir D -scenario legacy`, then
// `. D/env` in another shell. Its flags and wiring are in pkg/fakecmd.
package main

import (
	"os"

	"github.com/entraclaw/entraclaw-cli/pkg/cli"
	"github.com/entraclaw/entraclaw-cli/pkg/fakecmd"
)

func main() { os.Exit(cli.Main("entraclaw-fake-entra", fakecmd.Run)) }
