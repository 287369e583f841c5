#!/usr/bin/env bash
# tg-gpt prepare and `train --data DIR`: the shards' layout; training from the memory-mapped shards gives
# exactly the losses of training on the text; --resume from shards is exact; eval --json reports val_bpb
# (= val_loss / ln 2 for the byte tokenizer); damaged or mismatched shards are refused with a clear message.
source "$(dirname "$0")/common.sh" "$@"
corpus=$(make_corpus)

"$TG_GPT" prepare --data "$corpus" --tokenizer byte --out "$WORK/prep" 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "prepare"; }
for f in train.bin val.bin tokenizer.json; do [ -s "$WORK/prep/$f" ] || fail "prepare wrote no $f"; done
bytes=$(wc -c < "$corpus")
val=$((bytes / 10)); train=$((bytes - val))
[ "$(head -c 8 "$WORK/prep/train.bin")" = "TGTOKENS" ] || fail "train.bin does not start with the magic"
[ "$(wc -c < "$WORK/prep/train.bin")" -eq $((64 + 2 * train)) ] || fail "train.bin is not 64 + 2 x $train bytes"
[ "$(wc -c < "$WORK/prep/val.bin")" -eq $((64 + 2 * val)) ] || fail "val.bin is not 64 + 2 x $val bytes"

# The same run from the text and from the shards: identical losses.
args=(--steps 40 --eval-every 20 --dropout 0.1 --seed 2 --json)
train_tiny "${args[@]}" --data "$corpus" --out "$WORK/text" > "$WORK/text.json" 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "training on the text"; }
train_tiny "${args[@]}" --data "$WORK/prep" --out "$WORK/shards" > "$WORK/shards.json" 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "training on the shards"; }
grep -q "memory-mapped" "$WORK/err.txt" || fail "the run did not read the shards: $(cat "$WORK/err.txt")"
diff <(without_timing "$WORK/text.json") <(without_timing "$WORK/shards.json") \
  || fail "training on the shards gave other losses than training on the text"
grep -q '"val_bpb":' "$WORK/shards.json" || fail "no val_bpb in the JSON lines"
[ "$(head -n 1 "$WORK/shards/loss.csv")" = "step,train_loss,val_loss,val_bpb" ] || fail "loss.csv header"

# Resume from shards: 20 + 20 steps = 40 steps.
train_tiny "${args[@]}" --data "$WORK/prep" --out "$WORK/split" --stop-after 20 > "$WORK/split.json" 2> /dev/null \
  || fail "first half on shards"
"$TG_GPT" train --out "$WORK/split" --resume --json --sample-tokens 0 >> "$WORK/split.json" 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "resumed half on shards"; }
diff <(without_timing "$WORK/shards.json") <(without_timing "$WORK/split.json") \
  || fail "the resumed run on shards differs from the uninterrupted one"

# eval --json: val_loss and val_bpb; byte level, so bpb = loss / ln 2; the same on text and shards.
line=$("$TG_GPT" eval --ckpt "$WORK/shards" --json) || fail "eval"
loss=$(json_field "$line" val_loss); bpb=$(json_field "$line" val_bpb)
awk -v l="$loss" -v b="$bpb" 'BEGIN { d = b - l / log(2); exit !(d < 1e-9 && d > -1e-9) }' \
  || fail "val_bpb $bpb is not val_loss $loss / ln 2"
[ "$(json_field "$("$TG_GPT" eval --ckpt "$WORK/shards" --data "$corpus" --json)" val_bpb)" = "$bpb" ] \
  || fail "eval on the text and on the shards differ"
echo "eval: val_loss $loss, val_bpb $bpb"

expect_error() {  # expect_error "part of the message" command...
  local want=$1; shift
  if "$@" > /dev/null 2> "$WORK/err.txt"; then fail "expected an error from: $*"; fi
  grep -qF -- "$want" "$WORK/err.txt" || fail "the message lacks '$want': $(cat "$WORK/err.txt")"
  echo "ok: $(grep -v '^$' "$WORK/err.txt" | tail -n 1)"
}
cp -r "$WORK/prep" "$WORK/bad"
head -c 1000 "$WORK/prep/train.bin" > "$WORK/bad/train.bin"
expect_error "truncated" train_tiny --data "$WORK/bad" --out "$WORK/e1"
cp "$corpus" "$WORK/bad/train.bin"
expect_error "not a tapegrad token shard" train_tiny --data "$WORK/bad" --out "$WORK/e2"
# Shards of another tokenizer: a character vocabulary, but the folder's tokenizer.json says byte level.
printf '{"kind":"char","vocab_size":4,"chars":["a","b","c"]}' > "$WORK/abc.json"
"$TG_GPT" prepare --data "$corpus" --tokenizer "$WORK/abc.json" --out "$WORK/other" 2> /dev/null || fail "prepare (char)"
cp "$WORK/prep/tokenizer.json" "$WORK/other/tokenizer.json"
expect_error "vocabulary size 4, but the tokenizer (byte) has 256" train_tiny --data "$WORK/other" --out "$WORK/e3"
expect_error "tokenizer: $WORK/missing.json: cannot open" "$TG_GPT" prepare --data "$corpus" --tokenizer "$WORK/missing.json" --out "$WORK/x"
echo "ok"
