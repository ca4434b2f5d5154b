#!/usr/bin/env bash
# mars -> mars over the native protocol (mars sink -> mars source), on loopback:
#  1. JSON lines parsed into fields on the sender arrive byte-exact: the receiver's file
#     (json) equals the file the sender writes itself from the same events (timestamps,
#     nested objects, arrays, escaped strings, numbers, booleans, null); every line is
#     acknowledged end to end.
#  2. A wrong token is refused: logged and counted on the receiver, nothing delivered, the
#     sender keeps retrying (and acknowledges nothing).
#  3. Malformed frames (garbage, no HELLO, bad protobuf, too large, bad lz4, invalid field,
#     bad sequence, bad token) each get an ERROR frame and a closed connection, are counted,
#     and the source keeps serving a well-behaved sender running at the same time.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/mars_pair.bash"

N=20000
TOKEN=s3cr3t-token
printf '%s' "$TOKEN" >"$TMP/token"

say "1. $N JSON lines with fields: sender's own file == receiver's file, byte for byte"
/usr/bin/python3 - "$TMP/in.json" "$N" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        o = {"seq": i, "level": ["info", "warn", "error"][i % 3], "msg": "h\u00e9llo \"q\" \\ %d" % i,
             "n": 1.5e3 + i, "ok": i % 2 == 0, "none": None, "tags": [i, {"a": "b"}],
             "http": {"status": 200 + i % 5, "path": "/x/%d" % i, "hdr": {"ua": "t\tab"}}}
        s = json.dumps(o, ensure_ascii=(i % 2 == 0))
        if i % 7 == 0:
            s = s.replace('"t\\tab"', '"t\\u0009ab"')  # an escape the encoder would not write
        f.write(s + "\n")
PY
cat >"$TMP/recv.yaml" <<YAML
data_dir: $TMP/recv-data
host: {name: recv-host}
sources:
  in: {type: mars, address: "127.0.0.1:0", token_file: $TMP/token}
sinks:
  out: {type: file, inputs: [in], path: $TMP/recv.json, encoding: json}
YAML
start_receiver "$TMP/recv.yaml" "$TMP/recv.err"
cat >"$TMP/send.yaml" <<YAML
data_dir: $TMP/send-data
host: {name: send-host}
sources:
  in: {type: stdin}
transforms:
  p: {type: parse, inputs: [in], format: json}
sinks:
  ship: {type: mars, inputs: [p], address: "127.0.0.1:$RECV_PORT", token: "$TOKEN",
         frame_bytes: 64KiB, window: 4}
  own: {type: file, inputs: [p], path: $TMP/own.json, encoding: json}
YAML
run_mars 60 -c "$TMP/send.yaml" <"$TMP/in.json" 2>"$TMP/send.err"
expect_eq "$MARS_RC" 0 "sender exit code; $(show_log "$TMP/send.err")"
expect_eq "$(stat_of "$TMP/send.err" in acknowledged)" "$N" "sender: lines acknowledged"
expect_eq "$(stat_of "$TMP/send.err" ship sent)" "$N" "mars sink: events sent"
kill -TERM "$RECV_PID"
wait_exit "$RECV_PID" 10 "$TMP/recv.err"
expect_eq "$EXIT_RC" 0 "receiver exit code"
expect_eq "$(stat_of "$TMP/recv.err" in received)" "$N" "mars source: events received"
expect_eq "$(stat_of "$TMP/recv.err" in acknowledged)" "$N" "mars source: events acknowledged"
expect_eq "$(stat_of "$TMP/recv.err" in errors)" 0 "mars source: errors"
expect_eq "$(lines_of "$TMP/recv.json")" "$N" "lines in the receiver's file"
cmp "$TMP/own.json" "$TMP/recv.json" || fail "the receiver's file differs from the sender's own:
$(diff <(head -n 3 "$TMP/own.json") <(head -n 3 "$TMP/recv.json") || true)"
expect_eq "$(grep -c '"host":"send-host"' "$TMP/recv.json")" "$N" "events keeping the sender's host"
pass "$N lines with fields arrived byte-exact, with the sender's host"

say "2. wrong token: refused, counted, nothing delivered, the sender retries"
cat >"$TMP/recv2.yaml" <<YAML
data_dir: $TMP/recv2-data
sources:
  in: {type: mars, address: "127.0.0.1:0", token_file: $TMP/token}
sinks:
  out: {type: file, inputs: [in], path: $TMP/recv2.txt}
YAML
start_receiver "$TMP/recv2.yaml" "$TMP/recv2.err"
cat >"$TMP/send2.yaml" <<YAML
data_dir: $TMP/send2-data
runtime: {shutdown_timeout: 1s}
sources:
  gen: {type: demo, count: 100, rate: 0}
sinks:
  ship: {type: mars, inputs: [gen], address: "127.0.0.1:$RECV_PORT", token: wrong,
         retry: {initial_backoff: 50ms, max_backoff: 200ms}}
YAML
start_mars /dev/null "$TMP/send2.err" -c "$TMP/send2.yaml"
send_pid=$MARS_PID
refusals() { (($(grep -c 'bad token: wrong token' "$TMP/recv2.err") >= 3)); }
wait_until 20 "three refused HELLOs (the sender retrying)" refusals
grep -q 'refused: bad token' "$TMP/send2.err" || fail "the sender did not log the refusal: $(show_log "$TMP/send2.err")"
kill -TERM "$send_pid"
wait_exit "$send_pid" 10 "$TMP/send2.err"
expect_eq "$(stat_of "$TMP/send2.err" gen acknowledged)" 0 "sender: events acknowledged with a wrong token"
kill -TERM "$RECV_PID"
wait_exit "$RECV_PID" 10 "$TMP/recv2.err"
expect_eq "$(lines_of "$TMP/recv2.txt")" 0 "lines delivered with a wrong token"
expect_eq "$(stat_of "$TMP/recv2.err" in received)" 0 "events received with a wrong token"
nref=$(stat_of "$TMP/recv2.err" in errors)
((nref >= 3)) || fail "receiver counted $nref errors for >= 3 refused connections"
pass "wrong token refused $nref times, nothing delivered"

say "3. malformed frames: ERROR + close each, counted; a good sender is served meanwhile"
cat >"$TMP/recv3.yaml" <<YAML
data_dir: $TMP/recv3-data
sources:
  in: {type: mars, address: "127.0.0.1:0", token_file: $TMP/token, max_frame_bytes: 64KiB}
sinks:
  out: {type: file, inputs: [in], path: $TMP/recv3.txt}
YAML
start_receiver "$TMP/recv3.yaml" "$TMP/recv3.err"
cat >"$TMP/send3.yaml" <<YAML
data_dir: $TMP/send3-data
sources:
  gen: {type: demo, count: 6000, rate: 3000, format: json}
sinks:
  ship: {type: mars, inputs: [gen], address: "127.0.0.1:$RECV_PORT", token: "$TOKEN"}
YAML
start_mars /dev/null "$TMP/send3.err" -c "$TMP/send3.yaml"
send_pid=$MARS_PID
declare -A want=([garbage]=3 [no_hello]=3 [bad_protobuf]=3 [too_large]=4 [bad_lz4]=3
                 [bad_number]=3 [bad_seq]=3 [bad_token]=1)
nbad=0
for c in garbage no_hello bad_protobuf too_large bad_lz4 bad_number bad_seq bad_token; do
    out=$(timeout 15 /usr/bin/python3 "$MARS_SRC/tests/integration/tools/mars_badpeer.py" "$RECV_PORT" "$TOKEN" "$c")
    last_err=$(grep '^4 ' <<<"$out" | tail -n 1 | awk '{print $3}')
    expect_eq "$last_err" "${want[$c]}" "$c: error code in the ERROR frame (got: $out)"
    [[ $(tail -n 1 <<<"$out") == closed ]] || fail "$c: connection not closed: $out"
    nbad=$((nbad + 1))
done
out=$(timeout 15 /usr/bin/python3 "$MARS_SRC/tests/integration/tools/mars_badpeer.py" "$RECV_PORT" "$TOKEN" good)
grep -qx '3 1' <<<"$out" || fail "a hand-made good batch was not acknowledged: $out"
wait_exit "$send_pid" 30 "$TMP/send3.err"
expect_eq "$EXIT_RC" 0 "well-behaved sender exit code"
expect_eq "$(stat_of "$TMP/send3.err" gen acknowledged)" 6000 "well-behaved sender: acknowledged"
kill -TERM "$RECV_PID"
wait_exit "$RECV_PID" 10 "$TMP/recv3.err"
expect_eq "$EXIT_RC" 0 "receiver exit code after malformed frames"
expect_eq "$(stat_of "$TMP/recv3.err" in errors)" "$nbad" "receiver: errors counted"
expect_eq "$(lines_of "$TMP/recv3.txt")" 6001 "lines delivered (6000 + the hand-made one)"
pass "$nbad malformed peers refused and counted; 6001 good lines delivered"
