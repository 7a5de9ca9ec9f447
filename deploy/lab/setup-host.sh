#!/usr/bin/env bash
# Prepares this host for the bgplb lab: packages, a running dockerd, the
# legacy plugin directory. Idempotent; run as root.
set -euo pipefail

log() { printf 'setup-host: %s\n' "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root (network namespaces, routes, dockerd)"
  exit 1
fi

# Packages: ask apt only when one is missing.
packages=(docker.io gobgpd busybox-static iproute2)
missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]} > 0)); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -q -y "${missing[@]}"
fi

# dockerd: start it in the background unless one already answers. No
# systemd is assumed (containers and CI machines often lack it).
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/bgplb-dockerd.log)"
  nohup dockerd >/var/log/bgplb-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    log "dockerd did not come up within 60 s; last lines of its log:"
    tail -n 20 /var/log/bgplb-dockerd.log >&2 || true
    exit 1
  fi
fi

# Legacy plugins are found by their socket in this directory.
mkdir -p /run/docker/plugins

log "ready: $(docker version -f 'dockerd {{.Server.Version}}'), $(gobgpd --version)"
