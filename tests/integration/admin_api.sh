#!/usr/bin/env bash
# The admin API of the mars binary refuses what it should and keeps serving: unknown paths
# (404), wrong methods (405), unknown methods (501), garbage and malformed requests (400 or closed), huge headers,
# bodies over api.max_body_size (413), connections over api.max_connections (the oldest
# idle one is closed, the new one served), and
# POST /api/v1/reload without, with a wrong and with the right token for a broken file
# (401, 403, 400 with the problem; reload itself: reload.sh). Then
# /healthz and /readyz are still 200 and mars exits 0 on SIGTERM.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
unset MARS_API_ADDRESS # this test configures api.address itself

command -v curl >/dev/null || fail "curl is missing"
api_port() { grep -o "\[$2\] listening on 127.0.0.1:[0-9]*" "$1" | head -n 1 | sed 's/.*://'; }
listening() { [[ -n $(api_port "$1" "$2") ]]; }

cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
api: {address: "127.0.0.1:0", token: "s3cr3t-t0ken", max_connections: 4, max_body_size: 2KiB,
      max_headers_size: 4KiB}
sources: {gen: {type: demo, rate: 100}}
sinks: {bh: {type: blackhole, inputs: [gen]}}
YAML
err="$TMP/mars.err"
start_mars /dev/null "$err" -c "$TMP/mars.yaml"
pid=$MARS_PID
wait_until 10 "the admin API listens" listening "$err" api
port=$(api_port "$err" api)
api=127.0.0.1:$port

# raw_status FILE : sends FILE's bytes to the API, prints the response status (0 = closed)
raw_status() {
    python3 - "$port" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
try:
    s.sendall(open(sys.argv[2], "rb").read())
except OSError:
    pass
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
parts = data.split(b" ", 2)
print(int(parts[1]) if data.startswith(b"HTTP/1.") and len(parts) > 1 else 0)
PY
}
code() { curl -s -o "$TMP/body" -w '%{http_code}' "$@"; }
refused() { # status 0 (closed), 4xx, or 501 (an unknown method, as RFC 9110 says)
    [[ $1 == 0 || $1 == 501 || ($1 -ge 400 && $1 -lt 500) ]]
}

say "paths and methods"
expect_eq "$(code "http://$api/nope")" 404 "unknown path"
expect_eq "$(code -X DELETE "http://$api/metrics")" 405 "DELETE /metrics"
expect_eq "$(code -X PUT "http://$api/healthz")" 405 "PUT /healthz"
expect_eq "$(code "http://$api/api/v1/reload")" 405 "GET /api/v1/reload"
expect_eq "$(code -I "http://$api/healthz")" 200 "HEAD /healthz"

say "garbage and malformed requests"
printf '\x00\x01\x02garbage\r\n\r\n' >"$TMP/r1"
printf 'GET\r\n\r\n' >"$TMP/r2"
printf 'FROB /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >"$TMP/r3"
printf 'GET /healthz HTTP/1.1\r\nthis is not a header\r\n\r\n' >"$TMP/r4"
printf 'POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n' >"$TMP/r5"
{ printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: '; head -c 100000 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } >"$TMP/r6"
{ printf 'POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n'; head -c 100000 /dev/zero | tr '\0' b; } >"$TMP/r7"
for r in r1 r2 r3 r4 r5 r6 r7; do
    st=$(raw_status "$TMP/$r")
    refused "$st" || fail "request $r was not refused (status $st)"
done
expect_eq "$(raw_status "$TMP/r7")" 413 "body over max_body_size"
alive "$pid" || fail "mars died on malformed requests: $(show_log "$err")"

say "reload needs the token"
expect_eq "$(code -X POST "http://$api/api/v1/reload")" 401 "reload without a token"
expect_eq "$(code -X POST -H 'Authorization: Bearer wrong' "http://$api/api/v1/reload")" 403 "reload with a wrong token"
# the file now has a typo: the reload is refused with the problem, the running pipeline stays
cp "$TMP/mars.yaml" "$TMP/mars.yaml.good"
sed -i 's/type: blackhole/type: blackhol/' "$TMP/mars.yaml"
expect_eq "$(code -X POST -H 'Authorization: Bearer s3cr3t-t0ken' "http://$api/api/v1/reload")" 400 "reload of a broken file"
grep -q 'mars.yaml:[0-9]*:[0-9]*: .*blackhol' "$TMP/body" || fail "400 body: $(cat "$TMP/body")"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/body" || fail "400 body is not JSON: $(cat "$TMP/body")"
cp "$TMP/mars.yaml.good" "$TMP/mars.yaml"

# accepted N : mars holds N connections on the API port. A connection the kernel has set up
# but mars has not accepted yet is in no fd table; one it has accepted is in mars's.
accepted() {
    local mine n
    mine=$(awk -v port="$(printf ':%04X' "$port")" '
        substr($2, length($2) - 4) == port && $4 == "01" { print "socket:[" $10 "]" }' /proc/net/tcp)
    [[ -n $mine ]] || return 1
    n=$(find "/proc/$pid/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | grep -cxF "$mine" || true)
    ((n == $1))
}

say "a connection over max_connections closes the one idle longest and is served"
for fd in 3 4 5 6; do
    eval "exec $fd<>/dev/tcp/127.0.0.1/$port"
done
wait_until 20 "mars accepted the 4 connections" accepted 4
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$TMP/ok"
expect_eq "$(raw_status "$TMP/ok")" 200 "a fifth connection"
for fd in 3 4 5 6; do
    eval "exec $fd>&-"
done
served() { [[ $(raw_status "$TMP/ok") == 200 ]]; }
wait_until 10 "requests are served once connections close" served

say "still healthy"
expect_eq "$(code "http://$api/healthz")" 200 "/healthz"
expect_eq "$(code "http://$api/readyz")" 200 "/readyz"
expect_eq "$(code "http://$api/api/v1/components")" 200 "/api/v1/components"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [c["id"] for c in d["components"]] == ["gen", "bh"], d' "$TMP/body" ||
    fail "components JSON: $(cat "$TMP/body")"
kill -TERM "$pid"
wait_exit "$pid" 20 "$err"
expect_eq "$EXIT_RC" 0 "exit code"
pass "malformed admin requests are refused and mars keeps serving"
