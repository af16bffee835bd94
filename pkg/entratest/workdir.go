package entratest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Workdir is the directory a seeded fake is used from: the CA to trust, the scenario's state
// file, a fake `az` (for the az CLI operator credential and the runbook's pre-flight), and an
// `env` file to source.
type Workdir struct {
	Dir       string
	CAFile    string // DIR/ca.pem
	StateFile string // DIR/.entraclaw-state.json ("" for the empty scenario)
	BinDir    string // DIR/bin, holding the fake az
	EnvFile   string // DIR/env
	// CIEnvFile (DIR/ci-env) plays a CI job: it sources env, then exports the variables
	// GitHub Actions, Azure Pipelines and Kubernetes workload identity give a job.
	CIEnvFile string
	// K8sTokenFile (DIR/azure-identity-token) is the Kubernetes-style token file ci-env
	// names in AZURE_FEDERATED_TOKEN_FILE; WriteK8sTokenFile rotates it.
	K8sTokenFile string
	// OperatorFile (DIR/operator-sp.json, real hosts only) is the sign-in of an operator
	// app for the real az: AddOperatorApp.
	OperatorFile string
}

// StateFileName is the state file the scenarios write (the same name pkg/state looks for).
const StateFileName = ".entraclaw-state.json"

// WriteWorkdir writes ca.pem, the scenario's state file, bin/az, bin/az.cmd, env, ci-env
// and azure-identity-token into dir.
// extraEnv ("KEY=VALUE") lines are added to the env file, except that a "PATH=DIR" entry puts
// DIR on PATH after dir/bin (where the fake az is) instead of replacing PATH: the directory
// the entraclaw tools were built into, so that `. dir/env` finds them.
func WriteWorkdir(dir string, srv *Server, sc *Scenario, extraEnv ...string) (*Workdir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	w := &Workdir{
		Dir:     abs,
		CAFile:  filepath.Join(abs, "ca.pem"),
		BinDir:  filepath.Join(abs, "bin"),
		EnvFile: filepath.Join(abs, "env"),
	}
	if err := os.MkdirAll(w.BinDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(w.CAFile, srv.CAPEM(), 0o644); err != nil {
		return nil, err
	}
	if sc.StateJSON != nil {
		w.StateFile = filepath.Join(abs, StateFileName)
		if err := os.WriteFile(w.StateFile, sc.StateJSON, 0o600); err != nil {
			return nil, err
		}
	}
	if err := writeFakeAz(w, srv, sc.TenantID); err != nil {
		return nil, err
	}
	env := []string{
		"ENTRACLAW_CA_FILE=" + w.CAFile, // every OS; Go reads SSL_CERT_FILE (below) on Linux only
		"SSL_CERT_FILE=" + w.CAFile,
		// curl does not read SSL_CERT_FILE everywhere: the README's headline
		// `curl -H "Authorization: Bearer $TOKEN" …/v1.0/organization` needs this.
		"CURL_CA_BUNDLE=" + w.CAFile,
	}
	path := []string{w.BinDir}
	if srv.RealHosts() {
		// The fake answers as the real hosts: no host settings, so the tools take the public
		// cloud's defaults, and az and Python's requests trust the fake's CA through
		// REQUESTS_CA_BUNDLE. The real az is the point, so bin/az is not put on PATH.
		env = append(env, "REQUESTS_CA_BUNDLE="+w.CAFile)
		path = nil
		if err := writeOperatorFile(w, srv, sc.TenantID); err != nil {
			return nil, err
		}
	} else {
		env = append(env, "ENTRACLAW_AUTHORITY_HOST="+srv.AuthorityHost(),
			"ENTRACLAW_GRAPH_ENDPOINT="+srv.GraphEndpoint(), "ENTRACLAW_FAKE_URL="+srv.URL)
	}
	for _, kv := range extraEnv {
		if dir, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = append(path, dir)
		} else {
			env = append(env, kv)
		}
	}
	if err := os.WriteFile(w.EnvFile, []byte(envFile(w.EnvFile, env, path)), 0o644); err != nil {
		return nil, err
	}
	if err := writeCIEnv(w, srv); err != nil {
		return nil, err
	}
	return w, nil
}

// writeFakeAz writes bin/az (POSIX sh) and bin/az.cmd (Windows) for the tenant.
func writeFakeAz(w *Workdir, srv *Server, tenant string) error {
	az, err := fakeAzScript(srv, tenant, w.CAFile)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(w.BinDir, "az"), []byte(az), 0o755); err != nil {
		return err
	}
	azCmd, err := fakeAzCmd(srv, tenant, w.CAFile)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(w.BinDir, "az.cmd"), []byte(azCmd), 0o755)
}

// envFile is the text of the env file at path: it exports env and puts path's
// directories in front of $PATH.
func envFile(path string, env, dirs []string) string {
	var b strings.Builder
	b.WriteString("# Written by entraclaw-fake-entra. Source it: . " + path + "\n")
	// Forget every ENTRACLAW_* and AZURE_* variable the shell had: a stray
	// ENTRACLAW_STATE_FILE or ENTRACLAW_KEYRING_SERVICE must not point the tools at real
	// data while they talk to the fake.
	b.WriteString(clearEnvSnippet)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	b.WriteString("export PATH=")
	for _, dir := range dirs {
		b.WriteString(shellQuote(dir) + ":")
	}
	b.WriteString("\"$PATH\"\n")
	return b.String()
}

// fakeAzScript is a POSIX sh stand-in for the Azure CLI. It answers
// `az account get-access-token` (what azidentity's AzureCLICredential runs) and
// `az account show`. ENTRACLAW_FAKE_AZ_ACCOUNT picks who is logged in: admin (Global
// Administrator, the default), appadmin (Application Administrator), privroleadmin
// (Privileged Role Administrator), owner (owner of the provisioner app, no admin role),
// user, or loggedout. Through curl and the fake's /_fake/az routes it also answers
// `az ad app show --id APPID [--query PROP] [-o json]` (the runbook's check 2) and
// `az ad app credential reset --id APPID --append [--display-name N] [--years N | --end-date D]
// [--query PROP] [-o json|tsv]` (the Python-era runbook's rollback step 2).
// The tokens are the fake's own delegated tokens, meaningless outside this fake.
func fakeAzScript(srv *Server, tenantID, caFile string) (string, error) {
	tokens := map[string]string{}
	for _, kind := range []string{"admin", "appadmin", "privroleadmin", "owner", "user"} {
		tok, err := srv.OperatorToken(tenantID, kind)
		if err != nil {
			return "", err
		}
		tokens[kind] = tok
	}
	exp := time.Now().Add(12 * time.Hour)
	return fmt.Sprintf(`#!/bin/sh
# Fake Azure CLI for the entraclaw fake Entra ID (tenant %[1]s).
account=${ENTRACLAW_FAKE_AZ_ACCOUNT:-admin}
case "$account" in
  admin)    tok='%[2]s'; upn='admin@fake.entraclaw.test' ;;
  appadmin) tok='%[3]s'; upn='appadmin@fake.entraclaw.test' ;;
  user)     tok='%[4]s'; upn='user@fake.entraclaw.test' ;;
  privroleadmin) tok='%[7]s'; upn='privroleadmin@fake.entraclaw.test' ;;
  owner)    tok='%[8]s'; upn='owner@fake.entraclaw.test' ;;
  *) echo "ERROR: Please run 'az login' to setup account." >&2; exit 1 ;;
esac
# fakeaz ROUTE CURL-ARGS...: ask the fake; its answer on stdout, or its error on stderr (exit 1).
fakeaz() {
  command -v curl >/dev/null 2>&1 || { echo "fake az: curl is needed for 'az ad ...'" >&2; exit 2; }
  route=$1; shift
  out=$(curl -s --fail-with-body --cacert '%[10]s' -H "Authorization: Bearer $tok" -G "%[9]s/_fake/az/$route" "$@") || {
    rc=$?; [ -n "$out" ] || out="fake az: cannot reach the fake at %[9]s (curl exit $rc)"
    printf '%%s\n' "$out" >&2; exit 1
  }
  printf '%%s\n' "$out"
}
# The arguments of 'az ad ...' become curl's --data-urlencode pairs, appended after the
# ones still to read: n counts those.
case "$1 $2 $3 $4" in
  "ad app show "*) route=ad/app/show; shift 3 ;;
  "ad app credential reset") route=ad/app/credential/reset; shift 4 ;;
  *) route= ;;
esac
if [ -n "$route" ]; then
  n=$#; id=; append=
  while [ "$n" -gt 0 ]; do
    case "$1" in
      --append) append=true; set -- "$@" --data-urlencode append=true; shift; n=$((n - 1)); continue ;;
      --id) id=$2 ;;
      --display-name|--credential-description) set -- "$@" --data-urlencode "display-name=$2"; shift 2; n=$((n - 2)); continue ;;
      --query|--years|--end-date) ;;
      -o|--output) set -- "$@" --data-urlencode "output=$2"; shift 2; n=$((n - 2)); continue ;;
      *) echo "fake az: unsupported argument: $1" >&2; exit 2 ;;
    esac
    [ "$n" -ge 2 ] || { echo "ERROR: argument $1: expected one argument" >&2; exit 2; }
    set -- "$@" --data-urlencode "${1#--}=$2"; shift 2; n=$((n - 2))
  done
  [ -n "$id" ] || { echo "ERROR: the following arguments are required: --id" >&2; exit 2; }
  if [ "$route" = ad/app/show ]; then fakeaz "$route" "$@"; exit 0; fi
  [ -n "$append" ] || { echo "ERROR: fake az: only --append is supported (without it az deletes every client secret on the app first)" >&2; exit 2; }
  fakeaz "$route" -X POST "$@"
  echo '%[11]s' >&2
  exit 0
fi
case "$1 $2" in
  "account get-access-token")
    printf '{"accessToken":"%%s","expiresOn":"%[5]s","expires_on":%[6]d,"subscription":"00000000-0000-0000-0000-000000000000","tenant":"%[1]s","tokenType":"Bearer"}\n' "$tok" ;;
  "account show")
    printf '{"name":"EntraClaw fake","tenantId":"%[1]s","user":{"name":"%%s","type":"user"}}\n' "$upn" ;;
  *) echo "fake az: unsupported command: $*" >&2; exit 2 ;;
esac
`, tenantID, tokens["admin"], tokens["appadmin"], tokens["user"], exp.Local().Format("2006-01-02 15:04:05.000000"), exp.Unix(),
		tokens["privroleadmin"], tokens["owner"], srv.URL, caFile, azCredentialWarning), nil
}

// clearEnvSnippet is POSIX sh that unsets every exported ENTRACLAW_* and AZURE_* variable.
const clearEnvSnippet = `for _entraclaw_v in $(env | sed -n -e 's/^\(ENTRACLAW_[A-Za-z0-9_]*\)=.*/\1/p' -e 's/^\(AZURE_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$_entraclaw_v"; done; unset _entraclaw_v
`

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
