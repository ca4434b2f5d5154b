#!/usr/bin/env bash
# conf/quickstart.yaml as a new user runs it: 100 demo lines at 20/s to the terminal and
# to an ndjson archive under MARS_DATA_DIR; mars stops by itself once they are delivered.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

data="$TMP/data"
say "quickstart runs to completion by itself (exit 0 within 30 s)"
start=$(date +%s%N)
day_before=$(date -u +%Y-%m-%d)
MARS_RC=0
MARS_DATA_DIR=$data timeout -k 5 30 "$MARS_BIN" -c "$MARS_SRC/conf/quickstart.yaml" \
    >"$TMP/stdout" 2>"$TMP/stderr" </dev/null || MARS_RC=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
day_after=$(date -u +%Y-%m-%d)
if ((MARS_RC == 124 || MARS_RC == 137)); then
    fail "quickstart did not stop by itself within 30 s
$(show_log "$TMP/stderr")"
fi
expect_eq "$MARS_RC" 0 "quickstart exit code; $(show_log "$TMP/stderr")"
# 100 lines at 20 per second take about 5 s; much faster means the rate is not applied.
((elapsed_ms >= 4000)) || fail "quickstart took ${elapsed_ms} ms; 100 lines at rate 20/s need ~5 s"

say "no warnings or errors in mars's own log"
if grep -E '^[^ ]+ (WARN|ERROR) ' "$TMP/stderr"; then
    fail "quickstart logged warnings or errors (above)"
fi

say "stdout has exactly 100 lines"
expect_eq "$(lines_of "$TMP/stdout")" 100 "stdout line count"
[[ -z $(tail -c 1 "$TMP/stdout") ]] || fail "stdout does not end with a newline"

say "the ndjson archive under MARS_DATA_DIR has exactly 100 lines"
shopt -s nullglob
archives=("$data"/out/demo-*.ndjson)
shopt -u nullglob
# normally one file; two if the run crossed midnight UTC (the path has %Y-%m-%d)
((${#archives[@]} >= 1 && ${#archives[@]} <= 2)) ||
    fail "expected the archive at $data/out/demo-YYYY-MM-DD.ndjson, found: $(find "$data" -type f)"
cat "${archives[@]}" >"$TMP/archive.ndjson"
expect_eq "$(lines_of "$TMP/archive.ndjson")" 100 "archive line count"
[[ -z $(tail -c 1 "$TMP/archive.ndjson") ]] || fail "archive does not end with a newline"
for a in "${archives[@]}"; do
    [[ $a == "$data/out/demo-$day_before.ndjson" || $a == "$data/out/demo-$day_after.ndjson" ]] ||
        fail "archive file name does not carry the UTC date of the run: $a"
done

say "each archive line is a JSON object with timestamp and message, and the messages are the stdout lines"
/usr/bin/python3 - "$TMP/archive.ndjson" "$TMP/stdout" <<'PY'
import json, re, sys
ts_re = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
with open(sys.argv[1], "rb") as f:
    archive = f.read().split(b"\n")[:-1]
with open(sys.argv[2], "rb") as f:
    console = f.read().split(b"\n")[:-1]
for i, raw in enumerate(archive, 1):
    try:
        obj = json.loads(raw)
    except ValueError as e:
        sys.exit(f"archive line {i} is not valid JSON ({e}): {raw[:200]!r}")
    if not isinstance(obj, dict) or set(obj) != {"timestamp", "message"}:
        sys.exit(f"archive line {i}: expected exactly the keys timestamp and message: {raw[:200]!r}")
    if not isinstance(obj["timestamp"], str) or not ts_re.match(obj["timestamp"]):
        sys.exit(f"archive line {i}: timestamp {obj['timestamp']!r} is not RFC 3339 UTC with ns")
    if obj["message"].encode() != console[i - 1]:
        sys.exit(f"archive line {i}: message differs from stdout line {i}:\n"
                 f"  {obj['message'][:200]!r}\n  {console[i - 1][:200]!r}")
PY

say "the exit summaries account for all 100 lines"
for id in demo_logs console archive; do
    expect_eq "$(stat_of "$TMP/stderr" "$id" sent)" 100 "$id sent events"
    expect_eq "$(stat_of "$TMP/stderr" "$id" errors)" 0 "$id errors"
done
expect_eq "$(stat_of "$TMP/stderr" archive sent_bytes)" "$(wc -c <"$TMP/archive.ndjson" | tr -d ' ')" \
    "archive sent bytes vs. file size"
expect_eq "$(stat_of "$TMP/stderr" console sent_bytes)" "$(wc -c <"$TMP/stdout" | tr -d ' ')" \
    "console sent bytes vs. stdout size"

pass "quickstart delivered 100 lines to stdout and the archive in ${elapsed_ms} ms"
