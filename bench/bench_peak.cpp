// The `peak` suite: what this machine can do at best, measured in the same run as the kernels so they can be
// quoted as a fraction of it (the machine may be shared, and its clock varies).
//
//   fma_gflops  FP32 fused multiply-adds on registers only: independent FMA chains, no memory traffic. The
//               ceiling for any compute-bound kernel such as a large GEMM.
//   triad_gbs   STREAM triad a[i] = b[i] + s·c[i] on arrays far larger than the caches: the ceiling for
//               memory-bound kernels (counting 3 × 4 bytes per element, like STREAM).
//
// Both run on plain std::threads, one per requested thread, so the number is the hardware's, not the
// scheduler's. One record for a single thread and one for all `threads`.

#include "bench/bench.h"
#include "bench/step_rounds.h"

#include <xsimd/xsimd.hpp>

#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

namespace tg::bench {

namespace {

using Batch = xsimd::batch<float>;

// Enough independent chains to cover FMA latency × FMA pipes (4 cycles × 2 on Zen 4/5 and Intel cores), and
// few enough to stay in the 16 registers of AVX2.
constexpr int k_chains = 12;

// `iterations` steps of k_chains independent FMAs, each acc = acc·x + y. With x just below 1 the values stay
// finite and far from denormals however long it runs. Returns a checksum so the work cannot be optimised away.
float fma_chains(std::int64_t iterations) {
    Batch acc[k_chains];
    for (int c = 0; c < k_chains; ++c) acc[c] = Batch(static_cast<float>(c));
    const Batch x(0.999999f), y(1e-7f);
    for (std::int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
        for (int c = 0; c < k_chains; ++c) acc[c] = xsimd::fma(acc[c], x, y);
    }
    Batch sum = acc[0];
    for (int c = 1; c < k_chains; ++c) sum += acc[c];
    return xsimd::hadd(sum);
}

// Runs body(t) on `threads` std::threads at once (t = 0 .. threads-1) and waits for all of them.
template <class Body>
void on_threads(int threads, const Body& body) {
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(body, t);
    body(0);
    for (auto& thread : pool) thread.join();
}

// Returns {GFLOP/s over wall-clock time, GFLOP/s over CPU time (see Timing)}.
std::pair<double, double> measure_fma_gflops(int threads) {
    // About 60 ms per run on one AVX-512 core: long enough to reach the steady clock, short enough to repeat.
    const std::int64_t iterations = (std::int64_t{1} << 28) / static_cast<std::int64_t>(Batch::size);
    std::vector<float> sink(static_cast<std::size_t>(threads));
    const Timing t = median_timing(
        [&] { on_threads(threads, [&](int i) { sink[static_cast<std::size_t>(i)] = fma_chains(iterations); }); },
        threads, 1, 5, 0.3, 50);
    volatile float keep = sink[0];
    (void)keep;
    const double gflop = 2.0 * static_cast<double>(iterations) * k_chains * Batch::size * threads / 1e9;
    return {gflop / (t.ms * 1e-3), gflop / (t.cpu_ms * 1e-3)};
}

double measure_triad_gbs(int threads) {
    // 3 arrays × 64 MB: twice the largest L3 we expect, so every pass goes to DRAM.
    const std::int64_t n = std::int64_t{1} << 24;
    std::vector<float> a(static_cast<std::size_t>(n)), b(static_cast<std::size_t>(n)), c(static_cast<std::size_t>(n));
    const float s = 3.0f;
    // Each thread touches first (and later streams) its own slice.
    auto slice = [&](int t, auto&& fn) {
        const std::int64_t begin = n * t / threads, end = n * (t + 1) / threads;
        for (std::int64_t i = begin; i < end; ++i) fn(static_cast<std::size_t>(i));
    };
    on_threads(threads, [&](int t) {
        slice(t, [&](std::size_t i) {
            a[i] = 0.0f;
            b[i] = 1.0f;
            c[i] = 2.0f;
        });
    });
    const double ms = median_ms(
        [&] { on_threads(threads, [&](int t) { slice(t, [&](std::size_t i) { a[i] = b[i] + s * c[i]; }); }); }, 2, 5,
        0.3, 100);
    return 3.0 * sizeof(float) * static_cast<double>(n) / (ms * 1e-3) / 1e9;
}

}  // namespace

double peak_fma_gflops(int threads) { return measure_fma_gflops(threads).first; }

int run_peak(const Args& args, bool json, int threads) {
    if (report_unused(args, "peak")) return 2;
    std::vector<int> counts = {1};
    if (threads > 1) counts.push_back(threads);
    for (const int t : counts) {
        const auto [fma, fma_cpu] = measure_fma_gflops(t);
        Record r;
        r.set("suite", "peak");
        r.set("fma_gflops", fma);
        r.set("triad_gbs", measure_triad_gbs(t));
        r.set("threads", t);
        r.set("fma_gflops_per_thread", fma / t);
        r.set("fma_gflops_cpu", fma_cpu);  // on a shared machine: per unit of CPU time we got
        emit(r, json);
    }
    return 0;
}

}  // namespace tg::bench
