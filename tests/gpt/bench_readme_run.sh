#!/usr/bin/env bash
# The README run's promise, measured: `tg-gpt train --preset small` (nothing else: the default corpus, its own
# BPE, the preset's steps) writes mostly English words. Trains it into a scratch folder, then samples 2,000
# bytes at temperature 0.8 with sample seeds 1, 2 and 3 (tests/gpt/check_real_words.sh) and fails if any of
# them has fewer than 85% of its alphabetic words in the dictionary (Debian's wamerican).
#
#   meson test -C build --benchmark --suite gpt          (a meson benchmark: not part of `meson test`)
#   bash tests/gpt/bench_readme_run.sh build/examples/tg-gpt [TRAINING_SEED] [THREADS]
#
# About 5 minutes on 2 idle cores; docs/gpt.md §8 records what it measured for training seeds 0 and 1.
source "$(dirname "$0")/common.sh" "$@"
SEED=${2:-0}
THREADS=${3:-0}
[ -r /usr/share/games/fortunes ] || fail "no fortunes corpus (bash scripts/setup.sh)"

TIMEFORMAT="training: %R s wall, %U s user CPU"
time "$TG_GPT" train --preset small --seed "$SEED" --threads "$THREADS" --out "$WORK/small" --sample-tokens 0 \
  > /dev/null 2> "$WORK/train.txt" || { cat "$WORK/train.txt"; fail "training the small preset"; }
grep "^step" "$WORK/train.txt" | tail -n 1

status=0
for sample_seed in 1 2 3; do
  echo "sample seed $sample_seed:"
  bash "$(dirname "$0")/check_real_words.sh" "$TG_GPT" "$WORK/small" 0.85 "$sample_seed" || status=1
done
[ "$status" = 0 ] || fail "a sample of the small preset (training seed $SEED) has fewer than 85% English words"
echo "ok"
