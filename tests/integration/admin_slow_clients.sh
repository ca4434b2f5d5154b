#!/usr/bin/env bash
# Slow clients must not starve the probes (issue 24, defect 4). 48 connections, more than
# api.max_connections (32), each trickle one header byte every 2 s and reconnect when
# closed; for 25 s /healthz and /readyz are asked every 0.5 s and each must answer 200
# within 4 s. Before the fix every slot stayed taken and no probe was answered. Then
# mars_api_connections_closed_total shows both limits at work and mars exits 0.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
unset MARS_API_ADDRESS # this test configures api.address itself

api_port() { grep -o "\[api\] listening on 127.0.0.1:[0-9]*" "$1" | head -n 1 | sed 's/.*://'; }
listening() { [[ -n $(api_port "$1") ]]; }

cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
api: {address: "127.0.0.1:0"}
sources: {gen: {type: demo, rate: 100}}
sinks: {bh: {type: blackhole, inputs: [gen], print_interval: 1h}}
YAML
err="$TMP/mars.err"
start_mars /dev/null "$err" -c "$TMP/mars.yaml"
pid=$MARS_PID
wait_until 20 "the admin API listens" listening "$err"
port=$(api_port "$err")

say "48 slow clients against 32 slots; probes every 0.5 s for 25 s"
/usr/bin/python3 - "$port" <<'PY'
import socket, sys, threading, time

port = int(sys.argv[1])
stop = threading.Event()
reconnects = [0]

def slow_client():
    # a byte every 2 s; a new connection whenever the server closes this one
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            time.sleep(0.2)
            continue
        try:
            for b in head:
                s.sendall(bytes([b]))
                if stop.wait(2):
                    break
        except OSError:
            reconnects[0] += 1
        finally:
            s.close()

def probe(path):
    s = socket.create_connection(("127.0.0.1", port), timeout=4)
    try:
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while not data.endswith(b"\n") or b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode(errors="replace")
    finally:
        s.close()

threads = [threading.Thread(target=slow_client, daemon=True) for _ in range(48)]
for t in threads:
    t.start()
time.sleep(3)  # every slow client connected and trickling
failures, probes = [], 0
end = time.monotonic() + 25
while time.monotonic() < end:
    for path in (b"/healthz", b"/readyz"):
        t0 = time.monotonic()
        try:
            status = probe(path)
        except OSError as e:
            status = "error: %s" % e
        probes += 1
        took = time.monotonic() - t0
        if status != "HTTP/1.1 200 OK" or took > 4:
            failures.append("%s at %.1f s: %r after %.1f s" % (path.decode(), 25 - (end - time.monotonic()), status, took))
    time.sleep(0.5)
stop.set()
for t in threads:
    t.join(timeout=5)
if failures:
    print("FAIL admin_slow_clients: %d of %d probes failed:\n  %s"
          % (len(failures), probes, "\n  ".join(failures[:20])), file=sys.stderr)
    sys.exit(1)
print("== admin_slow_clients: %d probes answered 200 within 4 s; slow clients were closed %d times"
      % (probes, reconnects[0]))
PY

say "mars_api_connections_closed_total counts both limits"
metric() {
    curl -s --max-time 10 "http://127.0.0.1:$port/metrics" |
        awk -v s="mars_api_connections_closed_total{reason=\"$1\"}" '$1 == s { print $2 }'
}
to=$(metric request_timeout)
ev=$(metric max_connections)
((${to:-0} > 0)) || fail "no request_timeout closes counted (got '${to}')"
((${ev:-0} > 0)) || fail "no max_connections evictions counted (got '${ev}')"
grep -q 'closing a connection that sent no whole request in 5000 ms' "$err" ||
    fail "no log line for the request timeout: $(show_log "$err")"

kill -TERM "$pid"
wait_exit "$pid" 20 "$err"
expect_eq "$EXIT_RC" 0 "exit code"
pass "probes answered throughout a slow-client flood (timed out $to, evicted $ev)"
