#!/usr/bin/env bash
# stdin -> http against tests/fakes/http_recv.py, which records the decoded bodies of the
# requests it accepted. Every section compares those bodies with what was sent:
#   1 ndjson with gzip and request.concurrency 4: every line once, as a JSON object whose
#     message is the input line; basic auth and a custom header arrive
#   2 json (one array per request), text with PUT, and zstd (recorded raw: this python has
#     no zstd, so only the Content-Encoding of every request is checked); long text lines at
#     request.concurrency 2, whose requests span several read chunks: libcurl reads them
#     from the chunks, and each request still says its Content-Length
#   3 429 with Retry-After: 2 then 503 twice: retried, the resend waits >= 2 s, nothing lost
#   4 400 is permanent: that request's events are counted as lost in the exit summary and
#     later requests go on
#   5 peer down at start, then up, then dropping connections: nothing lost
#   6 https with a private CA; an untrusted certificate is refused (logged, retried)
#   7 HTTP/2: against nghttpd (Debian's nghttp2-server) over TLS, ALPN picks h2 and every
#     request is an h2 POST (nghttpd's frame log shows them)
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"

N=3000
gen_json_lines "$N" "$TMP/in.log"

http_conf() { # http_conf URL EXTRA
    {
        printf 'sources:\n  in: {type: stdin}\nsinks:\n  h:\n    type: http\n'
        printf '    inputs: [in]\n    url: "%s"\n    batch: {max_events: 250}\n' "$1"
        printf '    retry: {initial_backoff: 50ms, max_backoff: 400ms}\n'
        [[ -z $2 ]] || printf '%s\n' "$2"
    } >"$TMP/mars.yaml"
}

# check_lines BODIES MODE [MISSING_COUNT]: every input line arrived exactly once (or all but
# MISSING_COUNT of them); MODE ndjson (objects with message), text (raw lines) or json (arrays)
check_lines() {
    "$PY" - "$TMP/in.log" "$@" <<'PY' || fail "recorded bodies differ from what was sent"
import json, sys
src, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
missing = int(sys.argv[4]) if len(sys.argv) > 4 else 0
want = [l.rstrip("\n") for l in open(src)]
data = open(path, "rb").read().decode()
got = []
if mode == "ndjson":
    got = [json.loads(l)["message"] for l in data.splitlines()]
elif mode == "json":
    dec, i = json.JSONDecoder(), 0
    while i < len(data):
        arr, i = dec.raw_decode(data, i)
        got += [o["message"] for o in arr]
else:
    got = data.splitlines()
seen = {}
for g in got:
    seen[g] = seen.get(g, 0) + 1
dups = [g for g, c in seen.items() if c > 1]
lost = [w for w in want if w not in seen]
extra = [g for g in seen if g not in set(want)]
if dups or extra or len(lost) != missing:
    sys.exit("dups %d, lost %d (expected %d), unexpected %d: %s"
             % (len(dups), len(lost), missing, len(extra), (dups + extra + lost)[:2]))
PY
}

run_once() { # run_once ERR : mars --once reading in.log
    run_mars 60 -c "$TMP/mars.yaml" --once <"$TMP/in.log" 2>"$1"
    expect_eq "$MARS_RC" 0 "exit code; $(tail -n 5 "$1")"
}

say "1. ndjson, gzip, concurrency 4, auth and headers"
start_fake R http_recv --bodies "$TMP/b1" --requests-log "$TMP/r1"
http_conf "http://127.0.0.1:$R_PORT/ingest" "    compression: gzip
    request: {concurrency: 4}
    auth: {strategy: basic, user: u1, password: p1}
    headers: {X-Team: platform}"
run_once "$TMP/e1"
check_lines "$TMP/b1" ndjson
grep -q '"encoding":"gzip"' "$TMP/r1" || fail "no gzip request: $(head -n 1 "$TMP/r1")"
grep -q '"Authorization":"Basic dTE6cDE="' "$TMP/r1" || fail "no basic auth: $(head -n 1 "$TMP/r1")"
grep -q '"X-Team":"platform"' "$TMP/r1" || fail "no custom header: $(head -n 1 "$TMP/r1")"
expect_eq "$(stat_of "$TMP/e1" h sent)" "$N" "sent events"
stop_fake R

say "2. json arrays; text with PUT; zstd"
start_fake R http_recv --bodies "$TMP/b2" --requests-log "$TMP/r2"
http_conf "http://127.0.0.1:$R_PORT/ingest" "    encoding: json"
run_once "$TMP/e2"
check_lines "$TMP/b2" json
: >"$TMP/b2"
http_conf "http://127.0.0.1:$R_PORT/ingest" "    encoding: text
    method: put"
run_once "$TMP/e2b"
check_lines "$TMP/b2" text
grep -q '"method":"PUT"' "$TMP/r2" || fail "no PUT request"
cp "$TMP/in.log" "$TMP/in-short.log"
gen_json_lines "$N" "$TMP/in.log" 2000
: >"$TMP/b2"
: >"$TMP/r2"
{ # the file source: its read chunks are smaller than these requests
    printf 'data_dir: %s\nsources:\n  in: {type: file, include: ["%s"], read_from: beginning}\n' \
        "$TMP/state2d" "$TMP/in.log"
    printf 'sinks:\n  h:\n    type: http\n    inputs: [in]\n    url: "http://127.0.0.1:%s/ingest"\n' \
        "$R_PORT"
    printf '    encoding: text\n    request: {concurrency: 2}\n    batch: {max_events: 1000}\n'
} >"$TMP/mars.yaml"
mkdir -p "$TMP/state2d"
run_mars 60 -c "$TMP/mars.yaml" --once 2>"$TMP/e2d"
expect_eq "$MARS_RC" 0 "exit code; $(tail -n 5 "$TMP/e2d")"
check_lines "$TMP/b2" text
expect_eq "$(grep -c '"Content-Length":"[0-9]*"' "$TMP/r2")" "$(wc -l <"$TMP/r2")" \
    "requests with a Content-Length"
mv "$TMP/in-short.log" "$TMP/in.log"
: >"$TMP/r2"
http_conf "http://127.0.0.1:$R_PORT/ingest" "    compression: zstd"
run_once "$TMP/e2c"
[[ -s $TMP/r2 ]] || fail "no zstd request recorded"
expect_eq "$(grep -c '"encoding":"zstd"' "$TMP/r2")" "$(wc -l <"$TMP/r2")" "requests with zstd"
stop_fake R

say "3. 429 with Retry-After then 503: retried, not before Retry-After"
start_fake R http_recv --bodies "$TMP/b3" --requests-log "$TMP/r3"
fake_script "$R_PORT" '{"requests": [{"status": 429, "retry_after": "2", "times": 1}, {"status": 503, "times": 2}]}'
http_conf "http://127.0.0.1:$R_PORT/ingest" ""
run_once "$TMP/e3"
check_lines "$TMP/b3" ndjson
"$PY" - "$TMP/r3" <<'PY' || fail "the resend after the 429 came too early"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
t429 = next(r["t"] for r in reqs if r["status"] == 429)
after = [r["t"] for r in reqs if r["t"] > t429]
assert after and min(after) - t429 >= 1.9, (min(after) - t429 if after else None)
PY
stop_fake R

say "4. 400 is permanent: counted as lost, later requests delivered"
start_fake R http_recv --bodies "$TMP/b4" --requests-log "$TMP/r4"
fake_script "$R_PORT" '{"requests": [{"status": 400, "times": 1}]}'
http_conf "http://127.0.0.1:$R_PORT/ingest" ""
run_once "$TMP/e4"
lost=$(stat_of "$TMP/e4" h discarded_unintentional)
[[ $lost -gt 0 && $lost -lt $N ]] || fail "expected the events of one request lost, got $lost"
check_lines "$TMP/b4" ndjson "$lost"
grep -q 'HTTP 400 (permanent' "$TMP/e4" || fail "the 400 is not logged: $(tail -n 3 "$TMP/e4")"
stop_fake R

say "5. peer down at start, then up, then dropping connections"
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
http_conf "http://127.0.0.1:$port/ingest" ""
start_mars_in "$TMP/in.log" /dev/null "$TMP/e5" -c "$TMP/mars.yaml" --once
wait_until 10 "a failed attempt" grep -q 'request failed' "$TMP/e5"
printf '{"requests": [{"close": true, "times": 2}]}' >"$TMP/s5.json"
start_fake R http_recv --port "$port" --bodies "$TMP/b5" --requests-log "$TMP/r5" --script "$TMP/s5.json"
wait_exit "$MARS_PID" 60 "$TMP/e5"
expect_eq "$EXIT_RC" 0 "exit code"
check_lines "$TMP/b5" ndjson
stop_fake R

say "6. https with a private CA; an untrusted certificate is refused"
command -v openssl >/dev/null || fail "openssl is missing"
sh "$MARS_SRC/tests/support/gen_certs.sh" "$TMP/certs" || fail "cannot make test certificates"
start_fake R http_recv --tls-cert "$TMP/certs/server.pem" --tls-key "$TMP/certs/server.key" --bodies "$TMP/b6"
http_conf "https://127.0.0.1:$R_PORT/ingest" "    tls: {ca_file: $TMP/certs/ca.pem}"
run_once "$TMP/e6"
check_lines "$TMP/b6" ndjson
http_conf "https://127.0.0.1:$R_PORT/ingest" "    tls: {ca_file: $TMP/certs/other-ca.pem}"
start_mars_in "$TMP/in.log" /dev/null "$TMP/e6b" -c "$TMP/mars.yaml" --once
wait_until 10 "the refused certificate in the log" grep -qi 'certificate' "$TMP/e6b"
# the first SIGTERM drains (it would keep retrying for shutdown_timeout); the second
# abandons what is left, which stays unacknowledged
kill -TERM "$MARS_PID"
wait_until 10 "the drain to start" grep -q 'stopping (draining' "$TMP/e6b"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 15 "$TMP/e6b"
expect_eq "$EXIT_RC" 0 "exit code after two SIGTERMs"
expect_eq "$(wc -l <"$TMP/b6")" "$N" "nothing accepted over the untrusted connection"
stop_fake R
say "7. HTTP/2 over TLS against nghttpd"
command -v nghttpd >/dev/null || fail "nghttpd is missing (scripts/deps.sh test installs nghttp2-server)"
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nghttpd -v --echo-upload -d "$TMP" "$port" "$TMP/certs/server.key" "$TMP/certs/server.pem" >"$TMP/h2.log" 2>&1 &
_MARS_PIDS+=("$!")
h2pid=$!
h2_up() { "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null; }
wait_until 10 "nghttpd listens" h2_up
http_conf "https://127.0.0.1:$port/ingest" "    tls: {ca_file: $TMP/certs/ca.pem}
    http2: true"
run_once "$TMP/e7"
expect_eq "$(stat_of "$TMP/e7" h sent)" "$N" "events sent over h2"
posts=$(grep -c ':method: POST' "$TMP/h2.log" || true)
[[ $posts -ge 1 ]] || fail "nghttpd saw no HTTP/2 POST: $(head -n 20 "$TMP/h2.log")"
grep -q 'recv (stream_id=[0-9]*) content-encoding\|recv DATA frame' "$TMP/h2.log" ||
    fail "no request body over h2: $(grep -m 5 'recv' "$TMP/h2.log")"
kill "$h2pid" 2>/dev/null || true
pass "http sink: ndjson/json/text, gzip/zstd, auth, headers, Retry-After, 400, peer down and dropping, TLS, HTTP/2"
