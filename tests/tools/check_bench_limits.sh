#!/usr/bin/env bash
# tg-bench's sizes are checked before anything is allocated (docs/reliability.md): absurd gemm sizes and an
# absurd allreduce --max-bytes are refused with exit status 2 and how much memory they would need, in little
# memory; they used to end in "out of memory" (gemm) or allocate gigabytes before failing (allreduce).
# Usage: check_bench_limits.sh TG_BENCH
set -euo pipefail
TG_BENCH=${1:?usage: $0 path/to/tg-bench}
err=$(mktemp); trap 'rm -f "$err" "$err.rss"' EXIT
fail() { echo "FAIL: $*" >&2; cat "$err" >&2; exit 1; }
refused() {  # refused "part of the message" args...
  local want=$1; shift
  local status=0
  /usr/bin/time -f "%M" -o "$err.rss" "$TG_BENCH" "$@" > /dev/null 2> "$err" || status=$?
  [ "$status" -eq 2 ] || fail "tg-bench $*: exit status $status, wanted 2"
  grep -qF -- "$want" "$err" || fail "tg-bench $*: the message lacks '$want'"
  local rss_mb=$(( $(tail -n 1 "$err.rss") / 1024 ))
  [ "$rss_mb" -lt 100 ] || fail "tg-bench $*: $rss_mb MB before the refusal"
  echo "ok: tg-bench $* -> $(grep -F -- "$want" "$err" | head -n 1 | cut -c 1-120) ($rss_mb MB)"
}
refused "needs at least 12.0 EB of memory (A, B and C" gemm --m 1000000000
refused "use smaller --m, --n, --k or --batch" gemm --batch 1000000000 --m 64
refused "needs at least 2.0 PB of memory" allreduce --max-bytes 1000000000000000
"$TG_BENCH" gemm --m 48 --json | grep '"m":48' > /dev/null || fail "a small gemm no longer runs"
echo ok
