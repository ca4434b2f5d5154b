# shellcheck shell=bash disable=SC2034  # sets variables for the scripts that source it
# Helpers for the mars -> mars tests (mars_*.sh), sourced after common.bash.
#   start_receiver YAML ERR [ID]  starts a receiving mars whose mars source ID (default
#                                 `in`) listens on 127.0.0.1:0 or a fixed port, and waits
#                                 until it listens; sets RECV_PID and RECV_PORT (the port
#                                 it bound, read from its log)

#
# A fixed port may still be taken for a moment after the previous receiver was killed: with
# io_uring the kernel releases a dead process's sockets when it tears its ring down, which
# it does asynchronously. So "Address already in use" is retried for up to 5 s.
start_receiver() {
    local yaml=$1 err=$2 tries=0
    _recv_id=${3:-in}
    _listening() {
        grep -qF "[$_recv_id] listening on 127.0.0.1:" "$err" 2>/dev/null && return 0
        alive "$RECV_PID" && return 1
        if grep -qF 'Address already in use' "$err" && ((++tries < 50)); then
            sleep 0.1
            start_mars /dev/null "$err" -c "$yaml"
            RECV_PID=$MARS_PID
            return 1
        fi
        fail "the receiver exited: $(show_log "$err")"
    }
    start_mars /dev/null "$err" -c "$yaml"
    RECV_PID=$MARS_PID
    wait_until 10 "the receiver to listen" _listening
    RECV_PORT=$(listen_port "$err" "$_recv_id" last)
}
