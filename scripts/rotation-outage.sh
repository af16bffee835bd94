#!/usr/bin/env bash
# Measures the day-2 rotation outage: how many `entraclaw-provisioner-token` calls fail while
# `entraclaw-migrate -rotate` runs against the fake with a propagation delay.
#
#   scripts/with-secret-service.sh scripts/rotation-outage.sh [BIN_DIR] [DELAY] [INTERVAL]
#
# BIN_DIR holds the binaries to measure (default: a fresh build of this tree), DELAY the
# fake's -propagation-delay (default 8s), INTERVAL the pause between token calls (default
# 0.25). It warms the token cache, starts the token loop, rotates, and prints one line:
# "calls=N failed=M rotate_exit=E rotate_seconds=S". Run it inside a private Secret Service.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/fake.sh
. "$root/scripts/lib/fake.sh"
delay=${2:-8s}
interval=${3:-0.25}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/entraclaw-outage.XXXXXX")
fake_pid=""
cleanup() {
  set +e
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
# Nothing inherited may steer the run.
for v in $(env | grep -oE '^(ENTRACLAW|AZURE)_[A-Z0-9_]*' || true); do unset "$v"; done

bin=${1:-}
if [ -z "$bin" ]; then
  bin="$tmp/bin"
  (cd "$root" && go build -o "$bin/" ./cmd/...)
fi
export XDG_STATE_HOME="$tmp/state"
"$bin/entraclaw-fake-entra" -workdir "$tmp/w" -scenario migrated -propagation-delay "$delay" \
  -keyring-service entraclaw-outage-cert >"$tmp/fake.log" 2>"$tmp/fake.err" &
fake_pid=$!
# The ready line, not the env file: the migrated scenario's certificate reaches the keyring
# after the env file is written.
wait_fake_ready "$fake_pid" "$tmp/fake.log" "$tmp/fake.err" || { echo "rotation-outage: the fake did not get ready" >&2; exit 1; }
# shellcheck disable=SC1091
. "$tmp/w/env"
export ENTRACLAW_KEYRING_SERVICE=entraclaw-outage-cert
export PATH="$bin:$PATH"
cd "$tmp/w"
entraclaw-provisioner-token >/dev/null

(
  while [ ! -e "$tmp/stop" ]; do
    if entraclaw-provisioner-token >/dev/null 2>>"$tmp/token.err"; then echo ok; else echo fail; fi
    sleep "$interval"
  done
) >"$tmp/results" &
loop=$!
start=$(date +%s.%N)
set +e
entraclaw-migrate -rotate 2>"$tmp/rotate.err"
rc=$?
set -e
end=$(date +%s.%N)
sleep 1 # calls with the new certificate
touch "$tmp/stop"
wait "$loop"
calls=$(wc -l <"$tmp/results")
failed=$(grep -c fail "$tmp/results" || true)
printf 'calls=%s failed=%s rotate_exit=%s rotate_seconds=%.1f\n' "$calls" "$failed" "$rc" "$(echo "$end - $start" | bc)"
if [ "$failed" -gt 0 ]; then sort "$tmp/token.err" | uniq -c | sort -rn | head -n 3 | cut -c1-200 >&2; fi
