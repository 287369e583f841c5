#!/usr/bin/env bash
# Bad input gives a non-zero exit status and a message that names the problem and the path.
source "$(dirname "$0")/common.sh" "$@"

expect_error() {  # expect_error "part of the message" command...
  local want=$1; shift
  if "$@" > /dev/null 2> "$WORK/err.txt"; then fail "expected an error from: $*"; fi
  grep -qF -- "$want" "$WORK/err.txt" || fail "the message lacks '$want': $(cat "$WORK/err.txt")"
  echo "ok: $(grep -v '^$' "$WORK/err.txt" | tail -n 1)"
}

expect_error "$WORK/missing.txt: no such file or folder" train_tiny --data "$WORK/missing.txt" --out "$WORK/a"
: > "$WORK/empty.txt"
expect_error "$WORK/empty.txt: the file is empty" train_tiny --data "$WORK/empty.txt" --out "$WORK/b"
printf 'abc\0def' > "$WORK/binary.bin"
expect_error "$WORK/binary.bin: looks binary" train_tiny --data "$WORK/binary.bin" --out "$WORK/c"
mkdir "$WORK/empty-folder"
expect_error "no text files" train_tiny --data "$WORK/empty-folder" --out "$WORK/d"
echo "too short" > "$WORK/short.txt"
expect_error "the train split (the first 90% of $WORK/short.txt) has 9 tokens, fewer than seq + 1 = 65" train_tiny --data "$WORK/short.txt" --out "$WORK/e"
expect_error "holds no checkpoint" "$TG_GPT" train --out "$WORK/nothing-here" --resume
expect_error "$WORK/nothing-here: no such directory" "$TG_GPT" eval --ckpt "$WORK/nothing-here"
expect_error "unknown preset 'huge'" "$TG_GPT" train --preset huge --out "$WORK/f"
expect_error "--window 65 --sinks 0: both must be at most the sequence length 64" train_tiny --attention approx --window 65 --out "$WORK/g"
expect_error "--window 8 --sinks 0 apply to the approximate modes" train_tiny --window 8 --out "$WORK/h"
# A checkpoint whose config.json has a count that is not a whole number in range (tests/fuzz/fuzz_checkpoint_dir
# found "seq": 1.1e40, which nlohmann's integer conversion casts with undefined behaviour).
corpus=$(make_corpus)
train_tiny --data "$corpus" --out "$WORK/ckpt" --steps 2 --eval-every 2 > /dev/null 2>&1 || fail "training the tiny checkpoint"
sed -i 's/"steps": [0-9]*/"steps": 1.11111e+40/' "$WORK/ckpt/config.json"
expect_error '"training" field "steps" must be an integer from' "$TG_GPT" eval --ckpt "$WORK/ckpt"
sed -i 's/"steps": 1.11111e+40/"steps": 2.5/' "$WORK/ckpt/config.json"
expect_error '"training" field "steps" must be an integer from' "$TG_GPT" eval --ckpt "$WORK/ckpt"
echo ok
