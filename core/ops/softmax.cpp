// softmax and log_softmax over any dim, each with its hand-written backward rule right below.
//
//   softmax(x)_i     = exp(x_i - m) / sum_j exp(x_j - m)             m = max_j x_j
//   log_softmax(x)_i = x_i - m - log sum_j exp(x_j - m)
//
// Subtracting the row max m changes nothing mathematically (it cancels between numerator and denominator)
// but keeps every exp argument <= 0, so nothing overflows and the largest term is exactly exp(0) = 1, so the
// denominator is >= 1 and never underflows to 0.
//
// -inf entries (masked positions, e.g. causal attention) get probability exp(-inf) = 0. A row that is -inf
// everywhere (a fully masked row) has m = -inf and x - m = -inf - (-inf) = NaN; we do not compute that:
// such a row is defined to give softmax = 0 everywhere (log_softmax = -inf, its log), and its gradient is
// then 0 for softmax and dy for log_softmax (the formulas below with y = 0). PyTorch returns NaN there;
// zeros let a fully masked query contribute nothing instead of poisoning the whole batch with NaN.
// A NaN or +inf in a row gives NaN for the whole row (as in PyTorch).
//
// Layout: the rows are made contiguous along `dim` (transpose `dim` last + contiguous when it is not already
// last), computed one row at a time, and transposed back. The row loop below is deliberately plain;
// kernels/softmax.h (tg::kernels::softmax_forward / softmax_backward, fused row kernels) will replace it.

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/ops.h"
#include "core/strided.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace tg {

namespace {

// The max of a row, NaN if the row holds a NaN. n >= 1.
template <typename T>
T row_max(const T* x, std::int64_t n) {
    using V = xsimd::batch<T>;
    constexpr std::int64_t W = V::size;
    T m = -std::numeric_limits<T>::infinity();
    std::int64_t i = 0;
    if (n >= W) {
        V acc(m);
        for (; i + W <= n; i += W) {
            const V v = V::load_unaligned(x + i);
            acc = xsimd::select((v > acc) | xsimd::isnan(v), v, acc);  // max that keeps a NaN once seen
        }
        alignas(64) T lanes[W];
        acc.store_aligned(lanes);
        for (std::int64_t l = 0; l < W; ++l)
            if (lanes[l] > m || std::isnan(lanes[l])) m = lanes[l];
    }
    // (x > NaN is false, so once m is NaN only another NaN replaces it)
    for (; i < n; ++i)
        if (x[i] > m || std::isnan(x[i])) m = x[i];
    return m;
}

// y = softmax(x) (or log_softmax when `log`) of one contiguous row of n >= 1 elements.
template <typename T>
void softmax_row(const T* x, T* y, std::int64_t n, bool log) {
    using V = xsimd::batch<T>;
    constexpr std::int64_t W = V::size;
    const T m = row_max(x, n);
    if (m == -std::numeric_limits<T>::infinity()) {  // fully masked row: probability 0 everywhere
        std::fill(y, y + n, log ? -std::numeric_limits<T>::infinity() : T(0));
        return;
    }
    // s = sum_j exp(x_j - m); softmax keeps the exponentials in y for the final scaling.
    T s = 0;
    std::int64_t i = 0;
    {
        const V vm(m);
        V acc(T(0));
        for (; i + W <= n; i += W) {
            const V e = xsimd::exp(V::load_unaligned(x + i) - vm);
            if (!log) e.store_unaligned(y + i);
            acc += e;
        }
        s = xsimd::hadd(acc);
        for (; i < n; ++i) {
            const T e = std::exp(x[i] - m);
            if (!log) y[i] = e;
            s += e;
        }
    }
    if (log) {
        const T shift = m + std::log(s);  // log_softmax_i = x_i - (m + log s)
        const V vshift(shift);
        for (i = 0; i + W <= n; i += W) (V::load_unaligned(x + i) - vshift).store_unaligned(y + i);
        for (; i < n; ++i) y[i] = x[i] - shift;
    } else {
        const V vs(s);
        for (i = 0; i + W <= n; i += W) (V::load_unaligned(y + i) / vs).store_unaligned(y + i);
        for (; i < n; ++i) y[i] /= s;
    }
}

// The forward of both ops: rows along `dim`, computed without recording anything (the caller records one
// node). Integer inputs are computed in float32.
Tensor softmax_forward(const char* op, const Tensor& x, std::int64_t dim, bool log) {
    const std::int64_t d = normalize_dim(dim, x.dim(), op);
    NoGradGuard no_grad;
    const Tensor xf = is_floating(x.dtype()) ? x : x.to(kFloat32);
    const bool dim_is_last = x.dim() == 0 || d == x.dim() - 1;
    // (..., n): the softmax dim moved last and made contiguous, so each row is n adjacent elements.
    const Tensor rows = dim_is_last ? xf.contiguous() : xf.transpose(d, -1).contiguous();
    Tensor y = empty(rows.shape(), rows.dtype());
    const std::int64_t n = x.dim() == 0 ? 1 : rows.size(-1);
    if (rows.numel() == 0) return dim_is_last ? y : y.transpose(d, -1).contiguous();
    const std::int64_t count = rows.numel() / n;

    dispatch_floating(rows.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* src = rows.data<T>();
        T* dst = y.data<T>();
        auto run = [&](std::int64_t first, std::int64_t last) {
            for (std::int64_t r = first; r < last; ++r) softmax_row(src + r * n, dst + r * n, n, log);
        };
        // Each row is computed by one thread, so the result is the same at any thread count.
        if (count * n < detail::kParallelGrain) {
            run(0, count);
        } else {
            const std::int64_t rows_per_task = std::max<std::int64_t>(1, detail::kParallelGrain / 2 / n);
            tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, count, rows_per_task),
                              [&](const tbb::blocked_range<std::int64_t>& r) { run(r.begin(), r.end()); });
        }
    });
    return dim_is_last ? y : y.transpose(d, -1).contiguous();
}

}  // namespace

// ================================================================================================================
// softmax
// ================================================================================================================

Tensor softmax(const Tensor& x, std::int64_t dim) {
    Tensor out = softmax_forward("softmax", x, dim, /*log=*/false);
    const std::int64_t d = normalize_dim(dim, x.dim(), "softmax");
    // With y = softmax(x): dy_i/dx_j = y_i (delta_ij - y_j), so
    //   dx_j = sum_i dy_i y_i (delta_ij - y_j) = y_j (dy_j - sum_i dy_i y_i).
    autograd::record("softmax", out, {x}, [ys = autograd::SavedTensor(out), d](const Tensor& dout) {
        const Tensor y = ys.get();
        return autograd::Grads{y * (dout - sum(dout * y, {d}, /*keepdim=*/true))};
    });
    return out;
}

// ================================================================================================================
// log_softmax
// ================================================================================================================

Tensor log_softmax(const Tensor& x, std::int64_t dim) {
    Tensor out = softmax_forward("log_softmax", x, dim, /*log=*/true);
    const std::int64_t d = normalize_dim(dim, x.dim(), "log_softmax");
    // With y = log_softmax(x): dy_i/dx_j = delta_ij - softmax(x)_j, so
    //   dx_j = dy_j - softmax(x)_j sum_i dy_i,   softmax(x) = exp(y).
    autograd::record("log_softmax", out, {x}, [ys = autograd::SavedTensor(out), d](const Tensor& dout) {
        return autograd::Grads{dout - exp(ys.get()) * sum(dout, {d}, /*keepdim=*/true)};
    });
    return out;
}

}  // namespace tg
