#!/usr/bin/env bash
# Installs the npm packages tests use as independent peers into tests/.npm (not committed):
# apollo-mock-server, a second implementation of the Apollo config service that
# tests/integration/apollo_interop.sh runs mars against. Idempotent; when npm or the
# registry is missing it says so and exits 0 (the test then skips with the reason).
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/.npm"
want=apollo-mock-server@1.2.0
if [[ -f $dir/node_modules/apollo-mock-server/package.json ]]; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "npm-test-deps: npm is not installed; apollo_interop will be skipped" >&2
    exit 0
fi
mkdir -p "$dir"
if ! timeout 300 npm install --prefix "$dir" --no-audit --no-fund --silent "$want" >&2; then
    echo "npm-test-deps: cannot install $want; apollo_interop will be skipped" >&2
fi
exit 0
