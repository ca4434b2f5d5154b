#!/usr/bin/env bash
# `cmake --install` (issue 21): the binary, mars(1), the systemd unit and the example config
# land where cmake/install.cmake says (staged with DESTDIR); the man page carries every
# component and every option `mars describe --markdown` lists, in the same order, and
# renders without warnings; the unit passes `systemd-analyze verify` and keeps its
# hardening; the example config validates; the build date is reproducible from
# SOURCE_DATE_EPOCH.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

build=$(dirname "$MARS_BIN")
[[ -f $build/cmake_install.cmake ]] || fail "no cmake_install.cmake next to $MARS_BIN"
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
root=$TMP/root
say "DESTDIR=$root cmake --install $build (prefix $prefix)"
DESTDIR=$root timeout 120 cmake --install "$build" >"$TMP/install.log" 2>&1 ||
    fail "cmake --install: $(tail -5 "$TMP/install.log")"
sysconf=$prefix/etc
[[ $prefix == /usr ]] && sysconf=/etc
for f in "$prefix/bin/mars" "$prefix/share/man/man1/mars.1" \
    "$prefix/lib/systemd/system/mars.service" "$sysconf/mars/mars.yaml" \
    "$prefix/share/doc/mars/LICENSE"; do
    [[ -f $root$f ]] || fail "$f not installed"
done
[[ -x $root$prefix/bin/mars ]] || fail "installed mars is not executable"
"$root$prefix/bin/mars" --version >"$TMP/v" || fail "installed mars --version"
cmp -s "$TMP/v" <("$MARS_BIN" --version) || fail "installed mars is not the built one"

say "mars(1) lists every component and option of mars describe --markdown, in order"
man=$root$prefix/share/man/man1/mars.1
"$MARS_BIN" describe --markdown >"$TMP/ref.md"
sed -n 's/^### [a-z]* `\([a-z_]*\)`$/\1/p' "$TMP/ref.md" >"$TMP/md.components"
sed -n 's/^\.SS //p' "$man" >"$TMP/man.components"
[[ $(wc -l <"$TMP/md.components") -gt 30 ]] || fail "too few components in the reference"
diff -u "$TMP/md.components" "$TMP/man.components" || fail "components differ between reference and man page"
sed -n 's/^| `\([^`]*\)` |.*/\1/p' "$TMP/ref.md" | sed 's/\\|/|/g' >"$TMP/md.options"
awk '/^\.SH FILES/ { exit } prev == ".TP" && /^\.B / { sub(/^\.B /, ""); gsub(/\\-/, "-"); print } { prev = $0 }' \
    "$man" >"$TMP/man.options"
[[ $(wc -l <"$TMP/md.options") -gt 300 ]] || fail "too few options in the reference"
diff -u "$TMP/md.options" "$TMP/man.options" >"$TMP/opt.diff" ||
    fail "options differ between reference and man page: $(head -20 "$TMP/opt.diff")"
grep -qF -- "mars validate [OPTIONS]" "$man" || fail "man page lacks the --help synopsis"
# a component's notes (parse: the fields of each format) are in the man page too
grep -qF -- "Fields each format produces" "$man" || fail "man page lacks the parse notes"
if command -v groff >/dev/null; then
    groff -man -Tutf8 -z -wmac -wdelim -wel -wescape -Wbreak "$man" 2>"$TMP/groff.err" || fail "groff failed"
    [[ ! -s $TMP/groff.err ]] || fail "groff warnings: $(head -5 "$TMP/groff.err")"
fi

say "the systemd unit: hardening and systemd-analyze verify"
unit=$root$prefix/lib/systemd/system/mars.service
for want in "ExecStart=$prefix/bin/mars -c $sysconf/mars/mars.yaml" "NoNewPrivileges=yes" \
    "ProtectSystem=strict" "StateDirectory=mars" "DynamicUser=yes" \
    "CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_NET_ADMIN" \
    "AmbientCapabilities=CAP_DAC_READ_SEARCH CAP_NET_ADMIN"; do
    grep -qxF -- "$want" "$unit" || fail "unit lacks '$want'"
done
if command -v systemd-analyze >/dev/null; then
    # verify checks that ExecStart is executable and man:mars(1) resolves: point both at
    # the staged tree
    sed "s|$prefix/|$root$prefix/|g; s|$sysconf/|$root$sysconf/|g" "$unit" >"$TMP/mars.service"
    MANPATH=$root$prefix/share/man timeout 60 systemd-analyze verify "$TMP/mars.service" \
        >"$TMP/verify.log" 2>&1 || fail "systemd-analyze verify: $(cat "$TMP/verify.log")"
    [[ ! -s $TMP/verify.log ]] || fail "systemd-analyze verify complained: $(cat "$TMP/verify.log")"
else
    say "systemd-analyze not installed: unit not verified"
fi

say "the example config validates"
STATE_DIRECTORY=$TMP/state run_mars 10 validate -c "$root$sysconf/mars/mars.yaml" >"$TMP/val" 2>&1
expect_eq "$MARS_RC" 0 "mars validate of the example config: $(cat "$TMP/val")"

say "the build date follows SOURCE_DATE_EPOCH"
SOURCE_DATE_EPOCH=86400 cmake -DSRC="$MARS_SRC" -DOUT="$TMP/b.h" -P "$MARS_SRC/cmake/version.cmake"
grep -qxF '#define MARS_BUILD_DATE "1970-01-02T00:00:00Z"' "$TMP/b.h" ||
    fail "SOURCE_DATE_EPOCH=86400 gave: $(cat "$TMP/b.h")"
pass "install layout, man page, systemd unit and example config"
