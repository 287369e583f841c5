#!/usr/bin/env bash
# `tg-bench gpt --profile` and `tg-bench vit --profile` (bench/step_profile.h): a small step's breakdown names
# the kinds such a step must contain, op lines carry a kind, and the kinds' percentages add up to 100.
# Usage: check_bench_profile.sh TG_BENCH
set -euo pipefail
TG_BENCH=${1:?usage: $0 path/to/tg-bench}
out=$("$TG_BENCH" gpt --config S --batch 2 --seq 32 --steps 2 --threads 1 --profile --json)
fail() { echo "FAIL: $*" >&2; echo "$out" >&2; exit 1; }
for kind in gemm attention layernorm gelu softmax/cross-entropy embedding adamw framework; do
  grep -q "\"suite\":\"gpt_profile\".*\"kind\":\"${kind//\//\\/}\"" <<<"$out" || fail "no line for kind $kind"
done
grep -q '"suite":"gpt_profile_op".*"op":"linear backward".*"kind":"gemm"' <<<"$out" || fail "no linear backward op line"
grep -q '"suite":"gpt_profile".*"kind":"gemm".*"gflop":[0-9.]*,"gflops":[0-9.]*}' <<<"$out" || fail "the gemm kind has no gflop/gflops"
if grep -q 'peak_fraction' <<<"$out"; then fail "peak_fraction without --peak"; fi
grep '"suite":"gpt_profile"' <<<"$out" | sed 's/.*"percent":\([-0-9.eE+]*\).*/\1/' \
  | awk '{ s += $1 } END { printf "kinds add up to %.4f%%\n", s; exit !(s > 99.99 && s < 100.01) }' \
  || fail "the kinds' percentages do not add up to 100"
vit=$("$TG_BENCH" vit --batch 4 --steps 2 --threads 1 --profile --json)
grep -q '"suite":"vit","threads":1,"batch":4,"tokens":17' <<<"$vit" || { out=$vit; fail "no vit step line"; }
for kind in gemm attention layernorm gelu adamw; do
  grep -q "\"suite\":\"vit_profile\".*\"kind\":\"$kind\"" <<<"$vit" || { out=$vit; fail "vit: no line for kind $kind"; }
done
echo ok
