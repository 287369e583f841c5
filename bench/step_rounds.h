#pragma once
// `tg-bench gpt|vit --peak [--rounds R]`: a training step's speed as a fraction of the machine's FMA peak
// measured in the same process, right around it.
//
// On a shared or virtual machine the peak moves between runs (the host's other work, the clock), and the step
// moves with it, but not in proportion: the step's memory-bound parts (LayerNorm, GELU, AdamW, the attention's
// first reads) slow down when a neighbour fills the shared cache, while register-only FMA chains do not. A
// fraction quoted against a peak measured minutes away can be off by 10% either way. So each round measures
// the 2-thread (all `threads`) FMA peak of bench_peak.cpp, times the step as usual (2 warm-up steps, then the
// median of `steps`), and measures the peak again; the round's fraction is gflops / max(before, after) — the
// larger peak, so the fraction is never flattered by a dip in the peak.
//
// Rounds repeat that in one process, so a reader sees how much the fraction itself moves; the summary line
// gives the median, min and max over the rounds, and the smallest and largest peak. A round whose two peaks
// are both far below the others' ran while the host held one of our cores: its fraction is of what was left,
// and the summary's peak_gflops_min shows that such a round is among them.

#include "bench/bench.h"

#include <functional>
#include <string>
#include <vector>

namespace tg::bench {

// The gpt and vit suites draw the inputs of this many steps before timing any, and their steps take them in
// turn: a step measures the model, not the random number generator. (Drawn inside the step, a ViT batch of
// 128 random images cost 0.41 ms, 4% of that step; a GPT batch of S 0.03 ms.)
constexpr int kInputBatches = 4;

// GFLOP/s of register-only FP32 FMA chains on `threads` threads (the `peak` suite's fma_gflops).
double peak_fma_gflops(int threads);

struct StepRound {
    Timing timing;
    double peak_before = 0.0, peak_after = 0.0;  // GFLOP/s; 0 when not measured
    double peak() const { return peak_before > peak_after ? peak_before : peak_after; }
};

// `rounds` rounds of median_timing(step, threads, 2 warm-ups, `steps` timed steps), each between two peak
// measurements when `with_peak`; after_round(round, index) runs as each round ends (index from 1), so its
// record can read the state of that moment (the last loss, the RSS so far). Returns every round.
std::vector<StepRound> time_step_rounds(const std::function<void()>& step, int threads, int steps, int rounds,
                                        bool with_peak,
                                        const std::function<void(const StepRound&, int)>& after_round);

// The fields every step line (gpt, vit) ends with, read when the round ends: "peak_rss_bytes" (the process's
// maximum so far), "steps", "cpu_ms", "min_step_ms", "gflop", "gflops", "gflops_cpu", "framework_peak_bytes",
// "loss"; then, when the round has a peak, "round", "peak_gflops" (the larger of the two), "peak_gflops_before",
// "peak_gflops_after" and "peak_fraction" = gflops / peak_gflops.
void set_step_fields(Record& record, const StepRound& round, int round_index, std::int64_t steps,
                     double gflop_per_step, double loss);

// The summary line after several rounds:
//   {"suite":SUITE_rounds,"config":..,"threads":..,"rounds":R,"step_ms_median":..,"step_ms_min":..,
//    "step_ms_max":..,"peak_fraction_median":..,"peak_fraction_min":..,"peak_fraction_max":..,
//    "peak_gflops_min":..,"peak_gflops_max":..}   (the peak fields only with the peak).
void emit_rounds_summary(const std::vector<StepRound>& rounds, const std::string& suite, const std::string& config,
                         int threads, double gflop_per_step, bool json);

}  // namespace tg::bench
