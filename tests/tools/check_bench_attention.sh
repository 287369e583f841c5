#!/usr/bin/env bash
# `tg-bench attention --fused-qkv` (bench/bench_attention.cpp): q, k, v as views of one (B, n, 3·H·d) tensor, as
# the GPT's attention gets them. Every call makes its views anew, so the timed loop can run backward again and
# again; the line says which layout it timed; exact mode has zero error against itself, and the approximate
# mode's error is the plain layout's: the same values are laid out the other way.
# Usage: check_bench_attention.sh TG_BENCH
set -euo pipefail
TG_BENCH=${1:?usage: $0 path/to/tg-bench}
common=(attention --n 40 --d 16 --heads 2 --batch 2 --causal --threads 2 --json)
out=$(for layout in "" --fused-qkv; do
  "$TG_BENCH" "${common[@]}" --mode exact $layout
  "$TG_BENCH" "${common[@]}" --mode approx --score-std 0.25 $layout
done)
python3 - "$out" <<'PY' || { echo "FAIL: tg-bench attention --fused-qkv" >&2; echo "$out" >&2; exit 1; }
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines() if l.startswith('{"suite":"attention"')]
assert [(d["mode"], d["fused_qkv"]) for d in lines] == [
    ("exact", False), ("approx", False), ("exact", True), ("approx", True)], lines
for d in lines:
    assert d["fwd_ms"] > 0 and d["fwd_bwd_ms"] > 0, d
    err = d["rel_err"]
    if d["mode"] == "exact":
        assert err == {"o": 0, "dq": 0, "dk": 0, "dv": 0, "cosine": 1}, err
    else:
        assert 0 < err["o"] < 0.1 and 0 < err["dq"] < 0.5 and err["cosine"] > 0.95, err
assert lines[1]["rel_err"] == lines[3]["rel_err"], (lines[1]["rel_err"], lines[3]["rel_err"])
PY
echo ok
