#!/usr/bin/env bash
# End-to-end on kind (machines with a Docker engine): real containers, real pools, real evictions.
#   1. creates a kind cluster (deploy/kind/cluster.yaml), unless it exists
#   2. builds the service, sidecar and operator images (root Dockerfile) and loads them into kind
#   3. installs the chart (charts/arc-operator) with those images
#   4. applies an ArcDeployment (test/e2e/arcdeployment-e2e.yaml) and waits until it is Available
#   5. exhausts one pod's DuckDB pool with real slow queries, through a port-forward on 127.0.0.1
#   6. waits until that pod is evicted and replaced, the other pod untouched, and the status says so
#
# Usage: test/e2e/kind.sh            (KEEP_CLUSTER=1 leaves the cluster for a look afterwards)
# Needs: docker (with an engine), kind, kubectl, helm, curl. Exit code 0 only when every step passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=${KIND_CLUSTER_NAME:-arc-e2e}
TAG=e2e
OPERATOR_NS=arc-system
APP_NS=arc-e2e
LOCAL_PORT=${E2E_LOCAL_PORT:-18000}
WORK=$(mktemp -d)
export KUBECONFIG="$WORK/kubeconfig"

log() { printf '[kind e2e] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

PF_PID=""
LOAD_PIDS=()
cleanup() {
  local code=$?
  if [[ -n "$PF_PID" ]]; then kill "$PF_PID" 2>/dev/null || true; fi
  for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ $code -ne 0 ]]; then
    log "diagnostics:"
    kubectl -n "$APP_NS" get arcd,pods -o wide >&2 2>/dev/null || true
    kubectl -n "$APP_NS" get events --sort-by=.lastTimestamp >&2 2>/dev/null | tail -30 || true
    kubectl -n "$OPERATOR_NS" logs deployment/arc-operator --tail=50 >&2 2>/dev/null || true
  fi
  if [[ "${KEEP_CLUSTER:-0}" != 1 ]]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
  exit "$code"
}
trap cleanup EXIT

for tool in docker kind kubectl helm curl; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH"
done
docker info >/dev/null 2>&1 || die "no Docker engine (docker info failed)"

# 1. cluster
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "reusing kind cluster $CLUSTER"
  kind export kubeconfig --name "$CLUSTER" --kubeconfig "$KUBECONFIG"
else
  log "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --config "$ROOT/deploy/kind/cluster.yaml" --kubeconfig "$KUBECONFIG" --wait 120s
fi

# 2. images (a clean build every time: --no-cache, as the incident's checklist asked)
VERSION=$(node -p "require('$ROOT/package.json').version" 2>/dev/null || echo 0.0.0)
REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
for target in service sidecar operator; do
  log "building arc-$target:$TAG"
  docker build --no-cache --target "$target" --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
    -t "arc-$target:$TAG" "$ROOT"
  kind load docker-image "arc-$target:$TAG" --name "$CLUSTER"
done

# 3. chart
log "installing the chart"
helm install arc-operator "$ROOT/charts/arc-operator" -n "$OPERATOR_NS" --create-namespace \
  --set image.repository=arc-operator --set image.tag="$TAG" --set image.pullPolicy=Never \
  --wait --timeout 180s
kubectl -n "$OPERATOR_NS" rollout status deployment/arc-operator --timeout=120s

# 4. ArcDeployment
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
kubectl create namespace "$APP_NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$APP_NS" create secret generic arc-tokens --from-literal=tokens="$TOKEN" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$APP_NS" apply -f "$ROOT/test/e2e/arcdeployment-e2e.yaml"
log "waiting for arc-e2e to be Available"
kubectl -n "$APP_NS" wait arcd/arc-e2e --for=condition=Available=True --timeout=300s

pods() { kubectl -n "$APP_NS" get pods -l app.kubernetes.io/instance=arc-e2e --field-selector=status.phase=Running -o jsonpath='{.items[*].metadata.name}'; }
read -r -a BEFORE <<<"$(pods)"
[[ ${#BEFORE[@]} -eq 2 ]] || die "expected 2 Running pods, got: ${BEFORE[*]:-none}"
VICTIM=${BEFORE[0]}
OTHER=${BEFORE[1]}
log "pods: ${BEFORE[*]}; exhausting the pool of $VICTIM"

# 5. port-forward to the victim pod, on loopback only, and check that it serves
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
log "firing slow queries at $VICTIM"
for _ in $(seq 1 8); do
  ( while kubectl -n "$APP_NS" get pod "$VICTIM" >/dev/null 2>&1; do query "$SLOW" 60 >/dev/null || sleep 1; done ) &
  LOAD_PIDS+=($!)
done

# 6. the victim is evicted and replaced; the other pod stays
log "waiting for $VICTIM to be replaced"
deadline=$((SECONDS + 300))
until ! kubectl -n "$APP_NS" get pod "$VICTIM" >/dev/null 2>&1; do
  (( SECONDS < deadline )) || die "$VICTIM was not replaced within 300 s"
  sleep 2
done
for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
LOAD_PIDS=()
kubectl -n "$APP_NS" wait arcd/arc-e2e --for=condition=Available=True --timeout=300s
read -r -a AFTER <<<"$(pods)"
[[ ${#AFTER[@]} -eq 2 ]] || die "expected 2 Running pods after the replacement, got: ${AFTER[*]:-none}"
[[ " ${AFTER[*]} " == *" $OTHER "* ]] || die "the healthy pod $OTHER was touched"
[[ " ${AFTER[*]} " != *" $VICTIM "* ]] || die "$VICTIM is still there"
REMEDIATED=$(kubectl -n "$APP_NS" get arcd arc-e2e -o jsonpath='{.status.remediations[*].pod}')
[[ " $REMEDIATED " == *" $VICTIM "* ]] || die "status.remediations does not name $VICTIM (got: ${REMEDIATED:-nothing})"
kubectl -n "$APP_NS" get events --field-selector involvedObject.name=arc-e2e -o custom-columns=REASON:.reason,MESSAGE:.message | tail -10 >&2

log "PASSED: $VICTIM (exhausted) was evicted and replaced; $OTHER untouched; pods now: ${AFTER[*]}"
