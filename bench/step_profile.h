#pragma once
// `tg-bench gpt --profile` / `tg-bench vit --profile`: where the time of a training step goes, per op kind
// (GEMM, attention, layernorm, GELU, softmax/cross-entropy, embedding, copies and views, other elementwise,
// AdamW, framework overhead), forward and backward, from the op-level record of core/profiler.h.
//
// Output: a table on stdout, or with --json one line per kind
//   {"suite":"gpt_profile","config":"S","kind":"gemm","forward_ms":..,"backward_ms":..,"ms":..,"percent":..}
// then one line per op name ("suite":"gpt_profile_op": op, kind, ms, calls per step), largest first.
// The kinds whose work the suite counts (GEMM, and exact attention) also get "gflop" (per step) and "gflops"
// (gflop over the kind's time), and with --peak "peak_fraction" against the last round's peak: how close each
// kind runs to the machine, e.g. the GEMMs at 92% and attention at 60% of a step that runs at 75% overall.

#include "bench/bench.h"
#include "core/profiler.h"
#include "core/tensor.h"
#include "nn/optim.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace tg::bench {

// One training step as the gpt and vit suites time it: zero_grad, loss, backward, AdamW, with the optimizer's
// two calls in the regions the profile names "zero_grad" and "adamw". Returns the loss.
double training_step(optim::Optimizer& opt, const std::function<Tensor()>& loss_fn);

// The kind an op name belongs to ("matmul backward" -> "gemm"); names the table does not know are "elementwise".
std::string op_kind(const std::string& op_name);

// Runs `step` `steps` times with the profiler on and prints the breakdown per step; the lines are named
// SUITE_profile and SUITE_profile_op and carry `config` and `threads`.
// A step's floating-point work (FLOP) as a suite counts it, split as the profile's kinds are: the linear layers
// (kind gemm) and attention.
struct StepWork {
    double linear = 0, attention = 0;
    double total() const { return linear + attention; }
};

// The floating-point work of one step per kind (GFLOP, as the suite counts it) and the peak to compare with (0:
// none measured).
struct KindWork {
    std::map<std::string, double> gflop;
    double peak_gflops = 0.0;
};
void profile_steps(const std::function<void()>& step, std::int64_t steps, const std::string& suite,
                   const std::string& config, int threads, bool json, const KindWork& work = {});

}  // namespace tg::bench
