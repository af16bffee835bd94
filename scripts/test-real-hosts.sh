#!/usr/bin/env bash
# make test-real-hosts — the fake stands in for the real hosts (issue 22 §0).
#
# In a private network and mount namespace (unshare --net --mount: root only), /etc/hosts is
# bind-mounted to map login.microsoftonline.com, graph.microsoft.com and management.azure.com
# to 127.0.0.1, where `entraclaw-fake-entra -listen 127.0.0.1:443 -real-hosts` answers with a
# certificate of its own CA. Nothing but that CA is configured, then:
#   (b) real clients nobody here wrote: the Azure CLI (az login --service-principal, az
#       account get-access-token, az rest on ARM, az ad app show / credential reset) and
#       Python azure-identity (ClientSecretCredential, CertificateCredential);
#   (a) our four binaries with no host setting at all doing the runbook, the operator being
#       the real az signed in as the fake's operator app: migrate, verify 4/4, token, rotate,
#       rollback, re-migrate.
# It skips (exit 0) when not root or without unshare, except in CI (CI=true), where it fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/fake.sh
. "$root/scripts/lib/fake.sh"
prog=test-real-hosts
hosts="login.microsoftonline.com graph.microsoft.com management.azure.com"

# Stage 1 (the caller): check what is needed, build, enter the namespaces.
outer() {
	local why=""
	if [ "$(id -u)" -ne 0 ]; then
		why="not root (unshare --net --mount and port 443 need root)"
	elif ! command -v unshare >/dev/null 2>&1; then
		why="no unshare (util-linux)"
	elif ! unshare --net --mount true 2>/dev/null; then
		why="unshare --net --mount is not permitted here"
	fi
	if [ -n "$why" ]; then
		if [ "${CI:-}" = true ]; then
			echo "$prog: FAIL: $why; CI runs as root and must run this test" >&2
			exit 1
		fi
		echo "$prog: SKIP: $why"
		exit 0
	fi
	local missing=()
	for p in azure-cli:az jq:jq curl:curl openssl:openssl iproute2:ip gnome-keyring:gnome-keyring-daemon; do
		command -v "${p#*:}" >/dev/null 2>&1 || missing+=("${p%%:*}")
	done
	[ -n "$(python_with_azure_identity)" ] || missing+=(python3-azure)
	if [ ${#missing[@]} -gt 0 ]; then
		echo "$prog: FAIL: missing ${missing[*]}: apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/entraclaw-realhosts.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	(cd "$root" && CGO_ENABLED=0 go build -o "$tmp/bin/" ./cmd/...)
	printf '127.0.0.1 localhost\n::1 localhost\n127.0.0.1 %s\n' "$hosts" >"$tmp/hosts"
	local rc=0
	REALHOSTS_STAGE=namespace REALHOSTS_TMP=$tmp unshare --net --mount -- bash "$0" || rc=$?
	exit "$rc"
}

# python_with_azure_identity prints a Python that imports azure.identity (Debian's
# python3-azure installs into /usr/bin/python3's dist-packages, not a pyenv's).
python_with_azure_identity() {
	local py
	for py in /usr/bin/python3 python3; do
		if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import azure.identity' 2>/dev/null; then
			command -v "$py"
			return
		fi
	done
}

# Stage 2 (inside the namespaces): loopback up, the real names on 127.0.0.1, then a private
# Secret Service for the tools' keyring.
namespace() {
	ip link set lo up
	mount --bind "$REALHOSTS_TMP/hosts" /etc/hosts
	REALHOSTS_STAGE=run exec "$root/scripts/with-secret-service.sh" bash "$0"
}

passed=0
failed=0
ok() {
	passed=$((passed + 1))
	echo "PASS  $*"
}
bad() {
	failed=$((failed + 1))
	echo "FAIL  $*"
}

# claim TOKEN NAME prints one claim of a JWT.
claim() {
	"$PY" -c 'import sys, json, base64
p = sys.argv[1].split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))).get(sys.argv[2], ""))' "$1" "$2"
}

# Stage 3: the test.
run() {
	local tmp=$REALHOSTS_TMP w=$REALHOSTS_TMP/w
	fake_pid=""
	PY=$(python_with_azure_identity)
	trap 'if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null; wait "$fake_pid" 2>/dev/null; fi' EXIT
	mkdir -p "$w"
	"$tmp/bin/entraclaw-fake-entra" -workdir "$w" -scenario legacy -listen 127.0.0.1:443 -real-hosts \
		-propagation-delay 2s >"$tmp/fake.out" 2>"$tmp/fake.err" &
	fake_pid=$!
	wait_fake_ready "$fake_pid" "$tmp/fake.out" "$tmp/fake.err" || { echo "test-real-hosts: the fake did not get ready" >&2; exit 1; }
	cat "$tmp/fake.out"
	check_env_file "$w/env"
	# shellcheck disable=SC1091
	. "$w/env"
	# az keeps its login and token cache here; no telemetry upload attempts (no network).
	export AZURE_CONFIG_DIR=$tmp/az AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_NO_COLOR=true
	export XDG_STATE_HOME=$tmp/state XDG_CONFIG_HOME=$tmp/config
	cd "$w"
	TID=$(jq -r .TENANT_ID .entraclaw-state.json)
	CID=$(jq -r .PROVISIONER_CLIENT_ID .entraclaw-state.json)
	real_clients_before
	runbook
	certificate_credential
	routes_answered
	echo "$prog: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# check_env_file: the env of -real-hosts sets no host, only the CA.
check_env_file() {
	local v
	for v in ENTRACLAW_AUTHORITY_HOST ENTRACLAW_GRAPH_ENDPOINT ENTRACLAW_FAKE_URL ENTRACLAW_CLOUD; do
		if grep -q "^export $v=" "$1"; then bad "env sets $v"; else ok "env does not set $v"; fi
	done
	for v in ENTRACLAW_CA_FILE REQUESTS_CA_BUNDLE SSL_CERT_FILE; do
		if grep -q "^export $v=" "$1"; then ok "env sets $v (the fake's CA)"; else bad "env lacks $v"; fi
	done
}

# real_clients_before: az and azure-identity with the legacy scenario's client secret.
real_clients_before() {
	local secret out tok
	secret=$(jq -r .PROVISIONER_CLIENT_SECRET .entraclaw-state.json)
	if out=$(az login --service-principal -u "$CID" -p="$secret" --tenant "$TID" --allow-no-subscriptions -o json) &&
		[ "$(jq -r '.[0].tenantId + " " + .[0].user.type' <<<"$out")" = "$TID servicePrincipal" ]; then
		ok "az login --service-principal (the legacy secret)"
	else
		bad "az login --service-principal: $out"
	fi
	tok=$(az account get-access-token --resource https://graph.microsoft.com --query accessToken -o tsv) || tok=""
	if [ -n "$tok" ] && [ "$(claim "$tok" aud) $(claim "$tok" appid)" = "https://graph.microsoft.com $CID" ]; then
		ok "az account get-access-token --resource https://graph.microsoft.com: aud and appid"
	else
		bad "az account get-access-token: no Graph token for $CID"
	fi
	out=$(az rest --method get --url "https://management.azure.com/tenants?api-version=2022-12-01" --query 'value[0].tenantId' -o tsv) || out=""
	if [ "$out" = "$TID" ]; then ok "az rest GET management.azure.com/tenants: this tenant"; else bad "az rest /tenants: '$out'"; fi
	out=$(az ad app show --id "$CID" --query passwordCredentials -o json) || out=""
	if [ "$(jq length <<<"$out" 2>/dev/null)" = 1 ]; then ok "az ad app show --query passwordCredentials: one secret"; else bad "az ad app show: $out"; fi
	out=$(AZURE_TENANT_ID=$TID AZURE_CLIENT_ID=$CID AZURE_CLIENT_SECRET=$secret "$PY" -c '
import os
from azure.identity import ClientSecretCredential
c = ClientSecretCredential(os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"], os.environ["AZURE_CLIENT_SECRET"])
print(c.get_token("https://graph.microsoft.com/.default").token)') || out=""
	if [ -n "$out" ] && [ "$(claim "$out" aud)" = https://graph.microsoft.com ]; then
		ok "azure-identity ClientSecretCredential.get_token(graph)"
	else
		bad "azure-identity ClientSecretCredential: no Graph token"
	fi
}

# runbook: our binaries, no host settings; the operator is the real az signed in as the
# fake's operator app (Application.ReadWrite.All, AppRoleAssignment.ReadWrite.All).
runbook() {
	local out thumb1 thumb2 tok
	if az login --service-principal -u "$(jq -r .appId operator-sp.json)" -p="$(jq -r .password operator-sp.json)" \
		--tenant "$TID" --allow-no-subscriptions -o none; then
		ok "az login as the operator app"
	else
		bad "az login as the operator app"
	fi
	tool entraclaw-migrate && ok "entraclaw-migrate (operator: the real az)" || bad "entraclaw-migrate"
	out=$(tool entraclaw-verify) || true
	echo "$out"
	grep -q '^4/4 checks passed' <<<"$out" && ok "entraclaw-verify: 4/4" || bad "entraclaw-verify"
	tok=$(tool entraclaw-provisioner-token) || tok=""
	[ -n "$tok" ] && [ "$(claim "$tok" aud)" = https://graph.microsoft.com ] &&
		ok "entraclaw-provisioner-token: a Graph token" || bad "entraclaw-provisioner-token"
	thumb1=$(jq -r .PROVISIONER_CERT_THUMBPRINT .entraclaw-state.json)
	tool entraclaw-migrate -rotate && thumb2=$(jq -r .PROVISIONER_CERT_THUMBPRINT .entraclaw-state.json) &&
		[ "$thumb1" != "$thumb2" ] && ok "entraclaw-migrate -rotate: a new certificate" || bad "entraclaw-migrate -rotate"
	tool entraclaw-rollback -yes && jq -e '.PROVISIONER_CLIENT_SECRET | length > 0' .entraclaw-state.json >/dev/null &&
		ok "entraclaw-rollback -yes: a secret is back" || bad "entraclaw-rollback"
	out=$(az ad app credential reset --id "$CID" --append --display-name realhosts -o json) || out=""
	[ "$(jq -r .appId <<<"$out" 2>/dev/null)" = "$CID" ] && [ -n "$(jq -r .password <<<"$out")" ] &&
		ok "az ad app credential reset --append" || bad "az ad app credential reset --append: $out"
	out=$(az ad app show --id "$CID" --query passwordCredentials -o json) || out=""
	[ "$(jq length <<<"$out" 2>/dev/null)" = 2 ] && ok "az ad app show: rollback's and az's secrets" || bad "az ad app show after rollback: $out"
	tool entraclaw-migrate && ok "entraclaw-migrate again" || bad "entraclaw-migrate again"
	out=$(tool entraclaw-verify -wait 2m) || true
	grep -q '^4/4 checks passed' <<<"$out" && ok "entraclaw-verify after re-migrating: 4/4" || bad "entraclaw-verify after re-migrating: $out"
}

# tool runs one of our binaries with no host setting in its environment at all.
tool() {
	env -u ENTRACLAW_AUTHORITY_HOST -u ENTRACLAW_GRAPH_ENDPOINT -u ENTRACLAW_CLOUD -u ENTRACLAW_OPERATOR_AUTH "$@"
}

# certificate_credential: az uploads a PEM certificate, azure-identity signs in with it.
certificate_credential() {
	local pem=$REALHOSTS_TMP/cert.pem out
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pem.key" -out "$pem.crt" -days 30 -subj /CN=realhosts 2>/dev/null
	cat "$pem.key" "$pem.crt" >"$pem"
	if az ad app credential reset --id "$CID" --cert "@$pem.crt" --append -o none; then
		ok "az ad app credential reset --cert --append"
	else
		bad "az ad app credential reset --cert --append"
	fi
	out=$(AZURE_TENANT_ID=$TID AZURE_CLIENT_ID=$CID PEM=$pem "$PY" -c '
import logging, os, time
from azure.identity import CertificateCredential
from azure.core.exceptions import ClientAuthenticationError
c = CertificateCredential(os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"], certificate_path=os.environ["PEM"])
logging.disable(logging.WARNING)  # each expected AADSTS700027 while the key propagates
for attempt in range(20):  # the new key reaches the token service after the propagation delay
    try:
        print(c.get_token("https://graph.microsoft.com/.default").token)
        break
    except ClientAuthenticationError as e:
        if "AADSTS700027" not in str(e) or attempt == 19:
            raise
        time.sleep(0.5)') || out=""
	if [ -n "$out" ] && [ "$(claim "$out" appidacr)" = 2 ]; then
		ok "azure-identity CertificateCredential (PEM).get_token(graph)"
	else
		bad "azure-identity CertificateCredential: no Graph token"
	fi
}

# routes_answered: every request the clients made reached a route the fake serves.
routes_answered() {
	local state unknown
	state=$(curl -sS --cacert "$REQUESTS_CA_BUNDLE" https://127.0.0.1/_fake/state) || state='{}'
	unknown=$(jq -r '.requests // {} | keys[] | select(endswith(" /*"))' <<<"$state")
	[ -z "$unknown" ] && ok "no request hit a route the fake does not serve" || bad "unserved requests: $unknown"
	echo "requests served, by route:"
	jq -r '.requests // {} | to_entries[] | "  \(.value)\t\(.key)"' <<<"$state"
}

case "${REALHOSTS_STAGE:-}" in
"") outer ;;
namespace) namespace ;;
run) run ;;
esac
