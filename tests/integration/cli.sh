#!/usr/bin/env bash
# The command line: help, version, usage errors (exit 2), `describe`, and a missing
# config file (exit 1). Exit codes are the ones documented in src/main.c and --help.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

# mars_cli EXPECTED_RC WHAT ARGS... : runs mars (bounded), output in $TMP/out, $TMP/err.
mars_cli() {
    local want=$1 what=$2
    shift 2
    run_mars 10 "$@" >"$TMP/out" 2>"$TMP/err"
    if ((MARS_RC != want)); then
        fail "$what: 'mars $*' exited $MARS_RC, expected $want
$(show_log "$TMP/out")
$(show_log "$TMP/err")"
    fi
}
# has FILE PATTERN WHAT : FILE contains the fixed string PATTERN.
has() {
    grep -qF -- "$2" "$1" || fail "$3: '$2' not found in output:
$(show_log "$1")"
}

say "--help exits 0 and documents commands and exit codes"
mars_cli 0 "--help" --help
has "$TMP/out" "mars validate" "--help"
has "$TMP/out" "mars describe" "--help"
has "$TMP/out" "--watch-config" "--help"
has "$TMP/out" "Exit codes: 0 success, 1 invalid configuration, 2 usage error, 3 could not start" "--help"
[[ ! -s $TMP/err ]] || fail "--help wrote to stderr: $(cat "$TMP/err")"
mars_cli 0 "-h" -h
has "$TMP/out" "Exit codes:" "-h"

say "--version and version print 'mars X.Y.Z (io backends: ...)', the commit and the build date"
want_version=$(sed -n 's/^project(mars VERSION \([0-9][0-9.]*\).*/\1/p' "$MARS_SRC/CMakeLists.txt")
[[ -n $want_version ]] || fail "cannot find the project version in $MARS_SRC/CMakeLists.txt"
# the commit the binary was built from (HEAD when it is fresh), or unknown without git
have_git=$(git -C "$MARS_SRC" rev-parse --git-dir >/dev/null 2>&1 && echo yes || true)
for opt in --version -V version; do
    mars_cli 0 "$opt" "$opt"
    expect_eq "$(wc -l <"$TMP/out" | tr -d ' ')" 3 "$opt output lines"
    line=$(sed -n 1p "$TMP/out")
    commit=$(sed -n 's/^commit: //p' "$TMP/out")
    if [[ -n $have_git ]]; then
        [[ $commit =~ ^[0-9a-f]{12}(-dirty)?$ ]] && git -C "$MARS_SRC" cat-file -e "${commit%-dirty}^{commit}" ||
            fail "$opt: commit '$commit' is not a commit of $MARS_SRC"
    else
        expect_eq "$commit" unknown "$opt commit without git"
    fi
    built=$(sed -n 's/^built: //p' "$TMP/out")
    [[ $built =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] ||
        fail "$opt: build date '$built' is not YYYY-MM-DDTHH:MM:SSZ"
    [[ $line =~ ^mars\ ([0-9]+\.[0-9]+\.[0-9]+)\ \(io\ backends:\ ([a-z_]+([ ,]+[a-z_]+)*)\)$ ]] ||
        fail "$opt printed '$line', expected 'mars X.Y.Z (io backends: ...)'"
    expect_eq "${BASH_REMATCH[1]}" "$want_version" "$opt version"
    [[ ${BASH_REMATCH[2]} == *libevent* ]] ||
        fail "$opt: libevent (always built) missing from the io backends: '$line'"
done

say "usage errors exit 2"
mars_cli 2 "unknown command" frobnicate
has "$TMP/err" "unknown command 'frobnicate'" "unknown command"
mars_cli 2 "unknown option" --no-such-option
has "$TMP/err" "Usage:" "unknown option"
mars_cli 2 "unknown option after a command" validate --no-such-option
mars_cli 2 "-c without its argument" -c
mars_cli 2 "--workers 0" --workers 0 -c /dev/null
has "$TMP/err" "--workers needs a number from 1 to 256" "--workers 0"
mars_cli 2 "--workers not a number" --workers two -c /dev/null
mars_cli 2 "stray argument to run" run extra-argument
has "$TMP/err" "unexpected argument 'extra-argument'" "stray argument"
mars_cli 2 "stray argument to validate" validate extra-argument
mars_cli 2 "apollo:// merged with another -c" validate -c 'apollo://a/b?config_service=http://127.0.0.1:1' -c /dev/null
has "$TMP/err" "an apollo:// configuration cannot be merged with other -c" "apollo with -c"
mars_cli 2 "--watch-config with apollo://" validate --watch-config -c 'apollo://a/b?config_service=http://127.0.0.1:1'
has "$TMP/err" "--watch-config watches files" "--watch-config with apollo"
mars_cli 2 "stray argument to version" version extra-argument
has "$TMP/err" "unexpected argument 'extra-argument'" "version extra"
mars_cli 2 "two addresses to top" top 127.0.0.1:1 127.0.0.1:2
has "$TMP/err" "unexpected argument '127.0.0.1:2'" "top extra"

say "describe lists every built-in type in its section, and no test-only type"
mars_cli 0 "describe" describe
# section of each listed type, e.g. "sources demo"
awk '/^(sources|transforms|sinks):$/ { sec = substr($0, 1, length($0) - 1); next }
     /^$/ { sec = "" }
     sec != "" && /^  [a-z_0-9]+ / { print sec, $1 }' "$TMP/out" | sort >"$TMP/types"
# the expected list is the table of built-in descriptors in control/components.c (mars_<kind>_<name>)
sed -n '/builtin\[\] = {/,/^};/p' "$MARS_SRC/src/control/components.c" |
    sed -n 's/^ *&mars_\(source\|transform\|sink\)_\([a-z_0-9]*\),$/\1s \2/p' |
    sort >"$TMP/types.want"
[[ -s $TMP/types.want ]] || fail "could not read the built-in types from components.c"
if ! diff -u "$TMP/types.want" "$TMP/types" >"$TMP/types.diff"; then
    fail "describe lists other types than expected:
$(cat "$TMP/types.diff")"
fi
if grep -qw capture "$TMP/out"; then
    fail "describe lists the test-only 'capture' sink"
fi

say "describe file shows its options; path is required"
mars_cli 0 "describe file" describe file
has "$TMP/out" "sink file:" "describe file"
awk '$1 == "path" && / required /' "$TMP/out" | grep -q . ||
    fail "describe file: no 'path ... required' row:
$(show_log "$TMP/out")"
for o in encoding fsync max_open_files inputs buffer.when_full; do
    awk -v o="$o" '$1 == o' "$TMP/out" | grep -q . || fail "describe file: option $o missing"
done
# a default holding a control character is shown escaped, on the option's one row
row=$(awk '$1 == "line_delimiter"' "$TMP/out")
[[ $row =~ ^line_delimiter\ +string\ +\\n\ +The\ single\ byte ]] ||
    fail "describe file: line_delimiter row is '$row', expected its default as \\n"
has "$MARS_SRC/docs/reference.md" '| `line_delimiter` | string | `\n` |' "docs/reference.md"
mars_cli 0 "describe demo" describe demo
awk '$1 == "count" && $2 ~ /^int/' "$TMP/out" | grep -q . || fail "describe demo: no int option count"
if awk '$1 == "inputs"' "$TMP/out" | grep -q .; then
    fail "describe demo: a source has no inputs option"
fi

say "describe of an unknown type exits 2, with a did-you-mean when one is close"
mars_cli 2 "describe nosuch" describe nosuch
has "$TMP/err" "no component type 'nosuch'" "describe nosuch"
mars_cli 2 "describe fil" describe fil
has "$TMP/err" "no component type 'fil' (did you mean 'file'?)" "describe fil"
mars_cli 2 "describe capture" describe capture

say "a missing config file exits 1 with 'cannot open'"
missing="$TMP/does-not-exist.yaml"
mars_cli 1 "run with a missing config" -c "$missing"
has "$TMP/err" "$missing: cannot open" "run, missing config"
mars_cli 1 "validate with a missing config" validate -c "$missing"
has "$TMP/err" "$missing: cannot open" "validate, missing config"
[[ ! -s $TMP/out ]] || fail "validate of a missing config wrote to stdout: $(cat "$TMP/out")"

pass "all CLI checks passed"
