#!/usr/bin/env bash
# Builds the local control plane from Go modules (no Docker, no release downloads):
#   etcd + etcdctl, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
#   kwok and helm, at the versions pinned in hack/cluster/versions.env; for the real node
#   (up.sh --real-node) kubelet and kube-proxy, from the same k8s.io/kubernetes module and version
#   as the control plane (component kubernetes-node: its build reuses the control plane's module
#   folder and Go build cache, so only ~150 more packages are compiled when both build together);
#   and the checking tools the tests run on the chart: promtool (Prometheus rules and metrics)
#   and kubeconform.
#
# Binaries go to a cache OUTSIDE the repo, one folder per component and version:
#   ${ARC_CACHE_DIR:-$HOME/.cache/arc-operator}/bin/<component>-<version>/
# Each folder gets a .stamp once its build has succeeded; a stamped folder is never rebuilt,
# so only the first run on a machine pays (about 15 minutes on 2 cores).
#
# Usage: hack/cluster/build.sh [--force] [--print-bin-dirs] [etcd|kubernetes|kubernetes-node|kwok|helm|promtool|kubeconform ...]
#   (no component names = all of them)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/cluster/versions.env
source "$HERE/versions.env"

CACHE_DIR=${ARC_CACHE_DIR:-$HOME/.cache/arc-operator}
BIN_ROOT="$CACHE_DIR/bin"
SRC_ROOT="$CACHE_DIR/src"
LOG_ROOT="$CACHE_DIR/logs"

bin_dir() { # component -> folder of its binaries
  case "$1" in
    etcd) echo "$BIN_ROOT/etcd-$ARC_ETCD_VERSION" ;;
    kubernetes) echo "$BIN_ROOT/kubernetes-$ARC_K8S_VERSION" ;;
    kubernetes-node) echo "$BIN_ROOT/kubernetes-node-$ARC_K8S_VERSION" ;;
    kwok) echo "$BIN_ROOT/kwok-$ARC_KWOK_VERSION" ;;
    helm) echo "$BIN_ROOT/helm-$ARC_HELM_VERSION" ;;
    promtool) echo "$BIN_ROOT/promtool-$ARC_PROMETHEUS_VERSION" ;;
    kubeconform) echo "$BIN_ROOT/kubeconform-$ARC_KUBECONFORM_VERSION" ;;
    *) echo "unknown component: $1" >&2; return 1 ;;
  esac
}

# kubernetes-node right after kubernetes: it compiles little on top of it, while the cache is warm.
ALL_COMPONENTS=(etcd kubernetes kubernetes-node kwok helm)
ALL_COMPONENTS+=(promtool kubeconform)
FORCE=0
components=()
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --print-bin-dirs)
      for c in "${ALL_COMPONENTS[@]}"; do bin_dir "$c"; done
      exit 0 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    etcd|kubernetes|kubernetes-node|kwok|helm) components+=("$arg") ;;
    promtool|kubeconform) components+=("$arg") ;;
    *) echo "build.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
[[ ${#components[@]} -gt 0 ]] || components=("${ALL_COMPONENTS[@]}")

log() { printf '[cluster build] %s\n' "$*" >&2; }
die() { printf '[cluster build] ERROR: %s\n' "$*" >&2; exit 1; }

is_built() { [[ -f "$(bin_dir "$1")/.stamp" ]]; }

# Nothing to do? Then Go is not even needed.
todo=()
for c in "${components[@]}"; do
  if [[ $FORCE == 1 ]] || ! is_built "$c"; then todo+=("$c"); fi
done
if [[ ${#todo[@]} -eq 0 ]]; then
  log "all binaries already built (cache: $BIN_ROOT)"
  exit 0
fi

# ---- Go toolchain -------------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
  die "Go is not on PATH. The local Kubernetes control plane is built from Go modules:
  install Go >= $ARC_GO_MIN_VERSION (https://go.dev/doc/install; e.g. unpack it to /usr/local/go and
  add /usr/local/go/bin to PATH), then run this again. Missing: ${todo[*]}"
fi
GO_VERSION=$(go env GOVERSION) # e.g. go1.26.8
ver_ge() { # ver_ge 1.26.8 1.26 -> true when $1 >= $2
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}
if ! ver_ge "${GO_VERSION#go}" "$ARC_GO_MIN_VERSION"; then
  die "Go $GO_VERSION is too old: install Go >= $ARC_GO_MIN_VERSION and run this again."
fi

mkdir -p "$BIN_ROOT" "$SRC_ROOT" "$LOG_ROOT"
export GOMODCACHE="${ARC_GOMODCACHE:-$CACHE_DIR/go/mod}"
export GOCACHE="${ARC_GOCACHE:-$CACHE_DIR/go/build}"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
# -modcacherw: the module cache stays deletable with a plain rm -rf.
export GOFLAGS="-trimpath -buildvcs=false -modcacherw -mod=mod"
export GOMAXPROCS="${GOMAXPROCS:-$(nproc)}"

# One build at a time per cache (two `cluster:up`s racing would otherwise build twice).
exec 9>"$CACHE_DIR/build.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_DIR/build.lock; waiting for it"
  flock 9
fi

NICE=(nice -n 10)

# Runs "$@" with its output in the component's log; on failure shows the tail.
run_logged() {
  local logfile=$1; shift
  if ! "$@" >>"$logfile" 2>&1; then
    log "FAILED: $*"
    log "last lines of $logfile:"
    tail -n 40 "$logfile" >&2
    exit 1
  fi
}

# Writes the binaries from a temporary folder into place, then the stamp.
finish() { # component tmpdir started_at
  local c=$1 tmp=$2 t0=$3 dir
  dir=$(bin_dir "$c")
  chmod 755 "$tmp"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  local secs=$(( $(date +%s) - t0 ))
  printf 'component=%s\nbuilt_at=%s\nbuild_seconds=%s\ngo=%s\n' \
    "$c" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$secs" "$GO_VERSION" >"$dir/.stamp"
  log "$c built in ${secs}s -> $dir"
}

new_tmp() { # component -> a fresh temporary folder in the cache (leftovers of a failed build go first)
  rm -rf "$BIN_ROOT/.$1".*
  mktemp -d "$BIN_ROOT/.$1.XXXXXX"
}

module_field() { # module@version field -> value from `go mod download -json`
  go mod download -json "$1" | sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",\{0,1\}\$/\1/p"
}

# The wrapper module that builds Kubernetes commands: k8s.io/kubernetes at ARC_K8S_VERSION, its
# staging modules replaced by their published copies. Shared by kubernetes and kubernetes-node
# (one module folder, one set of selected module versions, one Go build cache).
KUBE_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
kubernetes_module() { # logfile -> prints the module folder, ready to build
  local v=$ARC_K8S_VERSION logf=$1 work gomod want c
  work="$SRC_ROOT/kubernetes-$v"
  want=$(for c in "${KUBE_COMMANDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done)
  if [[ -f "$work/go.sum" && -f "$work/.ready" ]] && grep -qF "$want" "$work/tools.go" 2>/dev/null; then
    echo "$work"; return 0
  fi
  rm -rf "$work"; mkdir -p "$work"
  gomod=$(cd "$work" && module_field "k8s.io/kubernetes@$v" GoMod)
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$v (see: go mod download -json k8s.io/kubernetes@$v)"

  # The release's go.mod points each staging module at ./staging/src/...; a module outside the
  # repo must take the published copies instead: k8s.io/X => k8s.io/X v0.<minor>.<patch>.
  local staging_v="v0.${v#v1.}"
  local go_line staging
  go_line=$(awk '$1 == "go" { print $2; exit }' "$gomod")
  staging=$(awk '/=> \.\/staging\/src\// { for (i = 1; i < NF; i++) if ($(i+1) == "=>") print $i }' "$gomod" | sort -u)
  [[ -n "$staging" ]] || die "found no staging replace directives in $gomod"
  {
    echo "module arc-operator.local/kubernetes-build"
    echo
    echo "go $go_line"
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    echo "replace ("
    local m
    for m in $staging; do echo "	$m => $m $staging_v"; done
    echo ")"
  } >"$work/go.mod"
  {
    echo '//go:build tools'
    echo
    echo '// Package tools pins the Kubernetes commands this module builds.'
    echo 'package tools'
    echo
    echo 'import ('
    echo "$want"
    echo ')'
  } >"$work/tools.go"
  log "kubernetes $v: replacing $(wc -w <<<"$staging") staging modules with $staging_v; resolving modules"
  (cd "$work" && run_logged "$logf" "${NICE[@]}" go mod tidy)
  touch "$work/.ready"
  echo "$work"
}

kube_ldflags() { # -> the -ldflags value: version strings as the release build sets them
  local v=$ARC_K8S_VERSION minor build_date info ld=(-s -w) pkg
  info=$(module_field "k8s.io/kubernetes@$v" Info)
  minor=${v#v1.}; minor=${minor%%.*}
  build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info")
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=("-X $pkg.gitVersion=$v" "-X $pkg.gitMajor=1" "-X $pkg.gitMinor=$minor"
         "-X $pkg.gitTreeState=clean" "-X $pkg.buildDate=${build_date:-1970-01-01T00:00:00Z}")
  done
  echo "${ld[*]}"
}

build_kube_commands() { # component description command...
  local c=$1 what=$2; shift 2
  local v=$ARC_K8S_VERSION t0 work tmp logf ld cmd pkgs=()
  t0=$(date +%s)
  logf="$LOG_ROOT/build-$c-$v.log"
  : >"$logf"
  log "$c $v: building $* (log: $logf)"
  work=$(kubernetes_module "$logf")
  cd "$work"
  ld=$(kube_ldflags)
  for cmd in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
  tmp=$(new_tmp "$c")
  log "$c $v: compiling ($what)"
  run_logged "$logf" "${NICE[@]}" go build -ldflags "$ld" -o "$tmp/" "${pkgs[@]}"
  "$tmp/$1" --version >>"$logf" 2>&1 || "$tmp/$1" version --client >>"$logf" 2>&1 || die "built $1 does not run (see $logf)"
  finish "$c" "$tmp" "$t0"
}

build_kubernetes() {
  build_kube_commands kubernetes "the long part: about 10 minutes on 2 cores" \
    kubectl kube-apiserver kube-controller-manager kube-scheduler
}

build_kubernetes-node() {
  build_kube_commands kubernetes-node "a few minutes after the control plane, about 10 alone" \
    kubelet kube-proxy
}

build_etcd() {
  local v=$ARC_ETCD_VERSION t0 work tmp logf
  t0=$(date +%s)
  work="$SRC_ROOT/etcd-$v"
  logf="$LOG_ROOT/build-etcd-$v.log"
  : >"$logf"
  log "etcd $v: building etcd and etcdctl (log: $logf)"
  rm -rf "$work"; mkdir -p "$work/etcd"
  cd "$work"
  # etcd's own modules replace each other with ../paths, so `go install ...@version` refuses
  # them; this wrapper module requires the published modules instead.
  cat >go.mod <<EOF
module arc-operator.local/etcd-build

go 1.26.0

require (
	go.etcd.io/etcd/server/v3 $v
	go.etcd.io/etcd/etcdctl/v3 $v
	go.etcd.io/etcd/api/v3 $v
	go.etcd.io/etcd/client/pkg/v3 $v
	go.etcd.io/etcd/client/v3 $v
	go.etcd.io/etcd/pkg/v3 $v
)
EOF
  cat >etcd/main.go <<'EOF'
// Command etcd is the etcd server (the same entry point as etcd's own main.go).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  cat >tools.go <<'EOF'
//go:build tools

// Package tools pins etcdctl, whose main package is its module's root.
package tools

import _ "go.etcd.io/etcd/etcdctl/v3"
EOF
  run_logged "$logf" "${NICE[@]}" go mod tidy
  tmp=$(new_tmp etcd)
  run_logged "$logf" "${NICE[@]}" go build -ldflags "-s -w" -o "$tmp/etcd" ./etcd
  run_logged "$logf" "${NICE[@]}" go build -ldflags "-s -w" -o "$tmp/etcdctl" go.etcd.io/etcd/etcdctl/v3
  "$tmp/etcd" --version >>"$logf" 2>&1 || die "built etcd does not run (see $logf)"
  finish etcd "$tmp" "$t0"
}

build_kwok() {
  local v=$ARC_KWOK_VERSION t0 tmp logf
  t0=$(date +%s)
  logf="$LOG_ROOT/build-kwok-$v.log"
  : >"$logf"
  log "kwok $v: building (log: $logf)"
  tmp=$(new_tmp kwok)
  cd "$tmp"
  GOBIN="$tmp" GOFLAGS="-trimpath -buildvcs=false -modcacherw" run_logged "$logf" "${NICE[@]}" \
    go install -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${v#v}" "sigs.k8s.io/kwok/cmd/kwok@$v"
  "$tmp/kwok" --version >>"$logf" 2>&1 || die "built kwok does not run (see $logf)"
  finish kwok "$tmp" "$t0"
}

build_helm() {
  local v=$ARC_HELM_VERSION t0 tmp logf major
  t0=$(date +%s)
  logf="$LOG_ROOT/build-helm-$v.log"
  : >"$logf"
  major=${v%%.*}
  log "helm $v: building (log: $logf)"
  tmp=$(new_tmp helm)
  cd "$tmp"
  GOBIN="$tmp" GOFLAGS="-trimpath -buildvcs=false -modcacherw" run_logged "$logf" "${NICE[@]}" \
    go install -ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$v -X helm.sh/helm/$major/internal/version.gitTreeState=clean" \
    "helm.sh/helm/$major/cmd/helm@$v"
  "$tmp/helm" version >>"$logf" 2>&1 || die "built helm does not run (see $logf)"
  finish helm "$tmp" "$t0"
}

# promtool (from the Prometheus module, whose versions are v0.<major><minor>.<patch>: v0.316.0 is
# Prometheus 3.16.0): `promtool check rules|test rules|check metrics` in the chart tests.
build_promtool() {
  local v=$ARC_PROMETHEUS_VERSION t0 tmp logf minor release
  t0=$(date +%s)
  logf="$LOG_ROOT/build-promtool-$v.log"
  : >"$logf"
  minor=${v#v0.}; minor=${minor%%.*}
  release="$(( minor / 100 )).$(( minor % 100 )).${v##*.}"
  log "promtool $v (Prometheus $release): building (log: $logf)"
  tmp=$(new_tmp promtool)
  cd "$tmp"
  GOBIN="$tmp" GOFLAGS="-trimpath -buildvcs=false -modcacherw" run_logged "$logf" "${NICE[@]}" \
    go install -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release" \
    "github.com/prometheus/prometheus/cmd/promtool@$v"
  "$tmp/promtool" --version >>"$logf" 2>&1 || die "built promtool does not run (see $logf)"
  finish promtool "$tmp" "$t0"
}

# kubeconform: validates the rendered chart against JSON schemas generated from the local
# control plane's OpenAPI (test/deploy), never downloaded.
build_kubeconform() {
  local v=$ARC_KUBECONFORM_VERSION t0 tmp logf
  t0=$(date +%s)
  logf="$LOG_ROOT/build-kubeconform-$v.log"
  : >"$logf"
  log "kubeconform $v: building (log: $logf)"
  tmp=$(new_tmp kubeconform)
  cd "$tmp"
  GOBIN="$tmp" GOFLAGS="-trimpath -buildvcs=false -modcacherw" run_logged "$logf" "${NICE[@]}" \
    go install -ldflags "-s -w" "github.com/yannh/kubeconform/cmd/kubeconform@$v"
  "$tmp/kubeconform" -v >>"$logf" 2>&1 || die "built kubeconform does not run (see $logf)"
  finish kubeconform "$tmp" "$t0"
}

log "building: ${todo[*]} with $GO_VERSION (cache: $CACHE_DIR)"
t_all=$(date +%s)
for c in "${todo[@]}"; do
  # Another build may have finished it while we waited for the lock.
  if [[ $FORCE != 1 ]] && is_built "$c"; then log "$c: already built"; continue; fi
  "build_$c"
done
log "done in $(( $(date +%s) - t_all ))s"
# The compile cache (about 5 GB after a Kubernetes build) only speeds up rebuilding the same
# versions, which the stamps already avoid: drop it unless asked to keep it or it is shared.
if [[ -z "${ARC_GOCACHE:-}" && "${ARC_KEEP_GOCACHE:-0}" != 1 ]]; then
  go clean -cache
  log "removed the Go build cache $GOCACHE (ARC_KEEP_GOCACHE=1 keeps it)"
fi
