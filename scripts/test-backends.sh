#!/usr/bin/env bash
# Runs the ctest suite of a build directory once per io backend: io_uring (when this host
# lets mars use it; otherwise the pass is skipped with the reason) and libevent. The ev
# backend conformance suites select their backend themselves and run in the first pass.
# Usage: scripts/test-backends.sh BUILD_DIR JOBS
set -euo pipefail
build=$1 jobs=$2
cd "$build"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'sources:\n  i: {type: stdin}\nsinks:\n  o: {type: blackhole, inputs: [i]}\n' >"$tmp/probe.yaml"
if : | MARS_API_ADDRESS=127.0.0.1:0 ./mars --io-backend io_uring -c "$tmp/probe.yaml" 2>"$tmp/err"; then
    echo "== test pass 1/2: MARS_IO_BACKEND=io_uring"
    MARS_IO_BACKEND=io_uring ctest --output-on-failure -j "$jobs"
else
    echo "== io_uring is not usable here, skipping its pass: $(grep -m1 -o 'cannot run here.*' "$tmp/err" || true)"
    ctest --output-on-failure -j "$jobs" -R '^backend/'
fi
echo "== test pass 2/2: MARS_IO_BACKEND=libevent"
MARS_IO_BACKEND=libevent ctest --output-on-failure -j "$jobs" -E '^backend/'
