#!/usr/bin/env bash
# make demo — the cert-auth migration runbook, end to end, against the local fake Entra ID.
#
# Builds the binaries, starts entraclaw-fake-entra (scenario "legacy": an app with a client
# secret and a state file holding it) in a temporary directory, and walks the runbook:
# pre-flight, migrate, the four checks, a Graph call with the token, an emergency rollback,
# and the re-migration. On Linux it runs inside a private Secret Service
# (scripts/with-secret-service.sh); on macOS it uses the login keychain with a demo service
# name and removes its items at the end. It cleans up everything it started.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/fake.sh
. "$root/scripts/lib/fake.sh"

# Forget every ENTRACLAW_* and AZURE_* variable the caller exported: an ENTRACLAW_STATE_FILE
# pointing at a real state file, a production ENTRACLAW_KEYRING_SERVICE, ENTRACLAW_OUTPUT=json…
# The demo touches nothing outside its own temporary directory (and, on Linux, its private
# Secret Service).
while read -r v; do
  [ "$v" = ENTRACLAW_DEMO_INNER ] || unset "$v"
done < <(compgen -e | grep -E '^(ENTRACLAW|AZURE)_' || true)

say()  { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
note() { printf '   %s\n' "$*" >&2; }
run()  { printf '\033[2m$ %s\033[0m\n' "$*" >&2; "$@"; }

if [ "$(uname -s)" = Linux ] && [ -z "${ENTRACLAW_DEMO_INNER:-}" ]; then
  missing=()
  for p in gnome-keyring:gnome-keyring-daemon dbus-x11:dbus-launch dbus:dbus-run-session jq:jq curl:curl python3:python3; do
    command -v "${p#*:}" >/dev/null 2>&1 || missing+=("${p%%:*}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      echo "demo: installing ${missing[*]} (apt-get)" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "demo: missing ${missing[*]}; install them with:" >&2
      echo "  sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
  fi
  export ENTRACLAW_DEMO_INNER=1
  exec "$root/scripts/with-secret-service.sh" "$0" "$@"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/entraclaw-demo.XXXXXX")
# Backups and locks go to the per-user state directory: the demo's own, inside its temp dir.
export XDG_STATE_HOME="$tmp/state"
fake_pid=""
swtpm_pid=""
cleanup() {
  set +e
  if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null; wait "$fake_pid" 2>/dev/null; fi
  if [ -n "$swtpm_pid" ]; then kill "$swtpm_pid" 2>/dev/null; wait "$swtpm_pid" 2>/dev/null; fi
  # On Linux the keyring is private and thrown away with its D-Bus session; on macOS remove
  # every item of the demo's two services from the login keychain.
  if [ "$(uname -s)" = Darwin ]; then
    for svc in entraclaw-demo-cert entraclaw-demo-token-cache; do
      while security delete-generic-password -s "$svc" >/dev/null 2>&1; do :; done
    done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ "$(uname -s)" = Darwin ]; then
  export ENTRACLAW_KEYRING_SERVICE=entraclaw-demo-cert
fi

say "Building the binaries"
(cd "$root" && run go build -o "$tmp/bin/" ./cmd/...)
export PATH="$tmp/bin:$PATH"

say "Starting the fake Entra ID + Graph (scenario: legacy)"
repo="$tmp/repo"
mkdir -p "$repo"
entraclaw-fake-entra -workdir "$repo" -scenario legacy -propagation-delay 2s >"$tmp/fake.out" 2>"$tmp/fake.err" &
fake_pid=$!
wait_fake_ready "$fake_pid" "$tmp/fake.out" "$tmp/fake.err" || { echo "demo: the fake did not get ready" >&2; exit 1; }
note "$(cat "$tmp/fake.out")"
# shellcheck disable=SC1091
. "$repo/env"
cd "$repo"
TENANT=$(jq -r .TENANT_ID .entraclaw-state.json)
note "The state file holds a client secret in plain text (value not shown):"
jq 'with_entries(if .key == "PROVISIONER_CLIENT_SECRET" then .value = "<redacted>" else . end)' .entraclaw-state.json >&2

say "1. Pre-flight (runbook): who is logged in, back up the state file, note the app id"
run az account show --query "{name:name,tenantId:tenantId,user:user.name}" -o json >&2
backup="$tmp/entraclaw-state.backup-$(date +%s).json"
run cp .entraclaw-state.json "$backup"
PROV=$(jq -r .PROVISIONER_CLIENT_ID .entraclaw-state.json)
note "Provisioner app id: $PROV"

say "2. Migrate: secret -> certificate in the keyring"
run entraclaw-migrate

say "3. Verify: the runbook's four checks"
run entraclaw-verify
note "The runbook's own snippets 1 and 4:"
# 1. Secret purged from state file
grep PROVISIONER_CLIENT_SECRET .entraclaw-state.json && echo "FAIL" || echo "PASS: not found"
# 4. Token helper emits a clean JWT for graph.microsoft.com (the compat shim execs the Go binary)
TOKEN=$(python3 "$root/scripts/provisioner-token.py")
echo "$TOKEN" | python3 -c "
import sys, json, base64
tok = sys.stdin.read().strip()
parts = tok.split('.')
assert len(parts) == 3, f'not a JWT ({len(parts)} parts)'
payload = json.loads(base64.urlsafe_b64decode(parts[1] + '=' * (-len(parts[1]) % 4)))
print(f'PASS: aud={payload[\"aud\"]}, appid={payload[\"appid\"]}')
"

say "4. Use it from a script: a Graph call with TOKEN=\$(entraclaw-provisioner-token)"
printf '\033[2m$ curl -H "Authorization: Bearer $(entraclaw-provisioner-token)" %s\033[0m\n' \
  "$ENTRACLAW_GRAPH_ENDPOINT/v1.0/applications?\$filter=appId eq '$PROV'" >&2
curl -sS --fail --cacert "$SSL_CERT_FILE" -H "Authorization: Bearer $(entraclaw-provisioner-token)" \
  "$ENTRACLAW_GRAPH_ENDPOINT/v1.0/applications?\$filter=appId%20eq%20'$PROV'" |
  jq '.value[0] | {displayName, passwordCredentials: (.passwordCredentials | length), certificates: [.keyCredentials[] | {displayName, endDateTime}]}'

say "5. Emergency rollback (loud, short-lived secret)"
run entraclaw-rollback -yes
note "The secret is back on disk; verify now fails, as it should:"
entraclaw-verify -check secret-purged,no-passwords || note "(exit $? — expected)"

say "6. Re-run the migration and verify again"
run entraclaw-migrate
run entraclaw-verify -wait 2m

if command -v swtpm >/dev/null 2>&1; then
  say "7. A key nobody can copy: rotate into a (software) TPM"
  mkdir -p "$tmp/tpm"
  swtpm socket --tpm2 --tpmstate dir="$tmp/tpm" --server type=unixio,path="$tmp/tpm/sock" \
    --ctrl type=unixio,path="$tmp/tpm/sock.ctrl" --flags not-need-init,startup-clear --log file="$tmp/tpm/log",level=1 &
  swtpm_pid=$!
  for _ in $(seq 1 100); do [ -S "$tmp/tpm/sock" ] && break; sleep 0.05; done
  export ENTRACLAW_TPM="$tmp/tpm/sock"
  note "ENTRACLAW_TPM points at a swtpm; on a real machine the TPM is /dev/tpmrm0 (Linux) or TBS (Windows)."
  run entraclaw-migrate -key-store tpm -operator-auth provisioner
  run entraclaw-verify
  TOKEN=$(entraclaw-provisioner-token -no-cache)
  note "A fresh token, its assertion signed in the TPM: ${#TOKEN} characters."
else
  say "7. (skipped: install swtpm to see the key move into a TPM: apt-get install swtpm swtpm-tools)"
fi

say "Done: the runbook ran end to end against the fake. Everything it started is cleaned up."
