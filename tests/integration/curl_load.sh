#!/usr/bin/env bash
# libcurl is opened at run time (core/curl_api.h):
#   1. a pipeline without HTTP never maps libcurl (nor GnuTLS, which it brings along);
#   2. a health check's http:// probe goes UP against a local server without libcurl (it
#      goes through core/http_direct.c), while with http_proxy set it maps libcurl (which
#      honours the proxy) and still goes UP, through the proxy;
#   3. mars runs with GNUTLS_NO_IMPLICIT_INIT=1, and the processes it starts do not see it
#      (an exec probe that fails when the variable is set goes UP);
#   4. where libcurl cannot be opened, a sink that needs it (a proxy in the environment)
#      fails to start with the reason and the package to install, and mars exits non-zero;
#   5. an http:// sink needs no libcurl (core/http_direct.c): with libcurl unloadable it
#      delivers every line, and nothing of libcurl is mapped.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"
command -v curl >/dev/null || fail "curl is missing"
PY=/usr/bin/python3

maps_has() { grep -q "$2" "/proc/$1/maps"; }

say "1: stdin -> blackhole maps no libcurl"
cat >"$TMP/plain.yaml" <<YAML
data_dir: $TMP/data1
api: {address: "127.0.0.1:0"}
sources:
  in: {type: demo, rate: 10}
sinks:
  out: {type: blackhole, inputs: [in]}
YAML
start_mars /dev/null "$TMP/plain.err" -c "$TMP/plain.yaml"
wait_until 20 "the admin API listens" api_port "$TMP/plain.err" >/dev/null
maps_has "$MARS_PID" libcurl && fail "libcurl is mapped by a pipeline without HTTP"
maps_has "$MARS_PID" libgnutls && fail "GnuTLS is mapped by a pipeline without HTTP"
maps_has "$MARS_PID" libyaml || fail "the maps check reads nothing: $(head -3 "/proc/$MARS_PID/maps")"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$TMP/plain.err"
expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$TMP/plain.err")"
pass "1: no libcurl, no GnuTLS in the process"

say "2, 3: an http probe and an exec probe"
"$PY" - "$TMP/web.port" <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(srv.server_address[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
PY
_MARS_PIDS+=("$!")
wait_until 20 "the web server's port" test -s "$TMP/web.port"
web_port=$(cat "$TMP/web.port")
cat >"$TMP/http.yaml" <<YAML
data_dir: $TMP/data2
api: {address: "127.0.0.1:0"}
sources:
  hc:
    type: health_check
    checks:
      - {name: web, type: http, url: "http://127.0.0.1:$web_port/", interval: 200ms, timeout: 2s}
      - {name: env, type: exec, interval: 200ms, timeout: 2s,
         command: [sh, -c, 'if env | grep -q ^GNUTLS_NO_IMPLICIT_INIT=; then echo set; exit 1; fi']}
sinks:
  out: {type: blackhole, inputs: [hc]}
YAML
start_mars /dev/null "$TMP/http.err" -c "$TMP/http.yaml"
wait_until 20 "the admin API listens" api_port "$TMP/http.err" >/dev/null
api=127.0.0.1:$(api_port "$TMP/http.err")
health() { curl -s -o "$TMP/h.json" -w '%{http_code}' "http://$api/health/$1"; }
is_up() { [[ $(health "$1") == 200 ]]; }
wait_until 30 "the http check UP" is_up web
maps_has "$MARS_PID" libcurl && fail "libcurl is mapped although the only probe is http://"
wait_until 30 "the exec check UP (its environment lacks the variable): $(health env; cat "$TMP/h.json")" is_up env
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$TMP/http.err"
expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$TMP/http.err")"
pass "2, 3: the http:// probe UP without libcurl; the child's environment without the variable"

say "2: with http_proxy set, the probe goes through libcurl and the proxy"
cat >"$TMP/proxy.yaml" <<YAML
data_dir: $TMP/data2p
api: {address: "127.0.0.1:0"}
sources:
  hc:
    type: health_check
    checks:
      - {name: proxied, type: http, url: "http://127.0.0.1:1/", interval: 200ms, timeout: 2s}
sinks:
  out: {type: blackhole, inputs: [hc]}
YAML
# port 1 answers nothing: UP means the request went to the proxy (the web server above,
# which answers any GET)
http_proxy=http://127.0.0.1:$web_port start_mars /dev/null "$TMP/proxy.err" -c "$TMP/proxy.yaml"
wait_until 20 "the admin API listens" api_port "$TMP/proxy.err" >/dev/null
api=127.0.0.1:$(api_port "$TMP/proxy.err")
loaded() { grep -q "loaded libcurl [0-9].* (GnuTLS's implicit initialisation off)" "$TMP/proxy.err"; }
wait_until 30 "libcurl loaded with GnuTLS idle for the probe" loaded
maps_has "$MARS_PID" libcurl || fail "libcurl is not mapped although the probe ran"
wait_until 30 "the proxied check UP: $(show_log "$TMP/proxy.err")" is_up proxied
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$TMP/proxy.err"
expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$TMP/proxy.err")"
pass "2: libcurl mapped for a proxied request, which went through the proxy"

say "4: libcurl cannot be opened"
cat >"$TMP/nocurl.yaml" <<YAML
data_dir: $TMP/data3
api: {address: "127.0.0.1:0"}
sources:
  in: {type: demo, rate: 10}
sinks:
  out: {type: http, inputs: [in], url: "http://127.0.0.1:$web_port/"}
YAML
http_proxy=http://127.0.0.1:1 MARS_TEST_HOOKS=curl_soname=$TMP/no/libcurl.so.4 \
    start_mars /dev/null "$TMP/nocurl.err" -c "$TMP/nocurl.yaml"
wait_exit "$MARS_PID" 30 "$TMP/nocurl.err"
[[ $EXIT_RC -ne 0 ]] || fail "mars ran without libcurl: $(show_log "$TMP/nocurl.err")"
grep -q "cannot load libcurl: .*no/libcurl.so.4.*install libcurl4" "$TMP/nocurl.err" ||
    fail "no reason given: $(show_log "$TMP/nocurl.err")"
grep -q "cannot start sink 'out': Package not installed" "$TMP/nocurl.err" ||
    fail "the sink's error: $(show_log "$TMP/nocurl.err")"
pass "4: exit $EXIT_RC with: $(grep -m1 -o 'cannot load libcurl.*' "$TMP/nocurl.err")"

say "5: an http:// sink without libcurl"
start_fake R http_recv --bodies "$TMP/b5"
cat >"$TMP/direct.yaml" <<YAML
data_dir: $TMP/data5
api: {address: "127.0.0.1:0"}
sources:
  in: {type: stdin}
sinks:
  out: {type: http, inputs: [in], url: "http://127.0.0.1:$R_PORT/ingest", encoding: text}
YAML
seq 1 5000 >"$TMP/in5"
mkfifo "$TMP/fifo5"
MARS_TEST_HOOKS=curl_soname=$TMP/no/libcurl.so.4 env --default-signal=INT "$MARS_BIN" \
    -c "$TMP/direct.yaml" <"$TMP/fifo5" >/dev/null 2>"$TMP/direct.err" &
MARS_PID=$!
_MARS_PIDS+=("$MARS_PID")
exec 3>"$TMP/fifo5"
cat "$TMP/in5" >&3
all_in() { [[ -s $TMP/b5 ]] && (($(wc -l <"$TMP/b5") >= 5000)); }
wait_until 30 "5000 lines at the receiver" all_in
maps_has "$MARS_PID" libcurl && fail "libcurl is mapped by a pipeline whose HTTP is all http://"
grep -q "cannot load libcurl" "$TMP/direct.err" && fail "libcurl was tried: $(show_log "$TMP/direct.err")"
exec 3>&-
wait_exit "$MARS_PID" 30 "$TMP/direct.err"
expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$TMP/direct.err")"
cmp -s "$TMP/in5" "$TMP/b5" || fail "the bodies differ from the input: $(diff "$TMP/in5" "$TMP/b5" | head -3)"
pass "5: 5000 lines over http:// with no libcurl in the process"
