#!/usr/bin/env bash
# The .deb (issue 21): cpack builds it from the test's build tree (as `make package` does);
# it is laid out at /usr with a stripped binary, the unit, mars(1) and /etc/mars/mars.yaml
# as a conffile, and depends on the shared libraries mars links (dpkg-shlibdeps). Then it
# is installed on this machine with dpkg: `mars --version` and `mars validate` of the
# shipped config work from /usr/bin; `dpkg -r` removes every file but the conffile, and
# `dpkg -P` that too. Skips (77) when not root, without dpkg or cpack, or when a mars
# package or /usr/bin/mars is already installed (the test never touches one it did not put
# there).
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

skip() { echo "SKIP package: $*"; exit 77; }
((EUID == 0)) || skip "needs root to install a package"
command -v dpkg >/dev/null && command -v cpack >/dev/null || skip "dpkg or cpack is missing"
if dpkg-query -W -f='${Status}' mars 2>/dev/null | grep -q "installed"; then
    skip "a mars package is already installed"
fi
[[ ! -e /usr/bin/mars && ! -e /etc/mars ]] || skip "/usr/bin/mars or /etc/mars exists already"

build=$(dirname "$MARS_BIN")
[[ -f $build/CPackConfig.cmake ]] || fail "no CPackConfig.cmake in $build"
[[ -f $build/generated/mars.1 ]] || fail "mars.1 not built (build the default target)"
say "cpack -G DEB"
(cd "$build" && timeout 170 cpack -G DEB -B "$TMP/pkg") >"$TMP/cpack.log" 2>&1 ||
    fail "cpack: $(tail -5 "$TMP/cpack.log")"
deb=$(ls "$TMP"/pkg/mars_*.deb)
version=$(sed -n 's/^project(mars VERSION \([0-9.]*\).*/\1/p' "$MARS_SRC/CMakeLists.txt")
[[ $(basename "$deb") == mars_${version}_$(dpkg --print-architecture).deb ]] || fail "package name: $deb"

dpkg-deb -f "$deb" Depends >"$TMP/depends"
for lib in libyaml-0-2 libevent-2.1-7 libcurl4 libssl3 librdkafka1 libc6; do
    grep -q "$lib" "$TMP/depends" || fail "Depends lacks $lib: $(cat "$TMP/depends")"
done
dpkg-deb -c "$deb" | awk '{print $6}' >"$TMP/files"
for f in ./usr/bin/mars ./usr/share/man/man1/mars.1 ./usr/lib/systemd/system/mars.service \
    ./etc/mars/mars.yaml ./usr/share/doc/mars/LICENSE; do
    grep -qxF "$f" "$TMP/files" || fail "$f not in the package"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$TMP/conffiles"
expect_eq "$(cat "$TMP/conffiles")" "/etc/mars/mars.yaml" "conffiles"
mkdir "$TMP/x"
dpkg-deb -x "$deb" "$TMP/x"
file "$TMP/x/usr/bin/mars" 2>/dev/null | grep -q "not stripped" && fail "the packaged binary is not stripped"
grep -qxF "ExecStart=/usr/bin/mars -c /etc/mars/mars.yaml" "$TMP/x/usr/lib/systemd/system/mars.service" ||
    fail "the packaged unit does not name /usr/bin/mars and /etc/mars/mars.yaml"

say "dpkg -i, then the installed mars runs"
# from here on the exit trap takes the package out again, whatever happens
installed=1
trap 'rc=$?; if [[ -n ${installed:-} ]]; then dpkg -P mars >/dev/null 2>&1 || true; fi; (exit $rc); _mars_cleanup' EXIT
timeout 120 dpkg -i "$deb" >"$TMP/dpkg.log" 2>&1 || fail "dpkg -i: $(cat "$TMP/dpkg.log")"
dpkg-query -W -f='${Status} ${Version}\n' mars | grep -qx "install ok installed $version" ||
    fail "dpkg does not list mars $version as installed"
/usr/bin/mars --version >"$TMP/v" 2>&1 || fail "/usr/bin/mars --version: $(cat "$TMP/v")"
head -1 "$TMP/v" | grep -q "^mars $version (io backends: " || fail "version: $(cat "$TMP/v")"
STATE_DIRECTORY=$TMP/state timeout 20 /usr/bin/mars validate -c /etc/mars/mars.yaml >"$TMP/val" 2>&1 ||
    fail "mars validate of the shipped config: $(cat "$TMP/val")"
grep -q "^/etc/mars/mars.yaml: valid" "$TMP/val" || fail "validate said: $(cat "$TMP/val")"
MANPATH=/usr/share/man man -w mars >/dev/null 2>&1 || [[ -f /usr/share/man/man1/mars.1 ]] || fail "man page"

say "dpkg -r removes it (the conffile stays), dpkg -P purges"
dpkg -L mars | while read -r f; do [[ -f $f ]] && echo "$f"; done >"$TMP/installed"
timeout 120 dpkg -r mars >"$TMP/rm.log" 2>&1 || fail "dpkg -r: $(cat "$TMP/rm.log")"
while read -r f; do
    [[ $f == /etc/mars/mars.yaml ]] && continue
    [[ ! -e $f ]] || fail "$f left behind by dpkg -r"
done <"$TMP/installed"
[[ -f /etc/mars/mars.yaml ]] || fail "dpkg -r removed the conffile (only purge should)"
timeout 120 dpkg -P mars >"$TMP/purge.log" 2>&1 || fail "dpkg -P: $(cat "$TMP/purge.log")"
installed=
[[ ! -e /etc/mars ]] || fail "/etc/mars left behind by dpkg -P"
[[ ! -e /usr/bin/mars && ! -e /usr/lib/systemd/system/mars.service ]] || fail "files left after purge"
if dpkg-query -W -f='${Status}' mars 2>/dev/null | grep -q "installed"; then
    fail "dpkg still lists mars"
fi
pass "$(basename "$deb"): $(wc -l <"$TMP/installed") files installed, ran, removed and purged cleanly"
