#!/usr/bin/env bash
# SIGTERM and SIGINT while a demo source (unlimited rate, forever) writes to a file: mars
# stops reading, delivers what is in flight and exits 0 promptly. Nothing is lost: the
# file has exactly as many whole lines as the source sent and the sink wrote.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

for sig in TERM INT; do
    out="$TMP/out-$sig.txt"
    err="$TMP/err-$sig.log"
    cat >"$TMP/mars.yaml" <<EOF
data_dir: $TMP/data
runtime:
  shutdown_timeout: 30s
sources:
  gen: {type: demo, rate: 0, count: 0}
sinks:
  out: {type: file, inputs: [gen], path: $out}
EOF
    say "SIG$sig: start mars, wait for at least 10000 lines"
    start_mars /dev/null "$err" -c "$TMP/mars.yaml"
    pid=$MARS_PID
    have_10k() {
        (($(lines_of "$out") >= 10000)) && return 0
        alive "$pid" || fail "mars exited before writing 10000 lines: $(show_log "$err")"
        return 1
    }
    wait_until 20 "10000 lines in $out" have_10k

    say "SIG$sig: mars must exit 0 within 10 s"
    kill -s "$sig" "$pid"
    wait_exit "$pid" 10 "$err"
    expect_eq "$EXIT_RC" 0 "exit code after SIG$sig; $(show_log "$err")"
    grep -qF "SIG$sig: stopping" "$err" || fail "no 'SIG$sig: stopping' in the log: $(show_log "$err")"
    if grep -qE 'shutdown timeout|did not finish' "$err"; then
        fail "SIG$sig: the drain did not complete (it ran into the shutdown timeout after ${EXIT_MS} ms):
$(show_log "$err")"
    fi

    say "SIG$sig: lines in the file == demo sent == file sink sent; no partial line"
    lines=$(lines_of "$out")
    size=$(wc -c <"$out" | tr -d ' ')
    demo_sent=$(stat_of "$err" gen sent)
    sink_received=$(stat_of "$err" out received)
    sink_sent=$(stat_of "$err" out sent)
    expect_eq "$lines" "$demo_sent" "SIG$sig: lines in the file vs. demo sent"
    expect_eq "$sink_received" "$demo_sent" "SIG$sig: file sink received vs. demo sent"
    expect_eq "$(stat_of "$err" gen acknowledged)" "$demo_sent" "SIG$sig: demo acknowledged vs. sent"
    expect_eq "$sink_sent" "$demo_sent" "SIG$sig: file sink sent vs. demo sent"
    expect_eq "$(stat_of "$err" out sent_bytes)" "$size" "SIG$sig: file sink sent bytes vs. file size"
    expect_eq "$(stat_of "$err" out discarded_unintentional)" 0 "SIG$sig: file sink lost events"
    expect_eq "$(stat_of "$err" out errors)" 0 "SIG$sig: file sink errors"
    [[ -z $(tail -c 1 "$out") ]] || fail "SIG$sig: the file ends with a partial line"
    # every line is a whole demo line (mixed format: nginx, JSON, CRI, syslog), none empty
    nbad=$(awk '!/^(10\.[0-9]+\.[0-9]+\.[0-9]+ - - \[.*"$|\{"ts":.*\]\}$|[0-9-]+T[0-9:.]+Z std(out|err) F \{.*\]\}$|<[0-9]+>1 .*)/' "$out" | wc -l)
    expect_eq "$nbad" 0 "SIG$sig: lines that are not whole demo lines"
    pass "SIG$sig: drained $lines lines in ${EXIT_MS} ms"
done

pass "SIGTERM and SIGINT drain everything and exit 0"
