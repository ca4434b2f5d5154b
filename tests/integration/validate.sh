#!/usr/bin/env bash
# `mars validate -c FILE`: every bad config exits 1 and names the exact FILE:LINE:COL of
# the problem with a clear message; several problems are all reported; valid configs
# (and conf/quickstart.yaml) exit 0 and say `valid`.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

# The variable the unset-variable case refers to must really be unset.
unset MARS_IT_SURELY_UNSET_VAR

n_case=0
# bad NAME POSITION PHRASE [NPROBLEMS] <<'YAML' ... : the config on stdin must be rejected
# with exit 1, a line starting "FILE:POSITION: " that contains PHRASE (POSITION may be
# empty for whole-file problems: then the line starts "FILE: "), and NPROBLEMS (default 1)
# problems in total.
bad() {
    local name=$1 pos=$2 phrase=$3 want_n=${4:-1}
    local f="$TMP/$name.yaml"
    local prefix
    n_case=$((n_case + 1))
    cat >"$f"
    say "rejects: $name"
    run_mars 10 validate -c "$f" >"$TMP/out" 2>"$TMP/err"
    if ((MARS_RC != 1)); then
        fail "$name: exit $MARS_RC, expected 1
$(show_log "$TMP/err")"
    fi
    [[ ! -s $TMP/out ]] || fail "$name: stdout should be empty, got: $(cat "$TMP/out")"
    if [[ -n $pos ]]; then prefix="$f:$pos: "; else prefix="$f: "; fi
    # the diagnostic lines are every stderr line but the final "N problems found"
    if ! awk -v p="$prefix" -v s="$phrase" \
        'index($0, p) == 1 && index(substr($0, length(p) + 1), s) { found = 1 }
         END { exit !found }' "$TMP/err"; then
        fail "$name: no diagnostic '$prefix...$phrase...'
$(show_log "$f")
$(show_log "$TMP/err")"
    fi
    local word=problems
    ((want_n == 1)) && word=problem
    local last
    last=$(tail -n 1 "$TMP/err")
    expect_eq "$last" "mars: $f: $want_n $word found" "$name: summary line"
    local ndiag
    ndiag=$(grep -c "^$f:" "$TMP/err" || true)
    expect_eq "$ndiag" "$want_n" "$name: number of diagnostic lines"
}

# A valid pipeline to start from; line numbers below are 1-based.
bad yaml_syntax 3:6 "did not find expected ',' or '}'" <<'YAML'
sources:
  d: {type: demo
sinks: [
YAML

bad empty_file "" "the configuration is empty" </dev/null

bad only_comments "" "the configuration is empty" <<'YAML'
# nothing here
YAML

bad wrong_type 4:12 "option 'count': expected an integer, got \"abc\"" <<'YAML'
sources:
  d:
    type: demo
    count: abc
sinks:
  o:
    type: stdout
    inputs: [d]
YAML

bad bad_size_unit 8:25 "option 'buffer.max_bytes': invalid size \"12XB\"" <<'YAML'
sources:
  d:
    type: demo
sinks:
  o:
    type: stdout
    inputs: [d]
    buffer: {max_bytes: 12XB}
YAML

bad bad_duration 8:21 "option 'print_interval': invalid duration \"5x\"" <<'YAML'
sources:
  d:
    type: demo
sinks:
  o:
    type: blackhole
    inputs: [d]
    print_interval: 5x
YAML

bad duration_without_unit 3:21 "option 'runtime.shutdown_timeout': invalid duration \"30\"" <<'YAML'
runtime:
  workers: 1
  shutdown_timeout: 30
sources:
  d: {type: demo}
sinks:
  o: {type: stdout, inputs: [d]}
YAML

bad unknown_option 4:5 "unknown option 'formt' (did you mean 'format'?)" <<'YAML'
sources:
  d:
    type: demo
    formt: json
sinks:
  o:
    type: stdout
    inputs: [d]
YAML

bad unknown_top_level_option 1:1 "unknown option 'datadir' (did you mean 'data_dir'?)" <<'YAML'
datadir: /tmp
sources:
  d: {type: demo}
sinks:
  o: {type: stdout, inputs: [d]}
YAML

bad unknown_type 6:11 "unknown sink type 'stdot' (did you mean 'stdout'?)" <<'YAML'
sources:
  d:
    type: demo
sinks:
  o:
    type: stdot
    inputs: [d]
YAML

# The misspelt input also leaves the source unread, which is reported too.
bad unknown_input 7:14 "sink 'o': input 'demo_log' is not a source or transform (did you mean 'demo_logs'?)" 2 <<'YAML'
sources:
  demo_logs:
    type: demo
sinks:
  o:
    type: stdout
    inputs: [demo_log]
YAML

bad sink_as_input 10:17 "input 'o' is not a source or transform" <<'YAML'
sources:
  d:
    type: demo
sinks:
  o:
    type: stdout
    inputs: [d]
  p:
    type: blackhole
    inputs: [d, o]
YAML

bad unread_source 4:3 "source 'lonely' is not read by any transform or sink" <<'YAML'
sources:
  d:
    type: demo
  lonely:
    type: stdin
sinks:
  o:
    type: stdout
    inputs: [d]
YAML

bad sink_without_inputs 6:5 "missing required option 'inputs'" <<'YAML'
sources:
  d:
    type: demo
sinks:
  o:
    type: stdout
YAML

bad file_sink_without_path 6:5 "missing required option 'path'" <<'YAML'
sources:
  d:
    type: demo
sinks:
  o:
    type: file
    inputs: [d]
YAML

bad duplicate_component_id 5:3 "component id 'd' is already used by the source at $TMP/duplicate_component_id.yaml:2:3" <<'YAML'
sources:
  d:
    type: demo
sinks:
  d:
    type: stdout
    inputs: [d]
YAML

bad duplicate_key 5:5 "duplicate key 'rate' (first defined at line 4)" <<'YAML'
sources:
  d:
    type: demo
    rate: 5
    rate: 6
sinks:
  o:
    type: stdout
    inputs: [d]
YAML

bad unset_env_var 7:11 "environment variable MARS_IT_SURELY_UNSET_VAR is not set" <<'YAML'
sources:
  d:
    type: demo
sinks:
  o:
    type: file
    path: ${MARS_IT_SURELY_UNSET_VAR}/out.log
    inputs: [d]
YAML

bad enum_value 9:18 "option 'buffer.when_full': \"blok\" is not one of block, drop_newest (did you mean 'block'?)" <<'YAML'
sources:
  d:
    type: demo
sinks:
  o:
    type: stdout
    inputs: [d]
    buffer:
      when_full: blok
YAML

bad no_sinks 1:1 "the configuration has no sinks" 2 <<'YAML'
sources:
  d:
    type: demo
YAML

# Several independent problems in one file: each is reported at its own position.
bad several_errors 4:12 "option 'count': -1 is below the minimum 0" 4 <<'YAML'
sources:
  d:
    type: demo
    count: -1
    format: xml
sinks:
  o:
    type: file
    inputs: [d]
    encodng: text
YAML
f="$TMP/several_errors.yaml"
for want in "$f:5:13: option 'format': \"xml\" is not one of nginx, json, cri, syslog, mixed" \
    "$f:10:5: unknown option 'encodng' (did you mean 'encoding'?)" \
    "$f:8:5: missing required option 'path'"; do
    grep -qxF -- "$want" "$TMP/err" || fail "several_errors: missing the line '$want'
$(show_log "$TMP/err")"
done

# Problems found while reading the YAML tree are all reported together as well.
bad several_tree_errors 4:11 "environment variable MARS_IT_SURELY_UNSET_VAR is not set" 2 <<'YAML'
sources:
  d:
    type: demo
    seed: ${MARS_IT_SURELY_UNSET_VAR}
    seed: 3
sinks:
  o: {type: stdout, inputs: [d]}
YAML
grep -qxF "$TMP/several_tree_errors.yaml:5:5: duplicate key 'seed' (first defined at line 4)" "$TMP/err" ||
    fail "several_tree_errors: the duplicate key is not reported
$(show_log "$TMP/err")"

say "running (not just validating) a bad config also exits 1 without starting"
run_mars 10 -c "$TMP/wrong_type.yaml" >"$TMP/out" 2>"$TMP/err"
expect_eq "$MARS_RC" 1 "mars -c <bad config> exit code"
grep -qF "$TMP/wrong_type.yaml:4:12: option 'count'" "$TMP/err" ||
    fail "mars -c <bad config> did not print the diagnostic: $(cat "$TMP/err")"
if grep -q 'running:' "$TMP/err"; then fail "mars started a pipeline from a bad config"; fi

# good NAME NCOMPONENTS <<'YAML' : exits 0 and prints exactly "FILE: valid (N components)".
bad dead_letter_unknown 6:18 "dead_letter 'dlqq' is not a sink" <<'YAML'
sources:
  d: {type: demo}
sinks:
  o:
    type: stdout
    dead_letter: dlqq
    inputs: [d]
  dlq: {type: file, path: /tmp/x, inputs: []}
YAML

bad dead_letter_chain 3:47 "has a dead_letter of its own" 2 <<'YAML'
sources: {d: {type: demo}}
sinks:
  o: {type: stdout, inputs: [d], dead_letter: a}
  a: {type: blackhole, inputs: [], dead_letter: o}
YAML

bad mars_buffer 2:61 "max_buffer_bytes (67108864) must be at least twice max_frame_bytes" <<'YAML'
sources:
  m: {type: mars, max_frame_bytes: 64MiB, max_buffer_bytes: 64MiB}
sinks: {b: {type: blackhole, inputs: [m]}}
YAML

# A value nested 100,000 levels deep: parsing stops at the limit (it went on to the end and
# took 26 s, quadratic in libyaml's flow-level bookkeeping). 5 s is generous on a loaded machine.
say "rejects: deep_nesting within 5 s"
deep="$TMP/deep_nesting.yaml"
n_case=$((n_case + 1))
/usr/bin/python3 -c '
import sys
n = 100000
sys.stdout.write("sources:\n  d: {type: demo, labels: " + "[" * n + "1" + "]" * n + "}\n")' >"$deep"
MARS_RC=0
timeout -k 2 5 "$MARS_BIN" validate -c "$deep" >"$TMP/out" 2>"$TMP/err" || MARS_RC=$?
expect_eq "$MARS_RC" 1 "deep_nesting: exit code (124 means it took more than 5 s)"
expect_eq "$(cat "$TMP/err")" "$deep:2:152: nesting is too deep (more than 128 levels)
mars: $deep: 1 problem found" "deep_nesting: diagnostics"

good() {
    local name=$1 n=$2
    local f="$TMP/$name.yaml"
    cat >"$f"
    say "accepts: $name"
    run_mars 10 validate -c "$f" >"$TMP/out" 2>"$TMP/err"
    if ((MARS_RC != 0)); then
        fail "$name: exit $MARS_RC, expected 0
$(show_log "$TMP/err")"
    fi
    expect_eq "$(cat "$TMP/out")" "$f: valid ($n components)" "$name: validate output"
    [[ ! -s $TMP/err ]] || fail "$name: stderr not empty: $(cat "$TMP/err")"
}

good minimal 2 <<'YAML'
sources:
  d:
    type: demo
sinks:
  o:
    type: stdout
    inputs: [d]
YAML

export MARS_IT_SET_VAR="$TMP/set-by-env"
good everything_set 5 <<'YAML'
data_dir: ${MARS_IT_SURELY_UNSET_VAR:-/tmp/mars-it-default}
runtime:
  workers: 2
  shutdown_timeout: 1m30s
  chunk_size: 64KiB
log: {level: debug, format: json}
sources:
  d: {type: demo, format: syslog, rate: 0.5, count: 10, seed: 7}
  in: {type: stdin, max_line_bytes: 4KiB, oversize: truncate}
sinks:
  f:
    type: file
    inputs: [d, in]
    path: ${MARS_IT_SET_VAR}/%Y/{{ host }}.log
    encoding: ndjson
    fsync: interval
    fsync_interval: 250ms
    buffer: {max_events: 100, max_bytes: 1MiB, when_full: drop_newest}
    batch: {max_events: 10, max_bytes: 64KB, timeout: 100ms}
    retry: {initial_backoff: 10ms, max_backoff: 1s}
  b: {type: blackhole, inputs: [d], rate: 100, print_interval: 10s, dead_letter: dl}
  dl: {type: file, inputs: [], path: /tmp/mars-it-dead-letters.log}
YAML

# Problems of every stage in one run: the process options, a component's options, the
# wiring and the event types (before, the graph was not checked once an option was wrong).
bad every_stage 2:12 "option 'runtime.workers': 1000 is above the maximum 256" 4 <<'YAML'
runtime:
  workers: 1000
sources:
  d: {type: demo, count: abc}
  m: {type: internal_metrics}
transforms:
  t: {type: filter, condition: 'true', inputs: [dd]}
sinks:
  o: {type: stdout, inputs: [d, t, m]}
  p: {type: prometheus_exporter, inputs: [d]}
YAML
grep -qxF "$TMP/every_stage.yaml:4:26: option 'count': expected an integer, got \"abc\"" "$TMP/err" ||
    fail "every_stage: the option error is missing: $(show_log "$TMP/err")"
grep -qxF "$TMP/every_stage.yaml:7:49: transform 't': input 'dd' is not a source or transform (did you mean 'd'?)" "$TMP/err" ||
    fail "every_stage: the wiring error is missing: $(show_log "$TMP/err")"
grep -qxF "$TMP/every_stage.yaml:10:43: sink 'p' (prometheus_exporter) takes metric events, but input 'd' produces log events" "$TMP/err" ||
    fail "every_stage: the type error is missing: $(show_log "$TMP/err")"

say "more than 50 problems: 50 shown, the rest counted"
{
    printf 'sources:\n'
    for i in $(seq 60); do printf '  s%d: {type: demo, count: x}\n' "$i"; done
    printf 'sinks:\n  o: {type: stdout, inputs: ["s*"]}\n'
} >"$TMP/many.yaml"
run_mars 10 validate -c "$TMP/many.yaml" >"$TMP/out" 2>"$TMP/err"
expect_eq "$MARS_RC" 1 "many problems: exit code"
expect_eq "$(grep -c "^$TMP/many.yaml:" "$TMP/err")" 50 "many problems: lines shown"
expect_eq "$(tail -n 2 "$TMP/err" | tr '\n' '|')" "(10 more problems not shown)|mars: $TMP/many.yaml: 60 problems found|" \
    "many problems: summary"

say "several -c files and a directory merge into one pipeline"
mkdir -p "$TMP/conf.d/sub"
cat >"$TMP/conf.d/10-base.yaml" <<'YAML'
data_dir: /tmp/mars-it-merge
runtime: {workers: 1}
sources:
  app_a: {type: demo}
YAML
cat >"$TMP/conf.d/20-more.yml" <<'YAML'
runtime: {chunk_size: 64KiB}
sources:
  app_b: {type: demo}
transforms:
  keep: {type: filter, condition: 'true', inputs: ["app_*"]}
YAML
cat >"$TMP/conf.d/30-out.yaml" <<'YAML'
sinks:
  out: {type: stdout, inputs: [keep]}
YAML
# not config files: another extension, a hidden name (a ConfigMap's ..data), a subdirectory
echo 'sinks: {x: {type: nosuch}}' >"$TMP/conf.d/notes.txt"
echo 'sinks: {x: {type: nosuch}}' >"$TMP/conf.d/.hidden.yaml"
echo 'sinks: {x: {type: nosuch}}' >"$TMP/conf.d/sub/x.yaml"
run_mars 10 validate -c "$TMP/conf.d" >"$TMP/out" 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "conf.d: exit code ($(cat "$TMP/err"))"
expect_eq "$(cat "$TMP/out")" "$TMP/conf.d: valid (4 components)" "conf.d: validate output"
cp "$TMP/conf.d/10-base.yaml" "$TMP/a.yaml"
cat "$TMP/conf.d/20-more.yml" "$TMP/conf.d/30-out.yaml" >"$TMP/b.yaml"
run_mars 10 validate -c "$TMP/a.yaml" -c "$TMP/b.yaml" >"$TMP/out" 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "two -c: exit code ($(cat "$TMP/err"))"
expect_eq "$(cat "$TMP/out")" "$TMP/a.yaml, $TMP/b.yaml: valid (4 components)" "two -c: validate output"

say "a component id or a setting in two files is an error naming both places"
cat >"$TMP/c.yaml" <<'YAML'
runtime:
  workers: 2
sinks:
  out: {type: blackhole, inputs: [app_a]}
sources:
  app_a: {type: stdin}
YAML
run_mars 10 validate -c "$TMP/conf.d/" -c "$TMP/c.yaml" >"$TMP/out" 2>"$TMP/err"
expect_eq "$MARS_RC" 1 "duplicates: exit code"
cat >"$TMP/want" <<EOF
$TMP/c.yaml:2:3: 'runtime.workers' is set twice: first at $TMP/conf.d/10-base.yaml:2:11
$TMP/c.yaml:4:3: duplicate 'out' in 'sinks': first defined at $TMP/conf.d/30-out.yaml:2:3
$TMP/c.yaml:6:3: duplicate 'app_a' in 'sources': first defined at $TMP/conf.d/10-base.yaml:4:3
mars: $TMP/conf.d/, $TMP/c.yaml: 3 problems found
EOF
diff -u "$TMP/want" "$TMP/err" || fail "duplicates across files: unexpected diagnostics"
# the same id as a source in one file and a sink in another
printf 'sinks:\n  app_b: {type: blackhole, inputs: [keep]}\n' >"$TMP/d.yaml"
run_mars 10 validate -c "$TMP/conf.d" -c "$TMP/d.yaml" >"$TMP/out" 2>"$TMP/err"
expect_eq "$MARS_RC" 1 "id across kinds: exit code"
grep -qxF "$TMP/d.yaml:2:3: component id 'app_b' is already used by the source at $TMP/conf.d/20-more.yml:3:3" "$TMP/err" ||
    fail "id across kinds: $(show_log "$TMP/err")"
mkdir -p "$TMP/empty.d"
run_mars 10 validate -c "$TMP/empty.d" >"$TMP/out" 2>"$TMP/err"
expect_eq "$MARS_RC" 1 "empty directory: exit code"
grep -qxF "$TMP/empty.d: no *.yaml or *.yml files in this directory" "$TMP/err" ||
    fail "empty directory: $(show_log "$TMP/err")"

say "conf/quickstart.yaml validates, with and without MARS_DATA_DIR"
q="$MARS_SRC/conf/quickstart.yaml"
for dd in unset "$TMP/data"; do
    if [[ $dd == unset ]]; then
        MARS_RC=0
        env -u MARS_DATA_DIR timeout 10 "$MARS_BIN" validate -c "$q" >"$TMP/out" 2>"$TMP/err" || MARS_RC=$?
    else
        MARS_RC=0
        MARS_DATA_DIR=$dd timeout 10 "$MARS_BIN" validate -c "$q" >"$TMP/out" 2>"$TMP/err" || MARS_RC=$?
    fi
    expect_eq "$MARS_RC" 0 "validate quickstart (MARS_DATA_DIR $dd) exit code; stderr: $(cat "$TMP/err")"
    expect_eq "$(cat "$TMP/out")" "$q: valid (3 components)" "validate quickstart output"
done

pass "$n_case bad configs rejected at the right place; good configs accepted"
