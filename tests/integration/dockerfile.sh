#!/usr/bin/env bash
# deploy/Dockerfile without docker (issue 21): the runtime stage installs the Debian package
# of every shared library the mars binary needs (its ELF NEEDED entries and the libraries it
# opens at run time, mapped with dpkg -S) and no build-only package; the build stage takes
# its packages from scripts/deps.sh and installs a stripped binary; labels carry the
# project version; and .dockerignore keeps .git, build trees and bench results out of the
# context.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

df=$MARS_SRC/deploy/Dockerfile
ign=$MARS_SRC/.dockerignore
command -v objdump >/dev/null || { echo "SKIP dockerfile: objdump (binutils) is missing"; exit 77; }
[[ -f $ign ]] || fail ".dockerignore is missing"

# the runtime stage: from the last FROM to the end
awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$df" >"$TMP/runtime"
grep -q "^FROM \${DEBIAN}$" "$TMP/runtime" || fail "cannot find the runtime stage"
tr ' \\' '\n\n' <"$TMP/runtime" | grep -E '^[a-z0-9][a-z0-9.+-]+$' | sort -u >"$TMP/words"

say "every library mars links has its package in the runtime stage"
objdump -p "$MARS_BIN" | awk '$1 == "NEEDED" {print $2}' >"$TMP/needed"
[[ $(wc -l <"$TMP/needed") -ge 10 ]] || fail "too few NEEDED entries: $(cat "$TMP/needed")"
grep -vE '^(libasan|libubsan|libc\.so|libm\.so|ld-linux)' "$TMP/needed" >"$TMP/libs"
# and the libraries mars opens at run time (a #define MARS_*_SONAME in src/)
grep -rhoE '^#define MARS_[A-Z]+_SONAME "[^"]+"' "$MARS_SRC/src" | sed 's/.*"\(.*\)"/\1/' >"$TMP/opened"
grep -qx 'libcurl.so.4' "$TMP/opened" || fail "no MARS_CURL_SONAME in src/: $(cat "$TMP/opened")"
cat "$TMP/opened" >>"$TMP/libs"
# one dpkg -S for all of them (each call scans the whole file database)
dpkg -S $(sed 's|^|*/|' "$TMP/libs") 2>/dev/null >"$TMP/owners" || true
while read -r so; do
    pkg=$(grep -m1 "/$so\$" "$TMP/owners" | cut -d: -f1)
    [[ -n $pkg ]] || fail "no Debian package provides $so"
    grep -qxF "$pkg" "$TMP/words" || fail "$so ($pkg) is not installed by the runtime stage"
done <"$TMP/libs"

say "no build-only packages at run time; deps from scripts/deps.sh; stripped install"
for bad in build-essential cmake pkg-config protobuf-c-compiler gcc clang; do
    if grep -qxF "$bad" "$TMP/words"; then fail "the runtime stage installs $bad"; fi
done
if grep -E -- '-dev( |$)' "$TMP/runtime" >/dev/null; then fail "the runtime stage installs a -dev package"; fi
grep -q "apt-get purge -y -qq libcap2-bin" "$TMP/runtime" || fail "libcap2-bin (setcap) is not purged"
grep -q "scripts/deps.sh build" "$df" || fail "the build stage does not use scripts/deps.sh"
grep -q "cmake --install /build --strip" "$df" || fail "the binary is not installed stripped"
grep -q "COPY --from=build /out/usr/bin/mars /usr/bin/mars" "$TMP/runtime" || fail "binary copy"

say "labels and .dockerignore"
version=$(sed -n 's/^project(mars VERSION \([0-9.]*\).*/\1/p' "$MARS_SRC/CMakeLists.txt")
grep -qxF "ARG VERSION=$version" "$TMP/runtime" || fail "ARG VERSION is not the project version $version"
for l in version revision created licenses; do
    grep -q "org.opencontainers.image.$l=" "$TMP/runtime" || fail "no $l label"
done
for p in .git 'build*/' bench/results/ tests/.npm/; do
    grep -qxF "$p" "$ign" || fail ".dockerignore lacks $p"
done
pass "runtime packages cover the $(wc -l <"$TMP/libs") libraries mars links or opens; no build tools; labels; .dockerignore"
