#!/usr/bin/env bash
# The file source's UTF-8 accounting across reads, and the "valid UTF-8" mark it puts on
# lines (MARS_EVF_UTF8) that lets the JSON parser skip its own checks. Every run reads
# with read_size: 4096, so hundreds of reads end inside a multibyte sequence.
#   1. valid multibyte text: no invalid sequence counted, output byte for byte; text with
#      invalid sequences in every line: as many counted as when the file is one read, also
#      when a read ends inside an invalid sequence
#   2. parse json after the file source: every line with invalid UTF-8 inside a string is
#      a parse error (counted, dropped), every other line parses; so no line whose bytes
#      were not validated clean is marked valid, also when the invalid byte came in the
#      read before the one that ended its line
#   3. multiline joins a line from a clean read with one from a read that had an invalid
#      sequence: the joined event is not marked valid, and parse json rejects it
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/file_source.bash"

PY=/usr/bin/python3

boundaries() {
    new_section boundaries
    local conf=$S/mars.yaml
    $PY - "$L/valid.log" <<'PYX'
import sys
words = ["héllo", "wörld", "✓", "日本語", "🙂", "Ωmega", "naïve", "журнал", "plain"]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for i in range(20000):
        f.write(" ".join(words[(i + k) % len(words)] for k in range(1 + i % 7)) + " %d\n" % i)
PYX
    say "valid multibyte text, $(wc -c <"$L/valid.log") bytes in 4 KiB reads: nothing counted"
    file_conf "$conf" "$S/out1" "include: [$L/valid.log], read_size: 4KiB"
    run_mars $((30 * SLOW)) -c "$conf" --once 2>"$S/err1"
    expect_eq "$MARS_RC" 0 "valid: --once exit code; $(show_log "$S/err1")"
    cmp -s "$L/valid.log" "$S/out1" || fail "valid: the output differs from the input"
    expect_eq "$(stat_of "$S/err1" in errors)" 0 "valid: invalid UTF-8 sequences counted in valid text"

    # one invalid sequence per line, of each kind, some at the very end of the line
    $PY - "$L/bad.log" <<'PYX'
import sys
bad = [b"\xe2\x82(", b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x82", b"\x80", b"\xf0\x9f\x98"]
with open(sys.argv[1], "wb") as f:
    for i in range(3000):
        head = "ünïcödé 日本 %d " % i
        f.write(head.encode() + bad[i % len(bad)] + (b"" if i % 3 == 0 else " 🙂 tail".encode()) + b"\n")
PYX
    say "3000 lines with invalid sequences ($(wc -c <"$L/bad.log") bytes): one read, then 4 KiB reads"
    DATA=$S/data2
    file_conf "$conf" "$S/out2" "include: [$L/bad.log]"
    run_mars $((30 * SLOW)) -c "$conf" --once 2>"$S/err2"
    expect_eq "$MARS_RC" 0 "bad, one read: --once exit code; $(show_log "$S/err2")"
    local whole
    whole=$(stat_of "$S/err2" in errors)
    ((whole >= 3000)) || fail "bad, one read: only $whole invalid sequences counted in 3000 bad lines"
    DATA=$S/data3
    file_conf "$conf" "$S/out3" "include: [$L/bad.log], read_size: 4KiB"
    run_mars $((30 * SLOW)) -c "$conf" --once 2>"$S/err3"
    expect_eq "$MARS_RC" 0 "bad, 4 KiB reads: --once exit code; $(show_log "$S/err3")"
    cmp -s "$L/bad.log" "$S/out3" || fail "bad: the output differs from the input"
    expect_eq "$(stat_of "$S/err3" in errors)" "$whole" "bad: invalid sequences counted in 4 KiB reads, against one read"
    pass "no sequence cut by a read is counted; invalid ones count as in one read ($whole)"
}

# filler FILE: writes 63 JSON objects of 64 bytes (4032 bytes) into FILE, so that the next
# 64 bytes appended end the first 4 KiB read
filler() {
    $PY - "$1" <<'PYX'
import sys
with open(sys.argv[1], "wb") as f:
    for i in range(63):
        f.write(b'{"f":"' + b"x" * 51 + b'%04d"}\n' % i)
PYX
}

# parse_run WHAT LOG N [VIA]: mars --once with parse json (on_error: drop) of LOG read in
# 4 KiB reads, through the transform VIA (a flow mapping, as `m`) when given; output
# $S/outN, log $S/errN, data $S/dataN
parse_run() {
    local what=$1 log=$2 n=$3 via=${4:-} input=in
    [[ -z $via ]] || input=m
    cat >"$S/mars$n.yaml" <<EOF
data_dir: $S/data$n
sources:
  in: {type: file, include: [$log], read_size: 4KiB}
transforms:
${via:+  m: $via}
  p: {type: parse, inputs: [$input], format: json, on_error: drop}
sinks:
  out: {type: file, inputs: [p], path: $S/out$n, encoding: json}
EOF
    run_mars $((30 * SLOW)) -c "$S/mars$n.yaml" --once 2>"$S/err$n"
    expect_eq "$MARS_RC" 0 "$what: --once exit code; $(show_log "$S/err$n")"
}

parse_after_file() {
    new_section parse
    # every 7th line has an invalid byte inside a string value
    $PY - "$L/app.log" <<'PYX'
import sys
with open(sys.argv[1], "wb") as f:
    for i in range(6000):
        msg = ("größe журнал request %d " % i).encode() * (1 + i % 5)
        if i % 7 == 3:
            msg += b"\xc3("
        f.write(b'{"level":"info","n":%d,"msg":"' % i + msg + b'","k":"\xe2\x9c\x93"}\n')
PYX
    say "6000 JSON lines in 4 KiB reads, 857 with invalid UTF-8 in a string: those are parse errors"
    parse_run parse "$L/app.log" 1
    expect_eq "$(stat_of "$S/err1" in errors)" 857 "parse: invalid sequences counted by the source"
    expect_eq "$(stat_of "$S/err1" p errors)" 857 "parse: lines the parser rejected"
    expect_eq "$(lines_of "$S/out1")" 5143 "parse: lines parsed and written"
    grep -q '"n":3,' "$S/out1" && fail "parse: line 3 (invalid UTF-8) was parsed"
    grep -q '"n":4,' "$S/out1" || fail "parse: line 4 is missing"

    # the invalid byte is in the first read, the rest of its line in a second, clean one
    filler "$L/carry.log"
    printf '{"a":"bad \xff %s"}\n{"c":1}\n' "$(head -c 100 /dev/zero | tr '\0' y)" >>"$L/carry.log"
    say "a line whose invalid byte came in the read before the one that ended it"
    parse_run carry "$L/carry.log" 2
    expect_eq "$(stat_of "$S/err2" p errors)" 1 "carry: lines the parser rejected"
    expect_eq "$(lines_of "$S/out2")" 64 "carry: lines parsed and written"
    pass "lines with invalid UTF-8 are rejected by parse json, the others parsed"
}

multiline_join() {
    new_section multiline
    # the fillers and a 64-byte first piece fill the first 4096-byte read exactly; the
    # second read holds the continuation with an invalid byte
    filler "$L/ml.log"
    printf '{"a":"%s",\n"b":"bad \xff"}\n{"c":1}\n' "$(head -c 55 /dev/zero | tr '\0' o)" >>"$L/ml.log"
    [[ $(head -c 4096 "$L/ml.log" | tail -c 1 | od -An -c | tr -d ' ') == '\n' ]] ||
        fail "generator: the first 4096 bytes must end with a line"
    say "a piece from a clean read joined with one from a read with an invalid byte"
    parse_run multiline "$L/ml.log" 1 "{type: multiline, inputs: [in], start_pattern: '^\\{'}"
    expect_eq "$(stat_of "$S/err1" m sent)" 65 "multiline: events out of multiline"
    expect_eq "$(stat_of "$S/err1" p errors)" 1 "multiline: the joined event with the invalid byte"
    expect_eq "$(lines_of "$S/out1")" 64 "multiline: events parsed"
    pass "a joined event is marked valid UTF-8 only when all its pieces were"
}

boundaries
parse_after_file
multiline_join
