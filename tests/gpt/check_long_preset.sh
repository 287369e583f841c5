#!/usr/bin/env bash
# The long preset (examples/gpt/presets.cpp): T = 4096, 4 layers, 4 heads, C = 64, bytes. Two steps of one
# window each (batch 1 instead of the preset's 4, so the test takes seconds) with exact attention and with the
# near-exact / far-polynomial approx_backward and with auto choosing the window (--auto-window); the checkpoint
# records the preset's shape, and the loss is finite. --auto-window without --attention auto: exit 2.
source "$(dirname "$0")/common.sh" "$@"
for i in $(seq 1 1500); do  # ~120 KB: the 10% validation split holds 2 windows of 4097 bytes
  echo "Line $i: the quick brown fox jumps over the lazy dog, and the cat watches it."
done > "$WORK/corpus.txt"
for attention in "exact" "approx_backward --window 64 --sinks 4" "auto --auto-window"; do
  # shellcheck disable=SC2086  # $attention is two or more arguments on purpose
  "$TG_GPT" train --preset long --data "$WORK/corpus.txt" --steps 2 --batch 1 --eval-batches 1 --threads 2 \
    --sample-tokens 0 --out "$WORK/run" --json --attention $attention > "$WORK/log.json" 2> "$WORK/err.txt" \
    || { cat "$WORK/err.txt"; fail "train --preset long --attention $attention exited with an error"; }
  line=$(tail -n 1 "$WORK/log.json")
  [ "$(json_field "$line" step)" = 2 ] || fail "$attention: no line for step 2: $line"
  val=$(json_field "$line" val_loss)
  awk -v v="$val" 'BEGIN { exit !(v > 1 && v < 6) }' || fail "$attention: val_loss $val is not a loss near ln 256"
  for field in '"block_size": 4096' '"n_layer": 4' '"n_head": 4' '"n_embd": 64' '"preset": "long"' '"seq": 4096' \
      '"kind": "byte"'; do
    grep -qF "$field" "$WORK/run/config.json" || fail "$attention: config.json lacks $field"
  done
  if [ "$attention" = "auto --auto-window" ]; then
    grep -qF '"auto_window": true' "$WORK/run/config.json" || fail "config.json lacks \"auto_window\": true"
    grep -q "attention auto \[blocks.0.attn\]: .*window" "$WORK/err.txt" || fail "auto did not log its window choice"
  fi
  echo "ok: --attention $attention: val loss $val after 2 steps"
  rm -rf "$WORK/run"
done
status=0
"$TG_GPT" train --preset long --attention exact --auto-window --steps 1 --data "$WORK/corpus.txt" \
  --out "$WORK/bad" 2> "$WORK/err.txt" || status=$?
[ "$status" -eq 2 ] || fail "--auto-window with exact attention: exit status $status, wanted 2"
grep -qF -- "--auto-window" "$WORK/err.txt" || fail "the message does not name --auto-window: $(cat "$WORK/err.txt")"
echo ok
