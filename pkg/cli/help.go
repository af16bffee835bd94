package cli

// examples is the "Examples:" section of each binary's -h, keyed by the flag set's name.
var examples = map[string]string{
	"entraclaw-provisioner-token": `  TOKEN=$(entraclaw-provisioner-token)                 # a Graph token for this repository's app
  entraclaw-provisioner-token -o json | jq .expiresOn  # like az account get-access-token
  entraclaw-provisioner-token -remove-cached-tokens    # forget this app's cached tokens`,
	"entraclaw-migrate": `  entraclaw-migrate -dry-run                           # print the plan, change nothing
  entraclaw-migrate && entraclaw-verify -wait 2m       # the runbook: migrate, then wait for all checks
  entraclaw-migrate -rotate -operator-auth provisioner  # renew this machine's certificate now`,
	"entraclaw-verify": `  entraclaw-verify                                     # the four checks, PASS/FAIL
  entraclaw-verify -offline                            # status from the state file and keyring, no network
  entraclaw-verify -offline -expires-in 720h || mail -s 'rotate the provisioner cert' me  # cron reminder
  entraclaw-provisioner-token | entraclaw-verify -token -  # check a token only`,
	"entraclaw-rollback": `  entraclaw-rollback                                   # asks first; restores a backup, adds a 24h secret
  entraclaw-rollback -yes -secret-lifetime 2h          # in a script
  entraclaw-migrate && entraclaw-verify -wait 2m       # afterwards: back to the certificate`,
	"entraclaw-fake-entra": `  entraclaw-fake-entra -workdir /tmp/fake -scenario migrated &
  . /tmp/fake/env; cd /tmp/fake; entraclaw-provisioner-token   # in another shell
  entraclaw-fake-entra -workdir /tmp/fake -propagation-delay 10s   # legacy app, slow Entra ID`,
}

// migrateStateFileUsage is -state-file's text for migrate, which, unlike the others,
// starts a state file in the current directory when none is found.
const migrateStateFileUsage = "`path` of .entraclaw-state.json (default: the nearest one walking up from the current directory; if there is none, ./.entraclaw-state.json is created)"

// Examples is the "Examples:" text of a binary's -h (for binaries with their own usage).
func Examples(name string) string { return examples[name] }
