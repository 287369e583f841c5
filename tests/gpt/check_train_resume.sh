#!/usr/bin/env bash
# Resume equivalence: 2N steps in one go, and N steps + --resume for N more, give identical losses (same seed,
# same threads), with dropout on so that the random state must be restored too. Also Ctrl-C: SIGINT (and SIGTERM) during
# training saves a checkpoint and exits with status 0.
source "$(dirname "$0")/common.sh" "$@"
corpus=$(make_corpus)
args=(--data "$corpus" --steps 40 --eval-every 10 --dropout 0.1 --seed 5 --json)
train_tiny "${args[@]}" --out "$WORK/whole" > "$WORK/whole.json" 2> "$WORK/err.txt" || { cat "$WORK/err.txt"; fail "run 1"; }
train_tiny "${args[@]}" --out "$WORK/split" --stop-after 20 > "$WORK/split.json" 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "run 2, first half"; }
[ "$(wc -l < "$WORK/split.json")" -eq 2 ] || fail "--stop-after 20 should stop after the evaluation of step 20"
"$TG_GPT" train --out "$WORK/split" --resume --json --sample-tokens 0 >> "$WORK/split.json" 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "run 2, resumed half"; }
grep -q "resuming at step 20" "$WORK/err.txt" || fail "the resumed run did not say it resumed at step 20"
if ! diff <(without_timing "$WORK/whole.json") <(without_timing "$WORK/split.json"); then
  fail "the resumed run's losses differ from the uninterrupted run's"
fi
echo "identical losses over $(wc -l < "$WORK/whole.json") evaluations"

# A resumed run refuses to change what defines the run.
if "$TG_GPT" train --out "$WORK/split" --resume --batch 4 > /dev/null 2> "$WORK/err.txt"; then
  fail "--resume with a different --batch should fail"
fi
grep -q -- "--batch 4 differs from the checkpoint's 8" "$WORK/err.txt" || fail "unclear message: $(cat "$WORK/err.txt")"

# Ctrl-C (SIGINT) and SIGTERM (what mpirun and service managers send): a long run saves its checkpoint and
# exits 0.
for signal in INT TERM; do
  "$TG_GPT" train --preset tiny --threads 2 --sample-tokens 0 --data "$corpus" --out "$WORK/interrupted-$signal" \
    --steps 20000 --eval-every 20000 > /dev/null 2> "$WORK/int.txt" &
  pid=$!
  for _ in $(seq 1 100); do grep -q "^train:" "$WORK/int.txt" && break; sleep 0.1; done
  sleep 1
  kill "-$signal" "$pid"
  for _ in $(seq 1 300); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2> /dev/null; then kill -KILL "$pid"; fail "the run did not stop within 30 s of SIG$signal"; fi
  status=0
  wait "$pid" || status=$?
  [ "$status" -eq 0 ] || { cat "$WORK/int.txt"; fail "after SIG$signal the exit status is $status, not 0"; }
  grep -q "interrupted: checkpoint of step" "$WORK/int.txt" || fail "no message after SIG$signal: $(cat "$WORK/int.txt")"
  "$TG_GPT" eval --ckpt "$WORK/interrupted-$signal" --json > /dev/null \
    || fail "the checkpoint saved on SIG$signal does not load"
done
echo "ok"
