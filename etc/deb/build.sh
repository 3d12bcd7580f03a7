#!/usr/bin/env bash
# make deb: the octavia-health-manager and amphora-agent .deb packages,
# built with nFPM (go run, pinned by NFPM_VERSION) from etc/deb/*.yaml.
#
#   etc/deb/build.sh OUT_DIR BIN_DIR
#
# BIN_DIR holds the two programs as make build leaves them. The systemd
# units are etc/systemd/'s, with the binaries in /usr/bin; the man pages
# are rendered from the command-line definitions (TestManPage). The
# version is git describe's: a v1.2.3 tag gives 1.2.3, commits after it
# 1.2.3+4.gabcdef0, no tag 0.0.0+git.abcdef0; ".dirty" marks local changes.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
bin=$(cd "$2" && pwd)
go=${GO:-go}
nfpm_version=${NFPM_VERSION:-v2.45.2}

describe=$(git -C "$root" describe --tags --match 'v[0-9]*' --long --dirty 2>/dev/null || true)
if [[ $describe =~ ^v([0-9][^-]*)-([0-9]+)-g([0-9a-f]+)(-dirty)?$ ]]; then
  version=${BASH_REMATCH[1]}
  [ "${BASH_REMATCH[2]}" = 0 ] || version+="+${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}"
  [ -z "${BASH_REMATCH[4]}" ] || version+=".dirty"
elif hash=$(git -C "$root" rev-parse --short HEAD 2>/dev/null); then
  version="0.0.0+git.$hash"
  git -C "$root" diff --quiet HEAD 2>/dev/null || version+=".dirty"
else
  version=0.0.0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
DEB_VERSION=$version DEB_BIN=$bin DEB_WORK=$work DEB_ARCH=${DEB_ARCH:-$("$go" env GOARCH)}

for pkg in octavia-health-manager amphora-agent; do
  mkdir -p "$work/$pkg"
  sed 's#/usr/local/bin/#/usr/bin/#g' "$root/etc/systemd/$pkg.service" >"$work/$pkg/$pkg.service"
  case $pkg in
    octavia-health-manager) conf=/etc/octavia/octavia.conf ;;
    amphora-agent) conf=/etc/octavia/amphora-agent.conf ;;
  esac
  sed "s#@CONFIG_FILE@#$conf#" "$root/etc/deb/postinst" >"$work/$pkg/postinst"
  (cd "$root" && MAN_OUT="$work/$pkg/$pkg.8" "$go" test -count=1 -run '^TestManPage$' "./cmd/$pkg" >/dev/null)
  gzip -9n "$work/$pkg/$pkg.8"
  sed -e "s#\${DEB_VERSION}#$DEB_VERSION#g" -e "s#\${DEB_BIN}#$DEB_BIN#g" \
    -e "s#\${DEB_WORK}#$DEB_WORK#g" -e "s#\${DEB_ARCH}#$DEB_ARCH#g" "$root/etc/deb/$pkg.yaml" >"$work/$pkg.yaml"
  (cd "$root" && "$go" run "github.com/goreleaser/nfpm/v2/cmd/nfpm@$nfpm_version" \
    package --config "$work/$pkg.yaml" --packager deb --target "$out/")
done
ls -1 "$out"/*.deb
