#!/usr/bin/env bash
# The tcp sink with TLS against tests/fakes/tcp_recv.py --tls, with certificates made by
# tests/support/gen_certs.sh (openssl CLI):
# 1. delivery, verified by DNS name (localhost) and by IP (127.0.0.1), byte for byte;
# 2. a server certificate from another CA is refused with a clear log line, counted as a
#    tls error, nothing is sent to that server, and the lines are held: once a server with
#    a good certificate takes the port, all of them arrive;
# 3. verify: false accepts that certificate and logs a warning;
# 4. mutual TLS: a server that requires a client certificate gets mars's (cert_file,
#    key_file), and one without a client certificate is refused by the server.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/tcp.bash"

make_certs
N=50000
seq_lines "$TMP/seq" $N

config() { # config ADDRESS TLS_MAPPING_ENTRIES [RUNTIME_ENTRIES]
    tcp_config "$1" "tls: {enabled: true, $2}" "${3:-}" 300ms
}

say "1. TLS delivery verified by name and by IP address"
for host in localhost 127.0.0.1; do
    start_recv "good-$host" --tls "$CERTS/server.pem" "$CERTS/server.key"
    config "$host:$RECV_PORT" "ca_file: $CERTS/ca.pem"
    run_mars 60 -c "$TMP/mars.yaml" <"$TMP/seq" 2>"$TMP/err"
    expect_eq "$MARS_RC" 0 "$host: exit code; $(show_log "$TMP/err")"
    recv_idle "good-$host"
    cmp "$TMP/seq" "$TMP/good-$host.out" || fail "$host: received lines differ from the input"
    grep -qF "[out] connected to $host:$RECV_PORT (TLSv1.3 " "$TMP/err" ||
        fail "$host: no 'connected ... (TLSv1.3 ...)' line: $(show_log "$TMP/err")"
    expect_eq "$(stat_of "$TMP/err" out errors)" 0 "$host: sink errors"
    stop_recv "$RECV_PID"
done

say "2. a certificate from another CA is refused; the lines wait for a good server"
start_recv bad --tls "$CERTS/other-server.pem" "$CERTS/other-server.key"
port=$RECV_PORT
bad_pid=$RECV_PID
config "localhost:$port" "ca_file: $CERTS/ca.pem"
start_mars_in "$TMP/seq" "$TMP/err" -c "$TMP/mars.yaml"
mars_pid=$MARS_PID
refused() { grep -qF "TLS handshake with localhost:$port: certificate verify failed: unable to get local issuer certificate" "$TMP/err"; }
wait_until 20 "the verify failure in the log" refused
wait_until 10 "the admin API" test -n "$(mars_api)"
tls_errors() { (($(metric mars_component_errors_total 'error_type="tls"') >= 2)); }
wait_until 20 "two tls errors in /metrics" tls_errors
grep -q "alert unknown ca" "$TMP/bad.log" || fail "the bad server did not get an 'unknown ca' alert: $(cat "$TMP/bad.log")"
expect_eq "$(lines_of "$TMP/bad.out")" 0 "lines received by the server with the bad certificate"
stop_recv "$bad_pid"
start_recv fixed --port "$port" --tls "$CERTS/server.pem" "$CERTS/server.key"
wait_exit "$mars_pid" 60 "$TMP/err"
expect_eq "$EXIT_RC" 0 "exit code after the good server came; $(show_log "$TMP/err")"
recv_idle fixed
cmp "$TMP/seq" "$TMP/fixed.out" || fail "lines held through the bad certificate differ from the input"
stop_recv "$RECV_PID"

say "3. verify: false accepts any certificate and says so"
start_recv any --tls "$CERTS/other-server.pem" "$CERTS/other-server.key"
config "localhost:$RECV_PORT" "verify: false"
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/seq" 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "verify false: exit code; $(show_log "$TMP/err")"
recv_idle any
cmp "$TMP/seq" "$TMP/any.out" || fail "verify false: received lines differ from the input"
grep -qF "WARN  [out] TLS certificate verification is off (tls.verify: false)" "$TMP/err" ||
    fail "no warning about verify: false: $(show_log "$TMP/err")"
stop_recv "$RECV_PID"

say "4. mutual TLS"
start_recv mtls --tls "$CERTS/server.pem" "$CERTS/server.key" --client-ca "$CERTS/ca.pem"
config "127.0.0.1:$RECV_PORT" "ca_file: $CERTS/ca.pem, cert_file: $CERTS/client.pem, key_file: $CERTS/client.key"
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/seq" 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "mTLS: exit code; $(show_log "$TMP/err")"
recv_idle mtls
cmp "$TMP/seq" "$TMP/mtls.out" || fail "mTLS: received lines differ from the input"
grep -q "client certificate.*mars-client" "$TMP/mtls.log" || fail "the server saw no client certificate: $(cat "$TMP/mtls.log")"
# The lines can never be delivered here, so the stop after the refusal abandons them at
# the shutdown timeout: a request counts as sent only if its last send completed before
# the alert was read, and with zero-copy sends (io_uring) a send completes when the peer
# acknowledged its bytes, which a refusing server never does.
config "127.0.0.1:$RECV_PORT" "ca_file: $CERTS/ca.pem" "shutdown_timeout: 2s"
: >"$TMP/mtls.out"
start_mars_in "$TMP/seq" "$TMP/err" -c "$TMP/mars.yaml"
# TLS 1.3 ends the client's handshake before the server checks the client certificate, so
# mars sees either the server's "certificate required" alert or, when its first write
# races the server's close, a reset: either way a failed attempt
refused() { grep -qE "certificate required|will be sent again|cannot send|cannot connect" "$TMP/err"; }
wait_until 20 "the server's refusal in the log" refused
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 20 "$TMP/err"
expect_eq "$(lines_of "$TMP/mtls.out")" 0 "lines accepted without a client certificate"

pass "TLS by name and IP, bad certificate refused then held lines delivered, verify false warned, mutual TLS"
