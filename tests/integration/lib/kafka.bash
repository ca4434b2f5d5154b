# shellcheck shell=bash disable=SC2034  # sets variables for the scripts that source it
# Kafka helpers for tests/integration/kafka*.sh (sourced after common.bash):
#   start_mock_kafka [TOPIC:PARTS]...  starts mock-kafka (tests/tools/mock_kafka.c, built
#                          next to mars) with a 3-broker cluster; sets BROKERS (its
#                          bootstrap list) and MOCK_CTL (a fifo: `mock_cmd` writes to it)
#   mock_cmd WORDS...      one command to the mock (topic, errors, down, up, rtt); waits for
#                          its answer and fails the test on an error
#   kcat_lines TOPIC OUT [FORMAT]  everything in TOPIC so far into OUT (kcat -C -e)
#   kcat_count TOPIC       number of messages in TOPIC
#   kafka_has TOPIC N      true once TOPIC holds N messages or more (for wait_until)
# One cluster per test file: it takes 1-3 s to start (protocols.md §10).
MOCK_KAFKA=${MOCK_KAFKA:-$(dirname "$MARS_BIN")/mock-kafka}
command -v kcat >/dev/null || fail "kcat is not installed (scripts/deps.sh test)"
[[ -x $MOCK_KAFKA ]] || fail "mock-kafka not built at $MOCK_KAFKA"

start_mock_kafka() {
    local args=() t
    for t in "$@"; do args+=(-t "$t"); done
    MOCK_CTL=$TMP/mock.ctl
    mkfifo "$MOCK_CTL"
    # The holder keeps the fifo open for writing, so the mock sees EOF only when the test
    # ends (the exit trap kills the holder and the mock).
    sleep 100000 >"$MOCK_CTL" &
    _MARS_PIDS+=($!)
    "$MOCK_KAFKA" "${args[@]}" <"$MOCK_CTL" >"$TMP/mock.out" 2>"$TMP/mock.err" &
    _MARS_PIDS+=($!)
    wait_until 30 "mock-kafka bootstrap list" grep -q . "$TMP/mock.out"
    BROKERS=$(head -1 "$TMP/mock.out")
    MOCK_ANSWERS=1
}

mock_cmd() {
    echo "$*" >"$MOCK_CTL"
    MOCK_ANSWERS=$((MOCK_ANSWERS + 1))
    wait_until 20 "mock-kafka answer to: $*" _mock_answered
    if tail -1 "$TMP/mock.out" | grep -q '^error'; then
        fail "mock-kafka: $*: $(tail -1 "$TMP/mock.out")"
    fi
}
_mock_answered() { (($(wc -l <"$TMP/mock.out") >= MOCK_ANSWERS)); }

kcat_lines() {
    timeout 60 kcat -C -b "$BROKERS" -t "$1" -e -q -f "${3:-%s\n}" >"$2" 2>>"$TMP/kcat.err" ||
        fail "kcat -C -t $1 failed: $(tail -3 "$TMP/kcat.err")"
}

kcat_count() {
    kcat_lines "$1" "$TMP/count.$1"
    lines_of "$TMP/count.$1"
}

# kafka_has TOPIC N : true once TOPIC holds at least N messages (for wait_until).
kafka_has() { (($(kcat_count "$1") >= $2)); }
