#!/usr/bin/env bash
# A randomized model-based test of the file source (issue 24): tools/file_model.py draws
# random file operations from a seed (appends, rotations by rename and copytruncate,
# renames out, truncation, deletion, symlink retargets, mars restarts and kill -9) and
# checks the outputs against its model exactly: every line written while its file was
# reachable arrives, none garbled, duplicates only after kill -9. Three seeds here, briefly;
# scripts/soak-files.sh runs many seeds for as long as asked.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

_T0_MS=$(($(date +%s%N) / 1000000))
SEEDS=${MODEL_SEEDS:-"1 2 3"}
OPS=${MODEL_OPS:-150}
if [[ ${MARS_SANITIZED:-} == 1 ]]; then export MODEL_WAIT=90; fi
for seed in $SEEDS; do
    mkdir -p "$TMP/seed$seed"
    res=$(/usr/bin/python3 "$MARS_SRC/tests/integration/tools/file_model.py" "$MARS_BIN" \
        "$TMP/seed$seed" "$seed" "$OPS") || fail "$(echo "$res" | tail -n 3)"
    say "$(echo "$res" | tail -n 1)"
done
pass "seeds $SEEDS, $OPS operations each ($(($(date +%s%N) / 1000000 - _T0_MS)) ms)"
