# shellcheck shell=bash
# ensure_docker_engine STATE: a Docker engine answers afterwards. Installs Debian's docker.io when
# dockerd is missing (hack/lib/apt.sh), and starts dockerd itself when no engine answers: storage
# driver overlay2, its own process group, pid file and log in STATE (hack/lib/daemon.sh), so that
# `npm run cluster:down` stops it. Needs root only for what it has to install or start.
docker_engine_answers() { docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

ensure_docker_engine() {
  local state=$1
  command -v dockerd >/dev/null 2>&1 || apt_install docker.io || return 1
  if docker_engine_answers; then return 0; fi
  if [[ $(id -u) != 0 ]]; then
    printf 'ERROR: no Docker engine answers, and starting dockerd needs root (run as root, or start Docker yourself)\n' >&2
    return 1
  fi
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  if ! grep -qw overlay /proc/filesystems; then
    printf 'ERROR: the kernel has no overlayfs (grep overlay /proc/filesystems): dockerd (overlay2) and containerd need it\n' >&2
    return 1
  fi
  daemon_start dockerd "$state" "" dockerd --storage-driver=overlay2 \
    --data-root="${ARC_DOCKER_ROOT:-/var/lib/docker}" --host=unix:///var/run/docker.sock || return 1
  local i
  for i in $(seq 120); do
    docker_engine_answers && return 0
    daemon_running dockerd "$state" >/dev/null || break
    sleep 0.5
  done
  tail -n 30 "$state/logs/dockerd.log" >&2
  printf 'ERROR: dockerd did not answer within 60 s (log: %s)\n' "$state/logs/dockerd.log" >&2
  return 1
}
