#!/usr/bin/env bash
# Release archives for every supported platform, with a SHA256SUMS file, into dist/.
#
#   scripts/release.sh v1.2.0        # a release: refuses a dirty work tree or a version that is not a tag at HEAD
#   scripts/release.sh -snapshot     # a snapshot of whatever is checked out (CI; `make snapshot`)
#
# Each archive (entraclaw_<version>_<os>_<arch>.tar.gz, .zip for Windows) holds the four
# tools (not the fake), README.md and nothing else. Binaries are built with CGO_ENABLED=0,
# -trimpath, and the version, commit and commit date stamped into `-version`. Archives are
# reproducible: sorted entries, fixed owner, mtime = the commit time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PLATFORMS=${PLATFORMS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"}
TOOLS=(entraclaw-provisioner-token entraclaw-migrate entraclaw-verify entraclaw-rollback)
PKG=github.com/entraclaw/entraclaw-cli/pkg/cli
GO=${GO:-go}

commit=$(git rev-parse HEAD)
epoch=$(git log -1 --format=%ct)
date=$(TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd)
if [ "${1:-}" = -snapshot ]; then
  version="$(git describe --tags --always --dirty 2>/dev/null || echo "${commit:0:12}")-snapshot"
else
  version=${1:?usage: scripts/release.sh VERSION | -snapshot}
  [[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+ ]] || { echo "release: version must look like v1.2.0, not $version" >&2; exit 2; }
  [ -z "$(git status --porcelain)" ] || { echo "release: the work tree is dirty; commit or stash first (or use -snapshot)" >&2; exit 1; }
  [ "$(git tag --points-at HEAD | grep -cx "$version")" = 1 ] ||
    { echo "release: $version is not a tag at HEAD: git tag -a $version -m $version && git push origin $version" >&2; exit 1; }
fi

dist=dist
rm -rf "$dist"
mkdir -p "$dist"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
ldflags="-s -w -X $PKG.version=$version -X $PKG.commit=$commit -X $PKG.date=$date"

for p in $PLATFORMS; do
  os=${p%/*} arch=${p#*/}
  name=entraclaw_${version}_${os}_${arch}
  dir=$stage/$name
  mkdir -p "$dir"
  echo "release: $name" >&2
  for t in "${TOOLS[@]}"; do
    CGO_ENABLED=0 GOOS=$os GOARCH=$arch $GO build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$dir/" "./cmd/$t"
  done
  cp README.md "$dir/"
  find "$dir" -exec touch -h -d "@$epoch" {} +
  if [ "$os" = windows ]; then
    (cd "$stage" && find "$name" | LC_ALL=C sort | TZ=UTC zip -q -X -D "$OLDPWD/$dist/$name.zip" -@)
  else
    tar -C "$stage" --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -cf - "$name" |
      gzip -n -9 >"$dist/$name.tar.gz"
  fi
done

(cd "$dist" && sha256sum -- *.tar.gz *.zip >SHA256SUMS)
echo "release: $version ($commit) -> $dist/:" >&2
cat "$dist/SHA256SUMS" >&2
