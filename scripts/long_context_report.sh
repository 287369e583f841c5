#!/usr/bin/env bash
# The pictures and the table of docs/approximate-attention.md ("Training at T = 4096: the measured frontier")
# from the runs of scripts/long_context_experiment.sh, the pictures drawn by `tg-gpt plot`:
#   PREFIX-bpb-steps.png  validation bits/byte against steps,
#   PREFIX-bpb-cpu-GROUP.png  the same against CPU seconds (step × the run's CPU seconds ÷ its steps: every step
#                         is taken to cost the same, evaluations and monitor steps spread evenly),
#   PREFIX-gap-GROUP.png  the gap to exact's validation bits/byte at the same step, in percent,
#                         for the groups modes, qkln and windows (in_group below),
#   PREFIX-grad-err.png   the monitor's gradient error (max over layers) of every approximate run, log scale,
#   PREFIX-grad-err-LABEL.png  per layer, for each approximate run named after PREFIX (all when none is).
# Runs not in RUN_DIR (no cpu.txt) are left out. The curves are drawn from derived loss.csv files in a
# temporary folder: the first column holds what the x axis shows, the last what the y axis shows.
# Usage: scripts/long_context_report.sh TG_GPT RUN_DIR IMAGES_DIR PREFIX [LABELS...] > table.md
set -euo pipefail
TG_GPT=${1:?usage: $0 TG_GPT RUN_DIR IMAGES_DIR PREFIX [LABELS...]}
RUNS=${2:?usage: $0 TG_GPT RUN_DIR IMAGES_DIR PREFIX}
IMAGES=${3:?usage: $0 TG_GPT RUN_DIR IMAGES_DIR PREFIX}
PREFIX=${4:?usage: $0 TG_GPT RUN_DIR IMAGES_DIR PREFIX}
shift 4
per_layer=("$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$IMAGES"

# The runs of the docs' table, in its order; the approximate ones also have gradient errors.
all=(exact exact-qkln ab-g2 ab-g2-qkln ab-g2-qkln-t2 ab-g2-qkln-t4 ab-g4 ab-g4-qkln ab-w64 ab-w64-s4 ab-w256
     ab-w256-s4 approx approx-w64-s4 approx-w256-s4 auto)
runs=()
for label in "${all[@]}"; do [ -s "$RUNS/$label/cpu.txt" ] && runs+=("$label"); done
[ ${#runs[@]} -gt 0 ] || { echo "no finished runs in $RUNS" >&2; exit 2; }

# derive LABEL KIND: $work/KIND/LABEL/loss.csv in tg-gpt's format (step,train_loss,val_loss,val_bpb), the
# evaluations only, with the x value in the first column and the y value in the last.
derive() {
  local label=$1 kind=$2 csv=$RUNS/$1/loss.csv
  mkdir -p "$work/$kind/$label"
  case $kind in
    cpu)  # x: CPU seconds at that step
      local cpu steps
      cpu=$(cat "$RUNS/$label/cpu.txt")
      steps=$(tail -n 1 "$csv" | cut -d, -f1)
      awk -F, -v f="$(awk -v c="$cpu" -v s="$steps" 'BEGIN { print c / s }')" \
        'NR == 1 { print; next } $4 != "" { printf "%.3f,%s,%s,%s\n", $1 * f, $2, $3, $4 }' "$csv" ;;
    gap)  # y: percent above exact's validation bits/byte at the same step
      awk -F, 'NR == FNR { if (FNR > 1 && $4 != "") exact[$1] = $4; next }
               FNR == 1 { print; next }
               $4 != "" && ($1 in exact) { printf "%s,%s,%s,%.6f\n", $1, $2, $3, 100 * ($4 / exact[$1] - 1) }' \
        "$RUNS/exact/loss.csv" "$csv" ;;
  esac > "$work/$kind/$label/loss.csv"
}

# errors LABEL LAYER DIR: DIR/loss.csv holding step,0,0,error from the run's --json lines
# ("attn_err":{"blocks.0.attn":e,...}); LAYER "max" takes the largest over the layers. The lines carry the
# latest record of each layer, so a layer that no longer runs approximately (auto chose exact) repeats its last
# error: a value equal to the previous line's is not a new measurement and is left out.
errors() {
  local label=$1 layer=$2 dir=$3
  mkdir -p "$dir"
  { echo "step,train_loss,val_loss,val_bpb"
    grep '"attn_err"' "$RUNS/$label.json" | awk -v layer="$layer" '{
      match($0, /"step":[0-9]+/); step = substr($0, RSTART + 7, RLENGTH - 7)
      match($0, /"attn_err":\{[^}]*\}/); body = substr($0, RSTART + 12, RLENGTH - 13)
      n = split(body, pairs, ","); best = -1
      for (i = 1; i <= n; ++i) {
        split(pairs[i], kv, ":"); name = kv[1]; gsub(/"/, "", name); value = kv[2] + 0
        if (value == last[name]) continue
        last[name] = value
        if ((layer == "max" || name == layer) && value > best) best = value
      }
      if (best > 0) printf "%s,0,0,%.6g\n", step, best
    }'
  } > "$dir/loss.csv"
}

plot() {  # plot OUT KIND LABELS... [-- tg-gpt plot options]
  local out=$1 kind=$2; shift 2
  local dirs=() names=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    if [ "$kind" = raw ]; then dirs+=("$RUNS/$1"); else dirs+=("$work/$kind/$1"); fi
    names+=("$1"); shift
  done
  [ $# -gt 0 ] && shift
  local IFS=,
  "$TG_GPT" plot --runs "${dirs[@]}" --labels "${names[*]}" --metric val_bpb --out "$IMAGES/$PREFIX-$out.png" "$@"
}

# in_group GROUP: the finished runs of one picture group (ten colours a picture at most).
in_group() {
  local wanted
  case $1 in
    modes) wanted=" exact ab-g2 ab-g4 approx approx-w64-s4 ab-w64-s4 auto " ;;
    qkln) wanted=" exact exact-qkln ab-g2 ab-g2-qkln ab-g2-qkln-t2 ab-g2-qkln-t4 ab-g4-qkln " ;;
    windows) wanted=" exact ab-g2 ab-w64 ab-w64-s4 ab-w256 ab-w256-s4 approx approx-w64-s4 approx-w256-s4 " ;;
  esac
  for label in "${runs[@]}"; do [[ $wanted == *" $label "* ]] && echo "$label"; done
}

for label in "${runs[@]}"; do
  derive "$label" cpu
  [ "$label" = exact ] || [ ! -s "$RUNS/exact/loss.csv" ] || derive "$label" gap
done
plot bpb-steps raw "${runs[@]}" -- --width 900 --height 600
for group in modes qkln windows; do
  mapfile -t members < <(in_group "$group")
  [ ${#members[@]} -gt 1 ] || continue
  plot "bpb-cpu-$group" cpu "${members[@]}" -- --x-label "CPU seconds (whole process, 1 thread)"
  gap_members=()
  for label in "${members[@]}"; do [ "$label" = exact ] || gap_members+=("$label"); done
  [ ! -s "$RUNS/exact/loss.csv" ] ||
    plot "gap-$group" gap "${gap_members[@]}" -- --y-label "val bits/byte above exact's at the same step (%)"
done

approximate=()
for label in "${runs[@]}"; do
  case $label in exact | exact-qkln) ;; *) grep -q '"attn_err"' "$RUNS/$label.json" && approximate+=("$label") ;; esac
done
if [ ${#approximate[@]} -gt 0 ]; then
  # has_points FILE: a derived loss.csv with at least one row (a layer auto switched to exact before the
  # monitor's first step has none).
  has_points() { [ "$(wc -l < "$1")" -gt 1 ]; }
  measured=()
  for label in "${approximate[@]}"; do
    errors "$label" max "$work/err/$label"
    has_points "$work/err/$label/loss.csv" && measured+=("$label")
  done
  plot grad-err err "${measured[@]}" -- --log-y --y-label "max relative gradient error over the layers (monitor)" \
    --width 900 --height 600
  [ ${#per_layer[@]} -gt 0 ] || per_layer=("${measured[@]}")
  for label in "${per_layer[@]}"; do
    grep -q '"attn_err"' "$RUNS/$label.json" 2> /dev/null || continue
    layers=()
    for k in 0 1 2 3; do
      errors "$label" "blocks.$k.attn" "$work/err-$label/blocks.$k.attn"
      has_points "$work/err-$label/blocks.$k.attn/loss.csv" && layers+=("blocks.$k.attn")
    done
    plot "grad-err-$label" "err-$label" "${layers[@]}" -- --log-y \
      --y-label "relative gradient error per layer, $label (monitor)"
  done
fi 2> /dev/null

# The table of the docs (markdown, on stdout): CPU seconds and their ratio to exact's, the last validation bits/
# byte and its gap to exact's, the monitor's max gradient error over the layers at three steps.
exact_cpu=$(cat "$RUNS/exact/cpu.txt" 2> /dev/null || echo 0)
exact_bpb=$(tail -n 1 "$RUNS/exact/loss.csv" 2> /dev/null | cut -d, -f4)
echo "| configuration | CPU s | × exact | val bpb (last step) | vs exact | max gradient error (monitor), steps 100 / 200 / 300 |"
echo "|---|---|---|---|---|---|"
for label in "${runs[@]}"; do
  cpu=$(cat "$RUNS/$label/cpu.txt")
  bpb=$(tail -n 1 "$RUNS/$label/loss.csv" | cut -d, -f4)
  errs=$(grep '"attn_err"' "$RUNS/$label.json" 2> /dev/null | awk '{
      match($0, /"step":[0-9]+/); step = substr($0, RSTART + 7, RLENGTH - 7)
      match($0, /"attn_err":\{[^}]*\}/); body = substr($0, RSTART + 12, RLENGTH - 13)
      n = split(body, pairs, ","); best = 0
      for (i = 1; i <= n; ++i) {  # new measurements only (see errors above)
        split(pairs[i], kv, ":")
        if (kv[2] + 0 != last[kv[1]] && kv[2] + 0 > best) best = kv[2] + 0
        last[kv[1]] = kv[2] + 0
      }
      if (step != 100 && step != 200 && step != 300) next
      out = out (out == "" ? "" : " / ") (best > 0 ? sprintf("%.2g", best) : "exact")
    } END { print out }' || true)
  awk -v l="$label" -v c="$cpu" -v ec="$exact_cpu" -v b="$bpb" -v eb="$exact_bpb" -v e="${errs:-—}" 'BEGIN {
    gap = eb > 0 ? 100 * (b / eb - 1) : 0
    if (gap > -0.005 && gap < 0.005) gap = 0
    printf "| `%s` | %.0f | %.2f | %.4f | %+.2f%% | %s |\n", l, c, (ec > 0 ? c / ec : 0), b, gap, e }'
done

# The score statistics of the trained layers (LABEL.scores): all visible pairs, then the far pairs of W = 64, S = 4
# (the auto run's checkpoint keeps --auto-window when resumed, so it has only the second).
echo
echo "| configuration | score std, blocks 0 / 1 / 2 / 3 | far score std (W = 64, S = 4), blocks 0 / 1 / 2 / 3 |"
echo "|---|---|---|"
for label in "${runs[@]}"; do
  [ -s "$RUNS/$label.scores" ] || continue
  all_std=$(grep -v 'window chosen' "$RUNS/$label.scores" | grep -o 'score std [0-9.e+-]*' | cut -d' ' -f3 | paste -sd/ || true)
  far_std=$(grep 'sinks 4: window 64: far score std' "$RUNS/$label.scores" | grep -o 'score std [0-9.e+-]*' | cut -d' ' -f3 \
    | paste -sd/ || true)
  echo "| \`$label\` | ${all_std:-—} | ${far_std:-—} |" | sed 's|\([0-9]\)/\([0-9]\)|\1 / \2|g'
done
