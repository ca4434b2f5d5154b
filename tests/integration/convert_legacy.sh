#!/usr/bin/env bash
# `mars convert-legacy`: the old mars-agent's configs in tests/integration/legacy/ (one per
# module, one with everything, broken ones) convert to exactly the expected output (or the
# expected FILE:LINE:COL errors and exit 1), and every converted config passes `mars
# validate`. Then a converted config runs: its health checks answer on the old agent's port
# (an HTTP check that needs the old Host header, a pid file), the APM socket takes the old
# agent's records and their metrics are served on the exporter's old http_path.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
unset MARS_API_ADDRESS # the converted config's api.address is what is tested

PY=/usr/bin/python3
LEGACY="$MARS_SRC/tests/integration/legacy"
cd "$LEGACY" # the output names the file as given: relative names keep it stable

say "each old config converts to exactly the expected mars config, which validates"
for old in everything apm apollo health; do
    run_mars 10 convert-legacy "$old.yaml" >"$TMP/$old.out" 2>"$TMP/$old.err"
    ((MARS_RC == 0)) || fail "$old.yaml: exit $MARS_RC: $(cat "$TMP/$old.err")"
    [[ ! -s $TMP/$old.err ]] || fail "$old.yaml: wrote to stderr: $(cat "$TMP/$old.err")"
    diff -u "$old.expected" "$TMP/$old.out" >"$TMP/$old.diff" ||
        fail "$old.yaml converts differently:
$(cat "$TMP/$old.diff")"
    run_mars 10 validate -c "$TMP/$old.out" >"$TMP/$old.val" 2>&1
    ((MARS_RC == 0)) || fail "$old.yaml: the converted config does not validate:
$(cat "$TMP/$old.val")"
done
grep -q 'NOTE: health_timeout 7000 is surely milliseconds' everything.expected ||
    fail "a millisecond health_timeout is not flagged"
grep -q 'timeout: 7s' everything.expected || fail "health_timeout 7000 is not converted to 7s"

say "broken old configs: exit 1 with FILE:LINE:COL problems and nothing on stdout"
for old in bad-root bad-values nothing; do
    run_mars 10 convert-legacy "$old.yaml" >"$TMP/$old.out" 2>"$TMP/$old.err"
    ((MARS_RC == 1)) || fail "$old.yaml: exit $MARS_RC, expected 1"
    [[ ! -s $TMP/$old.out ]] || fail "$old.yaml: wrote a config although it failed"
    diff -u "$old.expected" "$TMP/$old.err" >"$TMP/$old.diff" ||
        fail "$old.yaml reports differently:
$(cat "$TMP/$old.diff")"
done

say "usage: no file is a usage error (2); a missing file is 1"
run_mars 10 convert-legacy >/dev/null 2>"$TMP/usage.err"
((MARS_RC == 2)) || fail "convert-legacy without a file: exit $MARS_RC, expected 2"
run_mars 10 convert-legacy "$TMP/none.yaml" >/dev/null 2>"$TMP/none.err"
((MARS_RC == 1)) || fail "a missing file: exit $MARS_RC, expected 1"
grep -q "none.yaml: cannot open" "$TMP/none.err" || fail "no 'cannot open': $(cat "$TMP/none.err")"
cd "$TMP"

say "a converted config does the old agent's jobs"
free_port() {
    # two consecutive free ports: the admin API takes the first, the exporter the next
    "$PY" - <<'PY'
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
PY
}
admin=$(free_port)
web=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# an app that is healthy only for the virtual host the old config names
"$PY" - "$web" >"$TMP/web.log" 2>&1 <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/ping" and self.headers.get("Host") == "shop.local"
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b"pong" if ok else b"wrong host or path")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
_MARS_PIDS+=("$!")
sleep 600 &
worker_pid=$!
_MARS_PIDS+=("$worker_pid")
echo "$worker_pid" >"$TMP/worker.pid"
cat >"$TMP/old.yaml" <<YAML
mars:
  worker_number: 1
  pid_file: $TMP/mars.pid
  core:
    env: test
    name: shop
    http: {http_ip: 127.0.0.1, http_port: $admin}
    health:
      - {app: worker, health_way: pid_file, health_path: $TMP/worker.pid, http_path: /health/worker}
      - {app: shop-api, health_way: http, health_ip: 127.0.0.1, health_port: $web,
         health_path: /ping, health_host: shop.local, health_timeout: 2000, http_path: /health/shop-api}
    promethean: {unix_path: $TMP/apm.sock, http_path: /apm/metrics, max_connection: 64}
YAML
run_mars 10 convert-legacy "$TMP/old.yaml" >"$TMP/new.yaml" 2>"$TMP/convert.err"
((MARS_RC == 0)) || fail "convert: $(cat "$TMP/convert.err")"
printf 'data_dir: %s\n' "$TMP/data" >>"$TMP/new.yaml"
start_mars "$TMP/mars.out" "$TMP/mars.err" -c "$TMP/new.yaml"
health() { curl -s -o "$TMP/h.body" -w '%{http_code}' "http://127.0.0.1:$admin/health/$1"; }
up() { [[ $(health "$1") == 200 ]] && grep -q '"status":"UP"' "$TMP/h.body"; }
wait_until 60 "/health/shop-api UP on the old port (Host: shop.local sent)" up shop-api
wait_until 60 "/health/worker UP on the old port" up worker

# the old agent's records: a register on one connection, spans on another
rec="$TMP/spans.txt"
for i in 1 2 3; do
    printf '1{"application_instance":1,"pid":4242,"application_id":1,"version":1,"isEntry":1,"body":{"url":"http://shop/orders/%d","startTime":1000,"endTime":1040,"responseCode":200,"responseSize":1500,"method":"GET","exception":""}}\n' "$i"
done >"$rec"
wait_until 30 "the APM socket" test -S "$TMP/apm.sock"
reply=$("$PY" "$MARS_SRC/tests/fakes/apm_client.py" "$TMP/apm.sock" register shop 4242 1 http://shop/)
[[ $reply =~ ^[0-9]+,4242,[0-9a-f-]+$ ]] || fail "register reply '$reply' is not the old agent's instanceId,pid,uuid"
"$PY" "$MARS_SRC/tests/fakes/apm_client.py" "$TMP/apm.sock" one "$rec" >/dev/null
metrics() { curl -sf "http://127.0.0.1:$((admin + 1))/apm/metrics" >"$TMP/metrics.txt"; }
three_spans() {
    metrics && grep -Eq '^http_server_requests_seconds_count\{.*uri="/orders/\{id\}".*\} 3$' "$TMP/metrics.txt"
}
wait_until 60 "3 spans in http_server_requests_seconds on the old http_path, port+1" three_spans
grep -q '^mars_health_check_up{.*check="worker".*} 1' "$TMP/metrics.txt" ||
    fail "mars_health_check_up of worker not served: $(grep health "$TMP/metrics.txt")"

kill "$worker_pid"
wait "$worker_pid" 2>/dev/null || true
down() { [[ $(health worker) == 503 ]] && grep -q '"status":"DOWN"' "$TMP/h.body"; }
wait_until 60 "/health/worker DOWN once its process is gone" down

kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 60 "$TMP/mars.err"
((EXIT_RC == 0)) || fail "mars exited $EXIT_RC after SIGTERM: $(tail -n 20 "$TMP/mars.err")"
pass "fixtures convert exactly, broken ones are refused, a converted config works"
