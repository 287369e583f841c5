#!/usr/bin/env bash
# Hugging Face GPT-2 folders end to end: a trained checkpoint exported with `export --to-hf` evaluates and samples
# exactly like the checkpoint through `--from-hf`; `train --from-hf` fine-tunes it (the loss moves) into a
# checkpoint, which exports and reloads identically again; and the usage errors are clear.
source "$(dirname "$0")/common.sh" "$@"
corpus=$(make_corpus)
train_tiny --data "$corpus" --out "$WORK/run" --steps 20 --eval-every 10 > /dev/null 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "training"; }

"$TG_GPT" export --ckpt "$WORK/run" --to-hf "$WORK/hf" 2> "$WORK/err.txt" || { cat "$WORK/err.txt"; fail "export"; }
for f in config.json model.safetensors tokenizer.json; do [ -s "$WORK/hf/$f" ] || fail "export wrote no $f"; done
grep -q '"model_type": "gpt2"' "$WORK/hf/config.json" || fail "config.json is not a GPT-2 config: $(cat "$WORK/hf/config.json")"

# The same windows for every evaluation: the data and sizes given explicitly.
windows=(--data "$corpus" --batch 4 --seq 64 --eval-batches 3 --threads 2 --json)
loss_of() { json_field "$("$TG_GPT" eval "$@" "${windows[@]}")" val_loss; }
ckpt_loss=$(loss_of --ckpt "$WORK/run")
hf_loss=$(loss_of --from-hf "$WORK/hf")
echo "val loss: checkpoint $ckpt_loss, exported folder $hf_loss"
[ -n "$ckpt_loss" ] && [ "$ckpt_loss" = "$hf_loss" ] || fail "the exported folder evaluates to $hf_loss, the checkpoint to $ckpt_loss"

"$TG_GPT" sample --ckpt "$WORK/run" --prompt "Line 7" --tokens 40 --seed 3 --threads 2 > "$WORK/s1.txt"
"$TG_GPT" sample --from-hf "$WORK/hf" --prompt "Line 7" --tokens 40 --seed 3 --threads 2 > "$WORK/s2.txt"
cmp -s "$WORK/s1.txt" "$WORK/s2.txt" || fail "samples differ: checkpoint '$(cat "$WORK/s1.txt")', folder '$(cat "$WORK/s2.txt")'"

# Fine-tune the folder: a tg-gpt checkpoint that starts from its weights (first loss = the folder's loss) and moves.
"$TG_GPT" train --from-hf "$WORK/hf" --data "$corpus" --out "$WORK/ft" --steps 6 --eval-every 3 --batch 4 --seq 64 \
  --eval-batches 3 --lr 3e-3 --warmup 1 --threads 2 --sample-tokens 0 --json > "$WORK/ft.json" 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "fine-tuning"; }
ft_loss=$(json_field "$(tail -n 1 "$WORK/ft.json")" val_loss)
echo "fine-tuned val loss $ft_loss (from $hf_loss)"
awk -v a="$ft_loss" -v b="$hf_loss" 'BEGIN { exit !(a < b) }' || fail "fine-tuning did not lower the loss: $hf_loss -> $ft_loss"
[ "$(loss_of --ckpt "$WORK/ft")" = "$ft_loss" ] || fail "eval of the fine-tuned checkpoint differs from its last val loss"

"$TG_GPT" export --ckpt "$WORK/ft" --to-hf "$WORK/hf2" 2> /dev/null || fail "export of the fine-tuned checkpoint"
[ "$(loss_of --from-hf "$WORK/hf2")" = "$ft_loss" ] || fail "the re-exported folder does not evaluate like the fine-tuned checkpoint"

# Usage errors.
set +e
"$TG_GPT" sample --tokens 5 > /dev/null 2> "$WORK/err.txt"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q -- "--from-hf" "$WORK/err.txt" || fail "sample without --ckpt/--from-hf: exit $rc, $(cat "$WORK/err.txt")"
if "$TG_GPT" sample --from-hf "$WORK/nothing" > /dev/null 2> "$WORK/err.txt"; then fail "a missing folder was accepted"; fi
grep -q "no such directory" "$WORK/err.txt" || fail "missing folder: $(cat "$WORK/err.txt")"
train_tiny --data "$corpus" --out "$WORK/rope" --steps 2 --eval-every 2 --rope > /dev/null 2>&1 || fail "training with --rope"
if "$TG_GPT" export --ckpt "$WORK/rope" --to-hf "$WORK/rope-hf" 2> "$WORK/err.txt"; then fail "a rope model was exported"; fi
grep -q "not GPT-2's architecture" "$WORK/err.txt" || fail "rope export: $(cat "$WORK/err.txt")"
[ ! -e "$WORK/rope-hf" ] || fail "a refused export left files behind"
echo "ok"
