#!/usr/bin/env bash
# `tg-bench gpt|vit --peak --rounds R` (bench/step_rounds.h): every round's line carries the peak measured
# around it and peak_fraction = gflops / peak_gflops (the larger of the two peaks), and the summary line's
# median lies between its min and max; with --profile the GEMM and attention kinds are rated against that peak.
# --rounds 0 is refused.
# Usage: check_bench_peak.sh TG_BENCH
set -euo pipefail
TG_BENCH=${1:?usage: $0 path/to/tg-bench}
out=$("$TG_BENCH" gpt --config S --batch 2 --seq 32 --steps 2 --threads 1 --peak --rounds 2 --json)
fail() { echo "FAIL: $*" >&2; echo "$out" >&2; exit 1; }
python3 - "$out" <<'PY' || fail "gpt --peak --rounds 2"
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines() if l.startswith("{")]
steps = [d for d in lines if d["suite"] == "gpt"]
summary = [d for d in lines if d["suite"] == "gpt_rounds"]
assert [d["round"] for d in steps] == [1, 2], steps
for d in steps:
    assert d["peak_gflops"] == max(d["peak_gflops_before"], d["peak_gflops_after"]) > 0, d
    want = d["gflops"] / d["peak_gflops"]
    assert abs(d["peak_fraction"] - want) <= 1e-4 * want, (d["peak_fraction"], want)
assert len(summary) == 1 and summary[0]["rounds"] == 2, summary
s = summary[0]
assert s["peak_fraction_min"] <= s["peak_fraction_median"] <= s["peak_fraction_max"], s
assert s["step_ms_min"] <= s["step_ms_median"] <= s["step_ms_max"], s
assert s["peak_gflops_min"] == min(d["peak_gflops"] for d in steps), s
PY
# --profile with --peak: the GEMM and attention kinds carry their work, rate and fraction of the last peak.
prof=$("$TG_BENCH" gpt --config S --batch 2 --seq 32 --steps 2 --threads 1 --peak --profile --json)
python3 - "$prof" <<'PY' || { out=$prof; fail "gpt --peak --profile"; }
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines() if l.startswith("{")]
step = [d for d in lines if d["suite"] == "gpt"][0]
kinds = {d["kind"]: d for d in lines if d["suite"] == "gpt_profile"}
total = 0.0
for kind in ("gemm", "attention"):
    k = kinds[kind]
    assert abs(k["gflops"] - k["gflop"] * 1e3 / k["ms"]) <= 1e-4 * k["gflops"], k
    assert abs(k["peak_fraction"] - k["gflops"] / step["peak_gflops"]) <= 1e-4 * k["peak_fraction"], k
    total += k["gflop"]
assert abs(total - step["gflop"]) <= 1e-5 * step["gflop"], (total, step["gflop"])  # 6 printed digits
assert "gflop" not in kinds["layernorm"], kinds["layernorm"]
PY
plain=$("$TG_BENCH" gpt --config S --batch 2 --seq 32 --steps 2 --threads 1 --json)
if grep -q 'peak_fraction\|gpt_rounds' <<<"$plain"; then out=$plain; fail "peak fields without --peak"; fi
vit=$("$TG_BENCH" vit --batch 4 --steps 2 --threads 1 --peak --json)
grep -q '"suite":"vit".*"round":1,"peak_gflops":.*"peak_fraction":' <<<"$vit" || { out=$vit; fail "vit --peak"; }
if "$TG_BENCH" gpt --config S --rounds 0 >/dev/null 2>&1; then fail "--rounds 0 accepted"; fi
echo ok
