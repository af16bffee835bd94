#!/usr/bin/env bash
# Release archives for every supported platform, .deb and .rpm packages for Linux, a SHA256SUMS
# file, and the Homebrew formula, Scoop and winget manifests made from it, into dist/.
#
#   scripts/release.sh v1.2.0        # a release: refuses a dirty work tree or a version that is not a tag at HEAD
#   scripts/release.sh -snapshot     # a snapshot of whatever is checked out (CI; `make snapshot`)
#
# Each archive (entraclaw_<version>_<os>_<arch>.tar.gz, .zip for Windows) holds the four
# tools (not the fake), README.md, their man pages (man/man1/) and shell completions
# (completions/), which scripts/packaging/gendocs makes from each tool's -h flag table.
# entraclaw_<version>_linux_<arch>.deb and .rpm (nfpm, pinned in tools/nfpm/go.mod and run
# with `go run`: packaging/nfpm.yaml) install the same into /usr. Binaries are built with
# CGO_ENABLED=0, -trimpath, and the version, commit and commit date stamped into `-version`.
# Everything is reproducible: sorted entries, fixed owner, mtime = the commit time
# (SOURCE_DATE_EPOCH for nfpm), so two runs on one commit give the same bytes. The log ends
# with each binary's size per platform.
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

# The packages' version: 1.2.0 (1.2.0~rc.1 for v1.2.0-rc.1); a snapshot's is the last tag's
# (0.0.0 without one) plus build metadata, so it sorts after that tag: 1.2.0+3.gabc1234.snapshot.
# (nfpm does not expand variables in version_metadata: the metadata goes into the version.)
pkg_version=${version#v} pkg_prerelease=""
rest=${pkg_version#*-}
[ "$rest" != "$pkg_version" ] || rest=""
pkg_version=${pkg_version%%-*}
[[ $pkg_version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { pkg_version=0.0.0; rest=${version#v}; }
if [ "${1:-}" = -snapshot ]; then pkg_version+=+${rest//-/.}; else pkg_prerelease=${rest//-/.}; fi

root=$PWD
dist=dist
rm -rf "$dist"
mkdir -p "$dist"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
ldflags="-s -w -X $PKG.version=$version -X $PKG.commit=$commit -X $PKG.date=$date"

# Man pages and completion scripts: the same for every platform.
$GO run ./scripts/packaging/gendocs -out "$stage/docs" -version "$version" -date "${date%%T*}"

# package_linux ARCH DIR: the .deb and .rpm of one platform's staged tree DIR.
package_linux() {
  local arch=$1 dir=$2 pkgdir=$stage/pkg-$1
  cp -R "$dir" "$pkgdir"
  gzip -n -9 "$pkgdir"/man/man1/*.1 # Debian policy: man pages compressed
  find "$pkgdir" -exec touch -h -d "@$epoch" {} +
  for format in deb rpm; do
    (cd tools/nfpm && STAGE=$pkgdir ARCH=$arch PKG_VERSION=$pkg_version PKG_PRERELEASE=$pkg_prerelease \
      PKG_MAINTAINER=${PKG_MAINTAINER:-"entraclaw maintainers <https://github.com/entraclaw/entraclaw-cli/issues>"} \
      SOURCE_DATE_EPOCH=$epoch $GO run github.com/goreleaser/nfpm/v2/cmd/nfpm package \
      -f "$root/packaging/nfpm.yaml" -p $format -t "$root/$dist/entraclaw_${version}_linux_$arch.$format" >/dev/null)
  done
}

sizes=()

for p in $PLATFORMS; do
  os=${p%/*} arch=${p#*/}
  name=entraclaw_${version}_${os}_${arch}
  dir=$stage/$name
  mkdir -p "$dir"
  echo "release: $name" >&2
  for t in "${TOOLS[@]}"; do
    CGO_ENABLED=0 GOOS=$os GOARCH=$arch $GO build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$dir/" "./cmd/$t"
  done
  row=$(printf '%-14s' "$os/$arch")
  for t in "${TOOLS[@]}"; do
    row+=$(printf ' %18s' "$(wc -c <"$dir/$t"*)")
  done
  sizes+=("$row")
  cp README.md "$dir/"
  cp -R "$stage/docs/man" "$stage/docs/completions" "$dir/"
  find "$dir" -exec touch -h -d "@$epoch" {} +
  if [ "$os" = windows ]; then
    (cd "$stage" && find "$name" | LC_ALL=C sort | TZ=UTC zip -q -X -D "$OLDPWD/$dist/$name.zip" -@)
  else
    tar -C "$stage" --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -cf - "$name" |
      gzip -n -9 >"$dist/$name.tar.gz"
  fi
  if [ "$os" = linux ]; then
    package_linux "$arch" "$dir"
  fi
done

(cd "$dist" && sha256sum -- *.tar.gz *.zip *.deb *.rpm >SHA256SUMS)
# The Homebrew formula, Scoop and winget manifests: URLs and hashes from SHA256SUMS.
$GO run ./scripts/packaging/manifests -sums "$dist/SHA256SUMS" -version "$version" -date "${date%%T*}" \
  -templates packaging -out "$dist"
echo "release: $version ($commit) -> $dist/:" >&2
cat "$dist/SHA256SUMS" >&2
echo "release: binary sizes in bytes:" >&2
printf '  %-14s' platform >&2
printf ' %18s' "${TOOLS[@]#entraclaw-}" >&2
printf '\n' >&2
printf '  %s\n' "${sizes[@]}" >&2
