# shellcheck shell=bash
# Runs the sourcing test inside a network namespace of its own (sourced before common.bash):
# the script re-executes itself under `unshare -n` (`unshare -Urn` when not root), brings
# loopback up, and everything it starts (mars, iptables, nft, ping, curl) sees only that
# namespace's rules. The namespace dies with the script's last process, so nothing is left
# behind and the host's own rules are never touched.
#   need_netfilter_tools   fails the test unless iptables, nft and ping are installed
#   start_tcp_listener     a TCP listener on 127.0.0.1:$TCP_PORT that accepts forever
#                          (killed on exit); tcp_connects succeeds when a connect does (1 s)
if [[ -z ${MARS_IN_NETNS:-} ]]; then
    command -v unshare >/dev/null || { echo "FAIL: unshare is missing" >&2; exit 1; }
    if (($(id -u) == 0)); then
        MARS_IN_NETNS=1 exec unshare -n bash "$0" "$@"
    fi
    # rootless: iptables-legacy wants a lock file it can write
    export XTABLES_LOCKFILE=${TMPDIR:-/tmp}/mars-xtables.lock
    MARS_IN_NETNS=1 exec unshare -Urn bash "$0" "$@"
fi
ip link set lo up

need_netfilter_tools() {
    local t
    for t in iptables-nft iptables-legacy ip6tables-legacy nft ping; do
        command -v "$t" >/dev/null || fail "$t is missing (scripts/deps.sh test installs iptables, nftables, iputils-ping)"
    done
}

start_tcp_listener() {
    TCP_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    /usr/bin/python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $TCP_PORT)); s.listen(64)
while True:
    c, _ = s.accept(); c.close()
" &
    _MARS_PIDS+=($!)
    wait_until 10 "the listener accepts" tcp_connects
}

tcp_connects() {
    /usr/bin/python3 -c "
import socket, sys
try:
    socket.create_connection(('127.0.0.1', $TCP_PORT), timeout=1).close()
except OSError:
    sys.exit(1)"
}
