#!/usr/bin/env bash
# The long-context experiment of docs/approximate-attention.md ("Training at T = 4096: the measured frontier"):
# the long preset (T = 4096) trained with each attention configuration for the same number of steps, one run
# at a time, one thread, niced; each run's CPU seconds (user + system, /usr/bin/time) beside its loss.csv.
# Usage: scripts/long_context_experiment.sh TG_GPT OUT_DIR [STEPS] [BATCH] [CONFIG_LABELS...]
# Evaluations every EVAL_EVERY steps (environment; default 25), which is also when the monitor measures the
# gradient errors. The runs of the docs: STEPS = 300, BATCH = 2 (half the preset's 300 x 4: all configurations
# at the preset's size did not fit the session on the shared 2-core machine), then
# scripts/long_context_report.sh for the pictures and the table.
# A run whose OUT_DIR/LABEL/cpu.txt exists is skipped (rerun by deleting it).
# After each run, the score statistics of its trained layers (OUT_DIR/LABEL.scores, skipped when it exists):
# `auto` resumed for one more step from a copy of the final checkpoint logs, for every layer, the standard
# deviation of the scores s·q·k (estimate_score_std) and, with --auto-window --sinks 4, of the far scores outside
# the window (estimate_far_score_std), against the bounded regime's limit (nn/attention.h).
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
  [ab-g2-qkln-t2]="--attention approx_backward --qk-layernorm --qk-temperature 2"
  [ab-g2-qkln-t4]="--attention approx_backward --qk-layernorm --qk-temperature 4"
  [ab-g4]="--attention approx_backward --degree 4"
  [ab-g4-qkln]="--attention approx_backward --degree 4 --qk-layernorm"
  [exact-qkln]="--attention exact --qk-layernorm"
  [ab-w64]="--attention approx_backward --window 64"
  [ab-w64-s4]="--attention approx_backward --window 64 --sinks 4"
  [ab-w256]="--attention approx_backward --window 256"
  [ab-w256-s4]="--attention approx_backward --window 256 --sinks 4"
  [approx-w64-s4]="--attention approx --window 64 --sinks 4"
  [approx-w256-s4]="--attention approx --window 256 --sinks 4"
  [auto]="--attention auto --auto-window"
)
order=(exact ab-g2 approx auto ab-w64-s4 approx-w64-s4 ab-g2-qkln exact-qkln ab-w64 ab-g2-qkln-t2 ab-g2-qkln-t4
       ab-w256-s4 ab-w256 ab-g4 ab-g4-qkln approx-w256-s4)
[ $# -gt 0 ] && order=("$@")
mkdir -p "$OUT"
# score_stats LABEL: the `tapegrad: attention auto` lines of two one-step resumes into OUT/LABEL.scores.
score_stats() {
  local label=$1 copy
  [ -s "$OUT/$label.scores" ] && return
  copy=$(mktemp -d)
  for window in "" "--auto-window --sinks 4"; do
    rm -rf "$copy/run" && cp -r "$OUT/$label" "$copy/run"
    # shellcheck disable=SC2086  # $window is several arguments on purpose
    # --degree 2: auto estimates the scores only where the polynomial can pay, which g = 4 never does at this T
    nice -n 10 "$TG_GPT" train --resume --out "$copy/run" --threads 1 --steps "$(( STEPS + 1 ))" --eval-every 1000 \
      --sample-tokens 0 --attention auto --degree 2 $window 2>&1 | grep 'tapegrad: attention auto' || true
  done > "$OUT/$label.scores.tmp"
  rm -rf "$copy"
  mv "$OUT/$label.scores.tmp" "$OUT/$label.scores"
}
for label in "${order[@]}"; do
  [ -n "${configs[$label]+x}" ] || { echo "unknown configuration $label" >&2; exit 2; }
  [ -s "$OUT/$label/cpu.txt" ] && { score_stats "$label"; continue; }
  rm -rf "${OUT:?}/$label"
  echo "== $label: ${configs[$label]}"
  # shellcheck disable=SC2086  # the configuration is several arguments on purpose
  /usr/bin/time -f "%U %S" -o "$OUT/$label.time" nice -n 10 "$TG_GPT" train --preset long --threads 1 \
    --steps "$STEPS" --batch "$BATCH" --eval-every "$EVAL_EVERY" --sample-tokens 0 --json --out "$OUT/$label" ${configs[$label]} \
    > "$OUT/$label.json" 2> "$OUT/$label.err"
  awk '{ print $1 + $2 }' "$OUT/$label.time" > "$OUT/$label/cpu.txt"
  echo "   $(cat "$OUT/$label/cpu.txt") CPU-s; $(tail -n 1 "$OUT/$label.json" | cut -c 1-100)"
  score_stats "$label"
done
