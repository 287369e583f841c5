#!/usr/bin/env bash
# The step-time table of docs/approximate-attention.md ("Whole training steps at long context"): tg-bench gpt
# --config L (the long preset's model) at T = 1024, 4096, 16384 with 16384 tokens a step (batch 16, 4, 1), every
# attention mode, after one `tg-bench peak` in the same run. One JSON line per measurement on stdout; a mode
# that fails or takes longer than TIMEOUT seconds is recorded as {"timeout":..}. Not in the list: g = 3 (GPT
# models refuse odd degrees) and plugin g = 4 (more than 240 s for 4 steps at T = 1024 and 4096).
# Usage: scripts/long_context_step_table.sh TG_BENCH [THREADS] [STEPS] [TIMEOUT] > table.jsonl
set -uo pipefail
TG_BENCH=${1:?usage: $0 TG_BENCH [THREADS] [STEPS] [TIMEOUT]}
THREADS=${2:-2}
STEPS=${3:-2}
TIMEOUT=${4:-300}
modes=(
  "--attention exact"
  "--attention approx"
  "--attention approx_backward --degree 2"
  "--attention approx_backward --window 64"
  "--attention approx_backward --window 64 --sinks 4"
  "--attention approx_backward --window 256"
  "--attention approx_backward --window 256 --sinks 4"
  "--attention approx --window 64 --sinks 4"
  "--attention approx --window 256 --sinks 4"
  "--attention approx_backward --degree 2 --grad plugin"
  "--attention approx_backward --degree 4"
)
"$TG_BENCH" peak --threads "$THREADS" --json | grep '"suite":"peak"'
for T in 1024 4096 16384; do
  for mode in "${modes[@]}"; do
    # shellcheck disable=SC2086  # $mode is several arguments on purpose
    line=$(timeout "$TIMEOUT" "$TG_BENCH" gpt --config L --seq "$T" --batch $(( 16384 / T )) --steps "$STEPS" \
      --threads "$THREADS" --json $mode | grep '"suite":"gpt"') \
      || line="{\"suite\":\"gpt\",\"seq\":$T,\"mode\":\"$mode\",\"timeout\":$TIMEOUT}"
    echo "$line"
  done
done
