// tg::optim::clip_grad_norm_: rescale gradients so that their global L2 norm is at most max_norm.
//
//   total = sqrt(Σ_p Σ_i grad_p[i]²),   coef = max_norm / (total + 1e-6),   grad_p ← grad_p · min(coef, 1)
//
// as torch.nn.utils.clip_grad_norm_ (the 1e-6 keeps coef finite when every gradient is zero). The sum of
// squares accumulates in float64 over fixed blocks (and fixed lanes inside each) that are added in order, so
// the result is the same at any thread count.

#include "nn/optim.h"

#include "core/grad_mode.h"
#include "core/strided.h"
#include "kernels/parallel_region.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <cmath>
#include <string>
#include <vector>

namespace tg::optim {

namespace {
// Σ x_i² of one block, in float64, as kLanes partial sums: element k goes to sum k mod kLanes, and the sums are
// added in lane order at the end. The order is fixed (the same bits at any thread count), and the lanes are
// independent chains the compiler turns into SIMD registers: one running sum is a chain of dependent float64
// additions, a few cycles per element, which made this pass take about as long as the AdamW step at GPT-2's
// size (docs/performance.md, "Session 9").
template <typename T>
double block_sum_of_squares(const T* x, std::int64_t n) {
    constexpr std::int64_t kLanes = 16;
    double lanes[kLanes] = {};
    std::int64_t k = 0;
    for (; k + kLanes <= n; k += kLanes) {
        for (std::int64_t j = 0; j < kLanes; ++j) {
            const double v = static_cast<double>(x[k + j]);
            lanes[j] += v * v;
        }
    }
    for (std::int64_t j = 0; k + j < n; ++j) {
        const double v = static_cast<double>(x[k + j]);
        lanes[j] += v * v;
    }
    double s = 0.0;
    for (double lane : lanes) s += lane;
    return s;
}

// Σ x_i² of a contiguous array, in float64: blocks of kBlock elements (in parallel), then the block sums in
// block order.
template <typename T>
double sum_of_squares(const T* x, std::int64_t n) {
    constexpr std::int64_t kBlock = detail::kParallelGrain;
    const std::int64_t blocks = (n + kBlock - 1) / kBlock;
    std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
    auto run = [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t b = first; b < last; ++b) {
            partial[b] = block_sum_of_squares(x + b * kBlock, std::min(n, (b + 1) * kBlock) - b * kBlock);
        }
    };
    if (blocks <= 1) {
        run(0, blocks);
    } else {
        const kernels::ParallelRegion region;
        tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, blocks, 1),
                          [&](const tbb::blocked_range<std::int64_t>& r) { run(r.begin(), r.end()); });
    }
    double total = 0.0;
    for (double s : partial) total += s;
    return total;
}
}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, bool error_if_nonfinite) {
    if (!(max_norm >= 0.0)) {
        throw ValueError("clip_grad_norm_: max_norm must be >= 0, got " + std::to_string(max_norm));
    }
    NoGradGuard no_grad;
    std::vector<Tensor> grads;
    for (const auto& p : params)
        if (p.defined() && p.grad().defined()) grads.push_back(p.grad());

    // BEGIN EXERCISE ch9.clip_grad_norm
    double sum_sq = 0.0;
    for (const auto& g : grads) {
        const Tensor c = g.contiguous();
        sum_sq += dispatch_floating(c.dtype(), [&](auto tag) {
            using T = decltype(tag);
            return sum_of_squares(c.data<T>(), c.numel());
        });
    }
    const double total = std::sqrt(sum_sq);

    if (error_if_nonfinite && !std::isfinite(total)) {
        throw ValueError("clip_grad_norm_: the total norm of the gradients is " + std::to_string(total) +
                         "; they cannot be clipped");
    }
    const double clip_coef = max_norm / (total + 1e-6);
    // Written as !(coef >= 1) so that a NaN coefficient scales too, as PyTorch's clamp(coef, max=1) does.
    if (!(clip_coef >= 1.0)) {
        for (auto& g : grads) g.mul_(clip_coef);
    }
    return total;
    // END EXERCISE
}

}  // namespace tg::optim
