#!/usr/bin/env bash
# The long-context experiment of docs/approximate-attention.md ("Training at T = 4096: the measured frontier"):
# the long preset (T = 4096) trained with each attention configuration for the same number of steps, one run
# at a time, one thread, niced; each run's CPU seconds (user + system, /usr/bin/time) beside its loss.csv.
# Usage: scripts/long_context_experiment.sh TG_GPT OUT_DIR [STEPS] [BATCH] [CONFIG_LABELS...]
# Evaluations every EVAL_EVERY steps (environment; default 25). The runs of the docs: STEPS = 100, BATCH = 1
# (the preset's batch 4 and 300 steps did not fit the time left on the shared 2-core machine, load 8-15).
# A run whose OUT_DIR/LABEL/cpu.txt exists is skipped (rerun by deleting it).
set -euo pipefail
TG_GPT=${1:?usage: $0 TG_GPT OUT_DIR [STEPS] [BATCH] [LABELS...]}
OUT=${2:?usage: $0 TG_GPT OUT_DIR [STEPS] [BATCH] [LABELS...]}
STEPS=${3:-100}
BATCH=${4:-1}
EVAL_EVERY=${EVAL_EVERY:-25}
shift $(( $# < 4 ? $# : 4 ))
declare -A configs=(
  [exact]="--attention exact"
  [approx]="--attention approx"
  [ab-g2]="--attention approx_backward"
  [ab-g2-qkln]="--attention approx_backward --qk-layernorm"
  [ab-w64]="--attention approx_backward --window 64"
  [ab-w64-s4]="--attention approx_backward --window 64 --sinks 4"
  [ab-w256]="--attention approx_backward --window 256"
  [ab-w256-s4]="--attention approx_backward --window 256 --sinks 4"
  [approx-w64-s4]="--attention approx --window 64 --sinks 4"
  [approx-w256-s4]="--attention approx --window 256 --sinks 4"
  [auto]="--attention auto --auto-window"
)
order=(exact approx ab-g2 approx-w64-s4 ab-w64-s4 auto ab-g2-qkln ab-w64 ab-w256-s4 ab-w256 approx-w256-s4)
[ $# -gt 0 ] && order=("$@")
mkdir -p "$OUT"
for label in "${order[@]}"; do
  [ -n "${configs[$label]+x}" ] || { echo "unknown configuration $label" >&2; exit 2; }
  [ -s "$OUT/$label/cpu.txt" ] && continue
  rm -rf "$OUT/$label"
  echo "== $label: ${configs[$label]}"
  # shellcheck disable=SC2086  # the configuration is several arguments on purpose
  /usr/bin/time -f "%U %S" -o "$OUT/$label.time" nice -n 10 "$TG_GPT" train --preset long --threads 1 \
    --steps "$STEPS" --batch "$BATCH" --eval-every "$EVAL_EVERY" --sample-tokens 0 --json --out "$OUT/$label" ${configs[$label]} \
    > "$OUT/$label.json" 2> "$OUT/$label.err"
  awk '{ print $1 + $2 }' "$OUT/$label.time" > "$OUT/$label/cpu.txt"
  echo "   $(cat "$OUT/$label/cpu.txt") CPU-s; $(tail -n 1 "$OUT/$label.json" | cut -c 1-100)"
done
