#!/usr/bin/env bash
# The transforms through the mars binary: stdin -> parse (json) -> filter -> modify ->
# route -> file sinks (ndjson), with exact expected output, counts in the exit summary,
# and multiline at end of input; `mars validate` points condition and pattern mistakes at
# their FILE:LINE:COL.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

say "stdin -> parse -> filter -> modify -> route -> two files: exact events"
cat >"$TMP/in" <<'IN'
{"time":"2024-05-01T10:00:00Z","level":"info","msg":"started","http":{"status":200}}
{"time":"2024-05-01T10:00:01Z","level":"debug","msg":"noise"}
{"time":"2024-05-01T10:00:02Z","level":"ERROR","msg":"boom \"x\"","http":{"status":503},"tags":["a"]}
not json at all
{"time":"2024-05-01T10:00:03Z","level":"warn","msg":"slow","took_ms":"1500"}
IN
cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
runtime: {workers: 1}
host: {name: node-1}
sources:
  in: {type: stdin}
transforms:
  p: {type: parse, inputs: [in], format: json, on_error: tag,
      timestamp: {field: time}}
  f: {type: filter, inputs: [p], condition: 'level != "debug"'}
  m: {type: modify, inputs: [f], lowercase: [level], rename: {msg: message},
      coerce: {took_ms: int}, remove: [time, tags], set: {env: test}}
  r: {type: route, inputs: [m], route: {bad: 'level == "error" || http.status >= 500'}}
sinks:
  bad: {type: file, inputs: [r.bad], path: "$TMP/bad.log", encoding: ndjson}
  rest: {type: file, inputs: [r._unmatched], path: "$TMP/rest.log", encoding: ndjson}
YAML
run_mars 30 -c "$TMP/mars.yaml" --once <"$TMP/in" >"$TMP/out" 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "exit code"
cat >"$TMP/want_bad" <<'OUT'
{"timestamp":"2024-05-01T10:00:02.000000000Z","message":"boom \"x\"","host":"node-1","level":"error","http":{"status":503},"env":"test"}
OUT
cat >"$TMP/want_rest" <<'OUT'
{"timestamp":"2024-05-01T10:00:00.000000000Z","message":"started","host":"node-1","level":"info","http":{"status":200},"env":"test"}
OUT
if ! cmp -s "$TMP/want_bad" "$TMP/bad.log"; then
    diff "$TMP/want_bad" "$TMP/bad.log" >&2 || true
    fail "bad.log differs"
fi
# the unparsed line and the warn line carry the time they were read: compare the rest
sed -E 's/"timestamp":"[^"]*"/"timestamp":T/' "$TMP/rest.log" >"$TMP/rest_norm"
cat >>"$TMP/want_rest" <<'OUT'
{"timestamp":T,"message":"not json at all","host":"node-1","parse_error":"unexpected character","env":"test"}
{"timestamp":"2024-05-01T10:00:03.000000000Z","message":"slow","host":"node-1","level":"warn","took_ms":1500,"env":"test"}
OUT
sed -E 's/"timestamp":"[^"]*"(,"message":"not json)/"timestamp":T\1/' "$TMP/rest.log" >"$TMP/rest_norm"
if ! cmp -s "$TMP/want_rest" "$TMP/rest_norm"; then
    diff "$TMP/want_rest" "$TMP/rest_norm" >&2 || true
    fail "rest.log differs"
fi
expect_eq "$(stat_of "$TMP/err" p errors)" 1 "parse errors"
expect_eq "$(stat_of "$TMP/err" f "discarded_intentional")" 1 "filtered out"

say "multiline completes the last event at the end of input"
printf 'first\n  more\nsecond\n  tail\n' >"$TMP/ml_in"
cat >"$TMP/ml.yaml" <<YAML
data_dir: $TMP/data
sources:
  in: {type: stdin}
transforms:
  ml: {type: multiline, inputs: [in], continuation_pattern: '^\s', timeout: 1h}
sinks:
  out: {type: file, inputs: [ml], path: "$TMP/ml.log"}
YAML
run_mars 30 -c "$TMP/ml.yaml" --once <"$TMP/ml_in" >"$TMP/out" 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "multiline exit code"
printf 'first\n  more\nsecond\n  tail\n' | cmp -s - "$TMP/ml.log" || fail "ml.log: $(cat "$TMP/ml.log")"
expect_eq "$(stat_of "$TMP/err" out sent)" 2 "two joined events"

say "host: the machine's name on local events, named, removed, or turned off"
printf 'a\n' >"$TMP/h_in"
host_run() { # host_run TOP_YAML MODIFY_YAML
    cat >"$TMP/h.yaml" <<YAML
data_dir: $TMP/data
$1
sources:
  in: {type: stdin}
transforms:
  m: {type: modify, inputs: [in] $2}
sinks:
  out: {type: file, inputs: [m], path: "$TMP/h.log", encoding: ndjson}
YAML
    rm -f "$TMP/h.log"
    run_mars 30 -c "$TMP/h.yaml" --once <"$TMP/h_in" >/dev/null 2>"$TMP/h.err"
    expect_eq "$MARS_RC" 0 "host run exit code; $(show_log "$TMP/h.err")"
    sed -E 's/"timestamp":"[^"]*"/"timestamp":T/' "$TMP/h.log"
}
expect_eq "$(NODE_NAME=node-7 host_run '' '')" '{"timestamp":T,"message":"a","host":"node-7"}' "host from NODE_NAME"
expect_eq "$(NODE_NAME= host_run '' '')" "{\"timestamp\":T,\"message\":\"a\",\"host\":\"$(hostname)\"}" "host from the hostname"
expect_eq "$(host_run 'host: {name: web-3}' ', set: {where: "{{ host }}"}')" \
    '{"timestamp":T,"message":"a","host":"web-3","where":"web-3"}' "host.name, read by a template"
expect_eq "$(host_run 'host: {name: web-3}' ', remove: [host]')" '{"timestamp":T,"message":"a"}' "host removed"
expect_eq "$(host_run 'host: {add: false}' '')" '{"timestamp":T,"message":"a"}' "host.add: false"
pass "host on local events: NODE_NAME, hostname, host.name, remove, off"

say "validate: condition and regex mistakes at FILE:LINE:COL"
cat >"$TMP/bad.yaml" <<'YAML'
sources:
  in: {type: stdin}
transforms:
  f: {type: filter, inputs: [in], condition: 'level = "x"'}
  p: {type: parse, inputs: [f], format: regex, pattern: '(?<a>x'}
sinks:
  out: {type: blackhole, inputs: [p]}
YAML
run_mars 10 validate -c "$TMP/bad.yaml" >"$TMP/out" 2>"$TMP/err"
expect_eq "$MARS_RC" 1 "validate exit code"
grep -qF "$TMP/bad.yaml:4:53: option 'condition': bad condition: use '==' to compare" "$TMP/err" ||
    fail "no condition diagnostic: $(cat "$TMP/err")"
grep -qF "$TMP/bad.yaml:5:64: option 'pattern': bad regular expression" "$TMP/err" ||
    fail "no pattern diagnostic: $(cat "$TMP/err")"

pass "transforms end to end"
