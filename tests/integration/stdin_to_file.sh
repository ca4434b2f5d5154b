#!/usr/bin/env bash
# stdin -> file passes any line through unchanged: ~200k lines with invalid UTF-8,
# binary-ish bytes, tabs, quotes, CRs, empty and 8 KiB lines, and an unterminated last
# line. Text output must equal the input byte for byte (plus the newline the last line
# lacked), whether stdin is a regular file or a pipe, with 1 or 2 workers. ndjson output
# must be one JSON object per input line whose message is the line (invalid UTF-8 bytes
# replaced by U+FFFD, one per byte). A file left ending in part of a line is cut back to its
# last complete line before mars appends to it, for a static and a templated path.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

NLINES=200000
in="$TMP/input"
say "generating $NLINES lines of varied content"
awk -v n="$NLINES" 'BEGIN {
    srand(20240601)
    for (i = 1; i <= n; i++) {
        k = i % 12
        if (i % 1000 == 0) {                       # 8 KiB line
            s = sprintf("long %07d ", i)
            while (length(s) < 8192) s = s "0123456789abcdefghijklmnopqrstuvwxyz"
            printf "%s\n", substr(s, 1, 8192)
        } else if (k == 0) {
            printf "plain ascii line %d lorem ipsum dolor sit amet\n", i
        } else if (k == 1) {
            printf "%d\ttab\tseparated\t\"double\" \x27single\x27 back\\slash {\"k\":\"v\"}\n", i
        } else if (k == 2) {                       # invalid UTF-8 of several kinds
            printf "bad %d \xff\xfe lone-cont \x80 trunc \xe2\x82 overlong \xc0\xaf surrogate \xed\xa0\x80 end\n", i
        } else if (k == 3) {                       # valid multi-byte UTF-8
            printf "utf8 %d h\xc3\xa9llo w\xc3\xb6rld \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\n", i
        } else if (k == 4) {                       # binary-ish: any byte but NUL and newline
            s = ""
            m = 1 + int(rand() * 120)
            for (j = 0; j < m; j++) {
                c = 1 + int(rand() * 255)
                if (c == 10) c = 11
                s = s sprintf("%c", c)
            }
            printf "%s\n", s
        } else if (k == 5) {
            printf "\n"                            # empty line
        } else if (k == 6) {
            printf "x\n"                           # one byte
        } else if (k == 7) {
            printf "crlf line %d\r\n", i           # CR kept as data
        } else if (k == 8) {
            printf "ctl %d \x01\x02\x1b[31mred\x1b[0m \x7f\x0c\x0b\n", i
        } else if (k == 9) {
            printf "   leading and trailing spaces %d   \n", i
        } else {
            printf "{\"ts\":\"2024-06-01T00:00:00Z\",\"level\":\"info\",\"n\":%d}\n", i
        }
    }
    printf "final line %d without a trailing newline", n + 1
}' >"$in"
lines_in=$(lines_of "$in")
expect_eq "$lines_in" "$NLINES" "generated newline count"
if [[ -n $(tail -c 1 "$in") ]]; then :; else fail "generator bug: input ends with a newline"; fi
# shellcheck disable=SC2094 # both sides only read it
if tr -d '\000' <"$in" | cmp -s - "$in"; then :; else fail "generator bug: input has NUL bytes"; fi
# what text output must be: the input with the missing final newline added
cp "$in" "$TMP/expected"
printf '\n' >>"$TMP/expected"
size=$(wc -c <"$TMP/expected" | tr -d ' ')
say "input: $((NLINES + 1)) lines, $(wc -c <"$in" | tr -d ' ') bytes"

config() { # config ENCODING OUTFILE
    cat >"$TMP/mars.yaml" <<EOF
data_dir: $TMP/data
sources:
  in:
    type: stdin
sinks:
  out:
    type: file
    inputs: [in]
    path: $2
    encoding: $1
EOF
}

check_summary() { # check_summary WHAT OUTFILE
    expect_eq "$(stat_of "$TMP/err" in sent)" $((NLINES + 1)) "$1: stdin sent events"
    expect_eq "$(stat_of "$TMP/err" in acknowledged)" $((NLINES + 1)) "$1: stdin acknowledged events"
    expect_eq "$(stat_of "$TMP/err" in errors)" 0 "$1: stdin errors"
    expect_eq "$(stat_of "$TMP/err" out received)" $((NLINES + 1)) "$1: file sink received events"
    expect_eq "$(stat_of "$TMP/err" out sent)" $((NLINES + 1)) "$1: file sink sent events"
    expect_eq "$(stat_of "$TMP/err" out sent_bytes)" "$(wc -c <"$2" | tr -d ' ')" \
        "$1: file sink sent bytes vs. file size"
}

for workers in 1 2; do
    for mode in file pipe; do
        what="text, stdin from a $mode, --workers $workers"
        say "$what: output equals input byte for byte"
        out="$TMP/out-$mode-$workers.txt"
        config text "$out"
        if [[ $mode == file ]]; then
            run_mars 60 -c "$TMP/mars.yaml" --workers "$workers" <"$in" 2>"$TMP/err"
        else
            MARS_RC=0
            # shellcheck disable=SC2002 # stdin must be a pipe here, not the file
            cat "$in" | timeout -k 5 60 "$MARS_BIN" -c "$TMP/mars.yaml" --workers "$workers" \
                2>"$TMP/err" || MARS_RC=$?
            ((MARS_RC != 124)) || fail "$what: mars did not finish within 60 s"
        fi
        expect_eq "$MARS_RC" 0 "$what: exit code; $(show_log "$TMP/err")"
        grep -qF "running: $workers worker" "$TMP/err" ||
            fail "$what: mars did not run $workers worker(s): $(show_log "$TMP/err")"
        if ! cmp "$TMP/expected" "$out"; then
            fail "$what: output differs from the input ($(wc -c <"$out" | tr -d ' ') bytes, want $size)"
        fi
        check_summary "$what" "$out"
        rm -f "$out"
    done
done

say "ndjson: one JSON object per line, message = the input line"
out="$TMP/out.ndjson"
config ndjson "$out"
run_mars 60 -c "$TMP/mars.yaml" <"$in" 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "ndjson: exit code; $(show_log "$TMP/err")"
expect_eq "$(lines_of "$out")" $((NLINES + 1)) "ndjson: line count"
NODE_NAME= /usr/bin/python3 - "$in" "$out" "${NODE_NAME:-$(hostname)}" <<'PY'
import codecs, json, re, sys
# mars replaces every byte that is not part of a valid UTF-8 sequence with one U+FFFD
codecs.register_error("perbyte", lambda e: ("\ufffd" * (e.end - e.start), e.end))
ts_re = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
host = sys.argv[3]  # events read from stdin carry this machine's name
with open(sys.argv[1], "rb") as f:
    want = f.read().split(b"\n")
with open(sys.argv[2], "rb") as f:
    data = f.read()
if not data.endswith(b"\n"):
    sys.exit("ndjson output does not end with a newline")
got = data.split(b"\n")[:-1]
if len(got) != len(want):
    sys.exit(f"ndjson has {len(got)} lines, input has {len(want)}")
for i, (raw, line) in enumerate(zip(got, want), 1):
    try:
        obj = json.loads(raw)
    except ValueError as e:
        sys.exit(f"ndjson line {i} is not valid JSON ({e}): {raw[:200]!r}")
    if not isinstance(obj, dict) or set(obj) != {"timestamp", "message", "host"}:
        sys.exit(f"ndjson line {i}: keys {sorted(obj) if isinstance(obj, dict) else type(obj)}")
    if obj["host"] != host:
        sys.exit(f"ndjson line {i}: host {obj['host']!r}, want {host!r}")
    if not ts_re.match(obj["timestamp"]):
        sys.exit(f"ndjson line {i}: bad timestamp {obj['timestamp']!r}")
    expect = line.decode("utf-8", "perbyte")
    if obj["message"] != expect:
        sys.exit(f"ndjson line {i}: message {obj['message'][:120]!r} != input {expect[:120]!r}")
PY
expect_eq "$(stat_of "$TMP/err" out sent)" $((NLINES + 1)) "ndjson: file sink sent events"
expect_eq "$(stat_of "$TMP/err" out sent_bytes)" "$(wc -c <"$out" | tr -d ' ')" \
    "ndjson: file sink sent bytes vs. file size"
# invalid UTF-8 is counted as an error of the encoding sink (the lines still go out)
(($(stat_of "$TMP/err" out errors) > 0)) || fail "ndjson: invalid UTF-8 replaced but no errors counted"

say "a file that ends in part of a line (a crash mid-write) is cut back before the first append"
torn="$TMP/torn.log"
printf 'kept 1\nkept 2\npartial line from a kill -9' >"$torn"
config text "$torn"
printf 'new 1\nnew 2\n' >"$TMP/small"
run_mars 60 -c "$TMP/mars.yaml" --workers 2 <"$TMP/small" >/dev/null 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "torn tail: exit status"
expect_eq "$(cat "$torn")" "$(printf 'kept 1\nkept 2\nnew 1\nnew 2')" "torn tail: file content"
grep -q 'ended in a partial line (27 bytes' "$TMP/err" || fail "torn tail: no warning naming the cut"
say "a templated path is cut back too, the first time mars opens it"
mkdir -p "$TMP/tpl"
printf 'old 1\npartial line of a crash' >"$TMP/tpl/alpha.log"
printf 'old 2\n' >"$TMP/tpl/beta.log"
config text "$TMP/tpl/{{ message }}.log"
printf 'alpha\nbeta\nalpha\n' >"$TMP/tpl-in"
run_mars 60 -c "$TMP/mars.yaml" --workers 2 <"$TMP/tpl-in" >/dev/null 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "templated torn tail: exit status"
expect_eq "$(cat "$TMP/tpl/alpha.log")" "$(printf 'old 1\nalpha\nalpha')" "templated torn tail: alpha.log"
expect_eq "$(cat "$TMP/tpl/beta.log")" "$(printf 'old 2\nbeta')" "templated clean tail: beta.log"
grep -q "alpha.log ended in a partial line (23 bytes" "$TMP/err" ||
    fail "templated torn tail: no warning naming the cut: $(show_log "$TMP/err")"
expect_eq "$(grep -c 'partial line' "$TMP/err")" 1 "templated: one warning, for alpha.log only"

config text "$torn"
say "a file that ends with a complete line is appended to as it is"
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/small" >/dev/null 2>"$TMP/err"
expect_eq "$(wc -l <"$torn" | tr -d ' ')" 6 "clean tail: lines after a second run"
if grep -q 'partial line' "$TMP/err"; then fail "clean tail: warned about a partial line"; fi

pass "200k varied lines passed through unchanged (file, pipe; 1 and 2 workers; text and ndjson)"
