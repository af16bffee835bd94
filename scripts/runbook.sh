#!/usr/bin/env bash
# The provisioner's secret -> certificate migration runbook as one script: pre-flight, migrate,
# verify. Drop it into a repository that holds .entraclaw-state.json and run it from there.
# Needs the entraclaw binaries on PATH (make install) and an administrator signed in
# (`az login`, or ENTRACLAW_OPERATOR_AUTH=device-code).
set -euo pipefail

say() { printf '\n== %s\n' "$*" >&2; }

for bin in entraclaw-migrate entraclaw-verify entraclaw-provisioner-token; do
  command -v "$bin" >/dev/null || { echo "runbook: $bin not found on PATH; run \`make install\`" >&2; exit 1; }
done

say "Pre-flight"
if [ "${ENTRACLAW_OPERATOR_AUTH:-azcli}" = azcli ]; then
  az account show --query "{name:name,tenantId:tenantId,user:user.name}" -o json >&2 ||
    { echo "runbook: not signed in: run \`az login\` as an administrator" >&2; exit 1; }
fi
entraclaw-migrate -dry-run

say "Migrate (backs up the state file before its first change)"
entraclaw-migrate

say "Verify: all four checks must pass"
entraclaw-verify -wait 2m

say "Done. Delete the state backup that still holds the old secret once you are confident:"
echo "  shred -u <the backup path migrate printed above>   (entraclaw-verify lists any left)" >&2
