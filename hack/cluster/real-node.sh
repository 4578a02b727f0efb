# shellcheck shell=bash
# The real node of the local cluster (hack/cluster/up.sh --real-node; stopped by down.sh): a real
# kubelet and kube-proxy (built from the control plane's k8s.io/kubernetes module and version)
# over a containerd of their own (Debian's, CRI plugin, own socket, root and state folders),
# Debian's CNI plugins on the pod bridge, and a pause image built here. Every address lives on
# this machine: the bridge (ARC_POD_CIDR, default 10.233.0.0/24, the host is .1) and the pods'
# network namespaces; pods have no route out of the machine (no masquerading).
# Sourced by up.sh and down.sh, which define STATE, BIN, CERTS, LOGS, log and die.

REAL_NODE_NAME=arc-real-node
POD_CIDR=${ARC_POD_CIDR:-10.233.0.0/24}
POD_BRIDGE=arc-br0
BRIDGE_IP=${POD_CIDR%.*}.1
PAUSE_IMAGE=arc-pause:1
# Marks the iptables rules this script adds, so that down.sh removes exactly those.
IPT_COMMENT="arc-operator real node"
REAL_NODE_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack iproute2)

rn_dir() { echo "$STATE/real-node"; }
ctr_rn() { ctr --address "$(rn_dir)/containerd/containerd.sock" -n k8s.io "$@"; }

# Why the real node cannot run on this machine, or nothing.
real_node_unsupported() {
  [[ $(id -u) == 0 ]] || { echo "the real node needs root (containerd, kubelet, iptables, a bridge)"; return 0; }
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || { echo "the kernel has no overlayfs (containerd's snapshotter needs it)"; return 0; }
  command -v apt-get >/dev/null 2>&1 || command -v containerd >/dev/null 2>&1 ||
    { echo "no apt-get to install containerd and the CNI plugins"; return 0; }
  return 1
}

# The pod bridge, with the host's address on it: the API server binds and advertises it.
real_node_bridge() {
  if ! ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
    ip link add "$POD_BRIDGE" type bridge
  fi
  [[ "$(ip -4 addr show dev "$POD_BRIDGE")" == *"inet $BRIDGE_IP/"* ]] || ip addr add "$BRIDGE_IP/${POD_CIDR#*/}" dev "$POD_BRIDGE"
  ip link set "$POD_BRIDGE" up
  # Bridged pod traffic passes the FORWARD chain, whose policy dockerd sets to DROP.
  local dir
  for dir in -i -o; do
    iptables -C FORWARD "$dir" "$POD_BRIDGE" -m comment --comment "$IPT_COMMENT" -j ACCEPT 2>/dev/null ||
      iptables -I FORWARD 1 "$dir" "$POD_BRIDGE" -m comment --comment "$IPT_COMMENT" -j ACCEPT
  done
  modprobe br_netfilter 2>/dev/null || true
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
}

real_node_credentials() {
  gen_cert kubelet "/O=system:nodes/CN=system:node:$REAL_NODE_NAME" "extendedKeyUsage=clientAuth"
  gen_cert kubelet-serving "/CN=$REAL_NODE_NAME" "extendedKeyUsage=serverAuth
subjectAltName=IP:$BRIDGE_IP,IP:127.0.0.1,DNS:$REAL_NODE_NAME"
  gen_cert kube-proxy "/CN=system:kube-proxy" "extendedKeyUsage=clientAuth"
  write_kubeconfig "$STATE/kubelet.kubeconfig" kubelet "system:node:$REAL_NODE_NAME"
  write_kubeconfig "$STATE/kube-proxy.kubeconfig" kube-proxy system:kube-proxy
}

real_node_config() {
  local d
  d=$(rn_dir)
  mkdir -p "$d"/{containerd,cni/net.d,cni/ipam,kubelet,pod-logs}
  cat >"$d/containerd.toml" <<EOF2
version = 2
root = "$d/containerd/root"
state = "$d/containerd/state"
[grpc]
  address = "$d/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # runc cannot give the sandbox its negative oom_score_adj without CAP_SYS_RESOURCE.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni/net.d"
EOF2
  cat >"$d/cni/net.d/10-arc-pods.conflist" <<EOF2
{
  "cniVersion": "0.4.0",
  "name": "arc-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$d/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$BRIDGE_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    }
  ]
}
EOF2
  cat >"$d/kubelet.yaml" <<EOF2
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $BRIDGE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: false }
  x509: { clientCAFile: $CERTS/ca.crt }
authorization: { mode: AlwaysAllow }
tlsCertFile: $CERTS/kubelet-serving.crt
tlsPrivateKeyFile: $CERTS/kubelet-serving.key
containerRuntimeEndpoint: unix://$d/containerd/containerd.sock
# This machine kind mounts cgroup v1 (hybrid) and runs no systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
podLogsDir: $d/pod-logs
podCIDR: $POD_CIDR
maxPods: 50
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
imageGCHighThresholdPercent: 100
evictionHard: { memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%" }
serializeImagePulls: false
EOF2
}

# The sandbox image: the static program of hack/cluster/pause, alone in a FROM-scratch image.
real_node_pause_image() {
  if [[ $'\n'"$(ctr_rn images ls -q 2>/dev/null)"$'\n' == *"/$PAUSE_IMAGE"$'\n'* ]]; then return 0; fi
  local ctx
  ctx=$(mktemp -d)
  CGO_ENABLED=0 GOFLAGS=-trimpath GOCACHE="${ARC_CACHE_DIR:-$HOME/.cache/arc-operator}/go/pause-build" \
    go build -ldflags '-s -w' -o "$ctx/pause" "$HERE/pause/main.go" || { rm -rf "$ctx"; die "building the pause program failed"; }
  printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$PAUSE_IMAGE" "$ctx" >/dev/null 2>&1 || { rm -rf "$ctx"; die "building $PAUSE_IMAGE failed"; }
  rm -rf "$ctx"
  real_node_load_images "$PAUSE_IMAGE"
}

# real_node_load_images IMAGE...: from the Docker engine into the kubelet's containerd.
real_node_load_images() {
  local t0=$SECONDS
  docker save "$@" | ctr_rn images import - >/dev/null || die "loading $* into the real node's containerd failed"
  log "loaded into the real node in $((SECONDS - t0)) s: $*"
}

real_node_ready() {
  [[ "$(kubectl get node "$REAL_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

real_node_up() {
  local d reason
  if reason=$(real_node_unsupported); then die "cannot run the real node here: $reason"; fi
  apt_install "${REAL_NODE_PACKAGES[@]}" || die "could not install ${REAL_NODE_PACKAGES[*]}"
  ensure_docker_engine "$STATE" || die "the real node needs a Docker engine to build and load images"
  d=$(rn_dir)
  real_node_credentials
  real_node_config
  real_node_bridge
  daemon_start containerd "$STATE" "" containerd --config "$d/containerd.toml" || die "containerd did not start"
  local i
  for i in $(seq 60); do ctr_rn version >/dev/null 2>&1 && break; sleep 0.5; done
  ctr_rn version >/dev/null 2>&1 || fail_component containerd "containerd did not answer on $d/containerd/containerd.sock"
  real_node_pause_image
  daemon_start kubelet "$STATE" "" "$BIN/kubelet" \
    --config="$d/kubelet.yaml" \
    --kubeconfig="$STATE/kubelet.kubeconfig" \
    --root-dir="$d/kubelet" \
    --cert-dir="$d/kubelet/pki" \
    --hostname-override="$REAL_NODE_NAME" \
    --node-ip="$BRIDGE_IP" \
    --node-labels="arcops.dev/real-node=true" \
    --v=1 || die "kubelet did not start"
  daemon_start kube-proxy "$STATE" "" "$BIN/kube-proxy" \
    --kubeconfig="$STATE/kube-proxy.kubeconfig" \
    --hostname-override="$REAL_NODE_NAME" \
    --proxy-mode=iptables \
    --cluster-cidr="$POD_CIDR" \
    --nodeport-addresses="$BRIDGE_IP/32" \
    --healthz-bind-address=127.0.0.1:10256 \
    --metrics-bind-address=127.0.0.1:10249 \
    --conntrack-max-per-core=0 \
    --v=1 || die "kube-proxy did not start"
  local deadline=$((SECONDS + TIMEOUT))
  until real_node_ready; do
    daemon_running kubelet "$STATE" >/dev/null || fail_component kubelet "kubelet exited before its Node was Ready"
    ((SECONDS < deadline)) || fail_component kubelet "Node $REAL_NODE_NAME not Ready within ${TIMEOUT}s"
    sleep 1
  done
  daemon_running kube-proxy "$STATE" >/dev/null || fail_component kube-proxy "kube-proxy exited"
  log "real node $REAL_NODE_NAME Ready (pods on $POD_BRIDGE $POD_CIDR; API server at $BRIDGE_IP:$APISERVER_PORT)"
}

real_node_running() {
  daemon_running containerd "$STATE" >/dev/null && daemon_running kubelet "$STATE" >/dev/null &&
    daemon_running kube-proxy "$STATE" >/dev/null && real_node_ready
}

# Stops the real node: kubelet and kube-proxy, every container (their network namespaces too),
# containerd, the mounts under the state folder, the bridge, and the iptables rules added here.
real_node_down() {
  local d sock ids id ns
  d=$(rn_dir)
  [[ -d "$d" ]] || return 0
  daemon_stop kubelet "$STATE"
  daemon_stop kube-proxy "$STATE"
  sock="$d/containerd/containerd.sock"
  if daemon_running containerd "$STATE" >/dev/null && [[ -S "$sock" ]]; then
    ids=$(ctr_rn containers ls -q 2>/dev/null || true)
    local netns=()
    for id in $ids; do
      while read -r ns; do [[ -n "$ns" ]] && netns+=("$ns"); done < <(ctr_rn containers info "$id" 2>/dev/null | grep -o '"/var/run/netns/cni-[^"]*"' | tr -d '"' | sort -u || true)
      ctr_rn tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 1
    for id in $ids; do
      ctr_rn tasks delete -f "$id" >/dev/null 2>&1 || true
      ctr_rn containers delete "$id" >/dev/null 2>&1 || true
    done
    for ns in "${netns[@]}"; do
      umount "$ns" 2>/dev/null || true
      rm -f "$ns"
    done
    [[ -z "$ids" ]] || log "removed $(wc -w <<<"$ids") containers of the real node"
  fi
  daemon_stop containerd "$STATE"
  # Mounts left under the state folder (volumes, shm, root file systems), deepest first.
  findmnt -rn -o TARGET | awk -v d="$d/" 'index($0, d) == 1' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$d/cni/ipam"
  if [[ -x "$BIN/kube-proxy" ]]; then "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
  local dir
  for dir in -i -o; do
    while iptables -C FORWARD "$dir" "$POD_BRIDGE" -m comment --comment "$IPT_COMMENT" -j ACCEPT 2>/dev/null; do
      iptables -D FORWARD "$dir" "$POD_BRIDGE" -m comment --comment "$IPT_COMMENT" -j ACCEPT
    done
  done
  # The kubelet's own chains (canaries, and KUBE-FIREWALL's rule against outside traffic to
  # 127.0.0.0/8), for IPv4 and IPv6: one real node per machine, so they are this node's.
  local ipt table chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null 2>&1 || continue
    for chain in INPUT OUTPUT; do
      while "$ipt" -C "$chain" -j KUBE-FIREWALL 2>/dev/null; do "$ipt" -D "$chain" -j KUBE-FIREWALL; done
    done
    for table in filter nat mangle; do
      for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
        "$ipt" -t "$table" -F "$chain" 2>/dev/null && "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
  if ip link show "$POD_BRIDGE" >/dev/null 2>&1; then ip link delete "$POD_BRIDGE"; fi
  log "real node stopped; bridge $POD_BRIDGE and its iptables rules removed"
}
