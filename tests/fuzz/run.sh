#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD (see tests/fuzz/meson.build): first replays its committed seed corpus
# (tests/fuzz/corpus/<target>/), then fuzzes for SECONDS, under ASan + UBSan with a 512 MB memory cap. New
# inputs go to a scratch folder (the committed corpus is left as it is); a crash, a leak, a sanitizer report or
# an input that needs more than 512 MB fails the run and leaves the input in BUILD/fuzz-artifacts/.
#   usage: tests/fuzz/run.sh BUILD [SECONDS per target, default 20]
set -euo pipefail
build=${1:?usage: $0 BUILD [SECONDS]}
seconds=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
# A small quarantine (ASan keeps freed memory out of reuse for a while, 256 MB by default): else the memory of
# many inputs adds up past the cap although no single input comes near it.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1:quarantine_size_mb=64
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$here/ubsan.supp
status=0
for target in "$build"/tests/fuzz/fuzz_*; do
  [ -f "$target" ] && [ -x "$target" ] || continue  # not the .p folders of objects
  name=$(basename "$target"); name=${name#fuzz_}
  seeds="$here/corpus/$name"
  scratch=$(mktemp -d)
  log="$artifacts/$name.log"
  common=(-rss_limit_mb=512 -malloc_limit_mb=512 -timeout=10 -artifact_prefix="$artifacts/$name-" -print_final_stats=1)
  if ! "$target" "${common[@]}" -runs=0 "$seeds" > "$log" 2>&1 ||
     ! "$target" "${common[@]}" -max_total_time="$seconds" -max_len=65536 "$scratch" "$seeds" >> "$log" 2>&1; then
    echo "fuzz $name: FAILED (see $log and $artifacts/)"; tail -n 30 "$log"; status=1
  else
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    echo "fuzz $name: ok ($(ls "$seeds" | wc -l) seeds replayed, ${runs:-?} inputs in ${seconds} s)"
  fi
  rm -rf "$scratch"
done
exit "$status"
