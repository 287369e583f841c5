#!/usr/bin/env bash
# Configures (once) and builds tapegrad in ./build with meson + ninja. Extra arguments go to `meson setup`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release "$@"
fi
meson compile -C build
