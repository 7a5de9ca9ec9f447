#!/usr/bin/env bash
# Runs all of bgplb's tests on this host: unit tests, then the end-to-end
# tests against a real dockerd and gobgpd router (which need root).
# Exits non-zero if any test fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

deploy/lab/setup-host.sh

# rustup's cargo, also where the caller's PATH lacks it (sudo, CI).
if ! command -v cargo >/dev/null; then
  export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

echo "==> unit tests (end-to-end tests are listed as ignored here)"
cargo test --locked

# Two tests at a time: each lab has its own namespace, router, driver name
# and bgplb, and each bgplb touches only the links it marked as its own. More
# would only crowd this 2-core machine's timing. The timeout bounds a hung
# run; the next run's labs clear what it leaves behind.
echo "==> end-to-end tests"
status=0
timeout --foreground 20m \
  cargo test --locked --no-fail-fast --test lab --test e2e --test mistakes --test managed --test faults -- --include-ignored --test-threads=2 \
  || status=$?

# Swarm tests turn this dockerd into a swarm manager, so they run after all
# the others, one at a time. The swarm is left at the end, also when they
# fail or time out (each test leaves it too, unless it was killed); a swarm
# this host was in before is never touched (the tests refuse to run then).
echo "==> swarm end-to-end tests"
if [[ $(docker info -f '{{.Swarm.LocalNodeState}}') == inactive ]]; then
  trap 'docker swarm leave --force >/dev/null 2>&1 || true' EXIT
fi
timeout --foreground 10m \
  cargo test --locked --no-fail-fast --test swarm -- --include-ignored --test-threads=1 \
  || status=$?
exit "$status"
