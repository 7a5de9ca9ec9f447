#!/usr/bin/env bash
# Builds bgplb's managed (v2) Docker plugin on this machine, without a
# registry: a plugin directory (config.json + rootfs/) holding bgplb, Debian's
# gobgpd and the shared libraries both need, then `docker plugin create`.
#
#   deploy/plugin/build.sh [options] [NAME:TAG]        (default bgplb:latest)
#
#   --binary PATH   use this bgplb binary instead of `cargo build --release`
#   --dir DIR       build the plugin directory here (default target/plugin)
#   --no-create     only build the directory, do not `docker plugin create`
#   --enable        `docker plugin enable` after creating; settings first:
#   --set K=V       `docker plugin set NAME:TAG K=V` before enabling (repeatable);
#                   ROUTER_ID, PEER_ADDRESS and PEER_AS have no default
#   --force         replace an existing plugin of that name (disable -f, rm -f)
#
# Needs root (docker, chroot), gobgpd at /usr/bin/gobgpd (Debian's package;
# GOBGPD=PATH picks another) and ldd.
set -euo pipefail

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

binary= dir= create=1 enable=0 force=0 name=bgplb:latest
sets=()
while (($#)); do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --dir) dir=${2:?--dir needs a directory}; shift 2 ;;
    --no-create) create=0; shift ;;
    --enable) enable=1; shift ;;
    --set) sets+=("${2:?--set needs K=V}"); shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) name=$1; shift ;;
  esac
done
# Managed plugins are registered as NAME:TAG; --driver needs that full form.
[[ $name == *:* ]] || name="$name:latest"
dir=${dir:-$repo/target/plugin}
gobgpd=${GOBGPD:-/usr/bin/gobgpd}

if [[ -z $binary ]]; then
  if ! command -v cargo >/dev/null; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
  fi
  log "cargo build --release"
  (cd "$repo" && cargo build --release --locked)
  binary=$repo/target/release/bgplb
fi
[[ -x $binary ]] || die "no executable bgplb at $binary"
[[ -x $gobgpd ]] || die "no gobgpd at $gobgpd (apt-get install gobgpd)"

# A fresh directory: the rootfs becomes the plugin's root filesystem as is.
rootfs=$dir/rootfs
if [[ -e $dir && ! -e $dir/config.json && -n $(ls -A "$dir") ]]; then
  die "$dir is not empty and not a plugin directory; refusing to replace it"
fi
rm -rf "$dir"
mkdir -p "$rootfs"
cp "$here/config.json" "$dir/config.json"

install -D -m 0755 "$binary" "$rootfs/usr/local/bin/bgplb"
install -D -m 0755 "$gobgpd" "$rootfs/usr/bin/gobgpd"
# Debug info is most of a debug build's size; docker plugin create copies it all.
if command -v strip >/dev/null; then
  strip --strip-debug "$rootfs/usr/local/bin/bgplb"
fi

# The shared libraries and the dynamic loader, at the paths ldd names.
libs() {
  ldd "$1" | awk '/=> \// { print $3 } /^\t\// { print $1 }'
}
for lib in $( { libs "$binary"; libs "$gobgpd"; } | sort -u); do
  install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
done

# Where Docker mounts the plugin socket directory, where bgplb puts gobgpd's
# API socket, scratch space, and the files Docker bind-mounts for host networking.
mkdir -p "$rootfs/run/docker/plugins" "$rootfs/run/bgplb" "$rootfs/etc" "$rootfs/var"
ln -s ../run "$rootfs/var/run"
mkdir -m 1777 "$rootfs/tmp"
touch "$rootfs/etc/hosts" "$rootfs/etc/resolv.conf"
printf 'root:x:0:0:root:/:/usr/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\n' >"$rootfs/etc/group"
# The plugin's name in its rootfs: Docker 20.10 refuses to create a second
# plugin whose rootfs layer is byte-identical to an installed one's
# ("content sha256:...: already exists"), so two names need two contents.
printf '%s\n' "$name" >"$rootfs/etc/bgplb-plugin"

# A quick check that the rootfs is complete: bgplb starts far enough to print its version.
chroot "$rootfs" /usr/local/bin/bgplb --version >/dev/null \
  || die "bgplb does not run inside $rootfs (missing libraries?)"
chroot "$rootfs" /usr/bin/gobgpd --version >/dev/null \
  || die "gobgpd does not run inside $rootfs (missing libraries?)"
log "plugin directory ready: $dir ($(du -sh "$rootfs" | cut -f1))"

((create)) || exit 0

if docker plugin inspect "$name" >/dev/null 2>&1; then
  ((force)) || die "plugin $name exists; remove it (docker plugin disable/rm) or pass --force"
  log "replacing plugin $name"
  docker plugin disable -f "$name" >/dev/null 2>&1 || true
  docker plugin rm -f "$name" >/dev/null
fi
docker plugin create "$name" "$dir" >/dev/null
log "created plugin $name"
if ((${#sets[@]})); then
  docker plugin set "$name" "${sets[@]}"
  log "set ${sets[*]}"
fi
if ((enable)); then
  docker plugin enable "$name" >/dev/null
  log "enabled plugin $name"
fi
