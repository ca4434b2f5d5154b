#!/usr/bin/env bash
# bench/iptables_rules.sh - managed rules of the iptables source at pod scale. In a private
# network namespace (root: `unshare -n`; the host's rules are never touched) mars manages
# N accounting rules (one per made-up pod IP, default 5,000), once on nft and once on
# legacy iptables (a fresh namespace each, legacy tables made first), and prints:
#   - the first apply: from "running" to "managed rules applied" in mars's log
#   - the steady-state check (every interval; nothing to change): CPU per check, from the
#     process's CPU time over 9 s at interval 200 ms, minus a run that only reads counters
# Usage: bench/iptables_rules.sh [BUILD_DIR]   (default build; needs iptables, nftables, root)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
n=${IPT_MANAGED_RULES:-5000}
work=$(mktemp -d "${TMPDIR:-/tmp}/mars-ipt-rules-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

conf() { # conf WITH_RULES: counters of no table (tables: [none]) so the dump costs ~nothing
    printf 'sources:\n  ipt:\n    type: iptables\n    interval: 200ms\n    tables: [none]\n'
    printf '    keep_on_exit: true\n'
    if [[ $1 == yes ]]; then
        echo '    rules:'
        for ((i = 0; i < n; i++)); do
            echo "      - {name: \"pod:$i\", direction: input, source: \"10.$((i / 250 % 250)).$((i % 250)).1\"}"
        done
    fi
    printf 'sinks:\n  bh: {type: blackhole, inputs: [ipt]}\n'
}
conf yes >"$work/yes.yaml"
conf no >"$work/no.yaml"

cat >"$work/inner.sh" <<INNER
set -euo pipefail
ip link set lo up
if [[ \$1 == legacy ]]; then iptables-legacy -L >/dev/null; ip6tables-legacy -L >/dev/null; fi
export MARS_API_ADDRESS=127.0.0.1:0
timeout -s TERM 3 "$build/mars" -c "$work/yes.yaml" 2>"$work/first.err" >/dev/null || true
t0=\$(date -d "\$(grep -m1 -o '^[^ ]*Z.*running' "$work/first.err" | cut -d' ' -f1)" +%s%N)
t1=\$(date -d "\$(grep -m1 'managed rules applied' "$work/first.err" | cut -d' ' -f1)" +%s%N)
echo "\$1: first apply of $n rules: \$(((t1 - t0) / 1000000)) ms"
for with in yes no; do
    timeout -s TERM 10 "$build/mars" -c "$work/\$with.yaml" 2>/dev/null >/dev/null &
    p=\$!
    sleep 9.5
    eval "ticks_\$with=\$(awk '{print \$14 + \$15}' /proc/\$(pgrep -P \$p)/stat)"
    wait \$p || true
done
hz=\$(getconf CLK_TCK)
echo "\$1: check of $n unchanged rules: \$(( (ticks_yes - ticks_no) * 1000 / hz / 47 )) ms CPU each (47 checks)"
INNER
for backend in nft legacy; do
    unshare -n bash "$work/inner.sh" "$backend"
done
