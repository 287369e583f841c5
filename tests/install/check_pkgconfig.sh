#!/usr/bin/env bash
# Installs the build into a scratch prefix and compiles tests/install/app.cpp against it using only
# `pkg-config --cflags --libs tapegrad`, then runs it: the library is usable from a plain C++ program.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
DESTDIR="$stage" meson install -C "$build" --quiet --no-rebuild
pc=$(find "$stage" -name tapegrad.pc -print -quit)
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

# The C API from C: tg-c-example compiled by the C compiler with the installed header, linked against the
# shared library, then against the static one alone (a folder holding only libtapegrad.a and the .pc), as
# `pkg-config --static --libs tapegrad` says. Without arguments the program prints its usage and exits 2.
example="$here/../../examples/c/tg_c_example.c"
cflags=$(pkg-config --cflags-only-I tapegrad)
cc -std=c11 -O1 "$example" $cflags $(pkg-config --libs tapegrad) -o "$stage/c-shared"
status=0; LD_LIBRARY_PATH="$libdir" "$stage/c-shared" > /dev/null 2>&1 || status=$?
[ "$status" -eq 2 ] || { echo "check_pkgconfig: the C example (shared) exited $status, expected 2"; exit 1; }
mkdir -p "$stage/static-only/pkgconfig"
cp "$libdir/libtapegrad.a" "$stage/static-only/"
sed "s|^libdir=.*|libdir=$stage/static-only|" "$pc" > "$stage/static-only/pkgconfig/tapegrad.pc"
libs=$(PKG_CONFIG_PATH="$stage/static-only/pkgconfig" pkg-config --static --libs tapegrad)
echo "check_pkgconfig: cc tg_c_example.c $libs"
cc -std=c11 -O1 "$example" $cflags $libs -o "$stage/c-static"
if ldd "$stage/c-static" | grep libtapegrad > /dev/null; then
  echo "check_pkgconfig: the statically linked C example still loads libtapegrad.so"; exit 1
fi
status=0; "$stage/c-static" > /dev/null 2>&1 || status=$?
[ "$status" -eq 2 ] || { echo "check_pkgconfig: the C example (static) exited $status, expected 2"; exit 1; }
echo "check_pkgconfig: OK"
