#!/usr/bin/env bash
# The apm_socket source against a client replaying the byte sequences of the SkyAPM PHP
# extension (a fresh connection per record, 100 ms read for the register reply) and of the
# seed agent (many records per connection), read back from a prometheus_exporter sink:
# register replies in every form, exact histogram counts and sums from HTTP spans,
# business metrics, 1,000 concurrent short connections, a client sending garbage, a 1 MiB
# line and half a record beside good clients, promtool-clean output and bounded RSS (64 MiB;
# 256 MiB under a sanitizer).
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
unset MARS_API_ADDRESS # this test configures api.address itself

command -v promtool >/dev/null || fail "promtool is missing (scripts/deps.sh test installs it)"
command -v curl >/dev/null || fail "curl is missing"
CLIENT="$(dirname "$0")/../fakes/apm_client.py"
SOCK=$TMP/apm.sock

port_of() { grep -o "\[$2\] listening on 127.0.0.1:[0-9]*" "$1" | head -n 1 | sed 's/.*://'; }
listening() { [[ -n $(port_of "$1" "$2") && -S $SOCK ]]; }

python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$SOCK"
cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
api: {address: "127.0.0.1:0"}
sources:
  apm: {type: apm_socket, path: "$SOCK", mode: "0600", uri_patterns: ["/users/{name}/profile"],
        max_series: 50}
sinks:
  prom: {type: prometheus_exporter, inputs: [apm], address: "127.0.0.1:0"}
YAML
# ASan keeps up to 256 MiB of freed memory in its quarantine, which would hide (or fake)
# growth: a small quarantine and a wider bound under a sanitizer
sanitized=0
if [[ ${MARS_SANITIZED:-} == 1 ]] || ldd "$MARS_BIN" 2>/dev/null | grep -q libasan; then
    sanitized=1
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16
fi
err="$TMP/mars.err"
start_mars /dev/null "$err" -c "$TMP/mars.yaml"
wait_until 20 "mars listens (the stale socket file was replaced)" listening "$err" prom
api=127.0.0.1:$(port_of "$err" api)
exp=127.0.0.1:$(port_of "$err" prom)
[[ $(stat -c %a "$SOCK") == 600 ]] || fail "socket mode is $(stat -c %a "$SOCK"), want 600"

# ---- register: every form, answered within the extension's 100 ms, stable ----
client() { python3 "$CLIENT" "$SOCK" "$@"; }
r6=$(client register shop 4242 6)
r7=$(client register shop 4242 7)
r8=$(client register shop 4242 8)
rr=$(client register shop 4242 8 "http://shop.local/")
uuid='[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'
[[ $r6 =~ ^[0-9]+,[0-9]+,$uuid$ ]] || fail "v6 reply '$r6' is not appId,instanceId,uuid"
[[ $r7 == "$r6" ]] || fail "v7 reply '$r7' differs from v6 '$r6'"
[[ $r8 =~ ^shop,$uuid@[^,]+,$uuid$ ]] || fail "v8 reply '$r8' is not service,serviceInstance,uuid"
[[ $rr =~ ^[0-9]+,4242,$uuid$ ]] || fail "seed reply '$rr' is not instanceId,pid,uuid"
[[ $(client register shop 4242 6) == "$r6" ]] || fail "ids are not stable"
[[ $(client register shop 4243 6) != "$r6" ]] || fail "another pid got the same ids"
pass "register replies: v6/7 '$r6', v8 '$r8', seed '$rr'"

# ---- spans and business metrics: each record sent twice (fresh connections, then one) ----
cat >"$TMP/rec.txt" <<'EOF'
1{"application_instance":1,"pid":4242,"application_id":1,"version":1,"isEntry":true,"body":{"url":"http://shop/orders/123?x=1","startTime":1000,"endTime":1040,"peer":"","responseCode":200,"responseSize":1500,"method":"GET","exception":"","component":""}}
1{"application_instance":1,"pid":4242,"application_id":1,"version":1,"isEntry":1,"body":{"url":"http://shop/users/bob/profile","startTime":1000,"endTime":3000,"responseCode":503,"responseSize":100,"method":"POST","exception":"Timeout"}}
1{"application_instance":1,"pid":4242,"application_id":1,"version":1,"isEntry":true,"body":{"url":"http://shop/x/77","path":"/orders/{order}","startTime":1000,"endTime":1250,"responseCode":301,"responseSize":10,"method":"GET","exception":""}}
1{"application_instance":1,"pid":4242,"application_id":1,"version":1,"isEntry":false,"body":{"url":"http://api.x/v1/item/9f8e7d6c5b4a39281706?q=1","startTime":1000,"endTime":1002,"peer":"api.x:80","responseCode":404,"responseSize":20000,"method":"GET","exception":"","component":"curl"}}
2[RIG:BIZ]={"name":"orders","type":"count","val":2,"tag":{"shop":"a"}}
2[RIG:BIZ]={"name":"queue_len","type":"gauge","val":7,"tag":{"q":"x"}}
2[RIG:BIZ]={"name":"queue_len","type":"gauge","val":5,"tag":{"q":"x"}}
2[RIG:BIZ]={"name":"pay_seconds","type":"histogram","val":0.3,"tag":{"m":"card"},"config":{"sla":"0.1,0.5"}}
EOF
client fresh "$TMP/rec.txt" >/dev/null
client one "$TMP/rec.txt" >/dev/null
scrape() { curl -sf "http://$exp/metrics" >"$TMP/m.txt"; }
has() { scrape && grep -qxF "$1" "$TMP/m.txt"; }
wait_until 20 "the business gauge arrives" has 'queue_len{q="x"} 5'
S='exception="None",method="GET",outcome="SUCCESS",status="200",uri="/orders/{id}"'
E='exception="Timeout",method="POST",outcome="SERVER_ERROR",status="503",uri="/users/{name}/profile"'
R='exception="None",method="GET",outcome="REDIRECTION",status="301",uri="/orders/{order}"'
C='client_name="api.x:80",component="curl",exception="None",method="GET",outcome="CLIENT_ERROR",status="404",uri="/v1/item/{id}"'
for want in \
    "http_server_requests_seconds_count{$S} 2" \
    "http_server_requests_seconds_sum{$S} 0.08" \
    "http_server_requests_seconds_bucket{$S,le=\"0.025\"} 0" \
    "http_server_requests_seconds_bucket{$S,le=\"0.05\"} 2" \
    "http_server_response_size_bytes_sum{$S} 3000" \
    "http_server_response_size_bytes_bucket{$S,le=\"1024\"} 0" \
    "http_server_response_size_bytes_bucket{$S,le=\"2048\"} 2" \
    "http_server_requests_seconds_sum{$E} 4" \
    "http_server_requests_seconds_bucket{$E,le=\"2.5\"} 2" \
    "http_server_requests_seconds_count{$R} 2" \
    "http_server_requests_seconds_sum{$R} 0.5" \
    "http_client_requests_seconds_count{$C} 2" \
    "http_client_requests_seconds_sum{$C} 0.004" \
    "http_client_response_size_bytes_bucket{$C,le=\"15360\"} 0" \
    "http_client_response_size_bytes_sum{$C} 40000" \
    'orders_total{shop="a"} 4' \
    'queue_len{q="x"} 5' \
    'pay_seconds_bucket{m="card",le="0.1"} 0' \
    'pay_seconds_bucket{m="card",le="0.5"} 2' \
    'pay_seconds_sum{m="card"} 0.6' \
    'pay_seconds_count{m="card"} 2'; do
    grep -qxF "$want" "$TMP/m.txt" || fail "missing '$want' in: $(grep -v '^#' "$TMP/m.txt" | head -40)"
done
promtool check metrics <"$TMP/m.txt" >"$TMP/promtool.out" 2>&1 ||
    fail "promtool: $(cat "$TMP/promtool.out")"
pass "spans and business metrics: exact counts, sums and buckets, promtool clean"

# ---- summaries: exact _sum and _count, quantiles by nearest rank over the window ----
/usr/bin/python3 - "$TMP/sum.txt" <<'PYEOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(1, 201):  # 1..200 in a scrambled order: the window holds them all
        v = (i * 37) % 200 + 1
        f.write("2[RIG:BIZ]=" + json.dumps({"name": "pay_latency", "type": "summary", "val": v,
                "tag": {"m": "card"}, "config": {"percentile": [0.99, 0.5, 0.9]}}) + "\n")
    f.write('2[RIG:BIZ]={"name":"queue_wait","type":"summary","val":2.5,"tag":{"q":"x"},'
            '"config":{"percentile":"0.25,0.75"}}\n')
    f.write('2[RIG:BIZ]={"name":"bad_q","type":"summary","val":1,"tag":{"q":"x"},'
            '"config":{"percentile":[1.5]}}\n')
PYEOF
/usr/bin/python3 "$CLIENT" "$SOCK" one "$TMP/sum.txt" >/dev/null
wait_until 20 "the summaries arrive" has 'queue_wait_count{q="x"} 1'
for want in \
    'pay_latency{m="card",quantile="0.5"} 100' \
    'pay_latency{m="card",quantile="0.9"} 180' \
    'pay_latency{m="card",quantile="0.99"} 198' \
    'pay_latency_sum{m="card"} 20100' \
    'pay_latency_count{m="card"} 200' \
    'queue_wait{q="x",quantile="0.25"} 2.5' \
    'queue_wait{q="x",quantile="0.75"} 2.5' \
    'queue_wait_sum{q="x"} 2.5'; do
    grep -qxF "$want" "$TMP/m.txt" || fail "missing '$want' in: $(grep -v '^#' "$TMP/m.txt" | grep -e pay_ -e queue_)"
done
grep -q '^# TYPE pay_latency summary$' "$TMP/m.txt" || fail "pay_latency is not a summary"
! grep -q '^bad_q' "$TMP/m.txt" || fail "a quantile of 1.5 was accepted"
promtool check metrics <"$TMP/m.txt" >"$TMP/promtool.out" 2>&1 ||
    fail "promtool: $(cat "$TMP/promtool.out")"
pass "summaries: exact sum and count, nearest-rank quantiles, promtool clean"

# ---- abuse beside good clients; then 1,000 concurrent short connections ----
printf '%s\n' '2[RIG:BIZ]={"name":"good","type":"count","val":1,"tag":{"k":"v"}}' >"$TMP/good.txt"
client abuse >/dev/null &
abuser=$!
client fresh "$TMP/good.txt" 20 >/dev/null
wait "$abuser"
wait_until 20 "good records beside the abuser" has 'good_total{k="v"} 20'
client storm 1000 "$TMP/good.txt" >/dev/null
wait_until 30 "1,000 concurrent connections' records" has 'good_total{k="v"} 1020'
bad() { curl -sf "http://$api/metrics" | grep -F "mars_apm_socket_bad_records_total{component_id=\"apm\",reason=\"$1\"} $2" >/dev/null; }
wait_until 10 "too_long counted" bad too_long 1
for r in "unknown_type 2" "bad_json 1" "missing_field 2" "partial 1"; do
    bad $r || fail "bad record reason $r not counted: $(curl -sf "http://$api/metrics" | grep apm_socket)"
done
pass "garbage, a 1 MiB line and half a record are counted; 1,000 concurrent connections served"

# ---- RSS stays bounded under a steady stream of connections and records ----
client loop 7 "$TMP/rec.txt" >"$TMP/loop.out" &
feeder=$!
if ((sanitized)); then rss_limit=$((256 * 1024)); else rss_limit=$((64 * 1024)); fi
rss_stays_flat "$MARS_PID" "$err" "$rss_limit"
wait "$feeder" || fail "the feeder failed"
say "feeder: $(cat "$TMP/loop.out")"
scrape
promtool check metrics <"$TMP/m.txt" >"$TMP/promtool.out" 2>&1 ||
    fail "promtool: $(cat "$TMP/promtool.out")"
pass "RSS bounded (${RSS_MAX_KB} kB)"
