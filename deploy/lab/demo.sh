#!/usr/bin/env bash
# The bgplb lab demo: a router in a network namespace, bgplb on the host, a
# health-checked container whose address appears at the router while it is
# healthy and leaves when its health check fails. Cleans up after itself.
# Run as root from anywhere: deploy/lab/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$PWD

# The lab's names and addresses (the tests use the same shape with indexes
# 1..62; the demo has index 63 to itself).
NS=bgplb-demo
HOST_IF=bgplbh63
ROUTER_IF=bgplbr63
HOST_ADDR=198.51.100.253
ROUTER_ADDR=198.51.100.254
VIP=203.0.113.10
DRIVER=bgplb
NETWORK=demo
CONTAINER=bgplb-demo-web
IMAGE=bgplb-test:latest
PLUGIN_SOCKET=/run/docker/plugins/$DRIVER.sock

work=$(mktemp -d /tmp/bgplb-demo.XXXXXX)
router_pid=
bgplb_pid=
ok=false

# The router's CLI, talking to its gobgpd inside the namespace.
GOBGP=(ip netns exec "$NS" gobgp -u 127.0.0.1 -p 50051)

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
# show COMMAND...: prints the command, quoted for a shell, then runs it.
show() {
  local arg line='$'
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
      line+=" $arg"
    else
      line+=" '${arg//\'/\'\\\'\'}'"
    fi
  done
  printf '%s\n' "$line"
  "$@"
}
rib() { "${GOBGP[@]}" "$@"; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
  local desc=$1 secs=$2
  shift 2
  local deadline=$((SECONDS + secs))
  printf '... waiting until %s\n' "$desc"
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      printf 'timed out after %s s waiting until %s\n' "$secs" "$desc" >&2
      return 1
    fi
    sleep 0.2
  done
}

established() { rib neighbor | grep -q "^$HOST_ADDR .*Establ"; }
announced() { rib global rib -a ipv4 | grep -q "^\*> *$VIP/32 *$HOST_ADDR "; }
withdrawn() { ! rib global rib -a ipv4 | grep -q " $VIP/32 "; }
kernel_route() { ip route show proto 201 | grep -q "^$VIP dev bgplb-"; }
health_is() { [[ $(docker inspect -f '{{.State.Health.Status}}' "$CONTAINER") == "$1" ]]; }

# Removes everything the demo makes; also what a killed earlier run left.
cleanup() {
  docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
  docker network rm "$NETWORK" >/dev/null 2>&1 || true
  if [[ -n $bgplb_pid ]]; then
    kill -TERM "$bgplb_pid" 2>/dev/null || true
    wait "$bgplb_pid" 2>/dev/null || true
  fi
  if [[ -n $router_pid ]]; then
    kill -TERM "$router_pid" 2>/dev/null || true
    wait "$router_pid" 2>/dev/null || true
  fi
  ip netns delete "$NS" 2>/dev/null || true
  ip link delete "$HOST_IF" 2>/dev/null || true
}

on_exit() {
  local rc=$?
  if [[ $ok != true ]]; then
    printf '\ndemo failed (exit %s); last lines of the logs:\n' "$rc" >&2
    for f in "$work"/bgplb.log "$work"/router.log; do
      if [[ -f $f ]]; then
        printf -- '--- %s\n' "$f" >&2
        tail -n 25 "$f" >&2
      fi
    done
    printf 'logs kept in %s\n' "$work" >&2
  fi
  step "Cleaning up"
  cleanup
  if [[ $ok == true ]]; then
    rm -rf "$work"
  fi
  return "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

step "1. Preparing the host (packages, dockerd)"
deploy/lab/setup-host.sh
# What a killed earlier run may have left: only processes in our namespace.
for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" || true; done
cleanup

step "2. Building bgplb"
if ! command -v cargo >/dev/null; then
  export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
cargo build
bgplb=$repo/target/debug/bgplb

step "3. Building the test image $IMAGE (busybox on scratch)"
revision=$(sed -n 's/^LABEL bgplb.test.revision="\(.*\)"$/\1/p' deploy/lab/test-image/Dockerfile)
have=$(docker image inspect -f '{{index .Config.Labels "bgplb.test.revision"}}' "$IMAGE" 2>/dev/null || true)
if [[ $have != "$revision" ]]; then
  mkdir "$work/image"
  cp deploy/lab/test-image/Dockerfile /bin/busybox "$work/image/"
  docker build -q -t "$IMAGE" "$work/image"
else
  echo "$IMAGE is up to date"
fi

step "4. Starting the router: gobgpd (AS 64512) in namespace $NS at $ROUTER_ADDR"
ip netns add "$NS"
ip link add "$HOST_IF" type veth peer name "$ROUTER_IF" netns "$NS"
ip addr add "$HOST_ADDR/30" dev "$HOST_IF"
ip link set "$HOST_IF" up
ip -n "$NS" addr add "$ROUTER_ADDR/30" dev "$ROUTER_IF"
ip -n "$NS" link set "$ROUTER_IF" up
ip -n "$NS" link set lo up
sed "s/@ROUTER_ADDRESS@/$ROUTER_ADDR/" deploy/lab/router.toml >"$work/router.toml"
ip netns exec "$NS" gobgpd -f "$work/router.toml" --api-hosts 127.0.0.1:50051 \
  --pprof-disable -l debug -p >"$work/router.log" 2>&1 &
router_pid=$!
wait_for "the router's API answers" 30 rib global

step "5. Starting bgplb (AS 65534, router id $HOST_ADDR), peering with $ROUTER_ADDR"
if ss -xl | grep -qF "$PLUGIN_SOCKET"; then
  echo "something already listens on $PLUGIN_SOCKET: stop that bgplb first" >&2
  exit 1
fi
rm -f "$PLUGIN_SOCKET" # left by a bgplb that was killed
env ROUTER_ID="$HOST_ADDR" PEER_ADDRESS="$ROUTER_ADDR" PEER_AS=64512 LOCAL_AS=65534 \
  PLUGIN_SOCKET="$PLUGIN_SOCKET" GOBGP_API="unix://$work/gobgp.sock" \
  RUST_LOG=info NO_COLOR=1 \
  "$bgplb" >"$work/bgplb.log" 2>&1 &
bgplb_pid=$!
wait_for "bgplb listens on $PLUGIN_SOCKET" 30 test -S "$PLUGIN_SOCKET"
wait_for "the BGP session is established" 30 established
show "${GOBGP[@]}" neighbor

step "6. Creating network '$NETWORK' with VIP $VIP/32"
show docker network create --driver "$DRIVER" --ipam-driver "$DRIVER" --subnet "$VIP/32" "$NETWORK"

step "7. Running a health-checked container on '$NETWORK'"
show docker run -d --name "$CONTAINER" --network "$NETWORK" \
  --health-cmd 'test ! -e /tmp/unhealthy' --health-interval 1s --health-retries 1 \
  --health-timeout 1s "$IMAGE" sh -c 'trap "exit 0" TERM; trap "" USR2; while true; do sleep 1; done'
wait_for "the container is healthy" 30 health_is healthy
wait_for "the router has $VIP/32 via $HOST_ADDR" 30 announced
wait_for "the host has a kernel route to $VIP" 30 kernel_route
echo "The route arrived at the router:"
show "${GOBGP[@]}" global rib -a ipv4
echo "And the host delivers $VIP to the container's bridge:"
show ip route show "$VIP" proto 201

step "8. Failing the container's health check"
show docker exec "$CONTAINER" touch /tmp/unhealthy
wait_for "the container is unhealthy" 30 health_is unhealthy
wait_for "the router has no route to $VIP/32" 30 withdrawn
echo "The route left the router:"
show "${GOBGP[@]}" global rib -a ipv4
echo "The kernel route stays while the container runs (traffic in flight still arrives):"
show ip route show "$VIP" proto 201

ok=true
step "Demo complete"
