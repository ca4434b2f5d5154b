#!/usr/bin/env bash
# Static analysis of src/ with cppcheck (Debian's 2.10) as `make cppcheck` and `make test`
# run it: checks warning, error and portability (plus the few style checks cppcheck reports
# anyway) and exits 1 on any finding. A finding that is wrong is silenced where it is, with
# `// cppcheck-suppress <id>` and the reason, never here.
#
# What is analysed is what is built: the .c files under src/ that BUILD_DIR's
# compile_commands.json compiles (no ev_uring*.c without liburing; the generated
# build/proto/*.pb-c.c are not ours), with the -D and -I of their compile commands.
# cppcheck reads no system header, so the compiler's predefined macros (__GNUC__,
# __BYTE_ORDER__, __x86_64__: json.c refuses big-endian targets with #error) and the version
# macros the generated protobuf-c header checks go in through --include.
#
# Why not --project=compile_commands.json, and why one job: cppcheck 2.10 runs its
# whole-program checks (a NULL passed down a call chain into another file, ctunullpointer)
# neither on a project file nor with -j 2 or more, and those found a real bug. One job takes
# about 10 s for all of src/.
# Usage: scripts/cppcheck.sh BUILD_DIR
set -euo pipefail
build=$1
command -v cppcheck >/dev/null || { echo "cppcheck: cppcheck is missing (scripts/deps.sh test)" >&2; exit 1; }
[[ -f $build/compile_commands.json ]] || { echo "cppcheck: no $build/compile_commands.json (configure first)" >&2; exit 1; }
work=$build/cppcheck
mkdir -p "$work"
src=$(pwd)/src
# the src/ files and the flags of one of them (every src/ file is built with the same ones)
python3 - "$build/compile_commands.json" "$src" "$work" <<'PY'
import json, os, shlex, sys
db, src, work = sys.argv[1], sys.argv[2] + "/", sys.argv[3]
cmds = [e for e in json.load(open(db)) if e["file"].startswith(src)]
args = cmds[0].get("arguments") or shlex.split(cmds[0]["command"])
flags = [a for a in args if a.startswith(("-D", "-I", "-U"))]
files = sorted(os.path.relpath(e["file"]) for e in cmds)  # findings name src/...
open(work + "/files", "w").write("\n".join(files) + "\n")
open(work + "/flags", "w").write("\n".join(flags) + "\n")
PY
cc=${CC:-cc}
{
    "$cc" -std=c11 -dM -E -x c /dev/null
    printf '#include <protobuf-c/protobuf-c.h>\n' | "$cc" -dM -E -x c - |
        grep -E '^#define PROTOBUF_C_(VERSION_NUMBER|MIN_COMPILER_VERSION) '
} >"$work/predefined.h"
mapfile -t flags <"$work/flags"
# __CPPCHECK__, which newer cppcheck defines itself and 2.10 does not: core/curl_api.h then
# leaves libcurl's calls plain (through its function pointers they took 2.10 many minutes)
exec cppcheck -q --error-exitcode=1 --inline-suppr --enable=warning,portability \
    --suppress=missingIncludeSystem --include="$work/predefined.h" -D__CPPCHECK__ "${flags[@]}" \
    --file-list="$work/files"
