#!/usr/bin/env bash
# bench/iptables.sh - the iptables source at kube-proxy size. In a private network namespace
# (root: `unshare -n`; nothing touches the host's rules) it loads 10,000 OUTPUT rules with a
# comment and a counter each, once through iptables-nft-restore and once through
# iptables-legacy-restore (a fresh namespace each), and prints:
#   - one dump's CPU and wall time per backend (ipt_dump_bench, median of 11)
#   - file -> blackhole throughput of the same mars, without and with an iptables source
#     reading those rules every 100 ms (150x more often than the 15 s default), median of 3
# Usage: bench/iptables.sh [BUILD_DIR]   (default build; needs iptables, nftables, root)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
rules=${IPT_RULES:-10000}
work=$(mktemp -d "${TMPDIR:-/tmp}/mars-ipt-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

{
    echo '*filter'
    for ((i = 0; i < rules; i++)); do
        echo "-A OUTPUT -d 10.$((i / 65536 % 256)).$((i / 256 % 256)).$((i % 256))/32 -p tcp -m comment --comment \"default/svc-$i:http cluster IP\" -j ACCEPT"
    done
    echo 'COMMIT'
} >"$work/rules"
# 256 MiB of 100-byte lines for the throughput runs
python3 -c "
import sys
line = b'x' * 99 + b'\n'
with open(sys.argv[1], 'wb') as f:
    for _ in range(256 * 1024 * 1024 // 100 // 4096):
        f.write(line * 4096)
" "$work/data.log"
expected=$(wc -l <"$work/data.log")

conf() { # conf WITH_IPT
    echo "data_dir: $work/data-$1"
    echo 'api: {address: "127.0.0.1:18686"}'
    echo 'sources:'
    echo "  f: {type: file, include: [\"$work/data.log\"], read_from: beginning}"
    [[ $1 == yes ]] && echo '  ipt: {type: iptables, interval: 100ms}'
    echo 'sinks:'
    echo '  bh: {type: blackhole, inputs: [f]}'
    [[ $1 == yes ]] && echo '  bh2: {type: blackhole, inputs: [ipt]}'
    return 0
}
conf no >"$work/no.yaml"
conf yes >"$work/yes.yaml"

cat >"$work/inner.sh" <<INNER
set -euo pipefail
ip link set lo up
iptables-\$1-restore <"$work/rules"
"$build/ipt_dump_bench" \$1 11
[[ \$1 == nft ]] || exit 0
# mars runs until the blackhole has every line (polled on /metrics every 20 ms), so the
# iptables source keeps reading during the whole run (--once would read only once)
for with in no yes; do
    for run in 1 2 3; do
        rm -rf "$work/data-\$with"
        s=\$(date +%s%N)
        "$build/mars" -c "$work/\$with.yaml" 2>"$work/err-\$with" >/dev/null &
        pid=\$!
        until curl -sf http://127.0.0.1:18686/metrics 2>/dev/null | grep -q '^mars_component_sent_events_total{component_id="bh",[^}]*} $expected\$'; do
            kill -0 \$pid 2>/dev/null || { echo "mars died" >&2; cat "$work/err-\$with" >&2; exit 1; }
            sleep 0.02
        done
        e=\$(date +%s%N)
        kill -TERM \$pid; wait \$pid || true
        echo "\$(( (e - s) / 1000000 ))"
    done | sort -n | sed -n 2p | awk -v w=\$with -v mb=256 '{printf "file -> blackhole, iptables source %s: %d ms, %.0f MiB/s (median of 3)\n", (w == "yes" ? "reading the rules every 100ms" : "absent"), \$1, mb * 1000 / \$1}'
done
INNER
echo "== $rules rules, $(nproc) cores, $(uname -r)"
unshare -n bash "$work/inner.sh" nft
unshare -n bash "$work/inner.sh" legacy
