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
// last), computed by the fused row kernels of kernels/softmax.h (one pass for the max, one for exp and the
// sum, one to normalise; log_softmax as (x - m) - log s so a large m does not swallow log s), and transposed
// back. The backward uses the fused row kernels too when the softmax dim is the last one.

#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/strided.h"
#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace tg {

namespace {

// The forward of both ops: rows along `dim`, computed by the fused row kernels (kernels/softmax.h) without
// recording anything (the caller records one node). Integer inputs are computed in float32.
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
        if (log) kernels::log_softmax_forward(rows.data<T>(), y.data<T>(), count, n, n, n);
        else kernels::softmax_forward(rows.data<T>(), y.data<T>(), count, n, n, n);
    });
    return dim_is_last ? y : y.transpose(d, -1).contiguous();
}

// The fused backward row kernel when the softmax dim is the last one of contiguous y and dy; nullopt-like
// undefined Tensor otherwise (the caller then uses the composed formula).
Tensor fused_backward(const Tensor& y, const Tensor& dy, std::int64_t d, bool log) {
    if (d != y.dim() - 1 || !y.is_contiguous() || y.numel() == 0 || dy.shape() != y.shape() || dy.dtype() != y.dtype()) {
        return Tensor();
    }
    const Tensor g = dy.contiguous();
    Tensor dx = empty(y.shape(), y.dtype());
    const std::int64_t n = y.size(-1), count = y.numel() / n;
    dispatch_floating(y.dtype(), [&](auto tag) {
        using T = decltype(tag);
        if (log) kernels::log_softmax_backward(y.data<T>(), g.data<T>(), dx.data<T>(), count, n, n, n, n);
        else kernels::softmax_backward(y.data<T>(), g.data<T>(), dx.data<T>(), count, n, n, n, n);
    });
    return dx;
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
        if (Tensor dx = fused_backward(y, dout, d, /*log=*/false); dx.defined()) return autograd::Grads{dx};
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
        const Tensor y = ys.get();
        if (Tensor dx = fused_backward(y, dout, d, /*log=*/true); dx.defined()) return autograd::Grads{dx};
        return autograd::Grads{dout - exp(y) * sum(dout, {d}, /*keepdim=*/true)};
    });
    return out;
}

}  // namespace tg
