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

# One test at a time: every bgplb treats all bgplb-* links and proto 201
# routes on the host as its own, so two tests' bgplbs would remove each
# other's bridges. The timeout bounds a hung run; the next run's labs clear
# what it leaves behind.
echo "==> end-to-end tests"
timeout --foreground 20m \
  cargo test --locked --no-fail-fast --test lab --test e2e -- --include-ignored --test-threads=1
