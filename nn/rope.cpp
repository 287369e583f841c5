// Rotary position embeddings: the fused node (forward and backward side by side), then the composed reference.

#include "nn/rope.h"

#include "core/node.h"
#include "core/ops.h"
#include "kernels/parallel_region.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <cmath>
#include <string>
#include <vector>

namespace tg::nn {

namespace {

void check_rope_args(const char* op, const Tensor& x, std::int64_t start, double base) {
    if (!x.defined() || x.dim() != 4 || x.size(3) % 2 != 0) {
        throw ShapeError(std::string(op) + ": expected x [B, H, T, D] with an even head width D, got " +
                         (x.defined() ? to_string(x.shape()) : std::string("an undefined tensor")));
    }
    if (!is_floating(x.dtype())) throw DTypeError(std::string(op) + ": x must be floating, got " + x.describe());
    if (start < 0) throw ValueError(std::string(op) + ": start position must be >= 0, got " + std::to_string(start));
    if (!(base > 1.0) || !std::isfinite(base)) {
        throw ValueError(std::string(op) + ": base must be a finite number > 1, got " + std::to_string(base));
    }
}

// cos(pos·θᵢ) and sin(pos·θᵢ) for pos = start .. start+T−1 and i < D/2, row-major (T, D/2), in double.
struct Angles {
    std::vector<double> cos, sin;
};
Angles rope_angles(std::int64_t T, std::int64_t D, std::int64_t start, double base) {
    const std::int64_t half = D / 2;
    Angles a;
    a.cos.resize(static_cast<std::size_t>(T * half));
    a.sin.resize(a.cos.size());
    for (std::int64_t i = 0; i < half; ++i) {
        const double theta = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(D));  // θᵢ
        for (std::int64_t t = 0; t < T; ++t) {
            const double angle = static_cast<double>(start + t) * theta;
            a.cos[static_cast<std::size_t>(t * half + i)] = std::cos(angle);
            a.sin[static_cast<std::size_t>(t * half + i)] = std::sin(angle);
        }
    }
    return a;
}

// out = R(sign·pos)·x for every row of x [B, H, T, D] (strides of x given, last dim contiguous); out is
// contiguous. sign = +1 is the forward rotation, −1 its inverse (the backward).
template <typename T>
void rotate(const Tensor& x, Tensor& out, const Angles& a, double sign) {
    const std::int64_t B = x.size(0), H = x.size(1), L = x.size(2), D = x.size(3), half = D / 2;
    const std::int64_t sb = x.stride(0), sh = x.stride(1), st = x.stride(2);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const kernels::ParallelRegion region;
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, B * H), [&](const tbb::blocked_range<std::int64_t>& r) {
        for (std::int64_t bh = r.begin(); bh < r.end(); ++bh) {
            const std::int64_t b = bh / H, h = bh % H;
            for (std::int64_t t = 0; t < L; ++t) {
                const T* x1 = px + b * sb + h * sh + t * st;  // first half of the head vector
                const T* x2 = x1 + half;                      // second half
                T* y1 = po + (bh * L + t) * D;
                T* y2 = y1 + half;
                const double* c = a.cos.data() + t * half;
                const double* s = a.sin.data() + t * half;
                for (std::int64_t i = 0; i < half; ++i) {
                    const T ci = static_cast<T>(c[i]), si = static_cast<T>(sign * s[i]);
                    const T u = x1[i], v = x2[i];
                    y1[i] = u * ci - v * si;  // y₁ = x₁ cos − x₂ sin
                    y2[i] = v * ci + u * si;  // y₂ = x₂ cos + x₁ sin
                }
            }
        }
    });
}

Tensor last_dim_contiguous(const Tensor& x) { return x.size(-1) > 1 && x.stride(-1) != 1 ? x.contiguous() : x; }

}  // namespace

Tensor rope(const Tensor& x_in, std::int64_t start, double base) {
    check_rope_args("rope", x_in, start, base);
    const Tensor x = last_dim_contiguous(x_in);  // a differentiable copy, recorded before our node, if needed
    const std::int64_t T = x.size(2), D = x.size(3);
    Tensor out = empty(x.shape(), x.dtype());
    if (out.numel() == 0) return out;
    const Angles angles = rope_angles(T, D, start, base);
    dispatch_floating(x.dtype(), [&](auto tag) { rotate<decltype(tag)>(x, out, angles, +1.0); });

    // y = R(pos)·x is linear with an orthogonal R, so dx = R(pos)ᵀ·dy = R(−pos)·dy: the same loop with −sin.
    autograd::record("rope", out, {x}, [start, base, T, D](const Tensor& dout) {
        const Tensor dy = last_dim_contiguous(dout);
        Tensor dx = empty(dy.shape(), dy.dtype());
        const Angles a = rope_angles(T, D, start, base);
        dispatch_floating(dy.dtype(), [&](auto tag) { rotate<decltype(tag)>(dy, dx, a, -1.0); });
        return autograd::Grads{dx};
    });
    return out;
}

Tensor rope_reference(const Tensor& x, std::int64_t start, double base) {
    check_rope_args("rope_reference", x, start, base);
    const std::int64_t T = x.size(2), D = x.size(3), half = D / 2;
    // Angle table pos·θᵢ as a (T, D/2) tensor, broadcast over B and H.
    const Tensor pos = arange(static_cast<double>(start), static_cast<double>(start + T), 1.0, kFloat64)
                           .view({T, 1});                                                        // (T, 1)
    const Tensor theta = exp(arange(0.0, static_cast<double>(half), 1.0, kFloat64) *
                             (-2.0 * std::log(base) / static_cast<double>(D)))
                             .view({1, half});                                                   // (1, D/2)
    const Tensor angle = (pos * theta).to(x.dtype());                                            // (T, D/2)
    const Tensor c = cos(angle), s = sin(angle);
    const Tensor x1 = x.narrow(3, 0, half), x2 = x.narrow(3, half, half);                        // (B, H, T, D/2)
    return cat({x1 * c - x2 * s, x2 * c + x1 * s}, 3);                                           // (B, H, T, D)
}

}  // namespace tg::nn
