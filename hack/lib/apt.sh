# shellcheck shell=bash
# apt_install PACKAGE...: installs Debian packages that are missing (as root). `apt-get update`
# runs once per script, and only when something has to be installed. Services that a package
# would start are not started (policy-rc.d): the scripts start their daemons themselves.
APT_UPDATED=${APT_UPDATED:-0}
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  if [[ $(id -u) != 0 ]]; then
    printf 'ERROR: Debian packages missing: %s (run as root, or: sudo apt-get install -y %s)\n' "${missing[*]}" "${missing[*]}" >&2
    return 1
  fi
  command -v apt-get >/dev/null 2>&1 || { printf 'ERROR: no apt-get: install %s by hand\n' "${missing[*]}" >&2; return 1; }
  printf '[apt] installing %s\n' "${missing[*]}" >&2
  if [[ $APT_UPDATED != 1 ]]; then
    apt-get update -qq >&2
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
