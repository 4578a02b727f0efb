#!/usr/bin/env bash
# Loads images from the Docker engine into the real node's containerd (docker save | ctr import),
# where pods with imagePullPolicy Never (or IfNotPresent) find them; there is no registry to pull from.
# Usage: hack/cluster/load-images.sh IMAGE...   (e.g. arc-service:dev arc-sidecar:dev arc-operator:dev)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=${ARC_CLUSTER_DIR:-$REPO/.cluster}
log() { printf '[load images] %s\n' "$*" >&2; }
die() { printf '[load images] ERROR: %s\n' "$*" >&2; exit 1; }
case "${1:-}" in
  ""|-h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; [[ -n "${1:-}" ]]; exit $? ;;
esac
# shellcheck source=hack/lib/daemon.sh
source "$REPO/hack/lib/daemon.sh"
# shellcheck source=hack/cluster/real-node.sh
source "$HERE/real-node.sh"
daemon_running containerd "$STATE" >/dev/null || die "the real node's containerd is not running (npm run cluster:up -- --real-node)"
real_node_load_images "$@"
