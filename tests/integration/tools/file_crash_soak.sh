#!/usr/bin/env bash
# Soak of the kill -9 test of the file source (tests/integration/file_crash.sh), by hand:
#     tests/integration/tools/file_crash_soak.sh ITERATIONS [FIRST_SEED]
# runs file_crash.sh in rounds of at most 100 kill -9 iterations (each round a fresh
# data_dir, writers and oracle, so memory stays bounded) until ITERATIONS are done, with
# seeds FIRST_SEED, FIRST_SEED+1, ... (a failing round prints its seed: CRASH_SEED=that
# CRASH_ITERATIONS=n tests/integration/file_crash.sh reproduces the schedule of kills).
# MARS_BIN, MARS_IO_BACKEND and MARS_SANITIZED are passed through. Not run by ctest (it
# is not at the top of tests/integration/).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
total=${1:?usage: $0 ITERATIONS [FIRST_SEED]}
seed=${2:-$(date +%s)}
done_iter=0 rounds=0 failed=0
start=$SECONDS
while ((done_iter < total)); do
    n=$((total - done_iter))
    ((n <= 100)) || n=100
    rounds=$((rounds + 1))
    log=$(mktemp "${TMPDIR:-/tmp}/file_crash_soak.XXXXXX")
    if CRASH_ITERATIONS=$n CRASH_SEED=$seed bash "$here/file_crash.sh" >"$log" 2>&1; then
        grep -E '^== file_crash: duplicates|^ok' "$log" | sed "s/^/round $rounds: /"
    else
        failed=$((failed + 1))
        echo "round $rounds (seed $seed, $n iterations) FAILED:"
        sed 's/^/    /' "$log"
    fi
    rm -f "$log"
    done_iter=$((done_iter + n))
    seed=$((seed + 1))
done
echo "soak: $rounds rounds, $done_iter+ kill -9 iterations, $failed failed, $((SECONDS - start)) s"
((failed == 0))
