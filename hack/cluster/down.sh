#!/usr/bin/env bash
# Stops the local control plane started by hack/cluster/up.sh (npm run cluster:down): the real
# node's kubelet and kube-proxy first when there is one, then the control plane, then the rest
# of the node (its containers, containerd, the pod bridge and the iptables rules added for it),
# and last the dockerd that hack/images/build.sh or up.sh started (never one found running).
#   --purge   also delete the state folder (etcd data, certificates, kubeconfig, logs)
# Processes are found through their pid files in ${ARC_CLUSTER_DIR:-<repo>/.cluster}/pids and
# are only signalled when the pid still runs that component's binary.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=${ARC_CLUSTER_DIR:-$REPO/.cluster}
PURGE=0
for arg in "$@"; do
  case "$arg" in
    --purge) PURGE=1 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "down.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

log() { printf '[cluster down] %s\n' "$*" >&2; }

if [[ ! -d "$STATE" ]]; then
  log "nothing to stop: $STATE does not exist"
  exit 0
fi
STATE=$(cd "$STATE" && pwd)
BIN="$STATE/bin"
die() { printf '[cluster down] ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=hack/lib/daemon.sh
source "$REPO/hack/lib/daemon.sh"
# shellcheck source=hack/cluster/real-node.sh
source "$HERE/real-node.sh"
# The node's agents first (they talk to the API server); the rest of the node (containers,
# containerd, the bridge) only once nothing is left that dials the API server's bridge address:
# without the bridge that address would be routed off the machine.
daemon_stop kubelet "$STATE"
daemon_stop kube-proxy "$STATE"

pid_of() { # component -> pid when it still runs that component's binary
  local c=$1 pid
  [[ -f "$STATE/pids/$c.pid" ]] || return 0
  pid=$(<"$STATE/pids/$c.pid")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$STATE/bin/$c "; then
    echo "$pid"
  fi
}

# Reverse start order: kwok first (so it does not fight the shutdown), etcd last.
stopped=0
for c in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  pid=$(pid_of "$c")
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$c (pid $pid) did not stop within 10s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    log "stopped $c (pid $pid)"
    stopped=$((stopped + 1))
  fi
  rm -f "$STATE/pids/$c.pid"
done
[[ $stopped -gt 0 ]] || log "no component was running"
real_node_down
daemon_stop dockerd "$STATE" 30

if [[ $PURGE == 1 ]]; then
  if [[ -f "$STATE/.arc-cluster" ]]; then
    rm -rf "$STATE"
    log "purged $STATE"
  else
    log "not purging $STATE: it has no .arc-cluster marker, so up.sh did not create it"
    exit 1
  fi
else
  log "state kept in $STATE (etcd data, certificates, logs); --purge deletes it"
fi
