# shellcheck shell=bash
# Runs the sourcing test inside a network namespace of its own (sourced before common.bash):
# the script re-executes itself under `unshare -n` (`unshare -Urn` when not root), brings
# loopback up, and everything it starts (mars, iptables, nft, ping, curl) sees only that
# namespace's rules. The namespace dies with the script's last process, so nothing is left
# behind and the host's own rules are never touched.
#   need_netfilter_tools   fails the test unless iptables, nft and ping are installed
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
