#!/usr/bin/env bash
# The file source tells lines of different files apart: multiline (java preset, default
# group_by [file, stream]) joins each file's stack trace on its own, and JSON output names
# the file each event came from.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
TMP=$(mktemp -d /tmp/mars-it-mlf.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/l"
printf 'Exception in thread "main" java.lang.RuntimeException: a\n\tat A.a(A.java:1)\n\tat A.b(A.java:2)\nnext a\n' >"$TMP/l/a.log"
printf 'Exception in thread "main" java.lang.IllegalStateException: b\n\tat B.a(B.java:1)\nnext b\n' >"$TMP/l/b.log"
cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/d
sources:
  logs: {type: file, include: ["$TMP/l/*.log"]}
transforms:
  ml: {type: multiline, inputs: [logs], preset: java}
sinks:
  out: {type: file, inputs: [ml], path: "$TMP/out.ndjson", encoding: ndjson}
YAML
say "two files, one stack trace each, read in one --once run"
run_mars 30 --once -c "$TMP/mars.yaml" 2>"$TMP/err"
expect_eq "$MARS_RC" 0 "exit code; $(show_log "$TMP/err")"
/usr/bin/python3 - "$TMP" >"$TMP/got" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/out.ndjson")]
for r in sorted(rows, key=lambda r: (r["file"], r["message"])):
    print(r["file"].rsplit("/", 1)[1], json.dumps(r["message"]))
PY
cat >"$TMP/want" <<'WANT'
a.log "Exception in thread \"main\" java.lang.RuntimeException: a\n\tat A.a(A.java:1)\n\tat A.b(A.java:2)"
a.log "next a"
b.log "Exception in thread \"main\" java.lang.IllegalStateException: b\n\tat B.a(B.java:1)"
b.log "next b"
WANT
diff -u "$TMP/want" "$TMP/got" || fail "events per file differ from the expected (above)"
pass "multiline keeps files apart; events carry their file"
