#!/usr/bin/env bash
# The apollo source against an independent implementation of the config service: npm's
# apollo-mock-server 1.2.0 (kaelzhang), installed into tests/.npm by
# scripts/npm-test-deps.sh (make deps-test). It speaks /configs with releaseKey and 304 and
# /notifications/v2 with a hold; it has no meta server, messages, signatures, incremental
# sync or suffixed formats, so only properties namespaces are checked here. Skipped (exit
# 77) with the reason when node or the package is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/apollo.bash"

mod=$MARS_SRC/tests/.npm/node_modules/apollo-mock-server
if ! command -v node >/dev/null; then
    echo "SKIP apollo_interop: node is not installed"
    exit 77
fi
if [[ ! -f $mod/package.json ]]; then
    echo "SKIP apollo_interop: apollo-mock-server is not installed (run scripts/npm-test-deps.sh, part of make deps-test)"
    exit 77
fi

# the mock on a free port, plus a control port: GET /publish?app=&ns=&k=&v= sets k=v and
# publishes (superAdmin is the mock's own in-process admin)
cat >"$TMP/peer.js" <<'JS'
const http = require('http')
const fs = require('fs')
const {ConfigService, superAdmin} = require(process.argv[2])
const svc = new ConfigService({pollingTimeout: 20000})
superAdmin.app('shop').cluster('default').namespace('application').set('k', 'v1').publish()
const cs = http.createServer(svc.callback()).listen(0, '127.0.0.1', () => {
  const ctl = http.createServer((req, res) => {
    const q = new URL(req.url, 'http://x').searchParams
    superAdmin.app(q.get('app')).cluster('default').namespace(q.get('ns')).set(q.get('k'), q.get('v')).publish()
    res.end('ok')
  }).listen(0, '127.0.0.1', () => {
    fs.writeFileSync(process.argv[3] + '.tmp', cs.address().port + ' ' + ctl.address().port + '\n')
    fs.renameSync(process.argv[3] + '.tmp', process.argv[3])
  })
})
JS
node "$TMP/peer.js" "$mod" "$TMP/ports" >"$TMP/peer.log" 2>&1 </dev/null &
_MARS_PIDS+=("$!")
wait_until 20 "apollo-mock-server" test -s "$TMP/ports"
read -r cs ctl <"$TMP/ports"

cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
sources:
  cfg: {type: apollo, config_service: ["http://127.0.0.1:$cs"], apps: [{app_id: shop}]}
sinks:
  files: {type: apollo_files, inputs: [cfg], dir: $TMP/files}
YAML
start_mars "$TMP/out" "$TMP/err" -c "$TMP/mars.yaml"
P=$TMP/files/shop/default/application.properties
wait_until 20 "the first file" file_is "$P" "k=v1"
sleep 1 # the next poll is held by the mock
t0=$(date +%s%N)
curl -sf "http://127.0.0.1:$ctl/publish?app=shop&ns=application&k=k&v=v2" >/dev/null || fail "cannot publish"
wait_until 10 "the published change" file_is "$P" "k=v2"
ms=$((($(date +%s%N) - t0) / 1000000))
((ms < 1000)) || fail "the change took ${ms} ms (want < 1000)"
pass "apollo-mock-server: fetched, then a publish reached the file in ${ms} ms by long poll"
