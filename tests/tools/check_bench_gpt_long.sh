#!/usr/bin/env bash
# `tg-bench gpt --config L` (bench/bench_gpt.cpp), the step of tg-gpt's long preset: its line names the config,
# T = 4096 and the model of the preset (478,592 parameters: vocab 256, 4 layers, C = 64, a 4096-row position
# table); --window/--sinks/--grad reach the attention (and are reported); bad combinations exit 2.
# Short runs: --batch 1 --seq 256 keeps the preset's model (the position table stays 4096 rows).
# Usage: check_bench_gpt_long.sh TG_BENCH
set -euo pipefail
TG_BENCH=${1:?usage: $0 path/to/tg-bench}
err=$(mktemp); trap 'rm -f "$err"' EXIT
fail() { echo "FAIL: $*" >&2; cat "$err" >&2; exit 1; }
out=$("$TG_BENCH" gpt --config L --steps 1 --threads 1 --json 2> "$err") || fail "config L exited with an error"
grep -q '"suite":"gpt","config":"L","attention":"exact",.*"vocab":256,"batch":4,"seq":4096,"parameters":478592,' \
  <<<"$out" || fail "config L's line is not the long preset's step: $out"
echo "ok: config L: $(grep -o '"step_ms":[0-9.]*' <<<"$out")"
out=$("$TG_BENCH" gpt --config L --batch 1 --seq 256 --steps 1 --threads 1 --attention approx_backward --window 16 \
  --sinks 2 --json 2> "$err") || fail "config L with --window 16 --sinks 2 exited with an error"
grep -q '"attention":"approx_backward","degree":2,"grad":"consistent","window":16,"sinks":2,.*"seq":256,"parameters":478592,' \
  <<<"$out" || fail "the hybrid's line lacks its options: $out"
out=$("$TG_BENCH" gpt --config L --batch 1 --seq 256 --steps 1 --threads 1 --attention approx --grad plugin --json \
  2> "$err") || fail "config L with --grad plugin exited with an error"
grep -q '"attention":"approx","degree":2,"grad":"plugin","window":0,"sinks":0,' <<<"$out" || fail "no plugin line: $out"
refused() {  # refused "part of the message" args...
  local want=$1; shift
  local status=0
  "$TG_BENCH" "$@" > /dev/null 2> "$err" || status=$?
  [ "$status" -eq 2 ] || fail "tg-bench $*: exit status $status, wanted 2"
  grep -qF -- "$want" "$err" || fail "tg-bench $*: the message lacks '$want'"
  echo "ok: tg-bench $* -> $(head -n 1 "$err" | cut -c 1-120)"
}
refused "--seq in [1, 65536]" gpt --config L --seq 65537
refused "not plugin" gpt --config L --seq 64 --attention approx_backward --grad plugin --window 8
refused "approximate" gpt --config L --seq 64 --window 8
refused "--config must be S, M, L or gpt2" gpt --config XL
echo ok
