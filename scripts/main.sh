#!/usr/bin/env bash
# README command (1): set up, build tg-gpt, train a small GPT on the Debian fortunes corpus, then sample from it.
#
#   bash scripts/main.sh                 train the `small` preset into runs/small: a BPE tokenizer of 4096
#                                        tokens trained on the corpus, then 2500 steps (about 3.5 minutes on 2
#                                        idle cores)
#   bash scripts/main.sh --json          extra arguments go to `tg-gpt train`
#
# Ctrl-C during training saves a checkpoint; running this script again resumes it exactly where it stopped
# (delete runs/small to start over). The loss curves land in runs/small/loss.png and runs/small/loss.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
TARGETS=examples/tg-gpt bash scripts/build.sh   # the library and tg-gpt only; scripts/test.sh builds the rest

tg_gpt=build/examples/tg-gpt
out=runs/small
if [ -f "$out/state.json" ]; then
  echo "== resuming the checkpoint in $out (delete it to train afresh)"
  "$tg_gpt" train --out "$out" --resume "$@"
else
  echo "== training the small preset on the fortunes corpus into $out"
  "$tg_gpt" train --preset small --out "$out" --force "$@"
fi

echo "== sampling from $out"
"$tg_gpt" sample --ckpt "$out" --prompt "The " --tokens 400 --temperature 0.8 --seed 1

echo "== how many words of a 2,000-byte sample are English words (the small preset aims at 85% or more)"
bash tests/gpt/check_real_words.sh "$tg_gpt" "$out" 0.85 || echo "(a trained model's measure, not a failure of the run: docs/gpt.md §8)"
