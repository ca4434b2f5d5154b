#!/usr/bin/env bash
# `pods: true` of the iptables source, in a network namespace of its own that routes
# between two child namespaces: a "pod" (10.99.0.5) and a "client" (10.98.0.5). The pods
# come from the fake Kubernetes API server (tests/fakes/k8s_api.py):
#   1. this node's pod gets two forward count rules in table inet mars, next to a
#      configured rule; another node's pod gets none;
#   2. 3 pings from the client to the pod: exactly 3 packets / 252 bytes on the pod's `in`
#      rule and on its `out` rule, labelled namespace and pod in the exporter's output;
#   3. a new pod adds its rules without touching the others (same handles, counters go on);
#      a deleted pod's rules go;
#   4. SIGHUP keeps every rule (same handles); SIGTERM removes the table.
# (No `grep -q` after nft: grep would exit at the first match, nft get SIGPIPE, and the
# pipeline fail under pipefail.)
set -euo pipefail
source "$(dirname "$0")/lib/netns.bash"
source "$(dirname "$0")/lib/common.bash"
need_netfilter_tools
command -v nsenter >/dev/null || fail "nsenter is missing (util-linux)"
command -v curl >/dev/null || fail "curl is missing"
((EUID == 0)) || { echo "skip: moving a veth into a child namespace needs root"; exit 77; }
PY=/usr/bin/python3

# ---- a router with two children: the pod and a client ----
child() { # child VAR: a process in a network namespace of its own; VAR gets its pid
    unshare -n sleep 600 &
    _MARS_PIDS+=("$!")
    printf -v "$1" '%s' "$!"
}
child POD_NS
child CLIENT_NS
in_ns() { local pid=$1; shift; nsenter -t "$pid" -n "$@"; }
ip link add vpod type veth peer name eth0p
ip link add vcli type veth peer name eth0c
ip link set eth0p netns "$POD_NS"
ip link set eth0c netns "$CLIENT_NS"
ip addr add 10.99.0.1/24 dev vpod
ip addr add 10.98.0.1/24 dev vcli
ip link set vpod up
ip link set vcli up
echo 1 >/proc/sys/net/ipv4/ip_forward # this namespace's only
in_ns "$POD_NS" ip link set lo up
in_ns "$POD_NS" ip addr add 10.99.0.5/24 dev eth0p
in_ns "$POD_NS" ip link set eth0p up
in_ns "$POD_NS" ip route add default via 10.99.0.1
in_ns "$CLIENT_NS" ip link set lo up
in_ns "$CLIENT_NS" ip addr add 10.98.0.5/24 dev eth0c
in_ns "$CLIENT_NS" ip link set eth0c up
in_ns "$CLIENT_NS" ip route add default via 10.98.0.1
routed() { in_ns "$CLIENT_NS" ping -c 1 -W 1 10.99.0.5 >/dev/null 2>&1; }
wait_until 30 "the client reaches the pod through this namespace" routed

# ---- the API server's pods ----
"$PY" "$MARS_SRC/tests/fakes/k8s_api.py" --port 0 --bookmark 0.3 >"$TMP/api.port" 2>"$TMP/api.err" </dev/null &
_MARS_PIDS+=("$!")
wait_until 10 "fake API server port" test -s "$TMP/api.port"
API=http://127.0.0.1:$(head -1 "$TMP/api.port")
pod() { # pod NAME NODE IP
    "$PY" - "$API" "$@" <<'PY'
import json, sys, urllib.request
api, name, node, ip = sys.argv[1:5]
pod = {"kind": "Pod", "apiVersion": "v1",
       "metadata": {"name": name, "namespace": "shop", "uid": "uid-" + name},
       "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app:1"}]},
       "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                  "conditions": [{"type": "Ready", "status": "True"}]}}
urllib.request.urlopen(urllib.request.Request(api + "/control/pod", json.dumps(pod).encode(), method="POST"))
PY
}
curl -sf -X POST -d '{"metadata": {"name": "shop"}}' "$API/control/namespace" >/dev/null
pod web-1 node-a 10.99.0.5
pod far-1 node-b 10.77.0.5

cat >"$TMP/mars.yaml" <<YAML
sources:
  ipt:
    type: iptables
    interval: 300ms
    tables: [mars]
    rules: [{name: "mars:ssh", direction: input, protocol: tcp, port: 22}]
    pods: {api_url: "$API", node_name: node-a, token_file: "$TMP/no-token"}
sinks:
  prom: {type: prometheus_exporter, inputs: [ipt], address: "127.0.0.1:0"}
YAML
start_mars /dev/null "$TMP/mars.err" -c "$TMP/mars.yaml"
prom_port() { grep -o "\[prom\] listening on 127.0.0.1:[0-9]*" "$TMP/mars.err" | tail -n 1 | sed 's/.*://'; }
has_prom() { [[ -n $(prom_port) ]]; }
wait_until 30 "the exporter listens" has_prom
rules() { nft -a list table inet mars 2>/dev/null || true; }
has_rule() { rules | grep -F "comment \"$1\"" >/dev/null; }
handle_of() { rules | grep -F "comment \"$1\"" | sed 's/.*# handle //'; }

say "this node's pod gets an in and an out rule in the forward chain; the other node's none"
wait_until 30 "the pod rules of shop/web-1" has_rule "pod:shop/web-1:out"
has_rule "pod:shop/web-1:in" || fail "no in rule: $(rules)"
has_rule "mars:ssh" || fail "the configured rule is missing: $(rules)"
rules | grep -F 'comment "pod:shop/web-1:in"' | grep 'ip daddr 10.99.0.5' >/dev/null ||
    fail "the in rule does not match the pod's address: $(rules)"
rules | grep -F 'comment "pod:shop/web-1:out"' | grep 'ip saddr 10.99.0.5' >/dev/null ||
    fail "the out rule does not match the pod's address: $(rules)"
nft -a list chain inet mars forward | grep -F 'pod:shop/web-1:in' >/dev/null || fail "not in the forward chain: $(rules)"
rules | grep 'far-1' >/dev/null && fail "another node's pod got rules: $(rules)"
pass "rules for the node's pod"

say "3 pings from the client: 3 packets and 252 bytes each way, labelled namespace and pod"
in_ns "$CLIENT_NS" ping -c 3 -i 0.2 -W 2 10.99.0.5 >/dev/null || fail "ping through the router failed"
sample() { # sample METRIC RULE -> value
    curl -sf "http://127.0.0.1:$(prom_port)/metrics" |
        grep "^mars_iptables_$1{" | grep -F "rule=\"$2\"" | grep -F 'namespace="shop"' |
        grep -F 'pod="web-1"' | awk '{print $NF}'
}
counted() { [[ $(sample packets_total "$2") == "$1" ]]; }
wait_until 30 "3 packets on pod:shop/web-1:in" counted 3 "pod:shop/web-1:in"
wait_until 30 "3 packets on pod:shop/web-1:out" counted 3 "pod:shop/web-1:out"
expect_eq "$(sample bytes_total "pod:shop/web-1:in")" 252 "bytes to the pod"
expect_eq "$(sample bytes_total "pod:shop/web-1:out")" 252 "bytes from the pod"
pass "exact counters with the pod's labels"

say "a new pod adds its rules and leaves the others alone; a deleted pod's rules go"
h_in=$(handle_of "pod:shop/web-1:in")
h_ssh=$(handle_of "mars:ssh")
pod api-1 node-a 10.99.0.6
wait_until 30 "the rules of shop/api-1" has_rule "pod:shop/api-1:in"
expect_eq "$(handle_of "pod:shop/web-1:in")" "$h_in" "handle of web-1's in rule"
expect_eq "$(handle_of "mars:ssh")" "$h_ssh" "handle of the configured rule"
expect_eq "$(sample packets_total "pod:shop/web-1:in")" 3 "web-1's counter after api-1 came"
curl -sf -X DELETE "$API/control/pod/shop/web-1" >/dev/null
gone() { ! has_rule "pod:shop/web-1:in" && ! has_rule "pod:shop/web-1:out"; }
wait_until 30 "web-1's rules removed" gone
has_rule "pod:shop/api-1:out" || fail "api-1's rules went too: $(rules)"
pass "pods come and go, nothing else changes"

say "SIGHUP keeps every rule; SIGTERM removes the table"
h_api=$(handle_of "pod:shop/api-1:in")
kill -HUP "$MARS_PID"
reloaded() { grep 'configuration reloaded' "$TMP/mars.err" >/dev/null; }
wait_until 60 "the reload" reloaded
applied_twice() { (($(grep -c 'pods: [0-9]* pod rules' "$TMP/mars.err") >= 2)); }
wait_until 60 "the new engine's pod rules" applied_twice
expect_eq "$(handle_of "pod:shop/api-1:in")" "$h_api" "handle of api-1's rule after SIGHUP"
expect_eq "$(handle_of "mars:ssh")" "$h_ssh" "handle of the configured rule after SIGHUP"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 60 "$TMP/mars.err"
expect_eq "$EXIT_RC" 0 "exit code"
nft list tables | grep -x 'table inet mars' >/dev/null && fail "table inet mars is still there after SIGTERM"
pass "reload keeps, stop removes"
