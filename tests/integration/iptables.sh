#!/usr/bin/env bash
# The iptables source on nf_tables, in a network namespace of its own: iptables-nft and
# native nft rules with comments, a rule without one (named by digest), a named counter
# object; exact counts (3 pings to 127.0.0.1 through an OUTPUT rule: 6 packets, 504 bytes);
# the namespace has no legacy table after mars ran; a rule rewritten with the same comment
# keeps its series; selection options; the exporter's output passes promtool; without
# CAP_NET_ADMIN one clear error while the rest of the pipeline runs.
set -euo pipefail
source "$(dirname "$0")/lib/netns.bash"
source "$(dirname "$0")/lib/common.bash"
need_netfilter_tools
command -v promtool >/dev/null || fail "promtool is missing (scripts/deps.sh test)"

say "rules: iptables-nft with a comment and without, native nft with a comment, a named counter"
iptables-nft -A OUTPUT -p icmp -m comment --comment "icmp out" -j ACCEPT
iptables-nft -A OUTPUT -p tcp --dport 9 -j DROP
nft add table inet t
nft add chain inet t out '{ type filter hook output priority 0; }'
nft add rule inet t out ip protocol icmp counter comment '"native icmp"'
nft add rule inet t out meta l4proto tcp counter
nft add counter inet t named
ping -c3 -q 127.0.0.1 >/dev/null

cat >"$TMP/once.yaml" <<YAML
sources:
  ipt: {type: iptables, backend: nft}
sinks:
  out: {type: stdout, inputs: [ipt]}
YAML
run_mars 30 --once -c "$TMP/once.yaml" >"$TMP/once.out" 2>"$TMP/once.err"
expect_eq "$MARS_RC" 0 "mars --once exit code"
series() { grep -F "$1" "$TMP/once.out" | awk '{print $NF}'; }
expect_eq "$(series 'mars_iptables_packets_total{family="ip",table="filter",chain="OUTPUT",rule="icmp out",target="accept"}')" 6 "iptables-nft packets"
expect_eq "$(series 'mars_iptables_bytes_total{family="ip",table="filter",chain="OUTPUT",rule="icmp out",target="accept"}')" 504 "iptables-nft bytes"
expect_eq "$(series 'mars_iptables_packets_total{family="inet",table="t",chain="out",rule="native icmp",target=""}')" 6 "native nft packets"
expect_eq "$(series 'mars_iptables_bytes_total{family="inet",table="t",chain="out",rule="native icmp",target=""}')" 504 "native nft bytes"
expect_eq "$(grep -c 'chain="OUTPUT",rule="#[0-9a-f]\{12\}",target="drop"' "$TMP/once.out")" 2 "rule without comment, by digest"
expect_eq "$(grep -c 'table="t",chain="",rule="named"' "$TMP/once.out")" 2 "named counter object"
expect_eq "$(grep -c 'iptables_packets_total' "$TMP/once.out")" 5 "series with a counter"
pass "exact counts from iptables-nft and native nft"

expect_eq "$(wc -c </proc/net/ip_tables_names)" 0 "legacy ipv4 tables after mars ran"
expect_eq "$(wc -c </proc/net/ip6_tables_names)" 0 "legacy ipv6 tables after mars ran"
pass "the nft namespace has no legacy table"

say "selection: chains, families, comment_prefix"
cat >"$TMP/sel.yaml" <<YAML
sources:
  a: {type: iptables, backend: auto, families: [inet]}
  b: {type: iptables, chains: ["OUT*"], comment_prefix: "icmp"}
sinks:
  out: {type: stdout, inputs: [a, b]}
YAML
run_mars 30 --once -c "$TMP/sel.yaml" >"$TMP/sel.out" 2>"$TMP/sel.err"
expect_eq "$MARS_RC" 0 "selection run exit code"
expect_eq "$(grep -c 'iptables_packets_total' "$TMP/sel.out")" 4 "inet (2 rules, 1 object) + icmp* in OUT* (1)"
expect_eq "$(grep -c 'family="inet".*rule="named"' "$TMP/sel.out")" 2 "object kept without a chains selection"
pass "selection"

say "a rewritten rule keeps its series; the exporter passes promtool"
cat >"$TMP/run.yaml" <<YAML
api: {address: "127.0.0.1:0"}
sources:
  ipt: {type: iptables, interval: 200ms, tables: [filter, t]}
sinks:
  prom: {type: prometheus_exporter, inputs: [ipt], address: "127.0.0.1:0"}
YAML
err="$TMP/run.err"
start_mars "$TMP/run.out" "$err" -c "$TMP/run.yaml"
pid=$MARS_PID
port() { grep -o "\[prom\] listening on 127.0.0.1:[0-9]*" "$err" | head -n 1 | sed 's/.*://'; }
listening() { [[ -n $(port) ]]; }
wait_until 20 "the exporter listens" listening
url="http://127.0.0.1:$(port)/metrics"
has() { curl -sf "$url" >"$TMP/scrape.txt" && grep -qF "$1" "$TMP/scrape.txt"; }
# the exporter sorts labels by name
icmp='mars_iptables_packets_total{chain="OUTPUT",family="ip",rule="icmp out",table="filter",target="accept"}'
wait_until 20 "6 packets on the exporter" has "$icmp 6"
promtool check metrics <"$TMP/scrape.txt" || fail "promtool rejects the exporter's output: $(cat "$TMP/scrape.txt")"
iptables-nft -D OUTPUT -p icmp -m comment --comment "icmp out" -j ACCEPT
iptables-nft -I OUTPUT 1 -p icmp -m comment --comment "icmp out" -j ACCEPT
ping -c1 -q 127.0.0.1 >/dev/null
wait_until 20 "the rewritten rule's counter (reset, then 2)" has "$icmp 2"
expect_eq "$(grep -c 'rule="icmp out"' "$TMP/scrape.txt")" 2 "one packets and one bytes series for the comment"
pass "rewrite with the same comment keeps the series; promtool clean"
kill -TERM "$pid"
wait_exit "$pid" 20 "$err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM"

say "without CAP_NET_ADMIN: one clear error, the rest of the pipeline runs"
cat >"$TMP/cap.yaml" <<YAML
sources:
  ipt: {type: iptables, backend: nft}
  gen: {type: demo, count: 5}
sinks:
  out: {type: file, inputs: [gen], path: "$TMP/cap.log"}
  bh: {type: blackhole, inputs: [ipt]}
YAML
MARS_RC=0
timeout -k 5 30 setpriv --inh-caps=-net_admin --ambient-caps=-net_admin --bounding-set=-net_admin \
    "$MARS_BIN" --once -c "$TMP/cap.yaml" >/dev/null 2>"$TMP/cap.err" || MARS_RC=$?
expect_eq "$MARS_RC" 0 "exit code without CAP_NET_ADMIN"
grep -q 'ERROR \[ipt\] nft: reading rules needs CAP_NET_ADMIN' "$TMP/cap.err" || fail "no clear error: $(cat "$TMP/cap.err")"
grep -qi 'you must be root' "$TMP/cap.err" && fail "libiptc's message leaked: $(cat "$TMP/cap.err")"
expect_eq "$(lines_of "$TMP/cap.log")" 5 "lines the demo source shipped meanwhile"
pass "missing capability named; pipeline unaffected"
