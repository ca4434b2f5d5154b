#!/usr/bin/env bash
# Configuration reload keeps the data flowing: mars tails a file into out1; the config is
# changed to write into out2 instead (and to add a field) and reloaded, first by SIGHUP,
# then over POST /api/v1/reload. Lines written before, during and after each reload all
# arrive exactly once across the outputs (the file source's checkpoint carries the offset
# over), a broken file is refused by SIGHUP with its problem logged and the running
# pipeline kept, and mars still exits 0 on SIGTERM.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
unset MARS_API_ADDRESS # this test configures api.address itself

command -v curl >/dev/null || fail "curl is missing"
L=$TMP/logs
mkdir -p "$L"
api_port() { grep -o "\[api\] listening on 127.0.0.1:[0-9]*" "$1" | tail -n 1 | sed 's/.*://'; }
reloads() { grep -c 'configuration reloaded from' "$err" || true; }
reloaded() { [[ $(reloads) -ge $1 ]]; }
api_up() { [[ -n $(api_port "$err") ]]; }

write_conf() { # write_conf OUT
    cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
api: {address: "127.0.0.1:0", token: "tok"}
sources: {app: {type: file, include: ["$L/*.log"], glob_interval: 100ms}}
sinks: {out: {type: file, inputs: [app], path: "$1"}}
YAML
}
append() { # append FROM TO : lines seq FROM..TO-1
    local i
    for ((i = $1; i < $2; i++)); do printf 'line %06d\n' "$i"; done >>"$L/app.log"
}
err=$TMP/mars.err
total_lines() { cat "$TMP"/out* 2>/dev/null | wc -l; }
has_lines() { [[ $(total_lines) -ge $1 ]]; }

write_conf "$TMP/out1"
append 0 1000
start_mars /dev/null "$err" -c "$TMP/mars.yaml"
wait_until 10 "the first 1000 lines" has_lines 1000

say "SIGHUP with a broken file: refused, the pipeline keeps running"
sed -i 's/type: file, inputs/type: fil, inputs/' "$TMP/mars.yaml"
kill -HUP "$MARS_PID"
wait_until 10 "the refusal in the log" grep -q 'SIGHUP: .*has problems' "$err"
grep -q "mars.yaml:[0-9]*:[0-9]*: .*fil" "$err" || fail "the problem is not in the log: $(tail -n 5 "$err")"
append 1000 2000
wait_until 10 "lines after the refused reload" has_lines 2000
[[ ! -e $TMP/out2 ]] || fail "out2 exists before any reload"

say "SIGHUP with a good file: out2 from now on"
write_conf "$TMP/out2"
kill -HUP "$MARS_PID"
append 2000 3000 # written while the old pipeline drains and the new one starts
wait_until 15 "the reload" reloaded 1
append 3000 4000
wait_until 15 "4000 lines over out1 and out2" has_lines 4000
[[ -s $TMP/out2 ]] || fail "nothing reached out2 after the reload"

say "POST /api/v1/reload: out3"
wait_until 10 "the new API" api_up
write_conf "$TMP/out3"
port=$(api_port "$err")
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST -H 'Authorization: Bearer tok' "http://127.0.0.1:$port/api/v1/reload")
expect_eq "$code" 202 "reload over the API; body: $(cat "$TMP/body")"
append 4000 5000
wait_until 15 "the second reload" reloaded 2
append 5000 6000
wait_until 15 "6000 lines" has_lines 6000
[[ -s $TMP/out3 ]] || fail "nothing reached out3 after the API reload"

kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 15 "$err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM"
# exactly once over the three outputs, in order within each
sort "$TMP"/out* | uniq -d >"$TMP/dups"
[[ ! -s $TMP/dups ]] || fail "$(wc -l <"$TMP/dups") duplicated lines, e.g. $(head -n 1 "$TMP/dups")"
expect_eq "$(total_lines)" 6000 "lines delivered"
for f in "$TMP"/out*; do
    sort -c "$f" || fail "$f is out of order"
done
pass "two reloads (SIGHUP, API) and a refused one: 6000 of 6000 lines, no duplicates"
