# Sourced by the scripts that start entraclaw-fake-entra in the background.

# wait_fake_ready PID OUT ERR: wait up to 10 s for the fake's "ready" line in OUT, the file its
# stdout goes to. The fake prints it last, once the working directory (env, CA, state file)
# is written and the migrated scenario's certificate is in the keyring, so a tool started
# after it finds everything. Returns 1, after printing ERR (its stderr), when the fake exits
# first, and 1 when the line does not come in time.
wait_fake_ready() {
  local pid=$1 out=$2 err=$3
  for _ in $(seq 1 100); do
    grep -q ready "$out" 2>/dev/null && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$err" >&2
      return 1
    fi
    sleep 0.1
  done
  grep -q ready "$out" 2>/dev/null
}
