// Masks: tril, triu and masked_fill, each with its backward rule right below.
//
// All three keep some elements and overwrite the rest with a constant, so each backward is the same mask
// applied to the gradient: a kept element passes its gradient through, an overwritten one gets zero.

#include "core/node.h"
#include "core/ops.h"
#include "core/strided.h"
#include "kernels/parallel_region.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>

namespace tg {

namespace {

// ---- tril / triu ----------------------------------------------------------------------------------------------
// Over the last two dims (R, C) of x, for every batch entry: element (i, j) is kept when
//   j - i <= k   (lower: on and below the k-th diagonal)   or   j - i >= k   (upper),
// and set to zero otherwise.
Tensor triangle(const Tensor& x, std::int64_t k, bool lower, const char* op) {
    if (x.dim() < 2) {
        throw ShapeError(std::string(op) + ": expected a tensor with at least 2 dimensions, got " + x.describe());
    }
    const std::int64_t rows = x.size(-2), cols = x.size(-1);
    const Tensor xc = x.contiguous();
    Tensor out = empty(x.shape(), x.dtype());
    if (out.numel() == 0) return out;
    const std::int64_t matrix_rows = out.numel() / cols;  // batch · R rows of length C
    dispatch(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* px = xc.data<T>();
        T* po = out.data<T>();
        auto run = [&](std::int64_t first, std::int64_t last) {
            for (std::int64_t r = first; r < last; ++r) {
                const std::int64_t i = r % rows;  // row within its matrix
                for (std::int64_t j = 0; j < cols; ++j) {
                    const bool keep = lower ? j - i <= k : j - i >= k;
                    po[r * cols + j] = keep ? px[r * cols + j] : T(0);
                }
            }
        };
        if (out.numel() < detail::kParallelGrain) {
            run(0, matrix_rows);
        } else {
            const std::int64_t grain = std::max<std::int64_t>(1, detail::kParallelGrain / cols);
            const kernels::ParallelRegion region;
            tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, matrix_rows, grain),
                              [&](const tbb::blocked_range<std::int64_t>& r) { run(r.begin(), r.end()); });
        }
    });
    return out;
}

}  // namespace

// Backward: d tril(x, k) / dx keeps the same triangle, so dx = tril(dout, k).
Tensor tril(const Tensor& x, std::int64_t diagonal) {
    Tensor out = triangle(x, diagonal, /*lower=*/true, "tril");
    autograd::record("tril", out, {x}, [diagonal](const Tensor& dout) {
        return autograd::Grads{tril(dout, diagonal)};
    });
    return out;
}

// Backward: dx = triu(dout, k).
Tensor triu(const Tensor& x, std::int64_t diagonal) {
    Tensor out = triangle(x, diagonal, /*lower=*/false, "triu");
    autograd::record("triu", out, {x}, [diagonal](const Tensor& dout) {
        return autograd::Grads{triu(dout, diagonal)};
    });
    return out;
}

// ---- masked_fill ----------------------------------------------------------------------------------------------
// out = mask != 0 ? value : x, with the mask (any dtype) broadcast to x's shape; the result keeps x's shape and
// dtype. Backward: the filled elements are constants, so dx = masked_fill(dout, mask, 0).
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
    if (!x.defined() || !mask.defined()) throw ValueError("masked_fill: an operand is an undefined tensor");
    bool broadcastable = mask.dim() <= x.dim();
    for (std::int64_t i = 1; broadcastable && i <= mask.dim(); ++i)
        broadcastable = mask.size(-i) == 1 || mask.size(-i) == x.size(-i);
    if (!broadcastable) {
        throw ShapeError("masked_fill: the mask " + to_string(mask.shape()) +
                         " cannot be broadcast to the input's shape " + to_string(x.shape()));
    }
    if (!is_floating(x.dtype())) {
        // Converting NaN, infinity or an out-of-range double to an integer is undefined behaviour.
        const bool fits = x.dtype() == kInt32
                              ? std::isfinite(value) && value >= std::numeric_limits<std::int32_t>::min() &&
                                    value <= std::numeric_limits<std::int32_t>::max()
                              : std::isfinite(value) && value >= -9.2233720368547758e18 && value < 9.2233720368547758e18;
        if (!fits) {
            throw ValueError("masked_fill: the value " + std::to_string(value) + " does not fit the input " +
                             x.describe());
        }
    }

    Tensor out = empty(x.shape(), x.dtype());
    const std::array<Strides, 3> strides{out.strides(), x.strides(),
                                         detail::broadcast_strides(mask.shape(), mask.strides(), x.shape())};
    dispatch(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T fill = static_cast<T>(value);
        T* po = out.data<T>();
        const T* px = x.data<T>();
        dispatch(mask.dtype(), [&](auto mask_tag) {
            using M = decltype(mask_tag);
            const M* pm = mask.data<M>();
            detail::for_each_row<3>(x.shape(), strides,
                                    [&](const std::array<std::int64_t, 3>& off, const std::array<std::int64_t, 3>& s,
                                        std::int64_t n) {
                                        T* o = po + off[0];
                                        const T* xi = px + off[1];
                                        const M* mi = pm + off[2];
                                        for (std::int64_t i = 0; i < n; ++i)
                                            o[i * s[0]] = mi[i * s[2]] != M(0) ? fill : xi[i * s[1]];
                                    });
        });
    });
    autograd::record("masked_fill", out, {x}, [mask_saved = autograd::SavedTensor(mask)](const Tensor& dout) {
        return autograd::Grads{masked_fill(dout, mask_saved.get(), 0.0)};
    });
    return out;
}

}  // namespace tg
