#!/usr/bin/env bash
# --watch-config: a change of the configuration files goes through the validated reload.
#   1 a Kubernetes ConfigMap volume: mars.yaml -> ..data/mars.yaml, ..data -> ..<timestamp>;
#     an update writes a new timestamped directory and renames a new ..data link over the
#     old one (as the kubelet's atomic writer does). The new pipeline takes over: the demo
#     source's lines go to out2 instead of out1.
#   2 the same swap to a config with a problem: refused, logged with FILE:LINE:COL, counted in
#     mars_config_reloads_total{result="rejected"}, and out2 keeps growing.
#   3 an in-place write of a file of a -c directory (conf.d) reloads too.
#   4 an unrelated file in the watched directory changes: no reload. SIGTERM exits 0.
#   5 -c is a symlink to a file of a ConfigMap mounted elsewhere: its swaps reload.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
command -v curl >/dev/null || fail "curl is missing"

err=$TMP/mars.err
conf() { # conf OUT [EXTRA]
    cat <<YAML
data_dir: $TMP/data
sources: {d: {type: demo, rate: 200, format: json}}
sinks: {out: {type: file, inputs: [d], path: "$1"}${2:-}}
YAML
}
cm=$TMP/cm
swap() { # swap N < new mars.yaml : the kubelet's atomic update of a ConfigMap volume
    mkdir "$cm/..v$1"
    cat >"$cm/..v$1/mars.yaml"
    ln -s "..v$1" "$cm/..data_tmp"
    mv -T "$cm/..data_tmp" "$cm/..data"
    rm -rf "$cm/..v$(($1 - 1))"
}
grows() { # grows FILE : FILE gets new lines
    local before
    before=$(lines_of "$1")
    wait_until 30 "$1 to grow past $before lines" test "$(lines_of "$1")" -gt "$before"
}
count() { grep -c -- "$1" "$err" || true; }
at_least() { [[ $(count "$1") -ge $2 ]]; }

mkdir -p "$cm/..v1" "$TMP/data"
conf "$TMP/out1" >"$cm/..v1/mars.yaml"
ln -s ..v1 "$cm/..data"
ln -s ..data/mars.yaml "$cm/mars.yaml"

say "1 a ConfigMap update reloads"
start_mars /dev/null "$err" -c "$cm/mars.yaml" --watch-config
wait_until 30 "the API" grep -q "\[api\] listening on" "$err"
grep -qF "watching $cm/mars.yaml for changes" "$err" || fail "no 'watching' line: $(show_log "$err")"
grows "$TMP/out1"
conf "$TMP/out2" | swap 2
wait_until 30 "the reload" at_least "configuration reloaded from $cm/mars.yaml" 1
expect_eq "$(count "the configuration changed: reloading")" 1 "reloads after one swap"
grows "$TMP/out2"
n1=$(lines_of "$TMP/out1")
sleep 0.5
expect_eq "$(lines_of "$TMP/out1")" "$n1" "out1 after the reload (the old pipeline stopped)"

say "2 a swap to a config with a problem keeps the running pipeline"
conf "$TMP/out3" ", bad: {type: nosuch, inputs: [d]}" | swap 3
wait_until 30 "the refusal" at_least "the configuration changed but has problems; keeping the running one" 1
wait_until 10 "the problem's position" grep -qF "$cm/mars.yaml:3:" "$err"
grep -qF "unknown sink type 'nosuch'" "$err" || fail "the problem is not logged: $(show_log "$err")"
grows "$TMP/out2"
[[ ! -e $TMP/out3 ]] || fail "the refused config ran"
addr=$(sed -n 's/.*\[api\] listening on \([0-9.:]*\).*/\1/p' "$err" | tail -n 1)
curl -sf "http://$addr/metrics" >"$TMP/metrics" || fail "no /metrics from $addr"
grep -qx 'mars_config_reloads_total{result="rejected"} 1' "$TMP/metrics" ||
    fail "rejected reload not counted: $(grep reloads_total "$TMP/metrics")"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 60 "$err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM"

say "3 an in-place write in a -c directory reloads; 4 an unrelated file does not"
mkdir -p "$TMP/conf.d"
conf "$TMP/out4" >"$TMP/conf.d/mars.yaml"
: >"$err"
start_mars /dev/null "$err" -c "$TMP/conf.d" --watch-config
wait_until 30 "the API" grep -q "\[api\] listening on" "$err"
grows "$TMP/out4"
conf "$TMP/out5" >"$TMP/conf.d/mars.yaml" # truncate and write the same file
wait_until 30 "the reload" at_least "configuration reloaded from $TMP/conf.d" 1
grows "$TMP/out5"
echo "notes" >"$TMP/conf.d/README.txt"
touch "$TMP/conf.d/mars.yaml"
sleep 2 # the debounce is 300 ms: a reload would have been asked by now
expect_eq "$(count "the configuration changed")" 1 "reloads after an unrelated change"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 60 "$err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM"

say "5 -c names a link into a ConfigMap mounted elsewhere: its swaps reload too"
mkdir -p "$TMP/etc"
ln -s "$cm/mars.yaml" "$TMP/etc/mars.yaml"
conf "$TMP/out6" | swap 4
: >"$err"
start_mars /dev/null "$err" -c "$TMP/etc/mars.yaml" --watch-config
wait_until 30 "the API" grep -q "\[api\] listening on" "$err"
grows "$TMP/out6"
conf "$TMP/out7" | swap 5
wait_until 30 "the reload" at_least "configuration reloaded from $TMP/etc/mars.yaml" 1
grows "$TMP/out7"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 60 "$err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM"

pass "ConfigMap swaps and in-place writes reload; a bad config is refused and counted"
