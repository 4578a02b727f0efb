#!/usr/bin/env bash
# End-to-end on real containers: real pools, real evictions, the readiness gate judged by a kubelet.
# One script, two clusters underneath:
#   --kind       a kind cluster (machines with a Docker engine and kind): images built with
#                `docker build` and loaded with `kind load`
#   --real-node  the local control plane with its real node (hack/cluster/up.sh --real-node,
#                root only): images built offline (hack/images/build.sh) and loaded into the
#                kubelet's containerd
# Steps, the same on both:
#   1. cluster and images (above);  2. helm install of charts/arc-operator with those images: the
#   operator runs as a pod, with the chart's RBAC;  3. an ArcDeployment (test/e2e/
#   arcdeployment-e2e.yaml) becomes Available: two pods of two containers each, Ready through the
#   arcops.dev/PoolHealthy readiness gate;  4. one pod's pool is exhausted with real slow queries
#   through a port-forward on 127.0.0.1: that pod is evicted and replaced, the other untouched,
#   status and Events say so;  5. an image tag with a forbidden module baked in: the sidecar finds
#   it, the ArcDeployment turns Degraded naming image and file, no pod is evicted for it, and
#   going back to the healthy image makes it Available again;  6. `kubectl delete arcd` removes
#   everything it owned;  7. `helm uninstall` leaves nothing of ours but the CRD (crds.keep).
#
# Usage: test/e2e/e2e.sh --kind|--real-node   (KEEP_CLUSTER=1 leaves the cluster up afterwards)
# --real-node uses its own cluster folder and ports (ARC_E2E_CLUSTER_DIR, default <repo>/.cluster-e2e;
# every ARC_*_PORT + 1000) and stops everything it started on the way out, failed or not.
# Prints "figure:" lines (timings of the replacement, container memory) for docs/benchmarks.md.
# E2E_ARCDEPLOYMENT (default test/e2e/arcdeployment-e2e.yaml: short timings) and E2E_LOADERS (8
# concurrent slow-query loops) change the ArcDeployment and the load, e.g. to time the defaults.
# Exit code 0 only when every step passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MODE=""
for arg in "$@"; do
  case "$arg" in
    --kind) MODE=kind ;;
    --real-node) MODE=real-node ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "e2e.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$MODE" ]] || { echo "e2e.sh: say --kind or --real-node (try --help)" >&2; exit 2; }

TAG=e2e
OPERATOR_NS=arc-system
APP_NS=arc-e2e
ARCD=arc-e2e
LOCAL_PORT=${E2E_LOCAL_PORT:-18000}
WORK=$(mktemp -d)
T_START=$SECONDS

log() { printf '[e2e %s %3ds] %s\n' "$MODE" "$((SECONDS - T_START))" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
figure() { log "figure: $*"; }

PF_PID=""
LOAD_PIDS=()
STARTED_CLUSTER=0
cleanup() {
  local code=$?
  if [[ -n "$PF_PID" ]]; then kill "$PF_PID" 2>/dev/null || true; fi
  for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ $code -ne 0 ]]; then
    log "diagnostics:"
    kubectl get nodes -o wide >&2 2>/dev/null || true
    kubectl -n "$APP_NS" get arcd,pods -o wide >&2 2>/dev/null || true
    kubectl -n "$APP_NS" get arcd "$ARCD" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}' >&2 2>/dev/null || true
    kubectl -n "$APP_NS" get events --sort-by=.lastTimestamp >&2 2>/dev/null | tail -30 || true
    kubectl -n "$OPERATOR_NS" get pods -o wide >&2 2>/dev/null || true
    kubectl -n "$OPERATOR_NS" logs deployment/arc-operator --tail=50 >&2 2>/dev/null || true
  fi
  if [[ "${KEEP_CLUSTER:-0}" != 1 ]]; then
    if [[ $MODE == kind ]]; then
      kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    elif [[ $STARTED_CLUSTER == 1 ]]; then
      # A failed run keeps the state folder (logs) for a look; a passed one leaves nothing.
      bash "$ROOT/hack/cluster/down.sh" $([[ $code == 0 ]] && echo --purge) >&2 || { log "cluster:down failed"; code=1; }
    fi
  else
    log "KEEP_CLUSTER=1: the cluster stays up (KUBECONFIG=$KUBECONFIG)"
  fi
  rm -rf "$WORK"
  log "$([[ $code == 0 ]] && echo PASSED || echo FAILED) after $((SECONDS - T_START)) s"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. cluster and images (the only part that differs) -------------------------------------
if [[ $MODE == kind ]]; then
  CLUSTER=${KIND_CLUSTER_NAME:-arc-e2e}
  export KUBECONFIG="$WORK/kubeconfig"
  for tool in docker kind kubectl helm curl; do command -v "$tool" >/dev/null || die "$tool is not on PATH"; done
  docker info >/dev/null 2>&1 || die "no Docker engine (docker info failed)"
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    log "reusing kind cluster $CLUSTER"
    kind export kubeconfig --name "$CLUSTER" --kubeconfig "$KUBECONFIG"
  else
    log "creating kind cluster $CLUSTER"
    kind create cluster --name "$CLUSTER" --config "$ROOT/deploy/kind/cluster.yaml" --kubeconfig "$KUBECONFIG" --wait 120s
  fi
  build_image() { # name dockerfile-dir [docker build args...]
    local name=$1 dir=$2; shift 2
    docker build "$@" -t "$name" "$dir"
  }
  load_images() { local i; for i in "$@"; do kind load docker-image "$i" --name "$CLUSTER"; done; }
  # A clean build every time (--no-cache), as the incident's checklist asked.
  VERSION=$(node -p "require('$ROOT/package.json').version" 2>/dev/null || echo 0.0.0)
  REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
  for target in service sidecar operator; do
    log "building arc-$target:$TAG"
    build_image "arc-$target:$TAG" "$ROOT" --no-cache --target "$target" --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION"
  done
  load_images "arc-service:$TAG" "arc-sidecar:$TAG" "arc-operator:$TAG"
else
  export ARC_CLUSTER_DIR=${ARC_E2E_CLUSTER_DIR:-$ROOT/.cluster-e2e}
  export ARC_APISERVER_PORT=$(( ${ARC_APISERVER_PORT:-26443} + 1000 ))
  export ARC_ETCD_PORT=$(( ${ARC_ETCD_PORT:-22379} + 1000 ))
  export ARC_KCM_PORT=$(( ${ARC_KCM_PORT:-20257} + 1000 ))
  export ARC_SCHEDULER_PORT=$(( ${ARC_SCHEDULER_PORT:-20259} + 1000 ))
  export ARC_KWOK_PORT=$(( ${ARC_KWOK_PORT:-20250} + 1000 ))
  export ARC_CLUSTER_NODES=0
  export KUBECONFIG="$ARC_CLUSTER_DIR/kubeconfig"
  STARTED_CLUSTER=1 # its own cluster folder: whatever ran there before, this run leaves nothing behind
  if [[ -d "$ARC_CLUSTER_DIR" ]]; then
    log "clearing what an earlier run left in $ARC_CLUSTER_DIR"
    bash "$ROOT/hack/cluster/down.sh" --purge >&2
  fi
  # The cluster first: up.sh marks the folder as its own (so that --purge may delete it), and a
  # dockerd it or images:build has to start records its pid there.
  t=$SECONDS
  log "starting the local control plane with its real node (state: $ARC_CLUSTER_DIR)"
  bash "$ROOT/hack/cluster/up.sh" --real-node >&2
  figure "cluster:up --real-node took $((SECONDS - t)) s"
  t=$SECONDS
  log "building the images (hack/images/build.sh --tag $TAG)"
  bash "$ROOT/hack/images/build.sh" --tag "$TAG" >&2
  figure "images:build took $((SECONDS - t)) s"
  PATH="$ARC_CLUSTER_DIR/bin:$PATH"
  # shellcheck source=hack/cluster/real-node.sh
  STATE=$ARC_CLUSTER_DIR HERE="$ROOT/hack/cluster" source "$ROOT/hack/cluster/real-node.sh"
  STATE=$ARC_CLUSTER_DIR
  build_image() { # name dockerfile-dir [docker build args...]
    local name=$1 dir=$2; shift 2
    DOCKER_BUILDKIT=0 docker build -q "$@" -t "$name" "$dir" >/dev/null
  }
  load_images() { real_node_load_images "$@"; }
  t=$SECONDS
  load_images "arc-service:$TAG" "arc-sidecar:$TAG" "arc-operator:$TAG"
  figure "loading the three images into the kubelet's containerd took $((SECONDS - t)) s"
fi
for tool in kubectl helm curl; do command -v "$tool" >/dev/null || die "$tool is not on PATH"; done

# ---- 2. chart --------------------------------------------------------------------------------
t=$SECONDS
log "installing the chart"
helm install arc-operator "$ROOT/charts/arc-operator" -n "$OPERATOR_NS" --create-namespace \
  --set image.repository=arc-operator --set image.tag="$TAG" --set image.pullPolicy=Never \
  --wait --timeout 300s >&2
kubectl -n "$OPERATOR_NS" rollout status deployment/arc-operator --timeout=180s >&2
OP_POD=$(kubectl -n "$OPERATOR_NS" get pods -l app.kubernetes.io/name=arc-operator -o jsonpath='{.items[0].metadata.name}')
[[ "$(kubectl -n "$OPERATOR_NS" get pod "$OP_POD" -o jsonpath='{.spec.containers[0].image}')" == *"arc-operator:$TAG" ]] ||
  die "the operator pod does not run arc-operator:$TAG"
figure "helm install to operator Ready took $((SECONDS - t)) s"

# ---- 3. ArcDeployment Available, readiness judged by the kubelet through the gate -------------
t=$SECONDS
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
kubectl create namespace "$APP_NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$APP_NS" create secret generic arc-tokens --from-literal=tokens="$TOKEN" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$APP_NS" apply -f "${E2E_ARCDEPLOYMENT:-$ROOT/test/e2e/arcdeployment-e2e.yaml}" >&2
log "waiting for $ARCD to be Available"
kubectl -n "$APP_NS" wait "arcd/$ARCD" --for=condition=Available=True --timeout=300s >&2
figure "ArcDeployment created to Available took $((SECONDS - t)) s"

pods() { kubectl -n "$APP_NS" get pods -l "app.kubernetes.io/instance=$ARCD" --field-selector=status.phase=Running -o jsonpath='{.items[*].metadata.name}'; }
# Available needs only the minimum of ready pods; wait (60 s at most) until both are Ready.
read -r -a BEFORE <<<"$(pods)"
[[ ${#BEFORE[@]} -eq 2 ]] || die "expected 2 Running pods, got: ${BEFORE[*]:-none}"
for p in "${BEFORE[@]}"; do
  deadline=$((SECONDS + 60))
  while :; do
    shape=$(kubectl -n "$APP_NS" get pod "$p" -o jsonpath='{range .spec.containers[*]}{.name} {end}|{.spec.readinessGates[*].conditionType}|{.status.conditions[?(@.type=="arcops.dev/PoolHealthy")].status}|{.status.conditions[?(@.type=="Ready")].status}|{range .status.containerStatuses[*]}{.ready} {end}')
    IFS='|' read -r names gate healthy ready cready <<<"$shape"
    [[ $(wc -w <<<"$names") == 2 ]] || die "pod $p has containers '$names', not two"
    [[ "$gate" == *arcops.dev/PoolHealthy* ]] || die "pod $p has no arcops.dev/PoolHealthy readiness gate"
    [[ "$healthy" == True && "$ready" == True && "$cready" == "true true " ]] && break
    (( SECONDS < deadline )) || die "pod $p is not Ready through its gate within 60 s (containers|gate|PoolHealthy|Ready|containers ready: $shape)"
    sleep 1
  done
  log "pod $p: containers|gate|PoolHealthy|Ready|containers ready = $shape"
done
VICTIM=${BEFORE[0]}
OTHER=${BEFORE[1]}

if [[ $MODE == real-node ]]; then
  # What each container costs, from its memory cgroup (cgroup v1 on this machine kind, v2 elsewhere).
  for p in "$OP_POD" "${BEFORE[@]}"; do
    ns=$([[ $p == "$OP_POD" ]] && echo "$OPERATOR_NS" || echo "$APP_NS")
    uid=$(kubectl -n "$ns" get pod "$p" -o jsonpath='{.metadata.uid}')
    while read -r cname cid; do
      cid=${cid#containerd://}
      f=$(find /sys/fs/cgroup/memory /sys/fs/cgroup -maxdepth 6 -path "*${uid//-/_}*" -name "$cid" -o -maxdepth 6 -path "*$uid*" -name "$cid" 2>/dev/null | head -n1)
      if [[ -n "$f" ]]; then
        # The processes' own VmRSS too (with the shared pages of the binary that the cgroup's
        # rss leaves out).
        vmrss=0
        for pid in $(cat "$f/cgroup.procs" 2>/dev/null); do
          kb=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
          vmrss=$((vmrss + ${kb:-0}))
        done
        if [[ -f "$f/memory.usage_in_bytes" ]]; then
          rss=$(awk '$1 == "total_rss" { print $2 }' "$f/memory.stat")
          figure "memory $ns/$cname: cgroup usage $(( $(<"$f/memory.usage_in_bytes") / 1048576 )) MiB, cgroup rss $((rss / 1048576)) MiB, processes' VmRSS $((vmrss / 1024)) MiB"
        elif [[ -f "$f/memory.current" ]]; then
          figure "memory $ns/$cname: cgroup current $(( $(<"$f/memory.current") / 1048576 )) MiB, processes' VmRSS $((vmrss / 1024)) MiB"
        fi
      fi
    done < <(kubectl -n "$ns" get pod "$p" -o jsonpath='{range .status.containerStatuses[*]}{.name} {.containerID}{"\n"}{end}')
  done
fi

# ---- 4. a real pool exhausted: that pod evicted and replaced, the other untouched ------------
log "pods: ${BEFORE[*]}; exhausting the pool of $VICTIM"
kubectl -n "$APP_NS" port-forward --address 127.0.0.1 "pod/$VICTIM" "$LOCAL_PORT:8000" >"$WORK/port-forward.log" 2>&1 &
PF_PID=$!
query() {
  curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-10}" "http://127.0.0.1:$LOCAL_PORT/api/v1/query" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "{\"sql\": \"$1\"}"
}
for _ in $(seq 1 30); do
  [[ "$(query 'SELECT 1' 3 || true)" == 200 ]] && break
  sleep 1
done
[[ "$(query 'SELECT 1' 5)" == 200 ]] || die "the service did not answer SELECT 1 through the port-forward"

# Slow queries, more of them than the pool has connections: every connection stays busy and the
# waiters pass the pool's 2 s deadline ("No available connections after 2.0s").
SLOW='SELECT count(*) FROM range(200000) a, range(200000) b WHERE (a.range * 7 + b.range) % 1000003 = 1'
ONSET=$(date -u +%s)
log "firing slow queries at $VICTIM"
for _ in $(seq 1 "${E2E_LOADERS:-8}"); do
  ( while kubectl -n "$APP_NS" get pod "$VICTIM" >/dev/null 2>&1; do query "$SLOW" 60 >/dev/null || sleep 1; done ) &
  LOAD_PIDS+=($!)
done
log "waiting for $VICTIM to be replaced"
deadline=$((SECONDS + 300))
T_DETECT=""
while cond=$(kubectl -n "$APP_NS" get pod "$VICTIM" -o jsonpath='{.status.conditions[?(@.type=="arcops.dev/PoolHealthy")].status} {.status.conditions[?(@.type=="arcops.dev/PoolHealthy")].reason} {.status.conditions[?(@.type=="arcops.dev/PoolHealthy")].lastTransitionTime}' 2>/dev/null); do
  read -r st reason since <<<"$cond"
  if [[ -z "$T_DETECT" && "$st" == False ]]; then T_DETECT=$(date -u -d "$since" +%s); log "$VICTIM: PoolHealthy False ($reason) since $since"; fi
  (( SECONDS < deadline )) || die "$VICTIM was not replaced within 300 s"
  sleep 1
done
T_GONE=$(date -u +%s)
for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
LOAD_PIDS=()
kill "$PF_PID" 2>/dev/null || true
PF_PID=""
# When two pods are Ready again, as seen from here (a Ready condition's lastTransitionTime can
# predate the gate's verdict: it is set when the kubelet first reports the condition).
deadline=$((SECONDS + 300))
until [[ "$(kubectl -n "$APP_NS" get pods -l "app.kubernetes.io/instance=$ARCD" -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$')" == 2 ]]; do
  (( SECONDS < deadline )) || die "no second Ready pod within 300 s of $VICTIM's eviction"
  sleep 0.5
done
T_READY_SEEN=$(date -u +%s)
kubectl -n "$APP_NS" wait "arcd/$ARCD" --for=condition=Available=True --timeout=300s >&2
read -r -a AFTER <<<"$(pods)"
[[ ${#AFTER[@]} -eq 2 ]] || die "expected 2 Running pods after the replacement, got: ${AFTER[*]:-none}"
[[ " ${AFTER[*]} " == *" $OTHER "* ]] || die "the healthy pod $OTHER was touched"
[[ " ${AFTER[*]} " != *" $VICTIM "* ]] || die "$VICTIM is still there"
[[ "$(kubectl -n "$APP_NS" get pod "$OTHER" -o jsonpath='{.status.containerStatuses[*].restartCount}')" == "0 0" ]] ||
  die "the healthy pod $OTHER had its containers restarted"
REMEDIATED=$(kubectl -n "$APP_NS" get arcd "$ARCD" -o jsonpath='{.status.remediations[*].pod}')
[[ " $REMEDIATED " == *" $VICTIM "* ]] || die "status.remediations does not name $VICTIM (got: ${REMEDIATED:-nothing})"
EVENTS=$(kubectl -n "$APP_NS" get events --field-selector "involvedObject.name=$ARCD" -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}')
grep -q "$VICTIM" <<<"$EVENTS" || die "no Event of $ARCD names $VICTIM; Events: $EVENTS"
log "Events of $ARCD:"; printf '%s\n' "$EVENTS" | tail -5 >&2
NEW=""; for p in "${AFTER[@]}"; do [[ $p == "$OTHER" ]] || NEW=$p; done

# The replacement, step by step, from the objects' own timestamps.
ts() { [[ -n "$1" ]] && date -u -d "$1" +%s || echo "?"; }
REC=$(kubectl -n "$APP_NS" get arcd "$ARCD" -o jsonpath="{range .status.remediations[?(@.pod==\"$VICTIM\")]}{.time}{\"\\n\"}{end}" | head -n1)
NEWJ() { kubectl -n "$APP_NS" get pod "$NEW" -o jsonpath="$1"; }
T_EVICT=$(ts "$REC")
T_CREATED=$(ts "$(NEWJ '{.metadata.creationTimestamp}')")
T_SCHED=$(ts "$(NEWJ '{.status.conditions[?(@.type=="PodScheduled")].lastTransitionTime}')")
T_STARTED=$(ts "$(NEWJ '{.status.containerStatuses[?(@.name=="arc")].state.running.startedAt}')")
T_HEALTHY=$(ts "$(NEWJ '{.status.conditions[?(@.type=="arcops.dev/PoolHealthy")].lastTransitionTime}')")
[[ -n "$T_DETECT" ]] || die "never saw $VICTIM's PoolHealthy condition False before it went"
figure "replacement (seconds after the first slow query): detection (PoolHealthy False) $((T_DETECT - ONSET)), eviction $((T_EVICT - ONSET)), replacement created $((T_CREATED - ONSET)), scheduled $((T_SCHED - ONSET)), service container started $((T_STARTED - ONSET)), PoolHealthy True $((T_HEALTHY - ONSET)), two pods Ready again (seen by polling) $((T_READY_SEEN - ONSET)); old pod gone $((T_GONE - ONSET))"
log "replaced: $VICTIM (exhausted) evicted, $NEW in its place, $OTHER untouched"

# ---- 5. a forbidden module baked into an image tag -------------------------------------------
BAD_TAG=e2e-forbidden
mkdir -p "$WORK/bad"
printf '// the broken pool, as it once shipped\nmodule.exports = {};\n' >"$WORK/bad/duckdb_pool_simple.js"
printf 'FROM arc-service:%s\nCOPY duckdb_pool_simple.js /app/service/dist/duckdb_pool_simple.js\n' "$TAG" >"$WORK/bad/Dockerfile"
build_image "arc-service:$BAD_TAG" "$WORK/bad"
if [[ $MODE == real-node ]]; then
  # The scan of the built images sees it too.
  if "$ROOT/node_modules/node/bin/node" "$ROOT/hack/image-scan.ts" "arc-service:$BAD_TAG" >"$WORK/scan.txt"; then
    die "hack/image-scan.ts did not flag arc-service:$BAD_TAG: $(cat "$WORK/scan.txt")"
  fi
  grep -q 'FORBIDDEN /app/service/dist/duckdb_pool_simple.js' "$WORK/scan.txt" || die "image-scan output: $(cat "$WORK/scan.txt")"
fi
load_images "arc-service:$BAD_TAG"
REMEDIATIONS_BEFORE=$(kubectl -n "$APP_NS" get arcd "$ARCD" -o jsonpath='{range .status.remediations[?(@.action=="Evict")]}x{end}' | wc -c)
t=$SECONDS
log "rolling $ARCD to arc-service:$BAD_TAG"
kubectl -n "$APP_NS" patch arcd "$ARCD" --type merge -p "{\"spec\":{\"image\":\"arc-service:$BAD_TAG\"}}" >&2
kubectl -n "$APP_NS" wait "arcd/$ARCD" --for=condition=Degraded=True --timeout=240s >&2
DEGRADED=$(kubectl -n "$APP_NS" get arcd "$ARCD" -o jsonpath='{.status.conditions[?(@.type=="Degraded")].message}')
log "Degraded: $DEGRADED"
[[ "$DEGRADED" == *"arc-service:$BAD_TAG"* && "$DEGRADED" == *duckdb_pool_simple.js* ]] ||
  die "the Degraded condition does not name the image and the file: $DEGRADED"
figure "forbidden image rolled out to Degraded took $((SECONDS - t)) s"
# No eviction loop: watch for 40 s (past the remediation timings of the resource) that no pod is
# evicted for it.
deadline=$((SECONDS + 40))
while (( SECONDS < deadline )); do
  n=$(kubectl -n "$APP_NS" get arcd "$ARCD" -o jsonpath='{range .status.remediations[?(@.action=="Evict")]}x{end}' | wc -c)
  (( n == REMEDIATIONS_BEFORE )) || die "a pod was evicted for the image fault (evictions $REMEDIATIONS_BEFORE -> $n)"
  sleep 2
done
t=$SECONDS
log "back to arc-service:$TAG"
kubectl -n "$APP_NS" patch arcd "$ARCD" --type merge -p "{\"spec\":{\"image\":\"arc-service:$TAG\"}}" >&2
kubectl -n "$APP_NS" wait "arcd/$ARCD" --for=condition=Degraded=False --timeout=300s >&2
kubectl -n "$APP_NS" wait "arcd/$ARCD" --for=condition=Available=True --timeout=300s >&2
until [[ "$(kubectl -n "$APP_NS" get pods -l "app.kubernetes.io/instance=$ARCD" -o jsonpath='{range .items[*]}{.spec.containers[?(@.name=="arc")].image}{"\n"}{end}' | sort -u)" == *"arc-service:$TAG" ]]; do
  (( SECONDS - t < 300 )) || die "pods of arc-service:$BAD_TAG remain"
  sleep 2
done
figure "rollback to Available took $((SECONDS - t)) s"

# ---- 6. delete the ArcDeployment: everything it owned goes -----------------------------------
log "kubectl delete arcd $ARCD"
kubectl -n "$APP_NS" delete arcd "$ARCD" --wait=true --timeout=120s >&2
deadline=$((SECONDS + 180))
left() { kubectl -n "$APP_NS" get deployments,replicasets,pods,services,serviceaccounts,rolebindings,poddisruptionbudgets -l "app.kubernetes.io/instance=$ARCD" -o name 2>/dev/null; }
until [[ -z "$(left)" ]]; do
  (( SECONDS < deadline )) || die "objects of $ARCD remain after its deletion: $(left | tr '\n' ' ')"
  sleep 2
done

# ---- 7. helm uninstall leaves nothing of ours but the CRD ------------------------------------
log "helm uninstall"
helm uninstall arc-operator -n "$OPERATOR_NS" --wait --timeout 180s >&2
ours() {
  kubectl get clusterroles,clusterrolebindings -o name | grep -E 'arc-operator' || true
  kubectl -n "$OPERATOR_NS" get all,serviceaccounts,roles,rolebindings,configmaps,secrets,leases -o name 2>/dev/null |
    grep -vE '^(serviceaccount/default|configmap/kube-root-ca.crt)$' || true
}
deadline=$((SECONDS + 120))
until [[ -z "$(ours)" ]]; do
  (( SECONDS < deadline )) || die "helm uninstall left: $(ours | tr '\n' ' ')"
  sleep 2
done
keep=$(helm show values "$ROOT/charts/arc-operator" | awk '/^crds:/ { c = 1 } c && $1 == "keep:" { print $2; exit }')
if [[ $keep == true ]]; then
  kubectl get crd arcdeployments.arcops.dev >/dev/null || die "the CRD is gone although crds.keep is true"
else
  kubectl get crd arcdeployments.arcops.dev >/dev/null 2>&1 && die "the CRD remains although crds.keep is false"
fi
log "PASSED: chart installed and removed; $VICTIM (exhausted) evicted and replaced by $NEW; $OTHER untouched; image fault reported, not evicted, rolled back"
