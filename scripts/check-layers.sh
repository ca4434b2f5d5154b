#!/usr/bin/env bash
# Checks the include layering of src/ (docs/architecture.md, "Source layout"):
#   core <- model <- config <- engine <- control <- main.c
#   engine may use wire (disk buffers store batches in the wire encoding)
#   wire: core, model and config/netconf.h (the shared option sections); control may use it
#   (mars's own configuration from Apollo speaks wire/apollo.h)
#   components (sources/, transforms/, sinks/): "component.h", core/, wire/ and their
#   own folder's headers, nothing else of the engine
# An include that points up or sideways is printed as FILE:LINE and the script exits 1.
set -euo pipefail
cd "$(dirname "$0")/../src"
allowed() { # folder of the including file -> allowed include prefixes (regex)
    case $1 in
    core) echo '^core/' ;;
    model) echo '^(core|model)/' ;;
    config) echo '^(core|model|config)/' ;;
    engine) echo '^(core|model|config|engine|wire)/|^component\.h$' ;;
    control) echo '^(core|model|config|engine|control|wire)/|^component\.h$' ;;
    wire) echo '^(core|model|wire)/|^config/netconf\.h$' ;;
    sources | transforms | sinks) echo '^(core|wire)/|^component\.h$|^[a-z0-9_]+\.h$|^(sources|transforms|sinks)/' ;;
    .) echo '.' ;;
    esac
}
bad=0
while IFS= read -r f; do
    dir=$(dirname "$f")
    top=${dir%%/*}
    re=$(allowed "$top")
    while IFS=: read -r line inc; do
        [[ $inc =~ \.pb-c\.h$ ]] && continue # generated protobuf headers
        if [[ ! $inc =~ $re ]]; then
            echo "src/$f:$line: includes \"$inc\", which $top/ may not use" >&2
            bad=1
        fi
    done < <(grep -n '^#include "' "$f" | sed -E 's/^([0-9]+):#include "([^"]+)".*/\1:\2/')
done < <(find . -name '*.[ch]' -printf '%P\n' | grep -v '^main\.c$')
exit $bad
