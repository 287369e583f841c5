#!/usr/bin/env bash
# Issue 14, end to end: a diverging run stops before the bad update and keeps its last good checkpoint; NaN
# weights, incomplete optimizer state, absurd configs and memory-scaling flags are refused before anything big
# is allocated; a text corpus costs about 3 bytes of memory a byte; NaN and
# negative option values, contradictory flags and an unwritable --out are refused at once; a huge binary
# "corpus" fails at its first bytes with little memory; leftover *.tmp.PID files are swept.
source "$(dirname "$0")/common.sh" "$@"
corpus=$(make_corpus)

expect_error() {  # expect_error STATUS "part of the message" command...
  local status=$1 want=$2; shift 2
  local got=0
  "$@" > "$WORK/out.txt" 2> "$WORK/err.txt" || got=$?
  [ "$got" -eq "$status" ] || fail "exit status $got (wanted $status) from: $* -- $(cat "$WORK/err.txt")"
  grep -qF -- "$want" "$WORK/err.txt" || fail "the message lacks '$want': $(cat "$WORK/err.txt")"
  grep -q "unexpected error\|bad_alloc" "$WORK/err.txt" && fail "an unexplained error: $(cat "$WORK/err.txt")"
  echo "ok ($status): $(grep -v '^$' "$WORK/err.txt" | head -n 1 | cut -c 1-150)"
}

# max RSS in MB of a command (GNU time), the command's status ignored.
max_rss_mb() { /usr/bin/time -f "%M" -o "$WORK/rss.txt" "$@" > /dev/null 2>&1 || true; echo $(( $(tail -n 1 "$WORK/rss.txt") / 1024 )); }

# ---- 1. non-finite training -------------------------------------------------------------------------------------
train_tiny --data "$corpus" --out "$WORK/good" --steps 6 --eval-every 3 --json > /dev/null 2>&1 || fail "good run"
expect_error 1 "training stopped before the optimizer step" \
  train_tiny --data "$corpus" --out "$WORK/diverge" --steps 40 --eval-every 1 --lr 1e6 --warmup 0
grep -q "the last good checkpoint (step\|no checkpoint had been saved yet" "$WORK/err.txt" || fail "no word on the checkpoint"
if [ -f "$WORK/diverge/model.safetensors" ]; then
  "$TG_GPT" eval --ckpt "$WORK/diverge" --json > /dev/null || fail "the kept checkpoint of the diverged run does not load"
fi
expect_error 1 "detect_anomaly: the" \
  train_tiny --data "$corpus" --out "$WORK/anomaly" --steps 40 --eval-every 1 --lr 1e6 --warmup 0 --detect-anomaly
# A checkpoint with a NaN weight (the last float of model.safetensors set to NaN) is refused, unless asked for.
cp -r "$WORK/good" "$WORK/nan"
size=$(stat -c %s "$WORK/nan/model.safetensors")
printf '\xff\xff\xff\x7f' | dd of="$WORK/nan/model.safetensors" bs=1 seek=$((size - 4)) conv=notrunc status=none
expect_error 2 "holds nan at element" "$TG_GPT" eval --ckpt "$WORK/nan"
"$TG_GPT" eval --ckpt "$WORK/nan" --allow-nonfinite --json > /dev/null || fail "--allow-nonfinite does not load it"

# ---- 2. incomplete optimizer state: --resume refuses it ---------------------------------------------------------
# drop_tensors IN OUT NAME...: a safetensors file without the named tensors (header rewritten, data packed).
drop_tensors() {
  python3 - "$@" <<'PY'
import json, struct, sys
src, dst, drop = sys.argv[1], sys.argv[2], set(sys.argv[3:])
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
kept, out, pos = {}, b"", 0
for name, entry in header.items():
    if name == "__metadata__" or (name in drop or any(name.startswith(d) for d in drop if d.endswith("."))):
        if name == "__metadata__": kept[name] = entry
        continue
    begin, end = entry["data_offsets"]
    out += data[begin:end]
    kept[name] = dict(entry, data_offsets=[pos, pos + end - begin]); pos += end - begin
text = json.dumps(kept).encode(); text += b" " * (-len(text) % 8)
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + out)
PY
}
for case in "state.3.exp_avg_sq|'state.3.exp_avg_sq' is missing although parameter 3 took 6 steps" \
            "state.|has no state ('state.0.step' missing)"; do
  rm -rf "$WORK/dropped"; cp -r "$WORK/good" "$WORK/dropped"
  drop_tensors "$WORK/good/optimizer.safetensors" "$WORK/dropped/optimizer.safetensors" "${case%%|*}"
  expect_error 2 "${case#*|}" "$TG_GPT" train --out "$WORK/dropped" --resume --steps 9 --sample-tokens 0
done

# ---- 4. floating-point and unsigned options, minor flags ----------------------------------------------------------
expect_error 2 "must be a finite number" train_tiny --data "$corpus" --out "$WORK/x" --lr nan
expect_error 2 "must be a finite number" train_tiny --data "$corpus" --out "$WORK/x" --dropout nan
expect_error 2 "--lr" train_tiny --data "$corpus" --out "$WORK/x" --lr inf
expect_error 2 "--temperature" "$TG_GPT" sample --ckpt "$WORK/good" --temperature inf
expect_error 2 "must be >= 0" train_tiny --data "$corpus" --out "$WORK/x" --seed -1
expect_error 2 "--stop-after" train_tiny --data "$corpus" --out "$WORK/x" --stop-after 0
expect_error 2 "--force" "$TG_GPT" train --out "$WORK/good" --resume --force
: > "$WORK/a-file"
expect_error 2 "$WORK/a-file/run" train_tiny --data "$corpus" --out "$WORK/a-file/run" --steps 2
[ -e "$WORK/x" ] && fail "a refused run created its --out folder"

# ---- 5, 8. sizes before allocations --------------------------------------------------------------------------------
cp -r "$WORK/good" "$WORK/edited"
sed -i 's/"n_layer": [0-9]*/"n_layer": 1000000000/' "$WORK/edited/config.json"
expect_error 2 "describes a model of" "$TG_GPT" eval --ckpt "$WORK/edited"
rss=$(max_rss_mb "$TG_GPT" sample --ckpt "$WORK/edited" --tokens 5)
echo "sample with n_layer 1e9: max RSS $rss MB"
[ "$rss" -lt 200 ] || fail "an absurd config took $rss MB before being refused"
expect_error 2 "needs at least" train_tiny --data "$corpus" --out "$WORK/y" --eval-batches 1000000000
expect_error 2 "needs at least" train_tiny --data "$corpus" --out "$WORK/y" --batch 1000000000
expect_error 2 "needs at least" "$TG_GPT" eval --ckpt "$WORK/good" --eval-batches 1000000000
expect_error 2 "needs at least" "$TG_GPT" sample --ckpt "$WORK/good" --tokens 1000000000000000

# ---- 7. a huge sparse "corpus" fails at its first bytes, in little memory ----------------------------------------
truncate -s 2G "$WORK/sparse.txt"
expect_error 2 "NUL byte at offset 0" train_tiny --data "$WORK/sparse.txt" --out "$WORK/z"
rss=$(max_rss_mb "$TG_GPT" train --preset tiny --data "$WORK/sparse.txt" --out "$WORK/z")
echo "2 GB sparse corpus: max RSS $rss MB"
[ "$rss" -lt 200 ] || fail "reading the sparse file took $rss MB"

# A 32 MB text corpus trains with its ids at 2 bytes a token (nn/data/corpus_tokens.h): about 105 MB of RSS,
# where int64 ids took 290 MB.
for i in $(seq 1 1024); do cat "$corpus"; done > "$WORK/big.txt"
rss=$(max_rss_mb "$TG_GPT" train --preset tiny --threads 2 --data "$WORK/big.txt" --out "$WORK/big" --steps 1 \
  --eval-every 1 --eval-batches 1 --sample-tokens 0)
echo "32 MB text corpus, one step: max RSS $rss MB"
[ -f "$WORK/big/model.safetensors" ] || fail "the 32 MB corpus run did not train"
[ "$rss" -lt 200 ] || fail "training on a 32 MB corpus took $rss MB"

# ---- 9. leftover temporary files of a killed writer are swept by the next save -------------------------------------
sh -c 'exit 0' & dead=$!; wait "$dead"
touch "$WORK/good/model.safetensors.tmp.$dead" "$WORK/good/state.json.tmp.$dead"
"$TG_GPT" train --out "$WORK/good" --resume --steps 9 --sample-tokens 0 > /dev/null 2>&1 || fail "resume"
ls "$WORK/good" | grep -q "\.tmp\." && fail "leftover temporary files remain: $(ls "$WORK/good")"
echo "ok"
