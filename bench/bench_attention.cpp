// The `attention` suite: scaled dot-product attention through the autograd node, forward alone and
// forward + backward, with the framework allocator's peak.
//
//   tg-bench attention --n N --d D [--heads H] [--batch B] [--causal] --mode exact|approx_backward|approx|auto
//                      [--degree G] [--grad consistent|plugin] [--chunk C] [--window W] [--sinks S] [--score-std S]
//                      [--fused-qkv] [--no-err] [--threads P] [--json]
//
// {"suite":"attention","mode":"exact","causal":true,"batch":1,"heads":1,"n":..,"d":..,"degree":2,
//  "fused_qkv":false,"threads":2,"fwd_ms":..,"fwd_bwd_ms":..,"peak_bytes":..,
//  "rel_err":{"o":0,"dq":0,"dk":0,"dv":0},"gflops":..,
//  "fwd_cpu_ms":..,"fwd_bwd_cpu_ms":..,"gflops_cpu":..,"window":0,"sinks":0}
// --window W --sinks S: the near-exact / far-polynomial split of the approximate modes (causal only).
//
// rel_err: ‖x̂ − x‖_F/‖x‖_F of O, dQ, dK, dV against exact mode on the same inputs and dO
// (nn::attention_gradient_error; an extra untimed exact run), zeros for exact mode; --no-err skips it (-1s).
// bwd_ms = fwd_bwd_ms − fwd_ms: the backward's share (approx_backward changes only the backward).
// peak_bytes: the allocator's peak during one fwd+bwd call minus what was held before it (inputs, dO).
// gflops (exact mode only): the matmul-shaped work of FlashAttention's accounting, 2 products in the forward (S = QKᵀ, O = PV)
// and 5 in the backward (S again, dV = PᵀdO, dP = dOVᵀ, dQ = dS K, dK = dSᵀQ), each 2·n·n·d flops per head
// (times (n+1)/(2n) with the causal mask), divided by fwd_bwd_ms. Compare with `tg-bench peak`.
// *_cpu_ms: process CPU time per call divided by the thread count (bench.h median_timing): on a shared machine
// this is about what the wall time would be with the cores to ourselves; gflops_cpu uses it.

#include "bench/bench.h"

#include "core/grad_mode.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/storage.h"
#include "core/tensor.h"
#include "nn/attention.h"
#include "nn/attention_monitor.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>

namespace tg::bench {

namespace {

// {"o":..,"dq":..,"dk":..,"dv":..,"cosine":..} against exact mode on the same inputs (zeros for exact itself).
std::string rel_err_json(const tg::nn::functional::AttentionOptions& options, bool measure, const Tensor& q,
                         const Tensor& k, const Tensor& v, const Tensor& dout) {
    tg::nn::AttentionErrors e;
    if (!measure) {
        e.o = e.dq = e.dk = e.dv = e.cosine = -1;
    } else if (options.mode != tg::nn::functional::AttentionMode::Exact) {
        e = tg::nn::attention_gradient_error(q, k, v, dout, options);
    }
    char buffer[256];
    std::snprintf(buffer, sizeof buffer, "{\"o\":%.6g,\"dq\":%.6g,\"dk\":%.6g,\"dv\":%.6g,\"cosine\":%.8g}", e.o,
                  e.dq, e.dk, e.dv, e.cosine);
    return buffer;
}

}  // namespace

int run_attention(const Args& args, bool json, int threads) {
    namespace F = tg::nn::functional;
    const std::int64_t n = args.get_int("n", 4096);
    const std::int64_t d = args.get_int("d", 64);
    const std::int64_t heads = args.get_int("heads", 1);
    const std::int64_t batch = args.get_int("batch", 1);
    const bool causal = args.flag("causal");
    const std::string mode = args.get("mode", "exact");
    const std::int64_t degree = args.get_int("degree", 2);
    const std::string grad = args.get("grad", "consistent");
    const std::int64_t chunk = args.get_int("chunk", 64);
    const std::int64_t window = args.get_int("window", 0);
    const std::int64_t sinks = args.get_int("sinks", 0);
    const bool measure_error = !args.flag("no-err");
    // q, k ~ N(0, a²) with a² = score_std: the scores q·k/√D then have standard deviation score_std (default 1:
    // standard normal inputs). The accuracy of the approximate modes depends on it (the bounded regime).
    const double score_std = args.get_double("score-std", 1.0);
    // --fused-qkv: q, k, v as the GPT's attention gets them (nn/multihead_attention.cpp), views of one
    // (B, n, 3·H·d) tensor, the output of the fused QKV projection: rows 3·H·d apart, heads by a permute.
    const bool fused_qkv = args.flag("fused-qkv");
    if (report_unused(args, "attention")) return 2;
    F::AttentionOptions options;
    options.causal = causal;
    options.degree = static_cast<int>(degree);
    options.chunk = chunk;
    options.window = window;
    options.sinks = sinks;
    try {
        options.mode = F::attention_mode_from_string(mode);
        options.gradient = F::attention_gradient_from_string(grad);
    } catch (const tg::Error& e) {
        std::cerr << "tg-bench attention: " << e.what() << "\n";
        return 2;
    }
    try {
        F::check_attention_window("tg-bench attention", options, n);
    } catch (const tg::Error& e) {
        std::cerr << e.what() << "\n";
        return 2;
    }
    if (n < 1 || d < 1 || d > 256 || heads < 1 || batch < 1) {
        std::cerr << "tg-bench attention: need n, heads, batch >= 1 and 1 <= d <= 256\n";
        return 2;
    }

    Generator gen(1234);
    const Shape shape{batch, heads, n, d};
    const double input_std = std::sqrt(score_std);
    Tensor q = randn(shape, kFloat32, &gen) * input_std, k = randn(shape, kFloat32, &gen) * input_std;
    Tensor v = randn(shape, kFloat32, &gen), fused;
    const std::int64_t width = heads * d;
    if (fused_qkv) {  // the same values, side by side in rows of 3·H·d: [q | k | v], each (B, n, H·d)
        auto rows = [&](const Tensor& x) { return x.permute({0, 2, 1, 3}).reshape({batch, n, width}); };
        fused = cat({rows(q), rows(k), rows(v)}, 2).requires_grad_();
        q = k = v = Tensor();  // the copies are all that is used
    } else {
        q.requires_grad_();
        k.requires_grad_();
        v.requires_grad_();
    }
    // q, k, v: leaves, or (fused_qkv) views of the leaf `fused`, made anew for each call as the model does (a
    // view records its own node, which one backward consumes)
    auto inputs = [&]() -> std::array<Tensor, 3> {
        if (!fused_qkv) return {q, k, v};
        auto head_view = [&](std::int64_t i) {  // (B, n, H, d) of row stride 3·H·d, then (B, H, n, d)
            return fused.narrow(2, i * width, width).view({batch, n, heads, d}).permute({0, 2, 1, 3});
        };
        return {head_view(0), head_view(1), head_view(2)};
    };
    const Tensor dout = randn(shape, kFloat32, &gen);

    const Timing fwd = median_timing(
        [&] {
            NoGradGuard no_grad;
            const auto [qi, ki, vi] = inputs();
            F::scaled_dot_product_attention(qi, ki, vi, options);
        },
        threads);
    auto fwd_bwd = [&] {
        const auto [qi, ki, vi] = inputs();
        Tensor o = F::scaled_dot_product_attention(qi, ki, vi, options);
        o.backward(dout);
        for (const Tensor& leaf : fused_qkv ? std::vector<Tensor>{fused} : std::vector<Tensor>{q, k, v})
            leaf.zero_grad();
    };
    const Timing fwd_bwd_time = median_timing(fwd_bwd, threads);

    const std::int64_t before = memory_stats().current_bytes;
    reset_peak_memory();
    fwd_bwd();
    const std::int64_t peak_bytes = memory_stats().peak_bytes - before;

    const double pairs = causal ? 0.5 * static_cast<double>(n) * static_cast<double>(n + 1)
                                : static_cast<double>(n) * static_cast<double>(n);
    const double flops = 7.0 * 2.0 * pairs * static_cast<double>(d) * static_cast<double>(batch * heads);

    Record r;
    r.set("suite", "attention");
    r.set("mode", mode);
    r.set("causal", causal);
    r.set("batch", batch);
    r.set("heads", heads);
    r.set("n", n);
    r.set("d", d);
    r.set("degree", degree);
    r.set("grad", grad);
    r.set("score_std", score_std);
    r.set("fused_qkv", fused_qkv);
    r.set("threads", threads);
    r.set("fwd_ms", fwd.ms);
    r.set("fwd_bwd_ms", fwd_bwd_time.ms);
    r.set("bwd_ms", fwd_bwd_time.ms - fwd.ms);
    r.set("peak_bytes", peak_bytes);
    const auto [qe, ke, ve] = inputs();
    r.set_raw("rel_err", rel_err_json(options, measure_error, qe, ke, ve, dout));
    // FLOP rates only for exact mode: the polynomial modes do different work (docs/approximate-attention.md).
    const bool exact = options.mode == F::AttentionMode::Exact;
    if (exact) r.set("gflops", flops / (fwd_bwd_time.ms * 1e-3) / 1e9);
    // The same per thread of CPU time actually received (see median_timing): what the run would take with the
    // cores to itself.
    r.set("fwd_cpu_ms", fwd.cpu_ms);
    r.set("fwd_bwd_cpu_ms", fwd_bwd_time.cpu_ms);
    if (exact) r.set("gflops_cpu", flops / (fwd_bwd_time.cpu_ms * 1e-3) / 1e9);
    r.set("window", window);
    r.set("sinks", sinks);
    emit(r, json);
    return 0;
}

}  // namespace tg::bench
