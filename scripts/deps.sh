#!/usr/bin/env bash
# Installs the Debian packages mars needs to build and test, and nothing else.
# Idempotent: packages already present are skipped, so a second run costs a dpkg query.
# Usage: scripts/deps.sh [build|test]   (test = build + test-only packages)
set -euo pipefail
what=${1:-build}
# libnghttp2-dev: HTTP/2 framing and HPACK for mars's own h2c (core/http2_direct.c, gRPC to a
# plain OAP); its runtime library is the one libcurl already depends on
pkgs=(build-essential cmake pkg-config libyaml-dev libevent-dev liburing-dev libpcre2-dev
      libcurl4-openssl-dev libssl-dev zlib1g-dev libzstd-dev liblz4-dev libprotobuf-c-dev
      protobuf-c-compiler librdkafka-dev libnftnl-dev libmnl-dev libip4tc-dev libip6tc-dev
      libnghttp2-dev)
if [ "$what" = test ]; then
  # prometheus: promtool and the server the observability tests scrape mars with; curl: HTTP
  # openssl: test certificates for the TLS cases; python3-yaml: the Kubernetes manifests test;
  # nghttp2-server: nghttpd, a real HTTP/2 server for the http sink test; libjansson-dev and
  # libsimdjson-dev: the JSON parsers bench/run's json-scanner rows compare mars's scanner with
  # clang-format, cppcheck: make format-check and make cppcheck, the first steps of make test
  # kcat: reads back what the kafka sink produced (tests/integration/kafka_*.sh)
  # python3-grpcio, python3-protobuf, protobuf-compiler: the fake SkyWalking OAP (stubs
  # generated from proto/skywalking at test time)
  # iptables, nftables, iputils-ping: rules and traffic the iptables source tests count, in
  # private network namespaces
  # tmux: the terminal `mars top` is tested in; file: the package test checks the binary is
  # stripped; kubernetes-client: `kubectl kustomize` renders deploy/kubernetes (unless a
  # kubectl is installed already, from another repository: the two would clash)
  pkgs+=(clang libclang-rt-14-dev libcmocka-dev python3 procps gnuplot-nox prometheus curl openssl
         python3-yaml nghttp2-server libjansson-dev libsimdjson-dev clang-format cppcheck
         kcat python3-grpcio python3-protobuf protobuf-compiler iptables nftables iputils-ping
         tmux file)
  command -v kubectl >/dev/null || pkgs+=(kubernetes-client)
  # npm (with Debian's nodejs): the npm test peers and checkers (scripts/npm-test-deps.sh),
  # unless a node of another origin brings its own
  command -v npm >/dev/null || pkgs+=(npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
