#!/usr/bin/env bash
# The library's folders form layers; a file may include headers from its own folder and from the folders
# below it, never from a folder above (docs/architecture.md). A new layer goes into LAYERS in its place.
#
#   kernels     the hot loops (xsimd + oneTBB only)
#   core        tensors, ops' forward entry points, the tape (nodes, backward engine, grad mode)
#   autograd    user tools on the tape: custom functions, gradcheck, graph pictures
#   nn          modules, losses, optimizers, data, models
#   distributed the MPI communicator
#   capi        the C API
#
# Usage: check_layers.sh SOURCE_ROOT. Prints every offending include and exits 1 if there is one.
set -euo pipefail
root=${1:-$(dirname "$0")/../..}
cd "$root"
LAYERS="kernels core autograd nn distributed capi"

present=()
for folder in $LAYERS; do [ -d "$folder" ] && present+=("$folder"); done
files=$(find "${present[@]}" -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.c' \) | wc -l)
if [ "$files" -eq 0 ]; then
  echo "layering: no source files found under $(pwd)" >&2
  exit 1
fi

# One pass over every quoted include "folder/...": the including file's folder must not rank below the
# included header's folder.
find "${present[@]}" -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.c' \) -print0 |
  xargs -0 grep -HnE '^\s*#\s*include\s+"[^"]+/' |
  awk -v layers="$LAYERS" -v files="$files" '
    BEGIN { n = split(layers, names, " "); for (i = 1; i <= n; i++) rank[names[i]] = i; bad = 0 }
    {
      split($0, parts, ":"); file = parts[1]; line = parts[2]
      from = file; sub(/\/.*/, "", from)
      match($0, /"[^"]+"/); target = substr($0, RSTART + 1, RLENGTH - 2)
      to = target; sub(/\/.*/, "", to)
      if ((to in rank) && rank[to] > rank[from]) {
        printf "layering: %s:%s includes \"%s\": %s may not include from %s (a higher layer)\n", file, line, target, from, to
        bad = 1
      }
    }
    END {
      if (!bad) printf "layering: %d files, every include points to its own or a lower layer\n", files
      exit bad
    }'
