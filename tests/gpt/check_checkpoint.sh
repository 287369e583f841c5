#!/usr/bin/env bash
# Checkpoint round trip: `tg-gpt eval` of the saved checkpoint gives exactly the last validation loss of
# training; and sampling with a fixed seed is reproducible (and the same with and without the KV cache).
source "$(dirname "$0")/common.sh" "$@"
corpus=$(make_corpus)
train_tiny --data "$corpus" --out "$WORK/run" --steps 30 --eval-every 15 --json > "$WORK/log.json" 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "training"; }
trained=$(json_field "$(tail -n 1 "$WORK/log.json")" val_loss)
evaluated=$(json_field "$("$TG_GPT" eval --ckpt "$WORK/run" --json)" val_loss)
echo "val loss: training $trained, eval $evaluated"
[ -n "$trained" ] && [ "$trained" = "$evaluated" ] || fail "eval of the checkpoint gives $evaluated, training logged $trained"

"$TG_GPT" sample --ckpt "$WORK/run" --prompt "Line 7" --tokens 60 --seed 11 > "$WORK/s1.txt"
"$TG_GPT" sample --ckpt "$WORK/run" --prompt "Line 7" --tokens 60 --seed 11 > "$WORK/s2.txt"
"$TG_GPT" sample --ckpt "$WORK/run" --prompt "Line 7" --tokens 60 --seed 11 --no-cache > "$WORK/s3.txt"
"$TG_GPT" sample --ckpt "$WORK/run" --prompt "Line 7" --tokens 60 --seed 12 > "$WORK/s4.txt"
cmp -s "$WORK/s1.txt" "$WORK/s2.txt" || fail "the same seed gave different samples"
cmp -s "$WORK/s1.txt" "$WORK/s3.txt" || fail "sampling with and without the KV cache differ"
cmp -s "$WORK/s1.txt" "$WORK/s4.txt" && fail "different seeds gave the same sample"
head -c 6 "$WORK/s1.txt" | grep -q "^Line 7" || fail "the sample does not start with the prompt"
[ "$(wc -c < "$WORK/s1.txt")" -ge 67 ] || fail "the sample is too short: $(cat "$WORK/s1.txt")"
echo "sample: $(head -n 1 "$WORK/s1.txt")"
echo "ok"
