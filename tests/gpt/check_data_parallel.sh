#!/usr/bin/env bash
# Data parallelism (docs/distributed.md): `mpirun -np 2 tg-gpt train --batch 8` (2 ranks x 4 windows) follows the
# single-process --batch 8 run: every step's training loss and the final weights within 1e-5 relative. A second
# 2-rank run is bitwise identical; a 2-rank run stopped and resumed under 2 ranks ends with the same weights;
# resuming it as one process is refused with a clear message; SIGTERM to the ranks saves and exits 0; a batch that does not divide is refused.
# Usage: check_data_parallel.sh TG_GPT MPIRUN COMPARE_SAFETENSORS
source "$(dirname "$0")/common.sh" "$1"
MPIRUN=${2:?usage: $0 tg-gpt mpirun compare-safetensors}
COMPARE=${3:?usage: $0 tg-gpt mpirun compare-safetensors}
mpi() { "$MPIRUN" --allow-run-as-root --oversubscribe --bind-to none -np "$@"; }
corpus=$(make_corpus)
base=(train --preset tiny --data "$corpus" --steps 24 --eval-every 8 --seed 3 --threads 1 --json --sample-tokens 0)
args=("${base[@]}" --batch 8)

"$TG_GPT" "${args[@]}" --out "$WORK/one" > "$WORK/one.json" 2> "$WORK/err.txt" || { cat "$WORK/err.txt"; fail "1 process"; }
mpi 2 "$TG_GPT" "${args[@]}" --out "$WORK/two" > "$WORK/two.json" 2> "$WORK/err.txt" || { cat "$WORK/err.txt"; fail "2 ranks"; }
grep -q "data parallel: 2 ranks x 4 windows" "$WORK/err.txt" || fail "no data-parallel line: $(cat "$WORK/err.txt")"
[ "$(wc -l < "$WORK/two.json")" -eq 3 ] || fail "2 ranks printed $(wc -l < "$WORK/two.json") JSON lines, not 3 (rank 0 alone prints)"

# Every step's training loss (loss.csv: step,train_loss,val_loss,val_bpb; the two files side by side), 1e-5 relative.
paste -d, "$WORK/one/loss.csv" "$WORK/two/loss.csv" | awk -F, '
  NR == 1 { next }
  { n++; half = NF / 2; d = $2 - $(half + 2); if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2); if (r > worst) worst = r }
  END { printf "%d steps; largest relative difference of the training loss %.3g\n", n, worst;
        exit !(n >= 20 && worst <= 1e-5) }' || fail "the 2-rank losses do not follow the 1-process losses"
"$COMPARE" "$WORK/one/model.safetensors" "$WORK/two/model.safetensors" 1e-5 || fail "final weights differ"

# Repeating the 2-rank run repeats it bit for bit.
mpi 2 "$TG_GPT" "${args[@]}" --out "$WORK/again" > /dev/null 2> "$WORK/err.txt" || { cat "$WORK/err.txt"; fail "2 ranks, again"; }
cmp "$WORK/two/model.safetensors" "$WORK/again/model.safetensors" || fail "two 2-rank runs end with different weights"
cmp "$WORK/two/loss.csv" "$WORK/again/loss.csv" || fail "two 2-rank runs have different losses"

# Stopped after 12 steps and resumed with 2 ranks: the same weights as the uninterrupted run.
mpi 2 "$TG_GPT" "${args[@]}" --out "$WORK/split" --stop-after 12 > /dev/null 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "2 ranks, first half"; }
mpi 2 "$TG_GPT" train --out "$WORK/split" --resume --threads 1 --sample-tokens 0 > /dev/null 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "2 ranks, resumed"; }
cmp "$WORK/two/model.safetensors" "$WORK/split/model.safetensors" || fail "the resumed 2-rank run ends elsewhere"

# SIGTERM to the ranks (what mpirun sends them on Ctrl-C): they agree on the step, rank 0 saves, all exit 0.
"$MPIRUN" --allow-run-as-root --oversubscribe --bind-to none -np 2 "$TG_GPT" train --preset tiny \
  --data "$corpus" --batch 8 --steps 20000 --eval-every 20000 --threads 1 --sample-tokens 0 --out "$WORK/stopped" > /dev/null 2> "$WORK/stop.txt" &
launcher=$!  # mpirun itself (not a subshell), so the ranks are its children
for _ in $(seq 1 300); do grep -q "^train:" "$WORK/stop.txt" && break; sleep 0.1; done
sleep 1
ranks=$(pgrep -P "$launcher" -d ' ' || true)
[ -n "$ranks" ] || fail "no rank processes under mpirun (pid $launcher)"
kill -TERM $ranks
for _ in $(seq 1 300); do kill -0 "$launcher" 2> /dev/null || break; sleep 0.1; done
if kill -0 "$launcher" 2> /dev/null; then kill -KILL "$launcher"; fail "the ranks did not stop within 30 s of SIGTERM"; fi
status=0
wait "$launcher" || status=$?
[ "$status" -eq 0 ] || { cat "$WORK/stop.txt"; fail "after SIGTERM to the ranks mpirun exits $status, not 0"; }
grep -q "interrupted: checkpoint of step" "$WORK/stop.txt" || fail "no message after SIGTERM: $(cat "$WORK/stop.txt")"
"$TG_GPT" eval --ckpt "$WORK/stopped" --json > /dev/null || fail "the checkpoint saved on SIGTERM does not load"

# Resuming with another number of ranks, and a batch that does not divide: refused, with a clear message.
if "$TG_GPT" train --out "$WORK/split" --resume --steps 30 > /dev/null 2> "$WORK/err.txt"; then
  fail "resuming a 2-rank checkpoint as 1 process should fail"
fi
grep -q "written by a run of 2 processes" "$WORK/err.txt" || fail "unclear message: $(cat "$WORK/err.txt")"
if mpi 2 "$TG_GPT" "${base[@]}" --batch 7 --out "$WORK/odd" > /dev/null 2> "$WORK/err.txt"; then
  fail "--batch 7 over 2 ranks should fail"
fi
grep -q "does not divide into 2 ranks" "$WORK/err.txt" || fail "unclear message: $(cat "$WORK/err.txt")"
echo "ok"
