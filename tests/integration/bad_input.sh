#!/usr/bin/env bash
# Malformed input on stdin: 5 MiB of random bytes (NULs, invalid UTF-8, CRs, everything)
# pass through a text file sink byte for byte, and come out of an ndjson sink as valid
# JSON; empty input (a regular file or a pipe) ends cleanly with empty output.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

in="$TMP/random"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$in"
cp "$in" "$TMP/expected"
# the unterminated last line is written with a newline (compare the byte in hex: $(...)
# would drop a NUL and take it for the newline, 1 run in 256)
[[ $(tail -c 1 "$in" | od -An -tx1 | tr -d ' \n') == 0a ]] || printf '\n' >>"$TMP/expected"
nlines=$(lines_of "$TMP/expected")

config() { # config ENCODING OUTFILE
    cat >"$TMP/mars.yaml" <<EOF
data_dir: $TMP/data
sources:
  in: {type: stdin}
sinks:
  out: {type: file, inputs: [in], path: $2, encoding: $1}
EOF
}

for mode in file pipe; do
    say "5 MiB of /dev/urandom from a $mode -> text file: byte-identical, exit 0"
    out="$TMP/out-$mode.txt"
    config text "$out"
    if [[ $mode == file ]]; then
        run_mars 60 -c "$TMP/mars.yaml" <"$in" 2>"$TMP/err"
    else
        MARS_RC=0
        # shellcheck disable=SC2002 # stdin must be a pipe here, not the file
        cat "$in" | timeout -k 5 60 "$MARS_BIN" -c "$TMP/mars.yaml" 2>"$TMP/err" || MARS_RC=$?
        ((MARS_RC != 124)) || fail "random ($mode): mars did not finish within 60 s"
    fi
    expect_eq "$MARS_RC" 0 "random ($mode): exit code; $(show_log "$TMP/err")"
    cmp "$TMP/expected" "$out" || fail "random ($mode): output differs from the input"
    expect_eq "$(stat_of "$TMP/err" in sent)" "$nlines" "random ($mode): stdin sent events"
    expect_eq "$(stat_of "$TMP/err" in errors)" 0 "random ($mode): stdin errors"
    expect_eq "$(stat_of "$TMP/err" out sent)" "$nlines" "random ($mode): file sink sent events"
    if grep -E '^[^ ]+ ERROR ' "$TMP/err"; then fail "random ($mode): errors logged (above)"; fi
    rm -f "$out"
done

say "5 MiB of /dev/urandom -> ndjson file: every line valid JSON carrying its input line"
out="$TMP/out.ndjson"
config ndjson "$out"
run_mars 60 -c "$TMP/mars.yaml" <"$in" 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "random ndjson: exit code; $(show_log "$TMP/err")"
expect_eq "$(lines_of "$out")" "$nlines" "random ndjson: line count"
/usr/bin/python3 - "$TMP/expected" "$out" <<'PY'
import codecs, json, sys
codecs.register_error("perbyte", lambda e: ("\ufffd" * (e.end - e.start), e.end))
with open(sys.argv[1], "rb") as f:
    want = f.read().split(b"\n")[:-1]
with open(sys.argv[2], "rb") as f:
    got = f.read().split(b"\n")[:-1]
if len(got) != len(want):
    sys.exit(f"{len(got)} JSON lines for {len(want)} input lines")
for i, (raw, line) in enumerate(zip(got, want), 1):
    try:
        obj = json.loads(raw)
    except ValueError as e:
        sys.exit(f"line {i} is not valid JSON ({e}): {raw[:200]!r}")
    if obj.get("message") != line.decode("utf-8", "perbyte"):
        sys.exit(f"line {i}: the message is not the input line: {raw[:200]!r}")
PY

for mode in file pipe; do
    say "empty stdin ($mode): exit 0, empty output"
    out="$TMP/empty-$mode.txt"
    config text "$out"
    : >"$TMP/empty"
    if [[ $mode == file ]]; then
        run_mars 20 -c "$TMP/mars.yaml" <"$TMP/empty" 2>"$TMP/err"
    else
        MARS_RC=0
        : | timeout -k 5 20 "$MARS_BIN" -c "$TMP/mars.yaml" 2>"$TMP/err" || MARS_RC=$?
        ((MARS_RC != 124)) || fail "empty ($mode): mars did not finish within 20 s"
    fi
    expect_eq "$MARS_RC" 0 "empty ($mode): exit code; $(show_log "$TMP/err")"
    [[ -f $out ]] || fail "empty ($mode): the output file was not created"
    expect_eq "$(wc -c <"$out" | tr -d ' ')" 0 "empty ($mode): output size"
    expect_eq "$(stat_of "$TMP/err" in sent)" 0 "empty ($mode): stdin sent events"
    expect_eq "$(stat_of "$TMP/err" out sent)" 0 "empty ($mode): file sink sent events"
done

pass "random bytes pass through; empty input ends cleanly"
