// The `gemm` suite: C = A·B (alpha 1, beta 0) through tg::kernels::sgemm / dgemm / *_batched.
//
//   tg-bench gemm --m M --n N --k K [--trans-a] [--trans-b] [--batch B] [--dtype f32|f64] [--a-sums]
//
// measures one shape (--a-sums: through sgemm_a_sums / dgemm_a_sums, the product plus the row sums of op(A),
// batch 1 only) (n defaults to m, k to n); without --m/--n/--k it runs the default sweep below. GFLOP/s
// counts 2·m·n·k flops per matrix (one multiply and one add per term).

#include "bench/bench.h"
#include "core/error.h"
#include "examples/common/memory.h"

#include "kernels/gemm.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

namespace tg::bench {

namespace {

struct Shape {
    std::int64_t batch, m, n, k;
    bool trans_a, trans_b;
    bool a_sums = false;
};

// The default sweep: square sizes from latency-bound to compute-bound, the two matmuls of a transformer MLP
// at T = 2048 tokens and C = 128 (X·W for the 4C = 512 hidden layer, and back), and the per-head attention
// scores Q·Kᵀ of 32 heads at T = 128, D = 64.
const std::vector<Shape> k_sweep = {
    {1, 64, 64, 64, false, false},      {1, 256, 256, 256, false, false},    {1, 1024, 1024, 1024, false, false},
    {1, 2048, 2048, 2048, false, false}, {1, 2048, 128, 512, false, false},  {1, 2048, 512, 128, false, false},
    {32, 128, 128, 64, false, true},
};

template <class T>
std::vector<T> random_matrix(std::int64_t count, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<T> v(static_cast<std::size_t>(count));
    for (auto& x : v) x = static_cast<T>(dist(rng));
    return v;
}

template <class T>
Record measure(const Shape& s, int threads) {
    const std::int64_t a_size = s.m * s.k, b_size = s.k * s.n, c_size = s.m * s.n;
    const auto a = random_matrix<T>(s.batch * a_size, 1);
    const auto b = random_matrix<T>(s.batch * b_size, 2);
    std::vector<T> c(static_cast<std::size_t>(s.batch * c_size));
    const std::int64_t lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
    std::vector<T> sums(static_cast<std::size_t>(s.m));

    auto run = [&] {
        if constexpr (std::is_same_v<T, float>) {
            if (s.a_sums) {
                kernels::sgemm_a_sums(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f,
                                      c.data(), s.n, sums.data());
            } else if (s.batch == 1) {
                kernels::sgemm(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f,
                               c.data(), s.n);
            } else {
                kernels::sgemm_batched(s.trans_a, s.trans_b, s.batch, s.m, s.n, s.k, 1.0f, a.data(), lda, a_size,
                                       b.data(), ldb, b_size, 0.0f, c.data(), s.n, c_size);
            }
        } else {
            if (s.a_sums) {
                kernels::dgemm_a_sums(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0, a.data(), lda, b.data(), ldb, 0.0,
                                      c.data(), s.n, sums.data());
            } else if (s.batch == 1) {
                kernels::dgemm(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0, a.data(), lda, b.data(), ldb, 0.0, c.data(),
                               s.n);
            } else {
                kernels::dgemm_batched(s.trans_a, s.trans_b, s.batch, s.m, s.n, s.k, 1.0, a.data(), lda, a_size,
                                       b.data(), ldb, b_size, 0.0, c.data(), s.n, c_size);
            }
        }
    };
    const Timing t = median_timing(run, threads, 3, 10, 0.5, 1000);
    const double flops = 2.0 * static_cast<double>(s.batch) * static_cast<double>(s.m) * static_cast<double>(s.n) *
                         static_cast<double>(s.k);

    Record r;
    r.set("suite", "gemm");
    r.set("m", s.m);
    r.set("n", s.n);
    r.set("k", s.k);
    r.set("trans_a", s.trans_a);
    r.set("trans_b", s.trans_b);
    r.set("threads", threads);
    r.set("ms", t.ms);
    r.set("gflops", flops / (t.ms * 1e-3) / 1e9);
    if (s.batch != 1) r.set("batch", s.batch);
    if (s.a_sums) r.set("a_sums", true);
    if (!std::is_same_v<T, float>) r.set("dtype", "f64");
    // On a shared machine: the rate per unit of CPU time our threads actually got (see Timing).
    r.set("cpu_ms", t.cpu_ms);
    r.set("gflops_cpu", flops / (t.cpu_ms * 1e-3) / 1e9);
    return r;
}

}  // namespace

int run_gemm(const Args& args, bool json, int threads) {
    const bool sweep = !args.flag("m") && !args.flag("n") && !args.flag("k");
    Shape one{};
    one.m = args.get_int("m", 0);
    one.n = args.get_int("n", one.m);
    one.k = args.get_int("k", one.n);
    one.batch = args.get_int("batch", 1);
    one.trans_a = args.flag("trans-a");
    one.trans_b = args.flag("trans-b");
    one.a_sums = args.flag("a-sums");
    const std::string dtype = args.get("dtype", "f32");
    if (report_unused(args, "gemm")) return 2;
    if (dtype != "f32" && dtype != "f64") throw tg::ValueError("--dtype must be f32 or f64, got " + dtype);
    if (!sweep && (one.m < 1 || one.n < 1 || one.k < 1 || one.batch < 1)) {
        throw tg::ValueError("--m, --n, --k and --batch must be at least 1");
    }
    if (one.a_sums && one.batch != 1) throw tg::ValueError("--a-sums takes one matrix (--batch 1)");

    if (!sweep) {  // A, B and C, before they are allocated: --m 1000000000 is refused with its size
        const auto product = [](std::int64_t x, std::int64_t y) {
            return tg::cli::saturating_product({static_cast<std::uint64_t>(x), static_cast<std::uint64_t>(y)});
        };
        const std::uint64_t per_product = std::max({product(one.m, one.k), product(one.k, one.n), product(one.m, one.n)});
        tg::cli::require_memory("tg-bench gemm",
                                {{"A, B and C", tg::cli::saturating_product({3, static_cast<std::uint64_t>(one.batch),
                                                                             per_product, dtype == "f32" ? 4u : 8u})}},
                                "use smaller --m, --n, --k or --batch");
    }
    const std::vector<Shape> shapes = sweep ? k_sweep : std::vector<Shape>{one};
    for (const Shape& s : shapes) emit(dtype == "f32" ? measure<float>(s, threads) : measure<double>(s, threads), json);
    return 0;
}

}  // namespace tg::bench
