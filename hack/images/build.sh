#!/usr/bin/env bash
# Builds the service, sidecar and operator images from the root Dockerfile on a machine without a
# container registry (npm run images:build):
#   1. installs Debian's docker.io and debootstrap when they are missing (apt-get, as root);
#   2. uses the Docker engine that answers, or starts dockerd itself (storage driver overlay2; pid
#      file and log in the cluster state folder, so `npm run cluster:down` stops it again);
#   3. makes a local Node 24 base image, arc-node:24 (a `debootstrap --variant=minbase bookworm`
#      root file system, our Node 24 binary from node_modules/node and the machine's npm), cached
#      outside the repo and rebuilt only when its ingredients change;
#   4. builds arc-service, arc-sidecar and arc-operator with NODE_IMAGE=arc-node:24; `npm ci` in
#      the build stages runs in arc-node-build:24, which adds the CA bundle this machine trusts
#      (npm's cafile): the runtime images never derive from it, so the CA is not in them;
#   5. scans every file of each built image for a forbidden module (hack/image-scan.ts).
#
# Usage: hack/images/build.sh [--tag TAG] [--no-cache] [--base-only]
#   --tag TAG     image tag (default: dev)        --no-cache   rebuild every layer of our images
#   --base-only   stop after the base images
# Environment: ARC_CACHE_DIR (default $HOME/.cache/arc-operator: the root file system and stamps),
#   ARC_CLUSTER_DIR (default <repo>/.cluster: dockerd's pid file and log when started here),
#   ARC_DOCKER_ROOT (dockerd's data root when started here, default /var/lib/docker),
#   ARC_BUILD_CA (CA bundle for npm inside the build, default /etc/ssl/certs/ca-certificates.crt;
#   empty: none), DOCKER_BUILDKIT (unset: BuildKit when a docker CLI here can drive it, else the
#   legacy builder; 0: the legacy builder).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE_DIR=${ARC_CACHE_DIR:-$HOME/.cache/arc-operator}
IMG_CACHE="$CACHE_DIR/images"
STATE=${ARC_CLUSTER_DIR:-$REPO/.cluster}
BUILD_CA=${ARC_BUILD_CA-/etc/ssl/certs/ca-certificates.crt}
TAG=dev
NO_CACHE=()
BASE_ONLY=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tag) TAG=${2:?--tag needs a value}; shift ;;
    --no-cache) NO_CACHE=(--no-cache) ;;
    --base-only) BASE_ONLY=1 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "images/build.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=hack/lib/apt.sh
source "$REPO/hack/lib/apt.sh"
# shellcheck source=hack/lib/daemon.sh
source "$REPO/hack/lib/daemon.sh"
# shellcheck source=hack/lib/docker.sh
source "$REPO/hack/lib/docker.sh"

NODE_BIN="$REPO/node_modules/node/bin/node"
[[ -x "$NODE_BIN" ]] || die "$NODE_BIN is missing: run npm ci first (the npm package 'node' ships the Node 24 binary)"

# ---- 1. packages, 2. engine ---------------------------------------------------------------
command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
if docker_engine_answers; then
  log "using the running Docker engine $(docker info --format '{{.ServerVersion}}' 2>/dev/null)"
else
  ensure_docker_engine "$STATE" || die "no Docker engine"
  log "dockerd is up (stop it with: npm run cluster:down)"
fi
command -v docker >/dev/null 2>&1 || apt_install docker.io

# ---- 3. base images --------------------------------------------------------------------------
# The Debian mirror apt already uses (no host is named here).
apt_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{ print $2 }' | grep -v -- '-security' | head -n1 || true)
  [[ -n "$uri" ]] || uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '$3 ~ /^bookworm$/ { print $2; exit }' || true)
  [[ -n "$uri" ]] || die "found no Debian mirror in /etc/apt/sources.list(.d)"
  echo "$uri"
}

NPM_DIR=$(npm root -g 2>/dev/null)/npm
[[ -f "$NPM_DIR/package.json" ]] || die "npm is not installed globally on this machine (looked in $NPM_DIR)"
NODE_VERSION=$("$NODE_BIN" --version)
NPM_VERSION=$(node -p "require('$NPM_DIR/package.json').version")
ROOTFS="$IMG_CACHE/rootfs-bookworm-minbase"
BASE_RECIPE=1 # bump when the recipe below changes
BASE_STAMP="recipe=$BASE_RECIPE node=$NODE_VERSION npm=$NPM_VERSION"
BASE_IMAGE=arc-node:24
BUILD_IMAGE=arc-node-build:24
mkdir -p "$IMG_CACHE"

image_label() { docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

make_rootfs() {
  [[ -f "$ROOTFS/.stamp" ]] && return 0
  local mirror t0=$SECONDS
  mirror=$(apt_mirror)
  log "debootstrap --variant=minbase bookworm into $ROOTFS (about 80 s)"
  rm -rf "$ROOTFS"
  nice -n 10 debootstrap --variant=minbase bookworm "$ROOTFS" "$mirror" >"$IMG_CACHE/debootstrap.log" 2>&1 ||
    { tail -n 20 "$IMG_CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $IMG_CACHE/debootstrap.log)"; }
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
  date -u +%FT%TZ >"$ROOTFS/.stamp"
  log "root file system ready in $((SECONDS - t0)) s"
}

make_base() {
  if [[ "$(image_label "$BASE_IMAGE" arcops.dev/base-stamp)" == "$BASE_STAMP" ]]; then
    log "$BASE_IMAGE is up to date ($BASE_STAMP)"
    return 0
  fi
  make_rootfs
  local t0=$SECONDS ctx
  if ! docker image inspect arc-debian:bookworm-minbase >/dev/null 2>&1; then
    log "importing the root file system as arc-debian:bookworm-minbase"
    tar -C "$ROOTFS" --exclude=./.stamp -c . | docker import - arc-debian:bookworm-minbase >/dev/null
  fi
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' RETURN
  cp "$NODE_BIN" "$ctx/node"
  cp -a "$NPM_DIR" "$ctx/npm"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM arc-debian:bookworm-minbase
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && node --version && npm --version
LABEL arcops.dev/base-stamp="$BASE_STAMP"
CMD ["node"]
DOCKERFILE
  log "building $BASE_IMAGE (Node $NODE_VERSION, npm $NPM_VERSION)"
  DOCKER_BUILDKIT=0 docker build -t "$BASE_IMAGE" "$ctx" >"$IMG_CACHE/build-base.log" 2>&1 ||
    { tail -n 20 "$IMG_CACHE/build-base.log" >&2; die "building $BASE_IMAGE failed"; }
  log "$BASE_IMAGE built in $((SECONDS - t0)) s"
}

# The image npm ci runs in: the base plus the CA bundle this machine trusts (TLS to the package
# registry may be intercepted by a proxy that only this bundle trusts).
make_build_image() {
  if [[ -z "$BUILD_CA" ]]; then BUILD_IMAGE=$BASE_IMAGE; return 0; fi
  [[ -f "$BUILD_CA" ]] || die "ARC_BUILD_CA=$BUILD_CA does not exist (set ARC_BUILD_CA= to build without one)"
  local sum ctx
  sum="$BASE_STAMP ca=$(sha256sum "$BUILD_CA" | cut -c1-16)"
  if [[ "$(image_label "$BUILD_IMAGE" arcops.dev/build-stamp)" == "$sum" ]]; then return 0; fi
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' RETURN
  cp "$BUILD_CA" "$ctx/ca.crt"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $BASE_IMAGE
COPY ca.crt /usr/local/share/arc-build/ca.crt
ENV NPM_CONFIG_CAFILE=/usr/local/share/arc-build/ca.crt
LABEL arcops.dev/build-stamp="$sum"
DOCKERFILE
  DOCKER_BUILDKIT=0 docker build -t "$BUILD_IMAGE" "$ctx" >"$IMG_CACHE/build-base.log" 2>&1 ||
    { tail -n 20 "$IMG_CACHE/build-base.log" >&2; die "building $BUILD_IMAGE failed"; }
  log "$BUILD_IMAGE built (npm's cafile: $BUILD_CA)"
}

make_base
make_build_image
[[ $BASE_ONLY == 0 ]] || exit 0

# ---- 4. our images ---------------------------------------------------------------------------
# BuildKit builds only the stages a target needs. A docker CLI of 23 or later needs its buildx
# plugin for it; Debian's docker.io CLI (20.10) has it built in; otherwise the legacy builder.
DOCKER_CLI=docker
if [[ -z "${DOCKER_BUILDKIT:-}" ]]; then
  if docker buildx version >/dev/null 2>&1; then
    export DOCKER_BUILDKIT=1
  elif [[ -x /usr/bin/docker ]] && [[ "$(/usr/bin/docker version --format '{{.Client.Version}}' 2>/dev/null)" == 20.* ]]; then
    export DOCKER_BUILDKIT=1 DOCKER_CLI=/usr/bin/docker
  else
    export DOCKER_BUILDKIT=0
  fi
fi
log "builder: $([[ $DOCKER_BUILDKIT == 1 ]] && echo BuildKit || echo legacy) ($DOCKER_CLI)"
VERSION=$(node -p "require('$REPO/package.json').version")
REVISION=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
for target in service sidecar operator; do
  t0=$SECONDS
  log "building arc-$target:$TAG"
  nice -n 10 "$DOCKER_CLI" build "${NO_CACHE[@]}" --target "$target" \
    --build-arg NODE_IMAGE="$BASE_IMAGE" --build-arg NODE_BUILD_IMAGE="$BUILD_IMAGE" \
    --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
    -t "arc-$target:$TAG" "$REPO" >"$IMG_CACHE/build-$target.log" 2>&1 ||
    { tail -n 40 "$IMG_CACHE/build-$target.log" >&2; die "docker build --target $target failed (log: $IMG_CACHE/build-$target.log)"; }
  log "arc-$target:$TAG built in $((SECONDS - t0)) s ($(docker image inspect -f '{{.Size}}' "arc-$target:$TAG" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
done

# ---- 5. what the images really hold ----------------------------------------------------------
"$NODE_BIN" "$REPO/hack/image-scan.ts" "arc-service:$TAG" "arc-sidecar:$TAG" "arc-operator:$TAG"
