#!/usr/bin/env bash
# `mars top` (issue 21) in a real terminal: tmux runs it against a mars with a demo source,
# a transform and two sinks; capture-pane shows the header with the io backend in use and
# one row per component, the EVENTS OUT count of the source rising between refreshes, `s`
# changing the sort to id order, and `q` ending it. Over the API's unix socket (stdout not
# a terminal) it prints one table; with nothing listening it says so and exits 3.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
unset MARS_API_ADDRESS # this test configures api.address itself

command -v tmux >/dev/null || { echo "SKIP top: tmux is not installed"; exit 77; }
command -v curl >/dev/null || fail "curl is missing"

sock=$TMP/api.sock
cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
api: {address: "127.0.0.1:0"}
sources:
  gen: {type: demo, format: json, rate: 200}
transforms:
  parsed: {type: parse, inputs: [gen], format: json}
sinks:
  sink_b: {type: blackhole, inputs: [parsed]}
  archive: {type: file, inputs: [gen], path: "$TMP/out.log"}
YAML
err=$TMP/err.log
start_mars /dev/null "$err" -c "$TMP/mars.yaml"
api_port() { grep -o "\[api\] listening on 127.0.0.1:[0-9]*" "$err" | head -n 1 | sed 's/.*://'; }
listening() { [[ -n $(api_port) ]]; }
wait_until 20 "the admin API listens" listening
api=127.0.0.1:$(api_port)
backend=$(curl -sf "http://$api/metrics" | sed -n 's/^mars_build_info{.*io_backend="\([a-z_]*\)".*/\1/p')
[[ -n $backend ]] || fail "no io backend in mars_build_info"

tmx=(tmux -L "mars-top-$$" -f /dev/null)
cleanup_tmux() { "${tmx[@]}" kill-server 2>/dev/null || true; }
trap 'rc=$?; cleanup_tmux; (exit $rc); _mars_cleanup' EXIT
"${tmx[@]}" new-session -d -s top -x 150 -y 30 "$MARS_BIN top $api; echo TOP-EXITED-\$?; sleep 60"
screen() { "${tmx[@]}" capture-pane -p -t top >"$TMP/screen" 2>/dev/null; }
shows() { screen && grep -qE -- "$1" "$TMP/screen"; }
# the EVENTS OUT column (6th) of component $1
events_out() { screen && awk -v id="$1" '$1 == id { print $6 }' "$TMP/screen"; }

say "the view: header, every component, counts rising"
wait_until 30 "the header names the io backend ($backend)" shows "^mars [0-9.]+ +io backend: $backend "
wait_until 30 "a row per component" shows '^archive +sink +file '
for row in '^gen +source +demo ' '^parsed +transform +parse ' '^sink_b +sink +blackhole '; do
    shows "$row" || fail "no row '$row' in: $(cat "$TMP/screen")"
done
first=$(events_out gen)
[[ $first =~ ^[0-9]+$ ]] || fail "no EVENTS OUT for gen: $(cat "$TMP/screen")"
rising() { local n; n=$(events_out gen); [[ $n =~ ^[0-9]+$ ]] && ((n > first)); }
wait_until 30 "gen's EVENTS OUT to rise above $first" rising
wait_until 30 "a rate for gen" shows '^gen +source +demo +[1-9]'
order() { screen && awk '$2 == "source" || $2 == "transform" || $2 == "sink" { printf "%s ", $1 }' "$TMP/screen"; }
expect_eq "$(order)" "gen parsed sink_b archive " "rows in config order"

say "s sorts by id, q quits"
"${tmx[@]}" send-keys -t top s
wait_until 10 "sort: id" shows '^sort: id'
in_id_order() { [[ $(order) == "archive gen parsed sink_b " ]]; }
wait_until 10 "rows in id order" in_id_order
"${tmx[@]}" send-keys -t top r
wait_until 10 "sort: id reversed" shows '^sort: id \(reversed\)'
in_reverse_id_order() { [[ $(order) == "sink_b parsed gen archive " ]]; }
wait_until 10 "rows in reverse id order" in_reverse_id_order
# back round to the config's order, reversed
for _ in 1 2 3 4 5 6; do "${tmx[@]}" send-keys -t top s; done
wait_until 10 "sort: config reversed" shows '^sort: config \(reversed\)'
in_reverse_config_order() { [[ $(order) == "archive sink_b parsed gen " ]]; }
wait_until 10 "rows in reverse config order" in_reverse_config_order
"${tmx[@]}" send-keys -t top q
wait_until 10 "mars top to exit 0 on q" shows '^TOP-EXITED-0'

say "over the unix socket, not a terminal: one table"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 40 "$err"
sed -i "s|address: \"127.0.0.1:0\"|address: \"$sock\"|" "$TMP/mars.yaml"
start_mars /dev/null "$TMP/err2.log" -c "$TMP/mars.yaml"
wait_until 20 "the API socket" test -S "$sock"
sleep 1
run_mars 20 top "$sock" >"$TMP/table" 2>"$TMP/top.err"
expect_eq "$MARS_RC" 0 "mars top over the socket: $(cat "$TMP/top.err")"
grep -qE "^mars [0-9.]+ +io backend: $backend +workers: [0-9]+ " "$TMP/table" || fail "header: $(cat "$TMP/table")"
grep -qE '^gen +source +demo +[0-9.]+K? +[0-9.]+K? +[1-9][0-9]* ' "$TMP/table" || fail "gen row: $(cat "$TMP/table")"
if grep -q $'\033' "$TMP/table"; then fail "escape sequences in non-terminal output"; fi

say "nothing listening: a clear error, exit 3"
run_mars 20 top 127.0.0.1:1 >"$TMP/none" 2>"$TMP/none.err"
expect_eq "$MARS_RC" 3 "mars top with no API"
grep -q "mars top: cannot reach http://127.0.0.1:1" "$TMP/none.err" || fail "error text: $(cat "$TMP/none.err")"
pass "mars top shows live counts in tmux, sorts, quits, and works over a unix socket"
