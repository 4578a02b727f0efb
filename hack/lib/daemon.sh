# shellcheck shell=bash
# Daemons that outlive the script that starts them, each in its own process group (setsid), with
# a pid file (<state>/pids/NAME.pid), the path of its executable (<state>/pids/NAME.exe) and a log
# (<state>/logs/NAME.log). They are only ever signalled through that pid, and only while it still
# runs that executable.

# daemon_running NAME STATE -> prints the pid when NAME runs, else nothing (status 1)
daemon_running() {
  local pidf="$2/pids/$1.pid" exef="$2/pids/$1.exe" pid
  [[ -f "$pidf" && -f "$exef" ]] || return 1
  pid=$(<"$pidf")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" == "$(<"$exef")" ]] || return 1
  echo "$pid"
}

# daemon_start NAME STATE PORT COMMAND ARGS... (PORT may be empty; a running NAME is left alone)
daemon_start() {
  local name=$1 state=$2 port=$3; shift 3
  local exe
  daemon_running "$name" "$state" >/dev/null && return 0
  exe=$(readlink -f "$(command -v "$1")") || { printf 'ERROR: %s not found\n' "$1" >&2; return 1; }
  if [[ -n "$port" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    printf 'ERROR: port %s is already in use, so %s cannot start\n' "$port" "$name" >&2
    return 1
  fi
  mkdir -p "$state/pids" "$state/logs"
  rm -f "$state/pids/$name.pid"
  echo "$exe" >"$state/pids/$name.exe"
  printf '\n===== %s starting %s =====\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" >>"$state/logs/$name.log"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner bash
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$state/pids/$name.pid" "$@" \
    </dev/null >>"$state/logs/$name.log" 2>&1 &
  local i
  for i in $(seq 50); do [[ -s "$state/pids/$name.pid" ]] && break; sleep 0.1; done
  printf '[daemon] started %s (pid %s, log %s)\n' "$name" "$(<"$state/pids/$name.pid")" "$state/logs/$name.log" >&2
}

# daemon_stop NAME STATE [SECONDS]: SIGTERM to its process group, SIGKILL after SECONDS (10)
daemon_stop() {
  local name=$1 state=$2 secs=${3:-10} pid
  if pid=$(daemon_running "$name" "$state"); then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      printf '[daemon] %s (pid %s) did not stop within %ss; SIGKILL\n' "$name" "$pid" "$secs" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    printf '[daemon] stopped %s (pid %s)\n' "$name" "$pid" >&2
  fi
  rm -f "$state/pids/$name.pid" "$state/pids/$name.exe"
}
