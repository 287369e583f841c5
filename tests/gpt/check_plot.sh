#!/usr/bin/env bash
# tg-gpt plot: the validation curves of two runs on one PNG; clear errors for a missing run directory, a
# wrong number of labels and a damaged loss.csv (and no picture written then).
source "$(dirname "$0")/common.sh" "$@"
corpus=$(make_corpus)
train_tiny --data "$corpus" --out "$WORK/a" --steps 20 --eval-every 10 > /dev/null 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "training run a"; }
train_tiny --data "$corpus" --out "$WORK/b" --steps 20 --eval-every 10 --seed 3 > /dev/null 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "training run b"; }

"$TG_GPT" plot --runs "$WORK/a" "$WORK/b" --labels exact,seed_3 --out "$WORK/cmp.png" 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "plot of two runs"; }
[ "$(head -c 8 "$WORK/cmp.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "cmp.png is not a PNG"
# The IHDR chunk (bytes 16..23) holds the width and height: 800 x 480 by default.
[ "$(head -c 24 "$WORK/cmp.png" | tail -c 8 | od -An -tx1 | tr -d ' \n')" = "00000320000001e0" ] \
  || fail "cmp.png is not 800 x 480"
grep -q "exact: 2 points" "$WORK/err.txt" || fail "expected 2 validation points per run: $(cat "$WORK/err.txt")"
"$TG_GPT" plot --runs "$WORK/a" --metric train_loss --out "$WORK/train.png" 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "plot of the train loss"; }
grep -q "a: 20 points" "$WORK/err.txt" || fail "expected 20 train-loss points labelled 'a': $(cat "$WORK/err.txt")"
"$TG_GPT" plot --runs "$WORK/a" "$WORK/b" --metric val_bpb --out "$WORK/bpb.png" 2> "$WORK/err.txt" \
  || { cat "$WORK/err.txt"; fail "plot of bits per byte"; }
grep -q "a: 2 points, last val_bpb" "$WORK/err.txt" || fail "expected 2 val_bpb points: $(cat "$WORK/err.txt")"
# Derived curves (scripts/long_context_report.sh): any x in the first column, a log-scale y spanning decades.
mkdir "$WORK/derived" && printf 'step,train_loss,val_loss,val_bpb\n12.5,0,0,0.004\n30,0,0,0.5\n61.25,0,0,2.5\n' \
  > "$WORK/derived/loss.csv"
"$TG_GPT" plot --runs "$WORK/derived" --metric val_bpb --log-y --x-label "CPU seconds" --y-label "gradient error" \
  --out "$WORK/log.png" 2> "$WORK/err.txt" || { cat "$WORK/err.txt"; fail "plot with --log-y and axis titles"; }
grep -q "derived: 3 points, last val_bpb 2.5000 at step 61" "$WORK/err.txt" || fail "log plot: $(cat "$WORK/err.txt")"
cmp -s "$WORK/log.png" "$WORK/bpb.png" && fail "log.png equals bpb.png"
"$TG_GPT" plot --runs "$WORK/derived" --metric val_bpb --out "$WORK/lin.png" 2> /dev/null || fail "linear plot of derived"
cmp -s "$WORK/log.png" "$WORK/lin.png" && fail "--log-y and --x-label drew the same picture as without them"

expect_error() {  # expect_error "part of the message" command...
  local want=$1; shift
  if "$@" > /dev/null 2> "$WORK/err.txt"; then fail "expected an error from: $*"; fi
  grep -qF -- "$want" "$WORK/err.txt" || fail "the message lacks '$want': $(cat "$WORK/err.txt")"
  echo "ok: $(grep -v '^$' "$WORK/err.txt" | tail -n 1)"
}
expect_error "$WORK/missing: no such directory" "$TG_GPT" plot --runs "$WORK/a" "$WORK/missing" --out "$WORK/bad.png"
expect_error "2 labels for 1 runs" "$TG_GPT" plot --runs "$WORK/a" --labels x,y --out "$WORK/bad.png"
mkdir "$WORK/torn" && printf 'step,train_loss,val_loss\n1,5.5,\n2,oops,5.1\n' > "$WORK/torn/loss.csv"
expect_error "$WORK/torn/loss.csv line 3: 'oops' is not a finite number" \
  "$TG_GPT" plot --runs "$WORK/torn" --metric train_loss --out "$WORK/bad.png"
mkdir "$WORK/zero" && printf 'step,train_loss,val_loss,val_bpb\n1,0,0,0.1\n2,0,0,0\n' > "$WORK/zero/loss.csv"
expect_error "--log-y needs positive values; zero has 0" \
  "$TG_GPT" plot --runs "$WORK/zero" --metric val_bpb --log-y --out "$WORK/bad.png"
[ ! -e "$WORK/bad.png" ] || fail "a failed plot left $WORK/bad.png behind"
echo ok
