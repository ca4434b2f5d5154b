# shellcheck shell=bash disable=SC2034  # sets variables for the scripts that source it
# Helpers for the mars -> mars tests (mars_*.sh), sourced after common.bash.
#   start_receiver YAML ERR [ID]  starts a receiving mars whose mars source ID (default
#                                 `in`) listens on 127.0.0.1:0 or a fixed port, and waits
#                                 until it listens; sets RECV_PID and RECV_PORT (the port
#                                 it bound, read from its log)

start_receiver() {
    local yaml=$1 err=$2
    _recv_id=${3:-in}
    start_mars /dev/null "$err" -c "$yaml"
    RECV_PID=$MARS_PID
    _listening() {
        grep -qF "[$_recv_id] listening on 127.0.0.1:" "$err" 2>/dev/null && return 0
        alive "$RECV_PID" || fail "the receiver exited: $(show_log "$err")"
        return 1
    }
    wait_until 10 "the receiver to listen" _listening
    RECV_PORT=$(grep -F "[$_recv_id] listening on" "$err" | tail -n 1 |
        sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p')
}
