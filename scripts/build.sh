#!/usr/bin/env bash
# Configures (once) and builds tapegrad in ./build with meson + ninja. Extra arguments go to `meson setup`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  # A compiler cache when there is one (setup.sh installs ccache): a rebuild from scratch, e.g. CI on a fresh
  # clone, then reuses the objects of earlier builds on this machine.
  if [ -z "${CXX:-}" ] && command -v ccache > /dev/null; then export CXX="ccache g++"; fi
  if [ -z "${CC:-}" ] && command -v ccache > /dev/null; then export CC="ccache gcc"; fi  # the C API programs
  meson setup build --buildtype=release "$@"
fi
meson compile -C build
