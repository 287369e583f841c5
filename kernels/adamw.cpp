// AdamW: one streaming pass (4 arrays read, 3 written); pure bandwidth, so the SIMD body just mirrors the
// scalar one operation for operation.

#include "kernels/adamw.h"

#include <cmath>
#include <stdexcept>
#include <string>

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

}  // namespace

template <class T>
void adamw_step(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamWHyper& hyper, std::int64_t step) {
    using B = vec::batch<T>;
    constexpr std::int64_t W = vec::width<T>;
    const AdamWScalars<T> s = adamw_scalars<T>(hyper, step);
    vec::parallel_elements(n, [&](std::int64_t begin, std::int64_t end) {
        const B decay(s.decay), w1(s.one_minus_b1), b2(s.b2), w2(s.one_minus_b2), bc2_sqrt(s.bc2_sqrt),
            eps(s.eps), neg_step(s.neg_step_size);
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
template void adamw_step_reference(float*, const float*, float*, float*, std::int64_t, const AdamWHyper&, std::int64_t);
template void adamw_step_reference(double*, const double*, double*, double*, std::int64_t, const AdamWHyper&,
                                   std::int64_t);

}  // namespace tg::kernels
