#!/usr/bin/env bash
# health_check against real local targets: an HTTP server (python3 -m http.server on a free
# loopback port) that goes away and comes back, an HTTPS server (checked with its CA: UP;
# with another CA: DOWN, certificate refused), a closed port, a failing command and a dead
# pid. /health/<name> on the admin API flips UP/DOWN only after the configured number of
# consecutive results, and each state change is one log event (written by a file sink).
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
unset MARS_API_ADDRESS # this test configures api.address itself

command -v curl >/dev/null || fail "curl is missing"
api_port() { grep -o "\[$2\] listening on 127.0.0.1:[0-9]*" "$1" | head -n 1 | sed 's/.*://'; }
listening() { [[ -n $(api_port "$1" "$2") ]]; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mkdir -p "$TMP/www"
echo "ALL GOOD" >"$TMP/www/health"
web_port=$(free_port)
closed_port=$(free_port) # nobody listens there
start_web() {
    python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www" "$web_port" \
        >"$TMP/web.log" 2>&1 </dev/null &
    web_pid=$!
    _MARS_PIDS+=("$web_pid")
    web_up() { curl -sf "http://127.0.0.1:$web_port/health" >/dev/null; }
    wait_until 20 "the HTTP server on $web_port" web_up
}
start_web
sh "$MARS_SRC/tests/support/gen_certs.sh" "$TMP/certs" || fail "cannot make test certificates"
tls_port=$(free_port)
python3 - "$tls_port" "$TMP/certs" "$TMP/www" >"$TMP/tls.log" 2>&1 </dev/null <<'PY' &
import functools, http.server, ssl, sys
port, certs, root = int(sys.argv[1]), sys.argv[2], sys.argv[3]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(certs + "/server.pem", certs + "/server.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
_MARS_PIDS+=("$!")
tls_up() { curl -sf --cacert "$TMP/certs/ca.pem" "https://127.0.0.1:$tls_port/health" >/dev/null; }
wait_until 20 "the HTTPS server on $tls_port" tls_up
sleep 0 &
dead_pid=$!
wait "$dead_pid" || true
echo "$dead_pid" >"$TMP/dead.pid"

cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
api: {address: "127.0.0.1:0"}
sources:
  hc:
    type: health_check
    checks:
      - {name: web, type: http, url: "http://127.0.0.1:$web_port/health", expect_body: "ALL GOOD",
         interval: 200ms, timeout: 1s, healthy_threshold: 2, unhealthy_threshold: 3}
      - {name: wrongbody, type: http, url: "http://127.0.0.1:$web_port/health",
         expect_body: "NOPE", interval: 200ms, timeout: 1s, unhealthy_threshold: 1}
      - {name: missing, type: http, url: "http://127.0.0.1:$web_port/nothing-here",
         interval: 200ms, timeout: 1s, unhealthy_threshold: 1}
      - {name: secure, type: http, url: "https://127.0.0.1:$tls_port/health", expect_body: "ALL GOOD",
         tls: {ca_file: "$TMP/certs/ca.pem"}, interval: 200ms, timeout: 1s}
      - {name: untrusted, type: http, url: "https://localhost:$tls_port/health",
         tls: {ca_file: "$TMP/certs/other-ca.pem"}, interval: 200ms, timeout: 1s,
         unhealthy_threshold: 1}
      - {name: closed, type: tcp, address: "127.0.0.1:$closed_port", interval: 200ms,
         timeout: 500ms, unhealthy_threshold: 2}
      - {name: cmd, type: exec, command: [sh, -c, "echo disk full; exit 2"], interval: 200ms,
         unhealthy_threshold: 2}
      - {name: deadpid, type: pidfile, path: "$TMP/dead.pid", interval: 200ms,
         unhealthy_threshold: 2}
sinks:
  events: {type: file, inputs: [hc], path: "$TMP/events.log"}
YAML
err="$TMP/mars.err"
start_mars /dev/null "$err" -c "$TMP/mars.yaml"
wait_until 10 "the admin API listens" listening "$err" api
api=127.0.0.1:$(api_port "$err" api)

# health NAME : "CODE BODY" of /health/NAME
health() { curl -s -o "$TMP/h.json" -w '%{http_code}' "http://$api/health/$1"; }
is_state() { [[ $(health "$1") == "$2" ]] && grep -q "\"status\":\"$3\"" "$TMP/h.json"; }

say "initial states"
wait_until 20 "web UP" is_state web 200 UP
wait_until 20 "secure (https) UP" is_state secure 200 UP
for c in wrongbody missing closed cmd deadpid untrusted; do
    wait_until 20 "$c DOWN" is_state "$c" 503 DOWN
done
health untrusted >/dev/null
grep -qi 'certificate' "$TMP/h.json" || fail "untrusted: $(cat "$TMP/h.json")"
health missing >/dev/null
grep -q 'HTTP status 404' "$TMP/h.json" || fail "missing: $(cat "$TMP/h.json")"
health wrongbody >/dev/null
grep -q 'body does not contain' "$TMP/h.json" || fail "wrongbody: $(cat "$TMP/h.json")"
health cmd >/dev/null
grep -q 'exit status 2: disk full' "$TMP/h.json" || fail "cmd: $(cat "$TMP/h.json")"
health deadpid >/dev/null
grep -q "process $dead_pid from .* is not running" "$TMP/h.json" || fail "deadpid: $(cat "$TMP/h.json")"
health closed >/dev/null
grep -q 'Connection refused' "$TMP/h.json" || fail "closed: $(cat "$TMP/h.json")"
[[ $(health nosuchcheck) == 404 ]] || fail "/health/nosuchcheck should be 404"
pass "UP and DOWN with their reasons"

say "the HTTP server goes away: web goes DOWN after 3 failures, not before"
kill -KILL "$web_pid"
wait "$web_pid" 2>/dev/null || true
wait_until 20 "web DOWN" is_state web 503 DOWN
grep -Eq '"consecutive_failures":([3-9]|[1-9][0-9])' "$TMP/h.json" || fail "DOWN before 3 failures: $(cat "$TMP/h.json")"

say "it comes back: web is UP again after 2 successes"
start_web
wait_until 20 "web UP again" is_state web 200 UP
grep -Eq '"consecutive_successes":([2-9]|[1-9][0-9])' "$TMP/h.json" || fail "UP before 2 successes: $(cat "$TMP/h.json")"

kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 20 "$err"
expect_eq "$EXIT_RC" 0 "mars exit code"
expect_eq "$(grep -c "health check 'web' (http) is UP" "$TMP/events.log")" 2 "web UP events"
expect_eq "$(grep -c "health check 'web' (http) is DOWN: connect: Connection refused (3 consecutive failures)" "$TMP/events.log")" 1 "web DOWN events"
expect_eq "$(grep -c "health check 'cmd' (exec) is DOWN" "$TMP/events.log")" 1 "cmd DOWN events"
grep -q '^mars_health_check_up{check="web",type="http"} 1$' "$TMP/events.log" || fail "no metric events in the file: $(head "$TMP/events.log")"
pass "state changes are logged once each, metrics every probe"
