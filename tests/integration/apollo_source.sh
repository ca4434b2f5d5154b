#!/usr/bin/env bash
# The apollo source against tests/fakes/apollo_fake.py, through the apollo_files sink:
# a publish reaches the file within 1 s while the poll is held (the long poll, not the
# 5 min refresh); every namespace format; a signed app is served and an app with a wrong
# secret is refused with an error naming it; incremental sync is merged, and a change
# that cannot be applied is refetched whole; the `messages` of a notification go with the
# fetch; failover from a dead config service, and discovery through the meta server.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"
source "$(dirname "$0")/lib/apollo.bash"

"$MARS_BIN" validate -c "$MARS_SRC/conf/apollo.yaml" >/dev/null || fail "conf/apollo.yaml does not validate"

cat >"$TMP/state.json" <<'JSON'
{"apps": {
  "shop": {"secrets": ["s3cret"], "clusters": {"default": {
      "application": {"db.url": "jdbc:mysql://db/shop", "pool": "8"},
      "datasources.json": "{\"primary\": \"db1\"}",
      "app.yaml": "a: 1\n",
      "rules.xml": "<rules/>",
      "notes.txt": "hello"}}},
  "bad": {"secrets": ["right"], "clusters": {"default": {"application": {"k": "v"}}}}
}}
JSON
start_fake AF apollo_fake --state "$TMP/state.json" --hold 30 --log "$TMP/requests.log"
dead=$(closed_port)
F=$TMP/files
cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
sources:
  cfg:
    type: apollo
    config_service: ["http://127.0.0.1:$dead", "http://127.0.0.1:$AF_PORT"]
    refresh_interval: 5m
    apps:
      - {app_id: shop, secret: s3cret,
         namespaces: [application, datasources.json, app.yaml, rules.xml, notes.txt]}
      - {app_id: bad, secret: wrong}
sinks:
  files: {type: apollo_files, inputs: [cfg], dir: $F}
  json: {type: apollo_files, inputs: [cfg], dir: $TMP/json, format: json}
  events: {type: file, inputs: [cfg], path: $TMP/events.json, encoding: json}
YAML
t_start=$(date +%s%N)
start_mars "$TMP/out" "$TMP/err" -c "$TMP/mars.yaml"
S=$F/shop/default
first_files() {
    local f
    for f in application.properties datasources.json app.yaml rules.xml notes.txt; do
        [[ -f $S/$f ]] || return 1
    done
    [[ -f $TMP/json/shop/default/application.json ]]
}
wait_until 20 "the first files" first_files
# failover is immediate while another service is left: five namespaces failing on the dead
# service at once must not push each other back onto it (and into the 1 s+ backoff)
first_ms=$((($(date +%s%N) - t_start) / 1000000))
((first_ms < 5000)) || fail "the first files took ${first_ms} ms: failover backed off"
file_is "$S/application.properties" $'db.url=jdbc\\:mysql\\://db/shop\npool=8' ||
    fail "application.properties: $(cat "$S/application.properties")"
file_is "$S/datasources.json" '{"primary": "db1"}' || fail "datasources.json: $(cat "$S/datasources.json")"
file_is "$S/app.yaml" 'a: 1' || fail "app.yaml"
file_is "$S/rules.xml" '<rules/>' || fail "rules.xml"
file_is "$S/notes.txt" 'hello' || fail "notes.txt"
file_is "$TMP/json/shop/default/application.json" '{"db.url":"jdbc:mysql://db/shop","pool":"8"}' ||
    fail "application.json: $(cat "$TMP/json/shop/default/application.json")"
[[ $(stat -c %a "$S/application.properties") == 600 ]] || fail "files are not mode 0600"
pass "every namespace format written in ${first_ms} ms, through failover from a dead config service"

wait_until 20 "the refusal of app bad" has_line "$TMP/err" "refused app bad's signature"
[[ ! -e $F/bad ]] || fail "app bad was written despite its wrong secret"
(($(fake_stat "$AF_PORT" unauthorized) > 0)) || fail "the fake saw no unauthorized request"
pass "signed requests accepted; a wrong secret refused with a clear error"

held() { (($(fake_stat "$AF_PORT" polls_held) >= 1)); }
wait_until 20 "a held long poll" held
t0=$(date +%s%N)
apollo_publish "$AF_PORT" shop application '{"db.url":"jdbc:mysql://db2/shop","pool":"8"}'
wait_until 10 "the published change" has_line "$S/application.properties" "db2"
ms=$((($(date +%s%N) - t0) / 1000000))
((ms < 1000)) || fail "the change took ${ms} ms to reach the file (want < 1000)"
grep '"path":"/configs/shop/default/application?' "$TMP/requests.log" | tail -n 1 |
    grep -q 'messages=%7B%22details%22' || fail "the fetch after a notification has no messages"
pass "a publish reached the file in ${ms} ms through the long poll (with messages)"

apollo_settings "$AF_PORT" '{"incremental": true}'
apollo_publish "$AF_PORT" shop application '{"db.url":"jdbc:mysql://db2/shop","pool":"16","new":"x"}'
wait_until 10 "the incremental change" has_line "$S/application.properties" "pool=16"
file_is "$S/application.properties" $'db.url=jdbc\\:mysql\\://db2/shop\nnew=x\npool=16' ||
    fail "after incremental sync: $(cat "$S/application.properties")"
(($(fake_stat "$AF_PORT" incremental) >= 1)) || fail "no incremental answer was served"
apollo_settings "$AF_PORT" '{"bad_incremental": true}'
apollo_publish "$AF_PORT" shop application '{"db.url":"jdbc:mysql://db3/shop","pool":"16"}'
wait_until 10 "the refetch in full" has_line "$S/application.properties" "db3"
file_is "$S/application.properties" $'db.url=jdbc\\:mysql\\://db3/shop\npool=16' ||
    fail "after an unusable incremental: $(cat "$S/application.properties")"
has_line "$TMP/err" "fetching the whole configuration" || fail "no log of the full refetch"
grep -qF '"changes":{"added":["new"],"modified":["pool"],"deleted":[]}' "$TMP/events.json" ||
    fail "no event with the incremental change's keys: $(tail -n 2 "$TMP/events.json")"
pass "incremental sync merged; an unusable one refetched whole"

kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$TMP/err"
((EXIT_RC == 0)) || fail "mars exited $EXIT_RC"

# discovery through the meta server: it lists a dead service and the fake itself
apollo_settings "$AF_PORT" "{\"services\": [\"http://127.0.0.1:$dead/\", \"http://127.0.0.1:$AF_PORT/\"]}"
cat >"$TMP/meta.yaml" <<YAML
data_dir: $TMP/data2
sources:
  cfg: {type: apollo, meta_server: "http://127.0.0.1:$AF_PORT",
        apps: [{app_id: shop, secret_file: $TMP/secret, namespaces: [notes.txt]}]}
sinks:
  files: {type: apollo_files, inputs: [cfg], dir: $TMP/meta, layout: java_cache}
YAML
printf 's3cret\n' >"$TMP/secret"
start_mars "$TMP/out2" "$TMP/err2" -c "$TMP/meta.yaml"
jc=$TMP/meta/shop/config-cache/shop+default+notes.txt.properties
wait_until 20 "the java cache file" test -f "$jc"
file_is "$jc" 'content=hello' || fail "java cache: $(cat "$jc")"
(($(fake_stat "$AF_PORT" meta) >= 1)) || fail "the meta server was not asked"
pass "config services found through the meta server; the Java cache layout written"
