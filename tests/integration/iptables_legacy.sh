#!/usr/bin/env bash
# The iptables source on legacy x_tables (libiptc), in a network namespace of its own:
# exact counts for IPv4 (3 pings to 127.0.0.1 through an OUTPUT rule: 6 packets, 504
# bytes) and IPv6 (::1: 6 packets, 624 bytes); auto reads legacy where legacy tables exist;
# backend legacy in a namespace without legacy tables is one clear error and creates none;
# without CAP_NET_RAW the error names it (not libiptc's "you must be root").
set -euo pipefail
source "$(dirname "$0")/lib/netns.bash"
source "$(dirname "$0")/lib/common.bash"
need_netfilter_tools

cat >"$TMP/legacy.yaml" <<YAML
sources:
  ipt: {type: iptables, backend: legacy}
  gen: {type: demo, count: 3}
sinks:
  out: {type: stdout, inputs: [ipt]}
  file: {type: file, inputs: [gen], path: "$TMP/gen.log"}
YAML

say "backend legacy without legacy tables: a clear error, no table created"
run_mars 30 --once -c "$TMP/legacy.yaml" >"$TMP/none.out" 2>"$TMP/none.err"
expect_eq "$MARS_RC" 0 "exit code"
grep -q 'ERROR \[ipt\] legacy: no legacy iptables tables exist here' "$TMP/none.err" || fail "no clear error: $(cat "$TMP/none.err")"
expect_eq "$(wc -c </proc/net/ip_tables_names)" 0 "legacy ipv4 tables after mars ran"
expect_eq "$(lines_of "$TMP/gen.log")" 3 "lines shipped meanwhile"
pass "missing legacy tables named, none created"

say "legacy rules: exact counts"
iptables-legacy -A OUTPUT -p icmp -m comment --comment "icmp out" -j ACCEPT
iptables-legacy -A OUTPUT -p tcp --dport 9 -j DROP
ip6tables-legacy -A OUTPUT -p ipv6-icmp -m comment --comment "icmp6 out" -j ACCEPT
ping -c3 -q 127.0.0.1 >/dev/null
ping -6 -c3 -q ::1 >/dev/null
run_mars 30 --once -c "$TMP/legacy.yaml" >"$TMP/legacy.out" 2>"$TMP/legacy.err"
expect_eq "$MARS_RC" 0 "exit code"
series() { grep -F "$1" "$2" | awk '{print $NF}'; }
for f in "$TMP/legacy.out"; do
    expect_eq "$(series 'mars_iptables_packets_total{family="ip",table="filter",chain="OUTPUT",rule="icmp out",target="accept"}' "$f")" 6 "ipv4 packets"
    expect_eq "$(series 'mars_iptables_bytes_total{family="ip",table="filter",chain="OUTPUT",rule="icmp out",target="accept"}' "$f")" 504 "ipv4 bytes"
    expect_eq "$(series 'mars_iptables_packets_total{family="ip6",table="filter",chain="OUTPUT",rule="icmp6 out",target="accept"}' "$f")" 6 "ipv6 packets"
    expect_eq "$(series 'mars_iptables_bytes_total{family="ip6",table="filter",chain="OUTPUT",rule="icmp6 out",target="accept"}' "$f")" 624 "ipv6 bytes"
    expect_eq "$(grep -c 'chain="OUTPUT",rule="#[0-9a-f]\{12\}",target="drop"' "$f")" 2 "rule without comment, by digest"
done
pass "legacy ipv4 and ipv6 counts"

say "auto reads legacy where its tables exist"
sed 's/backend: legacy/backend: auto/' "$TMP/legacy.yaml" >"$TMP/auto.yaml"
run_mars 30 --once -c "$TMP/auto.yaml" >"$TMP/auto.out" 2>"$TMP/auto.err"
expect_eq "$(series 'mars_iptables_packets_total{family="ip",table="filter",chain="OUTPUT",rule="icmp out",target="accept"}' "$TMP/auto.out")" 6 "auto: ipv4 packets"
pass "auto"

say "without CAP_NET_RAW: the error names it"
MARS_RC=0
timeout -k 5 30 setpriv --inh-caps=-net_raw --ambient-caps=-net_raw --bounding-set=-net_raw \
    "$MARS_BIN" --once -c "$TMP/legacy.yaml" >/dev/null 2>"$TMP/cap.err" || MARS_RC=$?
expect_eq "$MARS_RC" 0 "exit code without CAP_NET_RAW"
grep -q 'ERROR \[ipt\] legacy: reading iptables needs CAP_NET_ADMIN and CAP_NET_RAW (missing: CAP_NET_RAW)' "$TMP/cap.err" || fail "no clear error: $(cat "$TMP/cap.err")"
grep -qi 'you must be root' "$TMP/cap.err" && fail "libiptc's message leaked"
pass "missing CAP_NET_RAW named"
