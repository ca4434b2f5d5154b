#!/usr/bin/env bash
# mars -> mars over TLS, with certificates made by tests/support/gen_certs.sh:
#  1. TLS both ways: N lines delivered byte for byte, the sender says which TLS it got;
#  2. the receiver's certificate is from a CA the sender does not trust: the sender refuses
#     it (tls error, counted and logged), nothing is delivered, it keeps retrying;
#  3. a plain sender to a TLS receiver: the receiver counts a failed handshake, nothing is
#     delivered;
#  4. mutual TLS: a receiver with ca_file refuses a sender without a client certificate and
#     accepts one with cert_file/key_file, whose lines all arrive.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/mars_pair.bash"

CERTS=$TMP/certs
sh "$MARS_SRC/tests/support/gen_certs.sh" "$CERTS" || fail "cannot make test certificates"
N=30000
DEMO='{type: demo, count: 1000, rate: 0}' # background senders: stdin would end at once
seq -f 'line %08.0f of the tls test' 1 "$N" >"$TMP/in.txt"

recv_config() { # recv_config NAME TLS_ENTRIES
    cat >"$TMP/$1.yaml" <<YAML
data_dir: $TMP/$1-data
sources:
  in: {type: mars, address: "127.0.0.1:0", handshake_timeout: 2s,
       tls: {enabled: true, cert_file: $CERTS/$2.pem, key_file: $CERTS/$2.key $3}}
sinks:
  out: {type: file, inputs: [in], path: $TMP/$1.txt}
YAML
}

send_config() { # send_config NAME PORT TLS_SECTION [SOURCE]: stdin, or a mapping
    cat >"$TMP/$1-send.yaml" <<YAML
data_dir: $TMP/$1-send-data
runtime: {shutdown_timeout: 1s}
sources:
  in: ${4:-{type: stdin\}}
sinks:
  ship: {type: mars, inputs: [in], address: "localhost:$2", connect_timeout: 2s,
         retry: {initial_backoff: 50ms, max_backoff: 300ms}, tls: $3}
YAML
}

stop_receiver() { # stop_receiver ERR
    kill -TERM "$RECV_PID"
    wait_exit "$RECV_PID" 10 "$1"
    expect_eq "$EXIT_RC" 0 "receiver exit code"
}

say "1. TLS: $N lines arrive byte for byte"
recv_config good server ""
start_receiver "$TMP/good.yaml" "$TMP/good.err"
grep -qF 'with TLS' "$TMP/good.err" || fail "the receiver does not say it listens with TLS"
send_config good "$RECV_PORT" "{enabled: true, ca_file: $CERTS/ca.pem}"
run_mars 60 -c "$TMP/good-send.yaml" <"$TMP/in.txt" 2>"$TMP/good-send.err"
expect_eq "$MARS_RC" 0 "sender exit code; $(show_log "$TMP/good-send.err")"
expect_eq "$(stat_of "$TMP/good-send.err" in acknowledged)" "$N" "sender: lines acknowledged"
grep -qE 'connected to localhost:[0-9]+ with TLSv1\.[23]' "$TMP/good-send.err" ||
    fail "the sender did not log its TLS connection: $(show_log "$TMP/good-send.err")"
stop_receiver "$TMP/good.err"
cmp "$TMP/in.txt" "$TMP/good.txt" || fail "the receiver's output differs from the input"
pass "$N lines over TLS, byte for byte"

say "2. a receiver certificate from an untrusted CA is refused by the sender"
recv_config untrusted other-server ""
start_receiver "$TMP/untrusted.yaml" "$TMP/untrusted.err"
send_config untrusted "$RECV_PORT" "{enabled: true, ca_file: $CERTS/ca.pem}" "$DEMO"
start_mars /dev/null "$TMP/untrusted-send.err" -c "$TMP/untrusted-send.yaml"
send_pid=$MARS_PID
tls_refusals() { (($(grep -c 'certificate verify failed' "$TMP/untrusted-send.err") >= 2)); }
wait_until 20 "two refused handshakes (the sender retrying)" tls_refusals
kill -TERM "$send_pid"
wait_exit "$send_pid" 10 "$TMP/untrusted-send.err"
expect_eq "$(stat_of "$TMP/untrusted-send.err" in acknowledged)" 0 "acknowledged by an untrusted receiver"
nerr=$(stat_of "$TMP/untrusted-send.err" ship errors)
((nerr >= 2)) || fail "the sender counted $nerr errors for >= 2 refused handshakes"
stop_receiver "$TMP/untrusted.err"
expect_eq "$(lines_of "$TMP/untrusted.txt")" 0 "lines delivered to an untrusted receiver"
pass "untrusted receiver refused ($nerr errors), nothing delivered"

say "3. a plain sender to a TLS receiver: failed handshake counted, nothing delivered"
recv_config plain server ""
start_receiver "$TMP/plain.yaml" "$TMP/plain.err"
send_config plain "$RECV_PORT" "{enabled: false}" "$DEMO"
start_mars /dev/null "$TMP/plain-send.err" -c "$TMP/plain-send.yaml"
send_pid=$MARS_PID
hs_failures() { grep -q 'TLS handshake with .* failed' "$TMP/plain.err"; }
wait_until 20 "the receiver to refuse a plain sender" hs_failures
kill -TERM "$send_pid"
wait_exit "$send_pid" 10 "$TMP/plain-send.err"
expect_eq "$(stat_of "$TMP/plain-send.err" in acknowledged)" 0 "acknowledged over a failed handshake"
stop_receiver "$TMP/plain.err"
nerr=$(stat_of "$TMP/plain.err" in errors)
((nerr >= 1)) || fail "the receiver counted no error for a failed handshake"
expect_eq "$(lines_of "$TMP/plain.txt")" 0 "lines delivered over a failed handshake"
pass "plain sender refused by a TLS receiver"

say "4. mutual TLS: no client certificate refused, a client certificate accepted"
recv_config mutual server ", ca_file: $CERTS/ca.pem"
start_receiver "$TMP/mutual.yaml" "$TMP/mutual.err"
send_config nocert "$RECV_PORT" "{enabled: true, ca_file: $CERTS/ca.pem}" "$DEMO"
start_mars /dev/null "$TMP/nocert-send.err" -c "$TMP/nocert-send.yaml"
send_pid=$MARS_PID
mutual_refusals() { grep -q 'TLS handshake with .* failed' "$TMP/mutual.err"; }
wait_until 20 "the receiver to refuse a sender without a certificate" mutual_refusals
kill -TERM "$send_pid"
wait_exit "$send_pid" 10 "$TMP/nocert-send.err"
expect_eq "$(stat_of "$TMP/nocert-send.err" in acknowledged)" 0 "acknowledged without a client certificate"
send_config cert "$RECV_PORT" "{enabled: true, ca_file: $CERTS/ca.pem, cert_file: $CERTS/client.pem, key_file: $CERTS/client.key}"
run_mars 60 -c "$TMP/cert-send.yaml" <"$TMP/in.txt" 2>"$TMP/cert-send.err"
expect_eq "$MARS_RC" 0 "mutual TLS sender exit code; $(show_log "$TMP/cert-send.err")"
expect_eq "$(stat_of "$TMP/cert-send.err" in acknowledged)" "$N" "mutual TLS: lines acknowledged"
stop_receiver "$TMP/mutual.err"
cmp "$TMP/in.txt" "$TMP/mutual.txt" || fail "mutual TLS: the receiver's output differs from the input"
pass "mutual TLS: refused without a certificate, $N lines with one"
