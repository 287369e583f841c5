#!/usr/bin/env bash
# The checkpoint carries its tokenizer: a BPE vocabulary as Hugging Face's tokenizer.json in the checkpoint
# folder (config.json says "tokenizer": "tokenizer.json"), so the folder alone samples; byte-level tokenizers
# stay inline in config.json; and checkpoints written before the file existed (BPE inline in config.json,
# tests/fixtures/checkpoints/inline-tokenizer-*) still load and sample exactly as they did.
source "$(dirname "$0")/common.sh" "$@"
FIXTURES="$(cd "$(dirname "$0")/../fixtures/checkpoints" && pwd)"
corpus=$(make_corpus)

train_tiny --data "$corpus" --tokenizer bpe --vocab 300 --steps 5 --eval-every 5 --out "$WORK/bpe" > /dev/null 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "bpe run"; }
[ -s "$WORK/bpe/tokenizer.json" ] || fail "the BPE checkpoint has no tokenizer.json"
grep -q '"type": "BPE"' "$WORK/bpe/tokenizer.json" || fail "tokenizer.json is not Hugging Face's BPE layout"
grep -q '"tokenizer": "tokenizer.json"' "$WORK/bpe/config.json" || fail "config.json does not name tokenizer.json"
cmp -s "$WORK/bpe/tokenizer.json" "$WORK"/bpe/tokenizer-cache/bpe-300-*.json || fail "tokenizer.json differs from the trained vocabulary"
# tg-gpt's own tokenizer commands take the checkpoint folder (or its tokenizer.json) as they are.
ids=$(printf 'the quick brown fox' | "$TG_GPT" tokenizer encode --tokenizer "$WORK/bpe")
[ "$ids" = "$(printf 'the quick brown fox' | "$TG_GPT" tokenizer encode --tokenizer "$WORK/bpe/tokenizer.json")" ] \
  || fail "the folder and its tokenizer.json encode differently"

# The three files alone (no tokenizer cache, no training data) sample exactly like the original folder.
mkdir "$WORK/copy"
cp "$WORK"/bpe/{config.json,model.safetensors,tokenizer.json} "$WORK/copy/"
"$TG_GPT" sample --ckpt "$WORK/bpe" --prompt "Line 7" --tokens 30 --seed 5 > "$WORK/s1.txt" || fail "sample"
"$TG_GPT" sample --ckpt "$WORK/copy" --prompt "Line 7" --tokens 30 --seed 5 > "$WORK/s2.txt" || fail "sample of the copy"
cmp -s "$WORK/s1.txt" "$WORK/s2.txt" || fail "the copied checkpoint samples differently"

# Without its tokenizer.json the folder is refused with a message naming the file (exit 2), not a crash.
rm "$WORK/copy/tokenizer.json"
status=0; "$TG_GPT" sample --ckpt "$WORK/copy" --tokens 5 > /dev/null 2> "$WORK/err.txt" || status=$?
[ "$status" = 2 ] || fail "a checkpoint without its tokenizer.json: exit $status, expected 2"
grep -q "tokenizer.json" "$WORK/err.txt" || fail "the error does not name tokenizer.json: $(cat "$WORK/err.txt")"
# A damaged tokenizer.json too.
cp "$WORK/bpe/tokenizer.json" "$WORK/copy/tokenizer.json" && head -c 100 "$WORK/bpe/tokenizer.json" > "$WORK/copy/tokenizer.json"
status=0; "$TG_GPT" sample --ckpt "$WORK/copy" --tokens 5 > /dev/null 2> "$WORK/err.txt" || status=$?
[ "$status" = 2 ] || fail "a truncated tokenizer.json: exit $status, expected 2"

# Byte level: no vocabulary to store, the tokenizer stays inline in config.json.
train_tiny --data "$corpus" --steps 2 --eval-every 2 --out "$WORK/byte" > /dev/null 2>&1 || fail "byte run"
[ -e "$WORK/byte/tokenizer.json" ] && fail "a byte-level checkpoint wrote tokenizer.json"
grep -q '"kind": "byte"' "$WORK/byte/config.json" || fail "the byte tokenizer is not inline in config.json"

# Checkpoints of the earlier format sample byte for byte as the program that wrote them did.
for kind in bpe byte; do
  dir="$FIXTURES/inline-tokenizer-$kind"
  "$TG_GPT" sample --ckpt "$dir" --prompt "The " --tokens 20 --seed 3 > "$WORK/old.txt" || fail "sample of $dir"
  cmp -s "$WORK/old.txt" "$dir/sample-seed3.txt" || fail "$dir samples differently than when it was written"
done
echo "ok"
