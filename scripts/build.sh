#!/usr/bin/env bash
# Configures (once) and builds tapegrad in ./build with meson + ninja. Extra arguments go to `meson setup`.
# TARGETS (optional) builds only those meson targets and what they need, e.g. TARGETS=examples/tg-gpt
# (README command 1 builds the library and tg-gpt only; command 2 builds everything).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  # A compiler cache when there is one (setup.sh installs ccache): a rebuild from scratch, e.g. CI on a fresh
  # clone, then reuses the objects of earlier builds on this machine.
  if [ -z "${CXX:-}" ] && command -v ccache > /dev/null; then export CXX="ccache g++"; fi
  if [ -z "${CC:-}" ] && command -v ccache > /dev/null; then export CC="ccache gcc"; fi  # the C API programs
  meson setup build --buildtype=release "$@"
fi
# shellcheck disable=SC2086 # TARGETS is a list of target names
meson compile -C build ${TARGETS:-}
