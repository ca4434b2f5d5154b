#!/usr/bin/env bash
# stdin with max_line_bytes: 1KiB and a 10 MiB line among normal ones.
#   oversize: split    -> the long line comes out as 1 KiB pieces that join back to it
#   oversize: truncate -> its first 1 KiB only; the lines after it are intact
# Either way mars exits 0 and counts the oversize line as an error. Also: a line of
# exactly max_line_bytes is not oversize, wherever the reads happen to cut the input.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

MAX=1024
# 10 MiB + 100 bytes: the last piece is short, so no piece ends exactly at a newline
LONG=$((10 * 1024 * 1024 + 100))
say "building the input: 2 lines, a $LONG-byte (10 MiB + 100) line, 2 lines, a 3000-byte unterminated line"
# varied content (base64 of random bytes), so a misplaced piece cannot go unnoticed
head -c $((LONG * 3 / 4 + 3)) /dev/urandom | base64 -w 0 | head -c "$LONG" >"$TMP/long"
expect_eq "$(wc -c <"$TMP/long" | tr -d ' ')" "$LONG" "long line size"
head -c 3000 /dev/zero | tr '\0' 'Z' >"$TMP/tail"
{
    printf 'first\nsecond\n'
    cat "$TMP/long"
    printf '\nafter1\nafter2\n'
    cat "$TMP/tail"
} >"$TMP/input"

config() { # config MODE OUTFILE
    cat >"$TMP/mars.yaml" <<EOF
data_dir: $TMP/data
runtime: {chunk_size: 256KiB}
sources:
  in: {type: stdin, max_line_bytes: 1KiB, oversize: $1}
sinks:
  out: {type: file, inputs: [in], path: $2}
EOF
}

for mode in file pipe; do
    say "oversize: split (stdin from a $mode): pieces of 1 KiB reproduce the long line"
    out="$TMP/split-$mode.txt"
    config split "$out"
    if [[ $mode == file ]]; then
        run_mars 60 -c "$TMP/mars.yaml" <"$TMP/input" 2>"$TMP/err"
    else
        MARS_RC=0
        # shellcheck disable=SC2002 # stdin must be a pipe here, not the file
        cat "$TMP/input" | timeout -k 5 60 "$MARS_BIN" -c "$TMP/mars.yaml" 2>"$TMP/err" || MARS_RC=$?
        ((MARS_RC != 124)) || fail "split ($mode): mars did not finish within 60 s"
    fi
    expect_eq "$MARS_RC" 0 "split ($mode): exit code; $(show_log "$TMP/err")"
    pieces=$((LONG / MAX + 1)) # 10240 pieces of 1024 bytes, then one of 100
    tail_pieces=3            # 3000 bytes: 1024 + 1024 + 952
    expect_eq "$(lines_of "$out")" $((2 + pieces + 2 + tail_pieces)) "split ($mode): output lines"
    expect_eq "$(sed -n '1,2p' "$out")" $'first\nsecond' "split ($mode): lines before the long one"
    # every piece of the long line but the last is exactly max_line_bytes
    bad=$(sed -n "3,$((1 + pieces))p" "$out" | awk -v m=$MAX 'length($0) != m' | wc -l)
    expect_eq "$bad" 0 "split ($mode): pieces that are not $MAX bytes"
    expect_eq "$(sed -n "$((2 + pieces))p" "$out" | awk '{print length($0)}')" 100 \
        "split ($mode): length of the long line's last piece"
    sed -n "3,$((2 + pieces))p" "$out" | tr -d '\n' | cmp - "$TMP/long" ||
        fail "split ($mode): the pieces joined do not reproduce the long line"
    expect_eq "$(sed -n "$((3 + pieces)),$((4 + pieces))p" "$out")" $'after1\nafter2' \
        "split ($mode): lines after the long one"
    expect_eq "$(tail -n $tail_pieces "$out" | awk '{printf "%d ", length($0)}')" "1024 1024 952 " \
        "split ($mode): pieces of the unterminated last line"
    tail -n $tail_pieces "$out" | tr -d '\n' | cmp -s - "$TMP/tail" ||
        fail "split ($mode): the unterminated last line does not join back"
    errors=$(stat_of "$TMP/err" in errors)
    ((errors > 0)) || fail "split ($mode): the oversize lines are not counted as errors"
    expect_eq "$(stat_of "$TMP/err" out sent)" "$(lines_of "$out")" "split ($mode): file sink sent events"
    rm -f "$out"
done

say "oversize: truncate: the long line becomes its first 1 KiB; the others are intact"
out="$TMP/truncate.txt"
config truncate "$out"
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/input" 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "truncate: exit code; $(show_log "$TMP/err")"
{
    printf 'first\nsecond\n'
    head -c $MAX "$TMP/long"
    printf '\nafter1\nafter2\n'
    head -c $MAX "$TMP/tail"
    printf '\n'
} >"$TMP/truncate.expected"
cmp "$TMP/truncate.expected" "$out" || fail "truncate: output differs from the expected 6 lines"
expect_eq "$(stat_of "$TMP/err" in sent)" 6 "truncate: stdin sent events"
expect_eq "$(stat_of "$TMP/err" in errors)" 2 "truncate: oversize lines counted (the long and the last)"

say "a line of exactly max_line_bytes is kept whole even when a read ends right before its newline"
# With chunk_size 256KiB the first read of a regular file is 262144 bytes: 255 lines of
# 1023 bytes (261120 bytes with newlines), then a 1024-byte line whose newline is byte
# 262145, the first byte of the second read.
{
    for _ in $(seq 255); do head -c 1023 /dev/zero | tr '\0' a; printf '\n'; done
    head -c $MAX /dev/zero | tr '\0' b
    printf '\nnext\n'
} >"$TMP/exact"
expect_eq "$(head -n 256 "$TMP/exact" | wc -c | tr -d ' ')" 262145 "generator: offset of the 1024-byte line's newline"
out="$TMP/exact.txt"
config split "$out"
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/exact" 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "exact: exit code"
if ! cmp "$TMP/exact" "$out"; then
    fail "exact: a $MAX-byte line was split (an extra empty line appears); input and output differ.
$(grep -F 'longer than max_line_bytes' "$TMP/err" | head -n 3)"
fi
expect_eq "$(stat_of "$TMP/err" in errors)" 0 "exact: stdin errors (no line is longer than max_line_bytes)"

pass "oversize lines are split and truncated exactly"
