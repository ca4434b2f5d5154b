# shellcheck shell=bash disable=SC2034  # sets variables for the scripts that source it
# Helpers for the apollo tests (source after common.bash and fakes.bash):
#   apollo_publish PORT APP NS JSON_MAP   publishes a properties namespace on apollo_fake
#   apollo_publish_content PORT APP NS TEXT   a json/yaml/xml/txt namespace
#   apollo_settings PORT JSON             hold, incremental, tolerance, services, ...
#   api_port ERRFILE                      (common.bash) the admin API's port from mars's log
#   closed_port                           a loopback port nobody listens on
#   has_line FILE TEXT                    grep -qF
apollo_publish() {
    curl -sf -X POST "http://127.0.0.1:$1/_fake/publish" \
        --data-binary "{\"app\":\"$2\",\"ns\":\"$3\",\"configs\":$4}" >/dev/null ||
        fail "cannot publish $2/$3 on port $1"
}
apollo_publish_content() {
    local body
    body=$("$PY" -c 'import json,sys; print(json.dumps({"app":sys.argv[1],"ns":sys.argv[2],"content":sys.argv[3]}))' "$2" "$3" "$4")
    curl -sf -X POST "http://127.0.0.1:$1/_fake/publish" --data-binary "$body" >/dev/null ||
        fail "cannot publish $2/$3 on port $1"
}
apollo_settings() {
    curl -sf -X POST "http://127.0.0.1:$1/_fake/settings" --data-binary "$2" >/dev/null ||
        fail "cannot change the fake's settings on port $1"
}
closed_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
has_line() { grep -qF -- "$2" "$1" 2>/dev/null; }
file_is() { [[ -f $1 ]] && [[ $(cat "$1") == "$2" ]]; }
has_api() { api_port "$1" >/dev/null; }
