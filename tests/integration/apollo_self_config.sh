#!/usr/bin/env bash
# mars's own configuration from Apollo (mars -c apollo://APP/NAMESPACE?config_service=...)
# against tests/fakes/apollo_fake.py: the pipeline YAML is fetched from a yaml namespace;
# a published release with a problem is refused with its apollo://...:LINE:COL message in
# the log, GET /api/v1/config and mars_config_reloads_total, and the running pipeline
# keeps running; a good release reloads (events then go where it says); with the config
# service down at start, mars starts at once from the cache of the last good release;
# `mars validate -c apollo://...` checks a release.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"
source "$(dirname "$0")/lib/apollo.bash"
unset MARS_API_ADDRESS

pipeline() { # OUTFILE: a pipeline writing demo lines there
    cat <<YAML
data_dir: $TMP/data
api: {address: "127.0.0.1:0"}
sources:
  demo: {type: demo, format: json, rate: 20, count: 100000000}
sinks:
  out: {type: file, inputs: [demo], path: $1}
YAML
}
pipeline "$TMP/one.log" >"$TMP/v1.yaml"
"$PY" -c 'import json,sys; print(json.dumps({"apps":{"mars":{"secrets":["k3y"],"clusters":{"default":{"mars.yaml":open(sys.argv[1]).read()}}}}}))' \
    "$TMP/v1.yaml" >"$TMP/state.json"
start_fake AF apollo_fake --state "$TMP/state.json" --hold 30
printf 'k3y\n' >"$TMP/key"
uri="apollo://mars/mars.yaml?config_service=http://127.0.0.1:$AF_PORT&secret_file=$TMP/key&cache_dir=$TMP/cache"

"$MARS_BIN" validate -c "$uri" >"$TMP/validate.out" 2>&1 || fail "validate: $(cat "$TMP/validate.out")"
start_mars "$TMP/out" "$TMP/err" -c "$uri"
wait_until 20 "lines in one.log" test -s "$TMP/one.log"
wait_until 10 "the admin API" has_api "$TMP/err"
pass "the pipeline came from the Apollo namespace (signed requests)"

printf 'data_dir: %s\nsources:\n  demo: {type: demo, formatt: json}\nsinks:\n  out: {type: blackhole, inputs: [demo]}\n' "$TMP/data" >"$TMP/bad.yaml"
apollo_publish_content "$AF_PORT" mars mars.yaml "$(cat "$TMP/bad.yaml")"
msg="apollo://mars/mars.yaml:3:22: unknown option 'formatt'"
wait_until 10 "the refusal in the log" has_line "$TMP/err" "$msg"
api=$(api_port "$TMP/err")
cfg=$(curl -sf "http://127.0.0.1:$api/api/v1/config")
grep -qF '"rejected":1' <<<"$cfg" && grep -qF "$msg" <<<"$cfg" || fail "/api/v1/config: $cfg"
metrics=$(curl -sf "http://127.0.0.1:$api/metrics")
grep -q '^mars_config_reloads_total{result="rejected"} 1' <<<"$metrics" || fail "no rejected reload counted"
n=$(lines_of "$TMP/one.log")
grows() { (($(lines_of "$TMP/one.log") > n)); }
wait_until 10 "the running pipeline to go on" grows
pass "a bad release was refused (log, /api/v1/config, metric); the running pipeline kept"

pipeline "$TMP/two.log" >"$TMP/v2.yaml"
apollo_publish_content "$AF_PORT" mars mars.yaml "$(cat "$TMP/v2.yaml")"
wait_until 20 "lines in two.log after the reload" test -s "$TMP/two.log"
has_line "$TMP/err" "configuration reloaded from apollo://mars/mars.yaml" || fail "no reload logged"
pass "a good release reloaded the pipeline"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$TMP/err"
((EXIT_RC == 0)) || fail "mars exited $EXIT_RC"

stop_fake AF KILL
rm -f "$TMP/two.log"
t0=$(date +%s%N)
start_mars "$TMP/out2" "$TMP/err2" -c "$uri"
wait_until 20 "lines in two.log from the cached release" test -s "$TMP/two.log"
ms=$((($(date +%s%N) - t0) / 1000000))
has_line "$TMP/err2" "starting from the cached release" || fail "the cache use was not logged"
pass "config service down at start: mars ran the cached good release (first line after ${ms} ms)"
