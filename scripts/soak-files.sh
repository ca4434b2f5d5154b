#!/usr/bin/env bash
# Soak of the file source: runs the randomized model-based test (tests/integration/
# tools/file_model.py) on seed after seed until DURATION seconds have passed, and stops at
# the first seed whose outputs break the oracle (its work directory is kept and named).
# Usage: scripts/soak-files.sh [MARS_BIN] [FIRST_SEED] [DURATION_S] [OPS_PER_SEED]
#   defaults: build/mars, 1, 600, 400
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/mars} seed=${2:-1} duration=${3:-600} ops=${4:-400}
work=$(mktemp -d "${TMPDIR:-/tmp}/mars-soak-files.XXXXXX")
end=$((SECONDS + duration)) n=0
while ((SECONDS < end)); do
    mkdir -p "$work/seed$seed"
    if ! /usr/bin/python3 "$root/tests/integration/tools/file_model.py" "$bin" \
        "$work/seed$seed" "$seed" "$ops"; then
        echo "soak-files: seed $seed failed; its files are in $work/seed$seed" >&2
        exit 1
    fi
    rm -rf "$work/seed$seed"
    n=$((n + 1)) seed=$((seed + 1))
done
rm -rf "$work"
echo "soak-files: $n seeds passed in $duration s"
