#!/usr/bin/env bash
# README command (1): set up, build, train a small GPT on the Debian fortunes corpus, then sample from it.
#
#   bash scripts/main.sh                 train the `small` preset into runs/small (1200 steps, a few minutes)
#   bash scripts/main.sh --json          extra arguments go to `tg-gpt train`
#
# Ctrl-C during training saves a checkpoint; running this script again resumes it exactly where it stopped
# (delete runs/small to start over). The loss curves land in runs/small/loss.png and runs/small/loss.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh

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
