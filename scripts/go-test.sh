#!/usr/bin/env bash
# `make test`'s go test: scripts/go-test.sh GO-TEST-FLAGS... -- PACKAGES...
#
# Under scripts/with-secret-service.sh, gnome-keyring-daemon now and then aborts when a client
# it is opening a session for has already gone (an upstream bug: "gkd_secret_service_get_pkcs11_session:
# assertion 'client' failed", then a GLib-ERROR; our kill tests SIGKILL entraclaw-migrate at every
# step, which is what such a client is). The wrapper restarts the daemon at once and records it, but
# the tests using it at that moment fail. Only then are the failed packages run once more, and it is
# said loudly; a failure without a daemon crash is never re-run, and a second failure stands.
set -uo pipefail
flags=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do flags+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
go=${GO:-go}
log=$(mktemp "${TMPDIR:-/tmp}/go-test.XXXXXX")
trap 'rm -f "$log"' EXIT

"$go" test "${flags[@]}" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
marker=${ENTRACLAW_SECRET_SERVICE_RESTARTS:-}
if [ "$rc" -eq 0 ] || [ -z "$marker" ] || [ ! -s "$marker" ]; then
	exit "$rc"
fi
failed=$(awk '$1 == "FAIL" && NF == 3 && $3 ~ /s$/ {print $2}' "$log" | sort -u)
if [ -z "$failed" ]; then
	exit "$rc"
fi
echo "go-test: gnome-keyring-daemon crashed $(wc -l <"$marker") time(s) during the run (restarted; see its log above); running the failed package(s) once more: $(echo $failed)" >&2
: >"$marker"
"$go" test "${flags[@]}" $failed
