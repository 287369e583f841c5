#!/usr/bin/env bash
# README command (2): set up, build, and run every test: the doctest unit suites, the compiled docs
# examples, and a program built against the installed library through pkg-config.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh

echo "== docs examples and install check"
meson test -C build --print-errorlogs --no-suite unit
bash tests/install/check_pkgconfig.sh build

echo "== unit tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
build/tests/tg-tests 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# A plain closing line for tools that read the last line: "unit: N passed, N failed".
passed=$(sed -n 's/^\[doctest\] test cases: *[0-9]* | *\([0-9]*\) passed.*/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/^\[doctest\] test cases:.*| *\([0-9]*\) failed.*/\1/p' "$log" | tail -n 1)
echo "unit: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
