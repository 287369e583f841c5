// The `kernels` suite: the fused NN kernels (softmax, log-softmax, layernorm, GELU, cross-entropy, AdamW,
// embedding) at sizes far larger than the caches, so each is measured against main memory.
//
//   tg-bench kernels [--kernel NAME] [--threads P] [--json]
//
// One record per kernel: {"suite":"kernels","kernel":..,"shape":..,"dtype":"f32","threads":..,"ms":..,"gbs":..,
// "cpu_ms":..,"gbs_cpu":..} (the last two: per unit of CPU time, for shared machines; see bench.h).
// gbs = bytes the kernel must move / time, counting every array it reads once and every array it writes once
// (as STREAM does: a write is counted once, not as the read-for-ownership plus write the hardware may do).
// Compare with `tg-bench peak`'s triad_gbs: these kernels are bandwidth-bound, the target is ≥ 60% of it.

#include "bench/bench.h"
#include "core/error.h"

#include "kernels/adamw.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/softmax.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tg::bench {

namespace {

namespace k = tg::kernels;

// Uniform values in [lo, hi). Filled once, single-threaded; the warm-up runs fault the output pages in.
std::vector<float> random_floats(std::int64_t count, float lo, float hi, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(static_cast<std::size_t>(count));
    for (auto& x : v) x = dist(rng);
    return v;
}

std::vector<std::int64_t> random_ids(std::int64_t count, std::int64_t vocab, std::uint32_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::int64_t> ids(static_cast<std::size_t>(count));
    for (auto& id : ids) id = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(vocab));
    return ids;
}

using Wanted = std::function<bool(const std::string&)>;
using Output = std::function<void(const Record&)>;

bool any_wanted(const Wanted& wanted, std::initializer_list<const char*> names) {
    return std::any_of(names.begin(), names.end(), [&](const char* name) { return wanted(name); });
}

std::string shape_text(std::int64_t a, std::int64_t b) { return std::to_string(a) + "x" + std::to_string(b); }

Record measure(const std::string& kernel, const std::string& shape, double bytes, int threads,
               const std::function<void()>& run) {
    const Timing t = median_timing(run, threads, 2, 5, 0.3, 100);
    Record r;
    r.set("suite", "kernels");
    r.set("kernel", kernel);
    r.set("shape", shape);
    r.set("dtype", "f32");
    r.set("threads", threads);
    r.set("ms", t.ms);
    r.set("gbs", bytes / (t.ms * 1e-3) / 1e9);
    // On a shared machine: the rate per unit of CPU time our threads actually got (see Timing in bench.h).
    r.set("cpu_ms", t.cpu_ms);
    r.set("gbs_cpu", bytes / (t.cpu_ms * 1e-3) / 1e9);
    return r;
}

// Softmax and log-softmax, 4096 × 4096: forward reads x, writes y; backward reads y, dy, writes dx.
void bench_softmax(int threads, const Wanted& wanted, const Output& out) {
    if (!any_wanted(wanted, {"softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward"}))
        return;
    const std::int64_t rows = 4096, cols = 4096, n = rows * cols;
    const double row_bytes = 4.0 * static_cast<double>(n);
    const auto x = random_floats(n, -8, 8, 1);
    const auto dy = random_floats(n, -1, 1, 2);
    std::vector<float> y(static_cast<std::size_t>(n)), dx(static_cast<std::size_t>(n));
    const std::string shape = shape_text(rows, cols);
    if (wanted("softmax_forward"))
        out(measure("softmax_forward", shape, 2 * row_bytes, threads,
                    [&] { k::softmax_forward(x.data(), y.data(), rows, cols, cols, cols); }));
    if (wanted("softmax_backward")) {
        k::softmax_forward(x.data(), y.data(), rows, cols, cols, cols);
        out(measure("softmax_backward", shape, 3 * row_bytes, threads,
                    [&] { k::softmax_backward(y.data(), dy.data(), dx.data(), rows, cols, cols, cols, cols); }));
    }
    if (wanted("log_softmax_forward"))
        out(measure("log_softmax_forward", shape, 2 * row_bytes, threads,
                    [&] { k::log_softmax_forward(x.data(), y.data(), rows, cols, cols, cols); }));
    if (wanted("log_softmax_backward")) {
        k::log_softmax_forward(x.data(), y.data(), rows, cols, cols, cols);
        out(measure("log_softmax_backward", shape, 3 * row_bytes, threads,
                    [&] { k::log_softmax_backward(y.data(), dy.data(), dx.data(), rows, cols, cols, cols, cols); }));
    }
}

// LayerNorm, 4096 × 4096: forward reads x (γ, β) and writes y (mean, rstd); backward reads x, dy (γ, mean,
// rstd) and writes dx (dγ, dβ).
void bench_layernorm(int threads, const Wanted& wanted, const Output& out) {
    if (!any_wanted(wanted, {"layernorm_forward", "layernorm_backward"})) return;
    const std::int64_t rows = 4096, cols = 4096, n = rows * cols;
    const auto x = random_floats(n, -2, 2, 3);
    const auto dy = random_floats(n, -1, 1, 4);
    const auto gamma = random_floats(cols, 0.5f, 1.5f, 5);
    const auto beta = random_floats(cols, -1, 1, 6);
    std::vector<float> y(static_cast<std::size_t>(n)), dx(static_cast<std::size_t>(n));
    std::vector<float> mean(static_cast<std::size_t>(rows)), rstd(static_cast<std::size_t>(rows));
    std::vector<float> dgamma(static_cast<std::size_t>(cols)), dbeta(static_cast<std::size_t>(cols));
    const std::string shape = shape_text(rows, cols);
    const double big = 4.0 * static_cast<double>(n), small_row = 4.0 * static_cast<double>(rows),
                 small_col = 4.0 * static_cast<double>(cols);
    if (wanted("layernorm_forward"))
        out(measure("layernorm_forward", shape, 2 * big + 2 * small_col + 2 * small_row, threads, [&] {
            k::layernorm_forward(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rows, cols,
                                 1e-5, cols, cols);
        }));
    if (wanted("layernorm_backward")) {
        k::layernorm_forward(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rows, cols, 1e-5,
                             cols, cols);
        out(measure("layernorm_backward", shape, 3 * big + 3 * small_col + 2 * small_row, threads, [&] {
            k::layernorm_backward(x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(), dx.data(),
                                  dgamma.data(), dbeta.data(), rows, cols, cols, cols, cols);
        }));
    }
}

// GELU over 4096 × 4096 values: forward reads x, writes y; backward reads x, dy, writes dx.
void bench_gelu(int threads, const Wanted& wanted, const Output& out) {
    if (!any_wanted(wanted, {"gelu_tanh_forward", "gelu_tanh_backward", "gelu_erf_forward", "gelu_erf_backward"}))
        return;
    const std::int64_t n = std::int64_t{4096} * 4096;
    const auto x = random_floats(n, -6, 6, 7);
    const auto dy = random_floats(n, -1, 1, 8);
    std::vector<float> y(static_cast<std::size_t>(n));
    const std::string shape = std::to_string(n);
    const double bytes = 4.0 * static_cast<double>(n);
    if (wanted("gelu_tanh_forward"))
        out(measure("gelu_tanh_forward", shape, 2 * bytes, threads,
                    [&] { k::gelu_tanh_forward(x.data(), y.data(), n); }));
    if (wanted("gelu_tanh_backward"))
        out(measure("gelu_tanh_backward", shape, 3 * bytes, threads,
                    [&] { k::gelu_tanh_backward(x.data(), dy.data(), y.data(), n); }));
    if (wanted("gelu_erf_forward"))
        out(measure("gelu_erf_forward", shape, 2 * bytes, threads,
                    [&] { k::gelu_erf_forward(x.data(), y.data(), n); }));
    if (wanted("gelu_erf_backward"))
        out(measure("gelu_erf_backward", shape, 3 * bytes, threads,
                    [&] { k::gelu_erf_backward(x.data(), dy.data(), y.data(), n); }));
}

// Cross-entropy at a small vocabulary with many rows (a character model: 8192 × 256) and a large one
// (2048 × 8192): fused loss+gradient reads the logits and writes the gradient; the loss-only variant just
// reads the logits. Targets (int64) and losses are counted too.
void bench_cross_entropy(int threads, const Wanted& wanted, const Output& out) {
    if (!any_wanted(wanted, {"cross_entropy", "cross_entropy_forward"})) return;
    for (const auto& [rows, vocab] : {std::pair<std::int64_t, std::int64_t>{8192, 256}, {2048, 8192}}) {
        const std::int64_t n = rows * vocab;
        const auto logits = random_floats(n, -8, 8, 9);
        const auto targets = random_ids(rows, vocab, 10);
        std::vector<float> losses(static_cast<std::size_t>(rows)), dlogits(static_cast<std::size_t>(n));
        const double big = 4.0 * static_cast<double>(n), per_row = 12.0 * static_cast<double>(rows);
        const std::string shape = shape_text(rows, vocab);
        if (wanted("cross_entropy"))
            out(measure("cross_entropy", shape, 2 * big + per_row, threads, [&] {
                k::cross_entropy_forward_backward(logits.data(), targets.data(), losses.data(), dlogits.data(), rows,
                                                  vocab, vocab, vocab, 1.0f / static_cast<float>(rows));
            }));
        if (wanted("cross_entropy_forward"))
            out(measure("cross_entropy_forward", shape, big + per_row, threads, [&] {
                k::cross_entropy_forward(logits.data(), targets.data(), losses.data(), rows, vocab, vocab);
            }));
    }
}

// One AdamW step over 50M float parameters: reads p, g, m, v and writes p, m, v.
void bench_adamw(int threads, const Wanted& wanted, const Output& out) {
    if (!wanted("adamw")) return;
    const std::int64_t n = 50'000'000;
    auto p = random_floats(n, -1, 1, 11);
    const auto g = random_floats(n, -1, 1, 12);
    std::vector<float> m(static_cast<std::size_t>(n), 0.0f), v(static_cast<std::size_t>(n), 0.0f);
    std::int64_t step = 0;
    out(measure("adamw", std::to_string(n), 7 * 4.0 * static_cast<double>(n), threads, [&] {
        k::adamw_step(p.data(), g.data(), m.data(), v.data(), n, k::AdamWHyper{3e-4, 0.9, 0.999, 1e-8, 0.1}, ++step);
    }));
}

// One AdamW step over the 52 parameter tensors of the GPT at config S (interfaces.md: 4 layers, C = 128, vocab
// and context 256; weight matrices, biases and LayerNorm weights): all of them in one pass (adamw_step_many, as
// optim::AdamW runs them) and one adamw_step per tensor, the way the optimizer ran before.
void bench_adamw_tensors(int threads, const Wanted& wanted, const Output& out) {
    if (!any_wanted(wanted, {"adamw_tensors", "adamw_per_tensor"})) return;
    const std::int64_t C = 128;
    std::vector<std::int64_t> sizes{256 * C, 256 * C};  // token and position embeddings
    for (int layer = 0; layer < 4; ++layer) {
        for (std::int64_t n : {C, C, 3 * C * C, 3 * C, C * C, C, C, C, 4 * C * C, 4 * C, 4 * C * C, C}) {
            sizes.push_back(n);
        }
    }
    sizes.insert(sizes.end(), {C, C});  // the final LayerNorm
    std::int64_t total = 0;
    for (std::int64_t n : sizes) total += n;
    auto p = random_floats(total, -1, 1, 21);
    const auto g = random_floats(total, -1, 1, 22);
    std::vector<float> m(static_cast<std::size_t>(total), 0.0f), v(static_cast<std::size_t>(total), 0.0f);
    std::vector<k::AdamWTensor<float>> tensors;
    for (std::int64_t offset = 0; std::int64_t n : sizes) {
        tensors.push_back({p.data() + offset, g.data() + offset, m.data() + offset, v.data() + offset, n, 1});
        offset += n;
    }
    const k::AdamWHyper hyper{3e-4, 0.9, 0.999, 1e-8, 0.1};
    const std::string shape = std::to_string(sizes.size()) + "_tensors_" + std::to_string(total);
    const double bytes = 7 * 4.0 * static_cast<double>(total);
    std::int64_t step = 0;
    if (wanted("adamw_tensors")) {
        out(measure("adamw_tensors", shape, bytes, threads, [&] {
            ++step;
            for (auto& t : tensors) t.step = step;
            k::adamw_step_many(tensors.data(), static_cast<std::int64_t>(tensors.size()), hyper);
        }));
    }
    if (wanted("adamw_per_tensor")) {
        out(measure("adamw_per_tensor", shape, bytes, threads, [&] {
            ++step;
            for (const auto& t : tensors) k::adamw_step(t.param, t.grad, t.m, t.v, t.n, hyper, step);
        }));
    }
}

// Embedding with GPT-2's table (50257 × 768) and 16384 ids: forward reads the ids and the looked-up rows and
// writes the output; backward reads the ids and dout and writes the whole table gradient.
void bench_embedding(int threads, const Wanted& wanted, const Output& out) {
    if (!any_wanted(wanted, {"embedding_forward", "embedding_backward"})) return;
    const std::int64_t vocab = 50257, channels = 768, n = 16384;
    const auto table = random_floats(vocab * channels, -1, 1, 13);
    const auto dout = random_floats(n * channels, -1, 1, 14);
    const auto ids = random_ids(n, vocab, 15);
    std::vector<float> y(static_cast<std::size_t>(n * channels)), dtable(static_cast<std::size_t>(vocab * channels));
    const double rows_bytes = 4.0 * static_cast<double>(n * channels), ids_bytes = 8.0 * static_cast<double>(n);
    const std::string shape = std::to_string(n) + "x" + shape_text(vocab, channels);
    if (wanted("embedding_forward"))
        out(measure("embedding_forward", shape, 2 * rows_bytes + ids_bytes, threads,
                    [&] { k::embedding_forward(table.data(), ids.data(), y.data(), n, vocab, channels); }));
    if (wanted("embedding_backward"))
        out(measure("embedding_backward", shape, rows_bytes + ids_bytes + 4.0 * static_cast<double>(vocab * channels),
                    threads,
                    [&] { k::embedding_backward(dout.data(), ids.data(), dtable.data(), n, vocab, channels); }));
}

const std::vector<std::string> k_kernels = {
    "softmax_forward",    "softmax_backward",   "log_softmax_forward", "log_softmax_backward",
    "layernorm_forward",  "layernorm_backward", "gelu_tanh_forward",   "gelu_tanh_backward",
    "gelu_erf_forward",   "gelu_erf_backward",  "cross_entropy",       "cross_entropy_forward",
    "adamw",              "adamw_tensors",      "adamw_per_tensor",   "embedding_forward",  "embedding_backward",
};

}  // namespace

int run_kernels(const Args& args, bool json, int threads) {
    const std::string only = args.get("kernel", "all");
    if (report_unused(args, "kernels")) return 2;
    if (only != "all" && std::find(k_kernels.begin(), k_kernels.end(), only) == k_kernels.end()) {
        std::string names;
        for (const auto& name : k_kernels) names += " " + name;
        throw tg::ValueError("--kernel must be all or one of:" + names + "; got " + only);
    }
    const auto wanted = [&](const std::string& name) { return only == "all" || only == name; };
    const auto out = [&](const Record& r) { emit(r, json); };
    bench_softmax(threads, wanted, out);
    bench_layernorm(threads, wanted, out);
    bench_gelu(threads, wanted, out);
    bench_cross_entropy(threads, wanted, out);
    bench_adamw(threads, wanted, out);
    bench_adamw_tensors(threads, wanted, out);
    bench_embedding(threads, wanted, out);
    return 0;
}

}  // namespace tg::bench
