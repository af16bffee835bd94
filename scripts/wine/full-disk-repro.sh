#!/usr/bin/env bash
# scripts/wine/full-disk-repro.sh [REPO]: reproduces the "exit 1 with empty stdout and stderr"
# flake of make test-windows (docs/windows.md, "A full disk under Wine"). Needs root (it mounts
# tmpfs file systems), wine64 and mingw-w64, and a Secret Service as make test-windows does.
#   1. writeprobe.exe under Wine with stdout/stderr on a full tmpfs, then on /dev/full: each
#      write fails with "Disk full." (ERROR_DISK_FULL, Wine's mapping of ENOSPC), exit 1.
#   2. REPO's make test-windows (default: this checkout) with TMPDIR on a 1600 MiB tmpfs that is
#      filled to the last byte when the step "legacy runbook: verify, token" starts. Before the
#      fix, entraclaw-verify exits 1 with empty stdout and stderr; after it, verify passes and
#      the first write that fails says "No space left on device" next to the free space.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
repo=$(cd "${1:-$here}" && pwd)
work=$(mktemp -d /tmp/full-disk-repro.XXXXXX)
trap 'umount "$work/full" "$work/tmpdir" 2>/dev/null; rm -rf "$work"' EXIT
WINE=${WINE:-/usr/lib/wine/wine64}
export WINEPREFIX=$work/prefix WINEARCH=win64 WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="

echo "== 1. writeprobe.exe under Wine, stdout/stderr on a full file system"
(cd "$here" && GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go build -o "$work/" ./scripts/wine/writeprobe) || exit 1
x86_64-w64-mingw32-gcc -O2 -shared -nostartfiles -Wl,--entry=DllMain -o "$work/bcryptprimitives.dll" \
  "$here/scripts/wine/bcryptprimitives.c" "$here/scripts/wine/bcryptprimitives.def" -ladvapi32 || exit 1
"$WINE" wineboot --init >/dev/null 2>&1
cp "$work/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"
mkdir -p "$work/full" && mount -t tmpfs -o size=64k tmpfs "$work/full"
dd if=/dev/zero of="$work/full/filler" bs=4k 2>/dev/null
"$WINE" "$work/writeprobe.exe" -log "Z:${work//\//\\}\\probe.log" >"$work/full/out" 2>"$work/full/err"
echo "   full tmpfs: exit $?, stdout $(wc -c <"$work/full/out") bytes, stderr $(wc -c <"$work/full/err") bytes; what each write returned:"
sed 's/^/     /' "$work/probe.log"
"$WINE" "$work/writeprobe.exe" >/dev/full 2>"$work/err"
echo "   stdout on /dev/full: exit $?; stderr: $(cat "$work/err")"

echo "== 2. make test-windows in $repo, TMPDIR filled up at the step 'legacy runbook: verify, token'"
mkdir -p "$work/tmpdir" && mount -t tmpfs -o size=1600m tmpfs "$work/tmpdir"
(cd "$repo" && TMPDIR=$work/tmpdir make test-windows) >"$work/run.log" 2>&1 &
run=$!
until grep -qs '== legacy runbook: verify, token' "$work/run.log" || ! kill -0 $run 2>/dev/null; do sleep 0.02; done
dd if=/dev/zero of="$work/tmpdir/filler" bs=1M 2>/dev/null
dd if=/dev/zero of="$work/tmpdir/filler2" bs=4k 2>/dev/null
wait $run
echo "   make test-windows exit $?; from the step that fails on:"
sed -n '/== legacy runbook: verify, token/,$p' "$work/run.log" | grep -v '^    [0-9]' | sed 's/^/     /'
