#!/usr/bin/env bash
# Run a command with a private, unlocked Secret Service.
#
#   scripts/with-secret-service.sh CMD [ARGS...]
#   scripts/with-secret-service.sh go test ./...
#
# CMD runs in a new D-Bus session (dbus-run-session) next to a gnome-keyring-daemon
# whose login keyring is created and unlocked with a throwaway password. HOME and
# the XDG directories point into a fresh temporary directory, so the user's real
# keyring is never touched; the Go build and module caches stay the caller's.
# CMD keeps stdin/stdout/stderr and the working directory. The script exits with
# CMD's status, or 3 when the Secret Service cannot be set up. The daemon is
# stopped and the temporary directory removed on exit.
set -euo pipefail

prog=${0##*/}
install_hint='apt-get install -y gnome-keyring dbus-x11 libsecret-tools'
password=entraclaw-throwaway-keyring
wait_steps=50 # x 0.1 s

fail() {
	printf '%s: %s\n' "$prog" "$*" >&2
	exit 3
}

secrets_owned() {
	dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
		org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
		grep -q 'boolean true'
}

# Second stage, inside dbus-run-session: start the daemon, wait for it, run CMD.
inside_session() {
	local dir=$ENTRACLAW_SECRET_SERVICE_DIR
	unset ENTRACLAW_SECRET_SERVICE_DIR
	local log=$dir/gnome-keyring-daemon.log

	# The daemon runs under a watch: gnome-keyring-daemon has been seen to abort (a GLib
	# assertion, trap int3) in the middle of a test run. It is restarted at once with the
	# same password, on the same keyring files, and the crash is reported on stderr.
	(
		local restarts=0
		while [[ ! -e $dir/stopping ]]; do
			printf '%s' "$password" |
				gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>>"$log" &
			echo $! >"$dir/daemon.pid"
			status=0
			wait $! || status=$?
			[[ -e $dir/stopping ]] && exit 0
			((restarts++ < 5)) || exit 1
			echo "$status" >>"$dir/restarts" # scripts/go-test.sh reads it: a crash, not a failure of ours
			printf '%s: gnome-keyring-daemon exited (status %s); restarting it. Its log:\n' "$prog" "$status" >&2
			tail -n 20 "$log" >&2
			sleep 0.1
		done
	) &
	local watch=$!
	# shellcheck disable=SC2064 # expand $watch and $dir now
	# Stop the watch first, so it cannot start a daemon after the last one is killed.
	trap "touch '$dir/stopping'; kill $watch 2>/dev/null; wait $watch 2>/dev/null || true; kill \$(cat '$dir/daemon.pid' 2>/dev/null) 2>/dev/null || true" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	local i
	for ((i = 0; i < wait_steps; i++)); do
		secrets_owned && break
		kill -0 "$watch" 2>/dev/null || fail "gnome-keyring-daemon exited: $(tr '\n' ' ' <"$log")"
		sleep 0.1
	done
	secrets_owned || fail "gnome-keyring-daemon did not own org.freedesktop.secrets within $((wait_steps / 10)) s"

	local status=0
	export ENTRACLAW_SECRET_SERVICE_RESTARTS=$dir/restarts
	"$@" || status=$?
	exit "$status"
}

if [[ -n ${ENTRACLAW_SECRET_SERVICE_DIR:-} ]]; then
	inside_session "$@"
fi

if [[ $# -eq 0 ]]; then
	printf 'usage: %s CMD [ARGS...]\n' "$prog" >&2
	exit 2
fi

for tool in dbus-run-session dbus-daemon dbus-send gnome-keyring-daemon; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool not found; install it with: $install_hint"
done

# Keep the caller's Go caches (and go env file) before HOME moves.
if command -v go >/dev/null 2>&1 && go_env=$(go env GOPATH GOMODCACHE GOCACHE GOENV); then
	{ read -r GOPATH; read -r GOMODCACHE; read -r GOCACHE; read -r GOENV; } <<<"$go_env"
	export GOPATH GOMODCACHE GOCACHE GOENV
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/entraclaw-secret-service.XXXXXX")
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export HOME=$dir/home
export XDG_DATA_HOME=$HOME/.local/share
export XDG_CONFIG_HOME=$HOME/.config
export XDG_CACHE_HOME=$HOME/.cache
export XDG_STATE_HOME=$HOME/.local/state
export XDG_RUNTIME_DIR=$dir/run
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_STATE_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"

status=0
# The session bus activates no services: with the standard service directories, a call to
# org.freedesktop.secrets while the daemon is down would start a second gnome-keyring
# whose login keyring is locked, and the call would wait on an unlock prompt forever.
mkdir -p "$dir/dbus-services"
cat >"$dir/session.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:tmpdir=$dir</listen>
  <auth>EXTERNAL</auth>
  <servicedir>$dir/dbus-services</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
# As root under a hard fd limit below 65536 and without CAP_SYS_RESOURCE (containers, CI),
# dbus-daemon prints "Failed to set fd limit to 65536: Operation not permitted" when it starts.
# The bus works all the same, but the line would drown warnings that matter, so the daemon
# runs through a shim that drops that one line from its stderr and passes every other line.
# The filter closes the pipe the daemon prints its address on (--print-address N): if it held
# it open, dbus-run-session, which reads the address to the end, would wait forever.
cat >"$dir/dbus-daemon" <<'EOF'
#!/usr/bin/env bash
addr=
for ((i = 1; i <= $#; i++)); do
	case ${!i} in
	--print-address=*) addr=${!i#*=} ;;
	--print-address) j=$((i + 1)) && addr=${!j:-} ;;
	esac
done
[[ $addr =~ ^[0-9]+$ ]] || addr=
exec dbus-daemon "$@" 2> >(
	[[ -z $addr ]] || eval "exec $addr>&-"
	exec grep -Ev --line-buffered '^dbus-daemon\[[0-9]+\]: .*Failed to set fd limit to [0-9]+: Operation not permitted$' >&2
)
EOF
chmod +x "$dir/dbus-daemon"
ENTRACLAW_SECRET_SERVICE_DIR=$dir dbus-run-session --dbus-daemon="$dir/dbus-daemon" --config-file="$dir/session.conf" -- "$BASH" "$0" "$@" || status=$?
exit "$status"
