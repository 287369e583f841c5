#!/bin/sh
# meson test --suite vit: a few seconds of tg-vit train on a small subset, then show and classify on its
# checkpoint. Checks that each command runs and that the files and the final JSON line appear.
#   smoke_test.sh TG_VIT WORKDIR
set -eu
vit="$1"
dir="$2/vit-smoke"
rm -rf "$dir"
mkdir -p "$dir"
"$vit" train --train-limit 1024 --test-limit 500 --epochs 2 --batch 64 --warmup 4 --out "$dir/ckpt" --json \
    > "$dir/train.log"
cat "$dir/train.log"
tail -n 1 "$dir/train.log" | grep -q '^{"test_accuracy":'
test -s "$dir/ckpt/model.safetensors"
test -s "$dir/ckpt/config.json"
"$vit" show --ckpt "$dir/ckpt" --out "$dir/show" --count 8 --rows 2
test -s "$dir/show-grid.png"
test -s "$dir/show-attention.png"
"$vit" classify --ckpt "$dir/ckpt" --json "$dir/show-grid.png" | tee "$dir/classify.log"
grep -q '"top3"' "$dir/classify.log"
# A broken checkpoint gives a clear error and exit status 2, not a crash.
printf 'not json' > "$dir/ckpt/config.json"
status=0
"$vit" classify --ckpt "$dir/ckpt" "$dir/show-grid.png" 2> "$dir/error.log" || status=$?
cat "$dir/error.log"
test "$status" -eq 2
grep -q 'config.json' "$dir/error.log"
echo "vit smoke test passed"
