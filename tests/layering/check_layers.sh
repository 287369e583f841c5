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
LAYERS=(kernels core autograd nn distributed capi)

rank_of() {
  local i
  for i in "${!LAYERS[@]}"; do [ "${LAYERS[$i]}" = "$1" ] && { echo "$i"; return; }; done
  echo -1
}

bad=0
checked=0
for i in "${!LAYERS[@]}"; do
  folder=${LAYERS[$i]}
  [ -d "$folder" ] || continue
  while IFS= read -r -d '' file; do
    checked=$((checked + 1))
    # Every quoted include whose first path part names a layer folder.
    while IFS=: read -r line target; do
      top=${target%%/*}
      r=$(rank_of "$top")
      if [ "$r" -gt "$i" ]; then
        echo "layering: $file:$line includes \"$target\": $folder may not include from $top (a higher layer)"
        bad=1
      fi
    done < <(grep -nE '^\s*#\s*include\s+"[^"]+/' "$file" | sed -E 's/^([0-9]+):.*"([^"]+)".*/\1:\2/' || true)
  done < <(find "$folder" -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.c' \) -print0)
done

if [ "$checked" -eq 0 ]; then
  echo "layering: no source files found under $(pwd)" >&2
  exit 1
fi
[ "$bad" -eq 0 ] && echo "layering: $checked files, every include points to its own or a lower layer"
exit "$bad"
