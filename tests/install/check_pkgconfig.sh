#!/usr/bin/env bash
# Installs the build into a scratch prefix and compiles tests/install/app.cpp against it using only
# `pkg-config --cflags --libs tapegrad`, then runs it: the library is usable from a plain C++ program.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
DESTDIR="$stage" meson install -C "$build" --quiet --no-rebuild
pc=$(find "$stage" -name tapegrad.pc | head -n 1)
[ -n "$pc" ] || { echo "check_pkgconfig: tapegrad.pc was not installed"; exit 1; }
# The staged .pc still names the configured prefix; point it at the staged tree instead.
prefix=$(sed -n 's/^prefix=//p' "$pc")
sed -i "s|^prefix=.*|prefix=$stage$prefix|" "$pc"
export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs tapegrad)
echo "check_pkgconfig: g++ app.cpp $flags"
g++ -O1 "$here/app.cpp" $flags -o "$stage/app"
libdir=$(pkg-config --variable=libdir tapegrad)
LD_LIBRARY_PATH="$libdir" "$stage/app"
echo "check_pkgconfig: OK"
