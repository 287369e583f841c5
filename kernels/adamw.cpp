// AdamW: one streaming pass (4 arrays read, 3 written); pure bandwidth, so the SIMD body just mirrors the
// scalar one operation for operation.

#include "kernels/adamw.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/vecmath.h"

namespace tg::kernels {
namespace {

// The per-step scalars, computed in double like torch's Python floats, then rounded once to T.
template <class T>
struct AdamWScalars {
    T decay;           // 1 − lr·wd
    T one_minus_b1;    // lerp weight 1 − β1
    T b2;              // β2
    T one_minus_b2;    // 1 − β2
    T bc2_sqrt;        // sqrt(1 − β2^t)
    T eps;
    T neg_step_size;   // −lr / (1 − β1^t)
};

template <class T>
AdamWScalars<T> adamw_scalars(const AdamWHyper& h, std::int64_t step) {
    if (step < 1) throw std::invalid_argument("adamw_step: step must be >= 1, got " + std::to_string(step));
    const double t = static_cast<double>(step);
    const double bias_correction1 = 1.0 - std::pow(h.beta1, t);
    const double bias_correction2 = 1.0 - std::pow(h.beta2, t);
    return {static_cast<T>(1.0 - h.lr * h.weight_decay), static_cast<T>(1.0 - h.beta1), static_cast<T>(h.beta2),
            static_cast<T>(1.0 - h.beta2),               static_cast<T>(std::sqrt(bias_correction2)),
            static_cast<T>(h.eps),                       static_cast<T>(-(h.lr / bias_correction1))};
}

// The update of elements [begin, end) of one tensor: SIMD batches from begin, then one by one. Callers start
// every range on a multiple of vec::kElementBlock (so of the SIMD width), so an element is computed by the same
// instructions however the ranges are grouped.
template <class T>
void adamw_range(T* p, const T* g, T* m, T* v, std::int64_t begin, std::int64_t end, const AdamWScalars<T>& s) {
    using B = vec::batch<T>;
    constexpr std::int64_t W = vec::width<T>;
    const B decay(s.decay), w1(s.one_minus_b1), b2(s.b2), w2(s.one_minus_b2), bc2_sqrt(s.bc2_sqrt), eps(s.eps),
        neg_step(s.neg_step_size);
    std::int64_t i = begin;
    for (; i + W <= end; i += W) {
        const B gi = B::load_unaligned(g + i);
        const B pi = B::load_unaligned(p + i) * decay;
        const B mi = xsimd::fma(w1, gi - B::load_unaligned(m + i), B::load_unaligned(m + i));
        const B vi = B::load_unaligned(v + i) * b2 + w2 * gi * gi;
        const B denom = xsimd::sqrt(vi) / bc2_sqrt + eps;
        (pi + neg_step * mi / denom).store_unaligned(p + i);
        mi.store_unaligned(m + i);
        vi.store_unaligned(v + i);
    }
    for (; i < end; ++i) {
        const T pi = p[i] * s.decay;
        const T mi = std::fma(s.one_minus_b1, g[i] - m[i], m[i]);
        const T vi = v[i] * s.b2 + s.one_minus_b2 * g[i] * g[i];
        const T denom = std::sqrt(vi) / s.bc2_sqrt + s.eps;
        p[i] = pi + s.neg_step_size * mi / denom;
        m[i] = mi;
        v[i] = vi;
    }
}

}  // namespace

template <class T>
void adamw_step(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamWHyper& hyper, std::int64_t step) {
    const AdamWTensor<T> one{p, g, m, v, n, step};
    adamw_step_many(&one, 1, hyper);
}

// Tensor t's elements are cut into blocks of vec::kElementBlock; the blocks of all tensors are numbered one
// after the other (tensor t's first block is first_block[t]) and shared by the threads like the blocks of one
// long array.
template <class T>
void adamw_step_many(const AdamWTensor<T>* tensors, std::int64_t count, const AdamWHyper& hyper) {
    constexpr std::int64_t kBlock = vec::kElementBlock;
    if (count < 0) throw std::invalid_argument("adamw_step_many: negative tensor count " + std::to_string(count));
    std::vector<AdamWScalars<T>> scalars;
    std::vector<std::int64_t> first_block(static_cast<std::size_t>(count) + 1, 0);
    scalars.reserve(static_cast<std::size_t>(count));
    for (std::int64_t t = 0; t < count; ++t) {
        scalars.push_back(adamw_scalars<T>(hyper, tensors[t].step));  // checks the step first
        first_block[t + 1] = first_block[t] + (std::max<std::int64_t>(tensors[t].n, 0) + kBlock - 1) / kBlock;
    }
    vec::parallel_rows(first_block[count], kBlock, [&](std::int64_t b0, std::int64_t b1) {
        // The tensor holding block b0, then each tensor's part of [b0, b1) in turn.
        std::int64_t t = std::upper_bound(first_block.begin(), first_block.end(), b0) - first_block.begin() - 1;
        for (std::int64_t b = b0; b < b1; ++t) {
            if (b >= first_block[t + 1]) continue;  // an empty tensor: no blocks
            const AdamWTensor<T>& x = tensors[t];
            const std::int64_t last = std::min(b1, first_block[t + 1]);
            adamw_range(x.param, x.grad, x.m, x.v, (b - first_block[t]) * kBlock,
                        std::min(x.n, (last - first_block[t]) * kBlock), scalars[t]);
            b = last;
        }
    });
}

// The textbook form, one element at a time: decay, moments, bias-corrected estimates, update. The
// hyper-parameters and the factors derived from them (1 − β, 1 − β^t) are formed in double and rounded
// once, like the caller's numbers: rounding β2 = 0.999 to float first and then forming 1 − β2 in float
// would lose four digits.
template <class T>
void adamw_step_reference(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamWHyper& h, std::int64_t step) {
    if (step < 1) throw std::invalid_argument("adamw_step: step must be >= 1, got " + std::to_string(step));
    const double t = static_cast<double>(step);
    const T bias_correction1 = static_cast<T>(1.0 - std::pow(h.beta1, t));
    const T bias_correction2 = static_cast<T>(1.0 - std::pow(h.beta2, t));
    const T lr = static_cast<T>(h.lr), lr_wd = static_cast<T>(h.lr * h.weight_decay), eps = static_cast<T>(h.eps);
    const T b1 = static_cast<T>(h.beta1), one_minus_b1 = static_cast<T>(1.0 - h.beta1);
    const T b2 = static_cast<T>(h.beta2), one_minus_b2 = static_cast<T>(1.0 - h.beta2);
    // BEGIN EXERCISE ch9.adamw
    for (std::int64_t i = 0; i < n; ++i) {
        p[i] -= lr_wd * p[i];
        m[i] = b1 * m[i] + one_minus_b1 * g[i];
        v[i] = b2 * v[i] + one_minus_b2 * g[i] * g[i];
        const T m_hat = m[i] / bias_correction1;
        const T v_hat = v[i] / bias_correction2;
        p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
    // END EXERCISE
}

// ----- the float and double versions the header declares (explicit instantiations) ---------------------------

template void adamw_step(float*, const float*, float*, float*, std::int64_t, const AdamWHyper&, std::int64_t);
template void adamw_step(double*, const double*, double*, double*, std::int64_t, const AdamWHyper&, std::int64_t);
template void adamw_step_many(const AdamWTensor<float>*, std::int64_t, const AdamWHyper&);
template void adamw_step_many(const AdamWTensor<double>*, std::int64_t, const AdamWHyper&);
template void adamw_step_reference(float*, const float*, float*, float*, std::int64_t, const AdamWHyper&, std::int64_t);
template void adamw_step_reference(double*, const double*, double*, double*, std::int64_t, const AdamWHyper&,
                                   std::int64_t);

}  // namespace tg::kernels
