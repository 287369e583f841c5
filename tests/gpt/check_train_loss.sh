#!/usr/bin/env bash
# The tiny preset learns: within 60 steps its validation loss falls well below that of a uniform guess
# (ln 256 = 5.55 nats per byte) and keeps falling between the first and the last evaluation.
source "$(dirname "$0")/common.sh" "$@"
corpus=$(make_corpus)
train_tiny --data "$corpus" --out "$WORK/run" --steps 60 --eval-every 20 --json > "$WORK/log.json" 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "training exited with an error"; }
[ "$(wc -l < "$WORK/log.json")" -eq 3 ] || fail "expected 3 JSON lines (steps 20, 40, 60), got: $(cat "$WORK/log.json")"
first=$(json_field "$(head -n 1 "$WORK/log.json")" val_loss)
last=$(json_field "$(tail -n 1 "$WORK/log.json")" val_loss)
echo "val loss: step 20 $first, step 60 $last"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.2 && b < 5.545 - 2.0) }' \
  || fail "the loss did not fall enough: step 20 $first, step 60 $last (want a drop > 0.2 and a final loss < 3.55)"
for f in model.safetensors optimizer.safetensors config.json state.json loss.csv loss.png; do
  [ -s "$WORK/run/$f" ] || fail "checkpoint file $f is missing"
done
[ "$(head -c 8 "$WORK/run/loss.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "loss.png is not a PNG"
[ "$(head -n 1 "$WORK/run/loss.csv")" = "step,train_loss,val_loss,val_bpb" ] || fail "loss.csv has no header"
[ "$(wc -l < "$WORK/run/loss.csv")" -eq 61 ] || fail "loss.csv should have 60 rows"
echo "ok"
