#!/usr/bin/env bash
# The apollo source's cache: after one run against tests/fakes/apollo_fake.py has cached a
# namespace, a start with the config service down emits it from the cache at once (the
# file is there within 1 s), logs it once with the app and namespace and counts it in
# mars_apollo_cache_loads_total; when the service comes back its newer release replaces
# it. Then kill -9 while releases of a 3,000-key namespace are being written: the file
# apps read and the cache are always one whole release, never a truncated one.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"
source "$(dirname "$0")/lib/apollo.bash"

echo '{"apps": {"shop": {"clusters": {"default": {"application": {"k": "v1"}}}}}}' >"$TMP/state.json"
start_fake AF apollo_fake --state "$TMP/state.json" --hold 30
port=$AF_PORT
F=$TMP/files
write_conf() {
    cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
api: {address: "127.0.0.1:0"}
sources:
  cfg: {type: apollo, config_service: ["http://127.0.0.1:$port"], apps: [{app_id: shop}]}
sinks:
  files: {type: apollo_files, inputs: [cfg], dir: $F}
YAML
}
write_conf
P=$F/shop/default/application.properties
start_mars "$TMP/out" "$TMP/err" -c "$TMP/mars.yaml"
wait_until 20 "the first file" file_is "$P" "k=v1"
cache=$TMP/data/apollo/shop+default+application.json
wait_until 10 "the cache file" test -f "$cache"
[[ $(stat -c %a "$cache") == 600 ]] || fail "the cache is not mode 0600"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$TMP/err"
stop_fake AF KILL
rm -rf "$F"

t0=$(date +%s%N)
unset MARS_API_ADDRESS
start_mars "$TMP/out2" "$TMP/err2" -c "$TMP/mars.yaml"
wait_until 10 "the file from the cache" file_is "$P" "k=v1"
ms=$((($(date +%s%N) - t0) / 1000000))
((ms < 1000)) || fail "the cached configuration took ${ms} ms (want < 1000)"
has_line "$TMP/err2" "app shop namespace application: no config service answered" ||
    fail "no log line naming the app and namespace"
[[ $(grep -c "using the cached configuration" "$TMP/err2") == 1 ]] || fail "the cache use was not logged once"
wait_until 10 "the admin API" has_api "$TMP/err2"
metrics=$(curl -sf "http://127.0.0.1:$(api_port "$TMP/err2")/metrics")
grep -q 'mars_apollo_cache_loads_total{component_id="cfg",app_id="shop",namespace="application"} 1' <<<"$metrics" ||
    fail "mars_apollo_cache_loads_total: $(grep apollo <<<"$metrics")"
pass "config service down at start: the cache reached the file in ${ms} ms, logged and counted"

start_fake AF apollo_fake --port "$port" --state "$TMP/state.json" --hold 30
apollo_publish "$AF_PORT" shop application '{"k":"v2"}'
wait_until 30 "the release after the outage" file_is "$P" "k=v2"
pass "the service came back: its release replaced the cached one"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$TMP/err2"

# kill -9 while writing: every release is 3,000 keys all holding the release number
big() { "$PY" -c 'import json,sys; print(json.dumps({"key%04d" % i: "release-%s" % sys.argv[1] for i in range(3000)}))' "$1"; }
whole() { # FILE: one release, every line there
    local n v
    n=$(grep -c '^key[0-9]*=release-[0-9]*$' "$1" || true)
    v=$(sed 's/.*=//' "$1" | sort -u | wc -l)
    [[ $n == 3000 && $v == 1 && $(wc -l <"$1") == 3000 ]]
}
whole_cache() {
    "$PY" -c 'import json,sys; m=json.load(open(sys.argv[1]))["configurations"]; assert len(m)==3000 and len(set(m.values()))==1' "$1"
}
for round in 1 2 3 4 5; do
    start_mars "$TMP/out3" "$TMP/err3" -c "$TMP/mars.yaml"
    for r in $(seq 1 8); do
        big "$round$r" >"$TMP/big.json"
        apollo_publish "$AF_PORT" shop application "$(cat "$TMP/big.json")"
        sleep 0.0$((RANDOM % 9 + 1))
    done
    kill -KILL "$MARS_PID"
    wait "$MARS_PID" 2>/dev/null || true
    # round 1 may be killed before its first write: the file still holds k=v2, also whole
    file_is "$P" "k=v2" || whole "$P" || fail "round $round: $P is not one whole release after kill -9"
    grep -q '"k":"v2"' "$cache" || whole_cache "$cache" || fail "round $round: the cache is not one whole release after kill -9"
done
pass "kill -9 during writes (5 rounds): the file and the cache were always one whole release"
