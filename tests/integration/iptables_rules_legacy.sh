#!/usr/bin/env bash
# Managed rules of the iptables source on legacy x_tables (libiptc), in a network namespace
# of its own whose legacy filter tables exist: backend auto puts the rules into chains
# MARS-INPUT/-OUTPUT/-FORWARD entered by one jump each (and makes no nft table); exact
# counts for IPv4 (6 packets, 504 bytes) and IPv6 (6 packets, 624 bytes); drop drops; a
# reload changes only the difference (the unchanged rules keep their counters); SIGTERM
# removes the chains and jumps and leaves everyone else's rules; without CAP_NET_RAW the
# error names it.
set -euo pipefail
source "$(dirname "$0")/lib/netns.bash"
source "$(dirname "$0")/lib/common.bash"
need_netfilter_tools

iptables-legacy -A OUTPUT -m comment --comment "not mars" -j ACCEPT
ip6tables-legacy -L >/dev/null # makes the ip6 filter table
before4=$(iptables-legacy -S)
before6=$(ip6tables-legacy -S)

start_tcp_listener
port=$TCP_PORT

write_conf() {
    cat >"$TMP/run.yaml" <<YAML
sources:
  ipt:
    type: iptables
    interval: 200ms
    chains: ["MARS-*"]
    rules:
$1
sinks:
  prom: {type: prometheus_exporter, inputs: [ipt], address: "127.0.0.1:0"}
YAML
}
write_conf "      - {name: \"icmp out\", direction: output, protocol: icmp, destination: 127.0.0.1}
      - {name: \"no tcp\", direction: input, protocol: tcp, port: $port, action: drop}
      - {name: \"icmp6 out\", direction: output, protocol: icmpv6, destination: \"::1\"}"
prom_port() { grep -o "\[prom\] listening on 127.0.0.1:[0-9]*" "$err" | tail -n 1 | sed 's/.*://'; }
scrape() { curl -sf "http://127.0.0.1:$(prom_port)/metrics" >"$TMP/scrape.txt"; }
has() { scrape && grep -qF "$1" "$TMP/scrape.txt"; }
s4='{chain="MARS-OUTPUT",family="ip",rule="icmp out",table="filter",target=""}'
s6='{chain="MARS-OUTPUT",family="ip6",rule="icmp6 out",table="filter",target=""}'

say "rules in MARS-* chains, exact counts, drop drops"
err="$TMP/run.err"
start_mars "$TMP/run.out" "$err" -c "$TMP/run.yaml"
pid=$MARS_PID
wait_until 20 "the rules applied" grep -q 'managed rules applied: 4 added, 0 removed, 0 unchanged' "$err"
expect_eq "$(iptables-legacy -S OUTPUT | grep -c -- '-j MARS-OUTPUT')" 1 "jumps from OUTPUT"
expect_eq "$(iptables-legacy -S OUTPUT | sed -n 2p)" "-A OUTPUT -j MARS-OUTPUT" "the jump comes first"
expect_eq "$(ip6tables-legacy -S INPUT | grep -c -- '-j MARS-INPUT')" 1 "ip6 jumps from INPUT"
iptables-legacy -S MARS-INPUT | grep -- "-p tcp -m comment --comment \"no tcp\" -m tcp --dport $port -j DROP" >/dev/null ||
    fail "the drop rule: $(iptables-legacy -S)"
nft list tables | grep 'inet mars' >/dev/null && fail "backend auto made an nft table on a legacy namespace"
ping -c3 -q 127.0.0.1 >/dev/null
ping -6 -c3 -q ::1 >/dev/null
wait_until 20 "ipv4: 6 packets" has "mars_iptables_packets_total$s4 6"
wait_until 20 "ipv4: 504 bytes" has "mars_iptables_bytes_total$s4 504"
wait_until 20 "ipv6: 6 packets" has "mars_iptables_packets_total$s6 6"
wait_until 20 "ipv6: 624 bytes" has "mars_iptables_bytes_total$s6 624"
tcp_connects && fail "a TCP connect went through the drop rule"
expect_eq "$(grep -c 'managed rules applied' "$err")" 1 "applies that changed something"
pass "legacy counts and drop"

say "reload: only the difference changes"
write_conf "      - {name: \"icmp out\", direction: output, protocol: icmp, destination: 127.0.0.1}
      - {name: \"icmp6 out\", direction: output, protocol: icmpv6, destination: \"::1\"}
      - {name: \"udp in\", direction: input, protocol: udp, ports: [\"5000-5010\"]}"
kill -HUP "$pid"
wait_until 30 "the reload's apply" grep -q 'managed rules applied: 2 added, 2 removed, 2 unchanged' "$err"
wait_until 20 "TCP connects again" tcp_connects
wait_until 20 "ipv4 counter kept" has "mars_iptables_bytes_total$s4 504"
grep -qF "mars_iptables_bytes_total$s6 624" "$TMP/scrape.txt" || fail "ipv6 counter after reload: $(cat "$TMP/scrape.txt")"
iptables-legacy -S MARS-INPUT | grep -- '-p udp -m comment --comment "udp in" -m udp --dport 5000:5010' >/dev/null ||
    fail "the new rule: $(iptables-legacy -S)"
pass "reload kept the unchanged rules and their counters"

say "SIGTERM removes the chains and their jumps, nothing else"
kill -TERM "$pid"
wait_exit "$pid" 20 "$err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM"
expect_eq "$(iptables-legacy -S)" "$before4" "ipv4 rules after mars"
expect_eq "$(ip6tables-legacy -S)" "$before6" "ipv6 rules after mars"
pass "legacy rules removed"

say "without CAP_NET_RAW: the error names it"
MARS_RC=0
timeout -k 5 30 setpriv --inh-caps=-net_raw --ambient-caps=-net_raw --bounding-set=-net_raw \
    "$MARS_BIN" --once -c "$TMP/run.yaml" >/dev/null 2>"$TMP/cap.err" || MARS_RC=$?
expect_eq "$MARS_RC" 0 "exit code without CAP_NET_RAW"
grep -q 'ERROR \[ipt\] managed rules: legacy iptables needs CAP_NET_ADMIN and CAP_NET_RAW (missing: CAP_NET_RAW)' "$TMP/cap.err" ||
    fail "no clear error: $(cat "$TMP/cap.err")"
grep -qi 'you must be root' "$TMP/cap.err" && fail "libiptc's message leaked"
expect_eq "$(iptables-legacy -S)" "$before4" "ipv4 rules after mars without CAP_NET_RAW"
pass "missing CAP_NET_RAW named"
