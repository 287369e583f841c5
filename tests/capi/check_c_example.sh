#!/usr/bin/env bash
# tg-c-example end to end: a tiny checkpoint trained by tg-gpt, then each given build of the C host program
# (shared and static library, or a sanitizer build) streams a completion, fine-tunes, saves a checkpoint that
# tg-gpt reads back, and rejects bad input with exit status 2. Builds with the same seed and threads must print
# the same completion.
# Usage: check_c_example.sh path/to/tg-gpt path/to/tg-c-example [more tg-c-example builds...]
set -euo pipefail
TG_GPT=${1:?usage: $0 tg-gpt tg-c-example [tg-c-example ...]}
shift
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tg-c-example-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for i in $(seq 1 300); do
  echo "Line $i: the quick brown fox jumps over the lazy dog, and the cat watches it."
done > "$WORK/corpus.txt"
"$TG_GPT" train --preset tiny --threads 2 --sample-tokens 0 --steps 30 --data "$WORK/corpus.txt" \
  --out "$WORK/ckpt" > /dev/null 2> "$WORK/train.err" || { cat "$WORK/train.err"; fail "tg-gpt train"; }

first=""
for example in "$@"; do
  name=$(basename "$example")
  echo "== $name"
  # A completion, streamed to stdout: the prompt, then 40 new tokens.
  "$example" --ckpt "$WORK/ckpt" --prompt "Line 7" --tokens 40 --seed 5 --threads 2 > "$WORK/$name.txt" \
    2> "$WORK/$name.err" || { cat "$WORK/$name.err"; fail "$name: completion"; }
  head -c 6 "$WORK/$name.txt" | grep -q "^Line 7" || fail "$name: the output does not start with the prompt"
  [ "$(wc -c < "$WORK/$name.txt")" -ge 47 ] || fail "$name: the completion is too short: $(cat "$WORK/$name.txt")"
  echo "completion: $(head -n 1 "$WORK/$name.txt")"
  if [ -z "$first" ]; then
    first="$WORK/$name.txt"
  else
    cmp -s "$first" "$WORK/$name.txt" || fail "$name prints another completion than $(basename "$first") with the same seed"
  fi

  # Fine-tuning for a few steps on a text file, saved where tg-gpt reads it.
  "$example" --ckpt "$WORK/ckpt" --prompt "Line" --tokens 10 --seed 1 --threads 2 --finetune "$WORK/corpus.txt" \
    --steps 4 --batch 2 --seq 32 --lr 1e-3 --out "$WORK/$name-ft" > /dev/null 2> "$WORK/$name-ft.err" \
    || { cat "$WORK/$name-ft.err"; fail "$name: fine-tuning"; }
  [ "$(grep -c '^finetune step' "$WORK/$name-ft.err")" -eq 4 ] || fail "$name: expected 4 fine-tuning steps"
  grep "^finetune step 4/4" "$WORK/$name-ft.err"
  "$TG_GPT" sample --ckpt "$WORK/$name-ft" --prompt "Line" --tokens 10 --seed 1 > /dev/null \
    || fail "$name: tg-gpt cannot sample from the fine-tuned checkpoint"
  "$TG_GPT" eval --ckpt "$WORK/$name-ft" --data "$WORK/corpus.txt" --json | grep '"step":34' > /dev/null \
    || fail "$name: the fine-tuned checkpoint is not at step 30 + 4"

  # Bad input: a message on stderr and exit status 2, never a crash.
  expect_exit_2() {
    local status=0
    "$example" "$@" > /dev/null 2> "$WORK/bad.err" || status=$?
    [ "$status" -eq 2 ] || fail "$name $*: exit status $status, expected 2"
    [ -s "$WORK/bad.err" ] || fail "$name $*: no message on stderr"
  }
  expect_exit_2 --ckpt "$WORK/no-such-checkpoint" --prompt "Line"
  grep -q "TG_ERR_IO" "$WORK/bad.err" || fail "$name: a missing checkpoint is not reported as TG_ERR_IO"
  expect_exit_2 --ckpt "$WORK/ckpt"
  expect_exit_2 --ckpt "$WORK/ckpt" --prompt "Line" --tokens many
  expect_exit_2 --ckpt "$WORK/ckpt" --prompt "Line" --finetune "$WORK/no-such-file.txt"
  expect_exit_2 --ckpt "$WORK/ckpt" --prompt "Line" --finetune "$WORK/corpus.txt" --seq 1000
  grep -q "TG_ERR_SHAPE" "$WORK/bad.err" || fail "$name: --seq above the block size is not TG_ERR_SHAPE"
done
echo "ok"
