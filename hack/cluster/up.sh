#!/usr/bin/env bash
# Starts the local Kubernetes control plane on 127.0.0.1 (npm run cluster:up):
#   etcd -> kube-apiserver -> kube-controller-manager + kube-scheduler -> kwok (+ fake Nodes)
# With --real-node (npm run cluster:up -- --real-node), root only: also a real kubelet and
# kube-proxy over their own containerd, pods on the bridge arc-br0 (hack/cluster/real-node.sh).
# The API server then binds and advertises the host's address on that bridge (10.233.0.1 by
# default) instead of 127.0.0.1, and no kwok Node is made unless ARC_CLUSTER_NODES asks for some.
# Builds missing binaries first (hack/cluster/build.sh), generates certificates, service-account
# keys and an admin kubeconfig with openssl, and returns once the Nodes are Ready and the
# `default` ServiceAccount exists. Idempotent: a healthy cluster is left alone, a component
# that is not running is (re)started. State lives in ${ARC_CLUSTER_DIR:-<repo>/.cluster}.
#
# Environment:
#   ARC_CLUSTER_DIR        state folder (kubeconfig, certs, etcd data, logs, pids)
#   ARC_CACHE_DIR          binary cache (default $HOME/.cache/arc-operator)
#   ARC_CLUSTER_NODES      number of fake Nodes (default 3; 0 with --real-node)
#   ARC_POD_CIDR           the real node's pod network, one /24 on arc-br0 (default 10.233.0.0/24)
#   ARC_CLUSTER_TIMEOUT    seconds to wait for each component (default 120)
#   ARC_APISERVER_PORT (26443), ARC_ETCD_PORT (22379, peer +1), ARC_KCM_PORT (20257),
#   ARC_SCHEDULER_PORT (20259), ARC_KWOK_PORT (20250)
#   ARC_KCM_API_QPS, ARC_KCM_API_BURST
#                          kube-controller-manager's client rate limit (default: its own, 20 and
#                          30, per controller). bench/scale.ts at 1000 ArcDeployments raises it as
#                          large clusters do: at 20 the ReplicaSet controller alone needs minutes
#                          for 3000 pods (docs/benchmarks.md).
#   ARC_CLUSTER_PROFILING  true: kube-apiserver, kube-controller-manager and kube-scheduler serve
#                          /debug/pprof (default false), e.g. `kubectl get --raw
#                          '/debug/pprof/profile?seconds=60' > cpu.pprof`, read with `go tool pprof`
#   GOGC and the rest of the environment reach every component started here (Go reads GOGC:
#   GOGC=400 makes their garbage collection take less of the cores, for more memory).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=hack/cluster/versions.env
source "$HERE/versions.env"

REAL_NODE=0
for arg in "$@"; do
  case "$arg" in
    --real-node) REAL_NODE=1 ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "up.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
STATE=${ARC_CLUSTER_DIR:-$REPO/.cluster}
if [[ $REAL_NODE == 1 ]]; then NODES=${ARC_CLUSTER_NODES:-0}; else NODES=${ARC_CLUSTER_NODES:-3}; fi
NODE_NAMES=()
for (( i = 0; i < NODES; i++ )); do NODE_NAMES+=("kwok-node-$i"); done
TIMEOUT=${ARC_CLUSTER_TIMEOUT:-120}
APISERVER_PORT=${ARC_APISERVER_PORT:-26443}
ETCD_PORT=${ARC_ETCD_PORT:-22379}
ETCD_PEER_PORT=$((ETCD_PORT + 1))
KCM_PORT=${ARC_KCM_PORT:-20257}
SCHEDULER_PORT=${ARC_SCHEDULER_PORT:-20259}
KWOK_PORT=${ARC_KWOK_PORT:-20250}
# The address the API server advertises (the `kubernetes` Service's endpoint). Without a real
# node it is a documentation address (RFC 5737): nothing here ever sends traffic to it. With the
# real node it is the host's address on the pod bridge, where the API server also listens: pods
# reach it there through the `kubernetes` Service (kube-proxy), and nothing leaves the machine.
ADVERTISE_ADDRESS=192.0.2.10
API_HOST=127.0.0.1
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1
# shellcheck source=hack/cluster/real-node.sh
source "$HERE/real-node.sh"
if [[ $REAL_NODE == 1 ]]; then
  ADVERTISE_ADDRESS=$BRIDGE_IP
  API_HOST=$BRIDGE_IP
fi
# shellcheck source=hack/lib/apt.sh
source "$REPO/hack/lib/apt.sh"
# shellcheck source=hack/lib/daemon.sh
source "$REPO/hack/lib/daemon.sh"
# shellcheck source=hack/lib/docker.sh
source "$REPO/hack/lib/docker.sh"

log() { printf '[cluster up] %s\n' "$*" >&2; }
die() { printf '[cluster up] ERROR: %s\n' "$*" >&2; exit 1; }

for tool in openssl setsid flock; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "'$tool' is not installed (Debian/Ubuntu: apt-get install -y openssl util-linux)"
done

# ---- binaries -------------------------------------------------------------------------------
bash "$HERE/build.sh"
mapfile -t BIN_DIRS < <(bash "$HERE/build.sh" --print-bin-dirs)
if [[ ! -e "$STATE/.arc-cluster" ]]; then
  if [[ -d "$STATE" && -n "$(ls -A "$STATE")" ]]; then
    log "note: $STATE already holds other files, so 'cluster:down --purge' will not delete it"
  else
    mkdir -p "$STATE"
    touch "$STATE/.arc-cluster" # marks the folder as ours: down.sh --purge deletes only such a folder
  fi
fi
mkdir -p "$STATE"/{bin,certs,logs,pids,etcd}
chmod 700 "$STATE/etcd" "$STATE/certs"
STATE=$(cd "$STATE" && pwd)
for d in "${BIN_DIRS[@]}"; do
  for b in "$d"/*; do ln -sfn "$b" "$STATE/bin/$(basename "$b")"; done
done
BIN="$STATE/bin"
KUBECONFIG_FILE="$STATE/kubeconfig"
CERTS="$STATE/certs"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" --request-timeout=10s "$@"; }

# ---- certificates and kubeconfigs -----------------------------------------------------------
gen_cert() { # name subject [ext-file-content [ca-name]]
  local name=$1 subj=$2 ext=${3:-} ca=${4:-ca}
  [[ -f "$CERTS/$name.crt" ]] && return 0
  openssl genrsa -out "$CERTS/$name.key" 2048 2>/dev/null
  openssl req -new -key "$CERTS/$name.key" -subj "$subj" -out "$CERTS/$name.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "$ext" >"$CERTS/$name.ext"
  openssl x509 -req -in "$CERTS/$name.csr" -CA "$CERTS/$ca.crt" -CAkey "$CERTS/$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$CERTS/$name.ext" -out "$CERTS/$name.crt" 2>/dev/null
  rm -f "$CERTS/$name.csr" "$CERTS/$name.ext"
}

gen_ca() { # name common-name
  [[ -f "$CERTS/$1.crt" ]] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CERTS/$1.key" -out "$CERTS/$1.crt" \
    -days 3650 -sha256 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

write_kubeconfig() { # file cert-name user
  local file=$1 cert=$2 user=$3
  # Always rewritten (same content unless a port changed); written atomically.
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: arc-local
  cluster:
    server: https://$API_HOST:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$CERTS/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$CERTS/$cert.crt")
    client-key-data: $(base64 -w0 <"$CERTS/$cert.key")
contexts:
- name: arc-local
  context:
    cluster: arc-local
    user: $user
    namespace: default
current-context: arc-local
EOF
  chmod 600 "$file.tmp"
  mv "$file.tmp" "$file"
}

generate_credentials() {
  umask 077
  [[ -f "$CERTS/ca.crt" ]] || log "generating CAs, certificates and service-account keys in $CERTS"
  gen_ca ca arc-local-ca
  # The aggregation layer's CA (requestheader authentication), as kubeadm sets it up.
  gen_ca front-proxy-ca arc-local-front-proxy-ca
  # A certificate made before the real node was asked for lacks the bridge address: renew it.
  if [[ -f "$CERTS/apiserver.crt" ]] && ! openssl x509 -in "$CERTS/apiserver.crt" -noout -text | grep -q "IP Address:$ADVERTISE_ADDRESS\b"; then
    rm -f "$CERTS/apiserver.crt" "$CERTS/apiserver.key"
  fi
  gen_cert apiserver "/CN=kube-apiserver" \
    "extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$ADVERTISE_ADDRESS,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  gen_cert admin "/O=system:masters/CN=arc-admin" "extendedKeyUsage=clientAuth"
  gen_cert front-proxy-client "/CN=front-proxy-client" "extendedKeyUsage=clientAuth" front-proxy-ca
  gen_cert kube-controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
  gen_cert kube-scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
  # kwok plays every kubelet and patches any pod's status: give it cluster-admin rights.
  gen_cert kwok "/O=system:masters/CN=kwok" "extendedKeyUsage=clientAuth"
  # Serving certificate for kwok's "kubelet" endpoint (apiserver -> 127.0.0.1:KWOK_PORT).
  gen_cert kwok-serving "/CN=kwok" "extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
  if [[ ! -f "$CERTS/sa.key" ]]; then
    openssl genrsa -out "$CERTS/sa.key" 2048 2>/dev/null
    openssl rsa -in "$CERTS/sa.key" -pubout -out "$CERTS/sa.pub" 2>/dev/null
  fi
  write_kubeconfig "$KUBECONFIG_FILE" admin arc-admin
  write_kubeconfig "$STATE/kube-controller-manager.kubeconfig" kube-controller-manager system:kube-controller-manager
  write_kubeconfig "$STATE/kube-scheduler.kubeconfig" kube-scheduler system:kube-scheduler
  write_kubeconfig "$STATE/kwok.kubeconfig" kwok kwok
  [[ $REAL_NODE == 0 ]] || real_node_credentials
  umask 022
  cat >"$STATE/env" <<EOF
# source this file to use the local cluster from a shell: . $STATE/env
export KUBECONFIG="$KUBECONFIG_FILE"
export PATH="$BIN:\$PATH"
EOF
}

# ---- process helpers ------------------------------------------------------------------------
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)
(( NODES == 0 )) || COMPONENTS+=(kwok)

pid_of() { # component -> pid if it is running (and really is that binary), else nothing
  local c=$1 pid
  [[ -f "$PIDS/$c.pid" ]] || return 0
  pid=$(<"$PIDS/$c.pid")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$BIN/$c "; then
    echo "$pid"
  fi
}
running() { [[ -n "$(pid_of "$1")" ]]; }

port_open() { # port -> true when something accepts TCP connections on 127.0.0.1:port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

https_status() { # port path -> HTTP status code of https://127.0.0.1:port/path (or 000)
  local port=$1 path=$2
  if command -v curl >/dev/null 2>&1; then
    curl -sk -o /dev/null -m 5 -w '%{http_code}' "https://127.0.0.1:$port$path" || true
  else
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" |
      timeout 5 openssl s_client -quiet -connect "127.0.0.1:$port" 2>/dev/null |
      head -n1 | awk '{ print $2 }' | grep -E '^[0-9]{3}$' || echo 000
  fi
}

fail_component() { # component message
  local c=$1
  printf '[cluster up] ERROR: %s\n' "$2" >&2
  if [[ -f "$LOGS/$c.log" ]]; then
    # Only this start's part of the log (each start appends after a "===== ... starting" line).
    printf '[cluster up] last lines of %s:\n' "$LOGS/$c.log" >&2
    { tac "$LOGS/$c.log" | sed '/^===== .* starting /q' | tac | tail -n 40 >&2; } || true
  fi
  printf '[cluster up] all logs: %s (stop with: npm run cluster:down)\n' "$LOGS" >&2
  exit 1
}

start() { # component port binary-args...
  local c=$1 port=$2; shift 2
  if running "$c"; then return 0; fi
  if [[ -n "$port" ]] && port_open "$port"; then
    die "127.0.0.1:$port is already in use by another process, so $c cannot start.
  Another cluster (a different ARC_CLUSTER_DIR) may be running: stop it, or move this one with
  ARC_APISERVER_PORT/ARC_ETCD_PORT/ARC_KCM_PORT/ARC_SCHEDULER_PORT/ARC_KWOK_PORT. (ss -ltnp shows who listens.)"
  fi
  rm -f "$PIDS/$c.pid"
  printf '\n===== %s starting %s =====\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$c" >>"$LOGS/$c.log"
  # setsid: the control plane outlives this script and the terminal or test run that started it.
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner bash
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDS/$c.pid" "$BIN/$c" "$@" \
    </dev/null >>"$LOGS/$c.log" 2>&1 &
  local i
  for i in $(seq 50); do [[ -s "$PIDS/$c.pid" ]] && break; sleep 0.1; done
  log "started $c (pid $(<"$PIDS/$c.pid"), log $LOGS/$c.log)"
}

wait_until() { # component description check-command...
  local c=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    running "$c" || fail_component "$c" "$c exited while waiting for: $what"
    (( $(date +%s) < deadline )) || fail_component "$c" "timed out after ${TIMEOUT}s waiting for: $what"
    sleep 0.5
  done
}

etcd_healthy() { "$BIN/etcdctl" --endpoints="http://127.0.0.1:$ETCD_PORT" --command-timeout=3s endpoint health; }
apiserver_ready() { [[ "$(kubectl get --raw /readyz)" == ok ]]; }
healthz_ok() { [[ "$(https_status "$1" /healthz)" == 200 ]]; }
nodes_ready() { # every fake Node Ready, and kwok holding its Lease (so it manages its pods)
  local ready leases
  ready=$(kubectl get nodes "${NODE_NAMES[@]}" -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$' || true)
  leases=$(kubectl -n kube-node-lease get leases "${NODE_NAMES[@]}" -o jsonpath='{range .items[*]}{.spec.holderIdentity}{"\n"}{end}' | grep -c . || true)
  (( ready == NODES && leases == NODES ))
}
(( NODES > 0 )) || nodes_ready() { true; }
default_sa_exists() { kubectl -n default get serviceaccount default; }

cluster_healthy() {
  local c
  for c in "${COMPONENTS[@]}"; do running "$c" || return 1; done
  apiserver_ready && nodes_ready && default_sa_exists || return 1
  [[ $REAL_NODE == 0 ]] || real_node_running
}

# ---- main -----------------------------------------------------------------------------------
generate_credentials

# A component still running a binary that is no longer the pinned one (versions.env changed
# since it started) is stopped here and started again below.
for c in "${COMPONENTS[@]}"; do
  pid=$(pid_of "$c")
  [[ -n "$pid" ]] || continue
  if [[ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" != "$(readlink -f "$BIN/$c")" ]]; then
    log "$c (pid $pid) runs an older build; restarting it"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
done

# The other mode (with or without the real node) runs: the API server must bind and advertise
# another address, and every client's kubeconfig names it. Restart all but etcd.
pid=$(pid_of kube-apiserver)
if [[ -n "$pid" && "$(tr '\0' ' ' <"/proc/$pid/cmdline")" != *"--advertise-address=$ADVERTISE_ADDRESS "* ]]; then
  log "switching $([[ $REAL_NODE == 1 ]] && echo to || echo away from) the real node: restarting the control plane"
  daemon_stop kubelet "$STATE"
  daemon_stop kube-proxy "$STATE"
  for c in kwok kube-scheduler kube-controller-manager kube-apiserver; do
    pid=$(pid_of "$c")
    [[ -n "$pid" ]] || continue
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Only now that nothing dials the bridge address: the rest of the node, and the bridge.
  [[ $REAL_NODE == 1 ]] || real_node_down
fi

if cluster_healthy >/dev/null 2>&1; then
  log "already up and healthy: $("$BIN/kubectl" version --kubeconfig "$KUBECONFIG_FILE" 2>/dev/null | tail -n1)"
  log "kubeconfig: $KUBECONFIG_FILE   logs: $LOGS"
  exit 0
fi

t0=$(date +%s)
log "starting the control plane (state: $STATE, logs: $LOGS)"

start etcd "$ETCD_PORT" \
  --name=arc-local \
  --data-dir="$STATE/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="arc-local=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync=true \
  --log-level=warn
wait_until etcd "etcd to be healthy on 127.0.0.1:$ETCD_PORT" etcd_healthy

[[ $REAL_NODE == 0 ]] || { (( NODES == 0 )) || log "note: pods may land on the $NODES kwok Nodes too (ARC_CLUSTER_NODES)"; }
if [[ $REAL_NODE == 1 ]]; then
  reason=$(real_node_unsupported) && die "cannot run the real node here: $reason"
  apt_install "${REAL_NODE_PACKAGES[@]}" || die "could not install ${REAL_NODE_PACKAGES[*]}"
  real_node_bridge
fi
start kube-apiserver "$APISERVER_PORT" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address="$API_HOST" \
  --secure-port="$APISERVER_PORT" \
  --advertise-address="$ADVERTISE_ADDRESS" \
  --tls-cert-file="$CERTS/apiserver.crt" \
  --tls-private-key-file="$CERTS/apiserver.key" \
  --client-ca-file="$CERTS/ca.crt" \
  --requestheader-client-ca-file="$CERTS/front-proxy-ca.crt" \
  --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User \
  --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$CERTS/front-proxy-client.crt" \
  --proxy-client-key-file="$CERTS/front-proxy-client.key" \
  --authorization-mode="$([[ $REAL_NODE == 1 ]] && echo Node,RBAC || echo RBAC)" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$CERTS/sa.pub" \
  --service-account-signing-key-file="$CERTS/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --allow-privileged=true \
  --kubelet-preferred-address-types=InternalIP \
  --kubelet-certificate-authority="$CERTS/ca.crt" \
  --kubelet-client-certificate="$CERTS/admin.crt" \
  --kubelet-client-key="$CERTS/admin.key" \
  --profiling="${ARC_CLUSTER_PROFILING:-false}" \
  --v=1
wait_until kube-apiserver "kube-apiserver /readyz on https://$API_HOST:$APISERVER_PORT" apiserver_ready

start kube-controller-manager "$KCM_PORT" \
  --kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$KCM_PORT" \
  --leader-elect=false \
  --controllers='*' \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$CERTS/sa.key" \
  --root-ca-file="$CERTS/ca.crt" \
  --cluster-signing-cert-file="$CERTS/ca.crt" \
  --cluster-signing-key-file="$CERTS/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --allocate-node-cidrs=false \
  ${ARC_KCM_API_QPS:+--kube-api-qps="$ARC_KCM_API_QPS"} \
  ${ARC_KCM_API_BURST:+--kube-api-burst="$ARC_KCM_API_BURST"} \
  --profiling="${ARC_CLUSTER_PROFILING:-false}" \
  --v=1
start kube-scheduler "$SCHEDULER_PORT" \
  --kubeconfig="$STATE/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig="$STATE/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig="$STATE/kube-scheduler.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$SCHEDULER_PORT" \
  --leader-elect=false \
  --profiling="${ARC_CLUSTER_PROFILING:-false}" \
  --v=1
wait_until kube-controller-manager "kube-controller-manager /healthz on https://127.0.0.1:$KCM_PORT" healthz_ok "$KCM_PORT"
wait_until kube-scheduler "kube-scheduler /healthz on https://127.0.0.1:$SCHEDULER_PORT" healthz_ok "$SCHEDULER_PORT"

# Fake Nodes: kwok manages the ones with the kwok.x-k8s.io/node=fake annotation.
nodes_yaml() {
  local i zones=(a b c)
  for (( i = 0; i < NODES; i++ )); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: ${NODE_NAMES[i]}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: ${NODE_NAMES[i]}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    node-role.kubernetes.io/worker: ""
    topology.kubernetes.io/zone: local-${zones[i % 3]}
EOF
  done
}
if (( NODES > 0 )); then
nodes_yaml | kubectl apply -f - >/dev/null || fail_component kube-apiserver "could not create the fake Nodes"

# kwok only manages a Node while it holds the Node's Lease. A restarted kwok has a new identity
# and would wait for the previous holder's leases to expire (40s) before pods on those Nodes
# move, so hand them over now: no kwok is running at this point.
if ! running kwok; then
  kubectl -n kube-node-lease delete lease --ignore-not-found "${NODE_NAMES[@]}" >/dev/null ||
    fail_component kube-apiserver "could not reset the Node leases"
fi

start kwok "$KWOK_PORT" \
  --config="$HERE/kwok.yaml" \
  --kubeconfig="$STATE/kwok.kubeconfig" \
  --server-address="127.0.0.1:$KWOK_PORT" \
  --node-port="$KWOK_PORT" \
  --tls-cert-file="$CERTS/kwok-serving.crt" \
  --tls-private-key-file="$CERTS/kwok-serving.key"
wait_until kwok "$NODES kwok Nodes to be Ready" nodes_ready
fi
wait_until kube-controller-manager "the default ServiceAccount in namespace default" default_sa_exists

for c in "${COMPONENTS[@]}"; do
  running "$c" || fail_component "$c" "$c is not running"
done
[[ $REAL_NODE == 0 ]] || real_node_up

log "up in $(( $(date +%s) - t0 ))s: $(kubectl version 2>/dev/null | tail -n1); ${NODES} kwok nodes$([[ $REAL_NODE == 1 ]] && echo " and the real node $REAL_NODE_NAME") Ready"
log "kubeconfig: $KUBECONFIG_FILE  (export KUBECONFIG=$KUBECONFIG_FILE, or: . $STATE/env)"
log "kubectl/helm/etcdctl: $BIN"
log "logs: $LOGS/{$(IFS=,; echo "${COMPONENTS[*]}")$([[ $REAL_NODE == 1 ]] && echo ",containerd,kubelet,kube-proxy")}.log"
log "stop with: npm run cluster:down"
