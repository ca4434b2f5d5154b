#!/usr/bin/env bash
# Checks that FILES are formatted as clang-format and the committed .clang-format say
# (`make format-check`, the first step of `make test`); changes nothing. On drift it names
# every file that differs and exits 1; `make format` rewrites them.
# The tree is formatted with Debian's clang-format 14; other versions format some constructs
# differently, so a failure under another version says which one ran.
# Usage: scripts/format-check.sh FILE...
set -euo pipefail
command -v clang-format >/dev/null || { echo "format-check: clang-format is missing (scripts/deps.sh test)" >&2; exit 1; }
(($# > 0)) || { echo "format-check: no files to check (outside a git checkout?)" >&2; exit 1; }
out=$(clang-format --dry-run --Werror "$@" 2>&1) && exit 0
# one diagnostic per difference, "FILE:LINE:COL: error: code should be clang-formatted ...":
# keep the file names
bad=$(sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' <<<"$out" | sort -u)
if [[ -z $bad ]]; then # clang-format itself failed
    echo "$out" >&2
    exit 1
fi
echo "format-check: files that differ from clang-format's output ($(wc -l <<<"$bad")):" >&2
sed 's/^/  /' <<<"$bad" >&2
echo "format-check: run 'make format' and commit the result" >&2
version=$(clang-format --version | sed -n 's/.*clang-format version \([0-9]*\).*/\1/p')
if [[ $version != 14 ]]; then
    echo "format-check: this is clang-format ${version:-of an unknown version}; the tree is formatted with 14" >&2
fi
exit 1
