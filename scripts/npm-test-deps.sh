#!/usr/bin/env bash
# Installs the npm packages tests use as independent peers or checkers into tests/.npm (not
# committed):
#   apollo-mock-server   a second implementation of the Apollo config service that
#                        tests/integration/apollo_interop.sh runs mars against
#   kubernetes-models, @kubernetes-models/prometheus-operator
#                        the Kubernetes API schemas (and the PodMonitor's), offline, that
#                        tests/integration/kubernetes_deploy.sh validates deploy/ against
# Idempotent; when npm or the registry is missing it says so and exits 0 (the tests then
# skip with the reason).
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/.npm"
want=(apollo-mock-server@1.2.0 kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0)
missing=()
for p in "${want[@]}"; do
    name=${p%@*}
    [[ -f $dir/node_modules/$name/package.json ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if ! command -v npm >/dev/null; then
    echo "npm-test-deps: npm is not installed; apollo_interop and kubernetes_deploy will skip" >&2
    exit 0
fi
mkdir -p "$dir"
if ! timeout 300 npm install --prefix "$dir" --no-audit --no-fund --silent "${missing[@]}" >&2; then
    echo "npm-test-deps: cannot install ${missing[*]}; the tests that need them will skip" >&2
fi
exit 0
