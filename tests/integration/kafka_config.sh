#!/usr/bin/env bash
# Kafka configuration errors found at load time (`mars validate`), each at its
# FILE:LINE:COL: an unknown librdkafka property, an invalid value, a property mars owns,
# conflicting timeouts (message.timeout.ms at or below linger.ms), no brokers, a bad
# template; a good config validates. No broker is needed.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

# check NAME EXPECTED_REGEX SINK_LINES : validate must fail with EXPECTED at a position
check() {
    local name=$1 want=$2
    cat >"$TMP/$name.yaml" <<YAML
sources:
  in: { type: stdin }
sinks:
  out:
    type: kafka
    inputs: [in]
$3
YAML
    run_mars 30 validate -c "$TMP/$name.yaml" >"$TMP/$name.out" 2>&1
    ((MARS_RC != 0)) || fail "$name: validate accepted it: $(cat "$TMP/$name.out")"
    grep -Eq "^$TMP/$name.yaml:[0-9]+:[0-9]+: .*$want" "$TMP/$name.out" ||
        fail "$name: no FILE:LINE:COL error matching '$want': $(cat "$TMP/$name.out")"
    say "$name: $(grep -E "$want" "$TMP/$name.out" | head -1)"
}

check unknown "No such configuration property" '    brokers: [127.0.0.1:9092]
    topic: logs
    librdkafka: { no.such.property: "1" }'
grep -q "unknown.yaml:9:19:" "$TMP/unknown.out" || fail "unknown: not at the key's position: $(cat "$TMP/unknown.out")"
check invalid "linger.ms" '    brokers: [127.0.0.1:9092]
    topic: logs
    librdkafka: { linger.ms: "soon" }'
check owned "set by mars" '    brokers: [127.0.0.1:9092]
    topic: logs
    librdkafka: { enable.idempotence: "false" }'
check timeouts "message.timeout.ms .* must be above linger.ms" '    brokers: [127.0.0.1:9092]
    topic: logs
    librdkafka: { linger.ms: "1000", message.timeout.ms: "500" }'
check nobrokers "at least one host:port" '    brokers: []
    topic: logs'
check badbroker "port" '    brokers: [localhost]
    topic: logs'
check template "topic" '    brokers: [127.0.0.1:9092]
    topic: "logs-{{ unclosed"'
cat >"$TMP/good.yaml" <<YAML
sources:
  in: { type: stdin }
sinks:
  out:
    type: kafka
    inputs: [in]
    brokers: [127.0.0.1:9092, "[::1]:9093"]
    topic: "logs-{{ kubernetes.namespace }}"
    key: "{{ host }}"
    headers: { origin: mars }
    compression: zstd
    sasl: { mechanism: SCRAM-SHA-512, username: u, password: p }
    librdkafka: { linger.ms: "20", message.timeout.ms: "600000" }
YAML
run_mars 30 validate -c "$TMP/good.yaml" >"$TMP/good.out" 2>&1
expect_eq "$MARS_RC" 0 "a good config: $(cat "$TMP/good.out")"
pass "bad kafka configs are refused at their position; a good one validates"
