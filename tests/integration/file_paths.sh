#!/usr/bin/env bash
# The file sink's path: a {{ field }} template sends each event to the file its own value
# names (also when one request holds events for several files); strftime parts use the
# event time in UTC and missing directories are created; with mkdir: false a static path
# in a missing directory stops mars from starting (exit 3).
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

config() { # config PATH [EXTRA OPTION LINE]
    cat >"$TMP/mars.yaml" <<EOF
data_dir: $TMP/data
sources:
  in: {type: stdin}
sinks:
  out:
    type: file
    inputs: [in]
    path: "$1"
    ${2:-}
EOF
}

say "{{ message }}: every line goes to the file named after it"
config "$TMP/by-message/{{ message }}.log"
printf 'alpha\nbeta\nalpha\ngamma\nbeta\nalpha\n' >"$TMP/in"
run_mars 20 -c "$TMP/mars.yaml" <"$TMP/in" 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "template run: exit code; $(show_log "$TMP/err")"
(cd "$TMP/by-message" && ls) >"$TMP/files"
expect_eq "$(tr '\n' ' ' <"$TMP/files")" "alpha.log beta.log gamma.log " \
    "files made from {{ message }} ($(for f in "$TMP"/by-message/*; do printf '%s: %s; ' "${f##*/}" "$(tr '\n' ' ' <"$f")"; done))"
expect_eq "$(cat "$TMP/by-message/alpha.log")" $'alpha\nalpha\nalpha' "alpha.log content"
expect_eq "$(cat "$TMP/by-message/beta.log")" $'beta\nbeta' "beta.log content"
expect_eq "$(cat "$TMP/by-message/gamma.log")" "gamma" "gamma.log content"
expect_eq "$(stat_of "$TMP/err" out sent)" 6 "file sink sent events"

say "{{ message }} cannot leave the directory: '/' and a leading '.' become '_'"
config "$TMP/jail/sub/{{ message }}.log"
printf '../../escape\n/etc/passwd\n.hidden\n' >"$TMP/in"
run_mars 20 -c "$TMP/mars.yaml" <"$TMP/in" 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "traversal run: exit code; $(show_log "$TMP/err")"
expect_eq "$(cd "$TMP/jail/sub" && ls | tr '\n' ' ')" "_._.._escape.log _etc_passwd.log _hidden.log " \
    "sanitised file names"
[[ ! -e $TMP/escape.log && ! -e $TMP/jail/escape.log ]] || fail "a line escaped the directory"
expect_eq "$(cat "$TMP/jail/sub/_etc_passwd.log")" "/etc/passwd" "content is the line, unchanged"

say "strftime parts: the UTC date of the event, directories created"
config "$TMP/by-date/%Y/%m/%d/out.log"
day_before=$(date -u +%Y/%m/%d)
seq 1 1000 >"$TMP/in"
run_mars 20 -c "$TMP/mars.yaml" <"$TMP/in" 2>"$TMP/err"
day_after=$(date -u +%Y/%m/%d)
expect_eq "$MARS_RC" 0 "date run: exit code; $(show_log "$TMP/err")"
find "$TMP/by-date" -type f | sort >"$TMP/files"
got=$(sed "s|^$TMP/by-date/||" "$TMP/files" | tr '\n' ' ')
if [[ $got != "$day_before/out.log " && $got != "$day_after/out.log " &&
    $got != "$day_before/out.log $day_after/out.log " ]]; then
    fail "expected $day_before/out.log (UTC), got: $got"
fi
# shellcheck disable=SC2046 # the file names have no spaces
cat -- $(cat "$TMP/files") >"$TMP/joined"
cmp "$TMP/joined" "$TMP/in" || fail "the dated file(s) do not hold the 1000 lines in order"

say "mkdir: false and a missing directory: mars does not start (exit 3)"
config "$TMP/missing/dir/out.log" "mkdir: false"
run_mars 20 -c "$TMP/mars.yaml" <"$TMP/in" 2>"$TMP/err"
expect_eq "$MARS_RC" 3 "exit code with an unopenable static path; $(show_log "$TMP/err")"
grep -qF "cannot open $TMP/missing/dir/out.log: No such file or directory" "$TMP/err" ||
    fail "no 'cannot open' error naming the path: $(show_log "$TMP/err")"
[[ ! -e $TMP/missing ]] || fail "mkdir: false created $TMP/missing"

pass "file sink paths: per-event templates, dates, mkdir"
