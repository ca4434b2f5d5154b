#!/usr/bin/env bash
# apollo_files after a change: on_change runs its command (no shell: the arguments arrive
# as written) once per changed request, not for an unchanged one; `signal` reaches the
# process in pid_file; a failing command is counted as failed and one that outlives
# command_timeout is killed and counted as timeout (mars_apollo_files_notify_total).
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"
source "$(dirname "$0")/lib/apollo.bash"
unset MARS_API_ADDRESS

echo '{"apps": {"shop": {"clusters": {"default": {"application": {"k": "v1"}}}},
               "ops": {"clusters": {"default": {"application": {"x": "1"}}}}}}' >"$TMP/state.json"
start_fake AF apollo_fake --state "$TMP/state.json" --hold 30

# a process that counts SIGHUPs
"$PY" - "$TMP/hups" "$TMP/reader.pid" <<'PY' &
import os, signal, sys, time
out, pidf = sys.argv[1], sys.argv[2]
n = [0]
def hup(s, f):
    n[0] += 1
    open(out, "w").write("%d\n" % n[0])
signal.signal(signal.SIGHUP, hup)
open(pidf + ".tmp", "w").write("%d\n" % os.getpid())
os.rename(pidf + ".tmp", pidf)
while True:
    time.sleep(1)
PY
_MARS_PIDS+=("$!")
wait_until 10 "the signal reader" test -s "$TMP/reader.pid"

cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
api: {address: "127.0.0.1:0"}
sources:
  shop: {type: apollo, config_service: ["http://127.0.0.1:$AF_PORT"], apps: [{app_id: shop}]}
  ops: {type: apollo, config_service: ["http://127.0.0.1:$AF_PORT"], apps: [{app_id: ops}]}
sinks:
  cmd:
    type: apollo_files
    inputs: [shop]
    dir: $TMP/cmd
    on_change: [sh, -c, 'echo "\$0 \$1" >> $TMP/ran', "one arg; not a shell", "\$HOME"]
  sig: {type: apollo_files, inputs: [shop], dir: $TMP/sig, signal: HUP, pid_file: $TMP/reader.pid}
  slow: {type: apollo_files, inputs: [ops], dir: $TMP/slow, on_change: [sleep, "30"], command_timeout: 300ms}
YAML
start_mars "$TMP/out" "$TMP/err" -c "$TMP/mars.yaml"
wait_until 20 "the first command" test -s "$TMP/ran"
[[ $(head -n 1 "$TMP/ran") == 'one arg; not a shell $HOME' ]] || fail "arguments: $(cat "$TMP/ran")"
wait_until 10 "the first signal" file_is "$TMP/hups" 1
pass "on_change ran with its arguments as written; signal reached the pid_file's process"

apollo_publish "$AF_PORT" shop application '{"k":"v2"}'
ran_twice() { (($(wc -l <"$TMP/ran") >= 2)); }
wait_until 10 "the second command" ran_twice
wait_until 10 "the second signal" file_is "$TMP/hups" 2
apollo_publish "$AF_PORT" shop application '{"k":"v2"}' # a new release, same content
sleep 1
[[ $(wc -l <"$TMP/ran") == 2 ]] || fail "a release with unchanged content ran the command"
file_is "$TMP/hups" 2 || fail "a release with unchanged content sent a signal"
pass "one notification per change; none for unchanged content"

wait_until 10 "the admin API" has_api "$TMP/err"
port=$(api_port "$TMP/err")
metrics() { curl -sf "http://127.0.0.1:$port/metrics" | grep '^mars_apollo_files' || true; }
timed_out() { grep -q 'mars_apollo_files_notify_total{component_id="slow",result="timeout"} 1' <<<"$(metrics)"; }
wait_until 20 "the slow command's timeout" timed_out
m=$(metrics)
grep -q 'mars_apollo_files_notify_total{component_id="cmd",result="ok"} 2' <<<"$m" || fail "cmd ok count: $m"
has_line "$TMP/err" "on_change sleep was killed" || fail "the killed command was not logged"
pass "a command past command_timeout is killed and counted"
