#!/usr/bin/env bash
# `train --tokenizer bpe` (the small preset's default): the run trains its own BPE vocabulary on the corpus,
# caches it in OUT/tokenizer-cache/ and reuses it the next time; the checkpoint carries tokenizer.json, so
# sample and eval need nothing else; bits per byte are below loss / ln 2 since a BPE token holds several bytes.
source "$(dirname "$0")/common.sh" "$@"
corpus=$(make_corpus)
args=(--data "$corpus" --tokenizer bpe --vocab 300 --steps 10 --eval-every 10 --json)
train_tiny "${args[@]}" --out "$WORK/bpe" > "$WORK/a.json" 2> "$WORK/err.txt" || { cat "$WORK/err.txt"; fail "bpe run"; }
grep -q "tokenizer: trained a BPE of 300 tokens" "$WORK/err.txt" || fail "no BPE training: $(cat "$WORK/err.txt")"
ls "$WORK"/bpe/tokenizer-cache/bpe-300-*.json > /dev/null || fail "no cached vocabulary"
grep -q '"vocab_size": 300' "$WORK/bpe/config.json" || fail "the model's vocabulary is not 300"
train_tiny "${args[@]}" --out "$WORK/bpe" --force > "$WORK/b.json" 2> "$WORK/err.txt" || fail "second bpe run"
grep -q "tokenizer: BPE of 300 tokens from $WORK/bpe/tokenizer-cache/" "$WORK/err.txt" \
  || fail "the second run did not reuse the cached vocabulary: $(cat "$WORK/err.txt")"
diff <(without_timing "$WORK/a.json") <(without_timing "$WORK/b.json") || fail "the cached vocabulary gave other losses"

"$TG_GPT" sample --ckpt "$WORK/bpe" --prompt "The quick" --tokens 20 > "$WORK/sample.txt" || fail "sample"
grep -q "^The quick" "$WORK/sample.txt" || fail "the sample does not start with the prompt"
line=$("$TG_GPT" eval --ckpt "$WORK/bpe" --json) || fail "eval"
loss=$(json_field "$line" val_loss); bpb=$(json_field "$line" val_bpb)
awk -v l="$loss" -v b="$bpb" 'BEGIN { exit !(b < l / log(2)) }' || fail "val_bpb $bpb not below val_loss $loss / ln 2"
echo "bpe run: val_loss $loss nats/token, $bpb bits/byte"

# The word-count script runs on any checkpoint (its threshold is for the README run, docs/gpt.md).
if [ -r /usr/share/dict/american-english ]; then
  bash "$(dirname "$0")/check_real_words.sh" "$TG_GPT" "$WORK/bpe" | grep "^real words: " > /dev/null \
    || fail "check_real_words.sh printed no score"
fi
echo "ok"
