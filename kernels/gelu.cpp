// GELU, elementwise. Each formula is written once as a generic function object that the SIMD main loop
// calls with xsimd batches and the scalar tail calls with plain numbers, so the two cannot drift apart; only the
// transcendental functions differ (vec::erf / vec::exp on batches, std:: on scalars).

#include "kernels/gelu.h"

#include <algorithm>
#include <cmath>

#include "kernels/vecmath.h"  // first: it wraps the SIMD headers in a warning fix (see there)
#include "kernels/elementwise.h"

namespace tg::kernels {
namespace {

// Constants in double; each formula converts them to T once.
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // √(2/π)
constexpr double kCubic = 0.044715;
constexpr double kInvSqrt2 = 0.70710678118654752440;     // 1/√2
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1/√(2π)

// The same names for batches and scalars, so one formula serves both loops.
template <class T>
vec::batch<T> erf_any(const vec::batch<T>& x) { return vec::erf<T>(x); }
inline float erf_any(float x) { return std::erf(x); }
inline double erf_any(double x) { return std::erf(x); }
template <class T>
vec::batch<T> exp_any(const vec::batch<T>& x) { return vec::exp<T>(x); }
inline float exp_any(float x) { return std::exp(x); }
inline double exp_any(double x) { return std::exp(x); }
template <class T>
vec::batch<T> min_any(const vec::batch<T>& a, T b) { return xsimd::min(a, vec::batch<T>(b)); }
inline float min_any(float a, float b) { return std::min(a, b); }
inline double min_any(double a, double b) { return std::min(a, b); }
template <class T>
vec::batch<T> exp2_any(const vec::batch<T>& x) { return vec::exp2<T>(x); }
inline float exp2_any(float x) { return std::exp2(x); }
inline double exp2_any(double x) { return std::exp2(x); }
template <class T>
vec::batch<T> fma_any(const vec::batch<T>& a, const vec::batch<T>& b, const vec::batch<T>& c) {
    return xsimd::fma(a, b, c);
}
inline float fma_any(float a, float b, float c) { return std::fma(a, b, c); }
inline double fma_any(double a, double b, double c) { return std::fma(a, b, c); }

// out[i] = f(a[i]) and out[i] = f(a[i], b[i]) over contiguous arrays: the SIMD-plus-tail row loops of
// kernels/elementwise.h, run over fixed element blocks in parallel.
template <class T, class F>
void map_unary(const T* a, T* out, std::int64_t n, const F& f) {
    vec::parallel_elements(n, [&](std::int64_t begin, std::int64_t end) {
        map1_row(a + begin, 1, out + begin, 1, end - begin, f);
    });
}

template <class T, class F>
void map_binary(const T* a, const T* b, T* out, std::int64_t n, const F& f) {
    vec::parallel_elements(n, [&](std::int64_t begin, std::int64_t end) {
        map2_row(a + begin, 1, b + begin, 1, out + begin, 1, end - begin, f);
    });
}

// The tanh form through the logistic function: since tanh(u) = (1 − e^(−2u)) / (1 + e^(−2u)),
//   ½ (1 + tanh(u)) = 1 / (1 + e^(−2u)) =: s(u).
// One exponential and one division instead of a tanh, and no cancellation in 1 + tanh(u) for x ≪ 0 (where
// tanh → −1); the result equals the textbook ½x(1 + tanh u) up to rounding.
// The exponential is taken in base 2 with the constants folded into the cubic:
//   e^(−2u) = 2^t,   t = −2u·log2(e) = x·(a + b·x²),   a = −2√(2/π)·log2(e),   b = 0.044715·a,
// so t costs one multiplication, one multiply-add and one multiplication, and vec::exp2 needs no Cody–Waite
// reduction (it is about half the vector operations of vec::exp). t is capped at kExp2Cap (2^126 or 2^1000):
// e stays finite, so that e·s² in the backward pass never meets inf·0; where the cap applies s < 1e-37, and
// gelu(x) = x·s and its derivative are that small too.
constexpr double kExp2A = -2 * kSqrt2OverPi * 1.44269504088896340736;  // −2√(2/π)·log2(e)
constexpr double kExp2B = kCubic * kExp2A;
template <class T>
constexpr T kExp2Cap = sizeof(T) == 4 ? T(126) : T(1000);

template <class V, class T>
V gelu_tanh_exponent(V x, V x2) {  // t = x·(a + b·x²) = −2u·log2(e)
    return x * fma_any(V(T(kExp2B)), x2, V(T(kExp2A)));
}

// y = x · s(u) = x / (1 + 2^t)
template <class T>
struct GeluTanh {
    template <class V>
    V operator()(V x) const {
        const V e = exp2_any(min_any(gelu_tanh_exponent<V, T>(x, x * x), kExp2Cap<T>));
        return x / (T(1) + e);
    }
};

// dy/dx = ½(1 + t) + ½x(1 − t²)·u′(x)  with t = tanh(u), u′ = √(2/π)(1 + 3·0.044715 x²);
// in terms of s = ½(1 + t):  ½(1 − t²) = 2s(1 − s) = 2e·s²,  so  dy/dx = s + x·(2u′)·e·s²,
// with 2u′ = c + d·x²,  c = 2√(2/π),  d = 6·0.044715·√(2/π).
template <class T>
struct GeluTanhBackward {
    template <class V>
    V operator()(V x, V dy) const {
        const V x2 = x * x;
        const V e = exp2_any(min_any(gelu_tanh_exponent<V, T>(x, x2), kExp2Cap<T>));
        const V s = T(1) / (T(1) + e);
        const V two_du_dx = fma_any(V(T(6 * kCubic * kSqrt2OverPi)), x2, V(T(2 * kSqrt2OverPi)));
        // e·s² is taken as (e·s)·s: e·s = e/(1 + e) ≤ 1, so no partial product overflows. (x·2u′·e first
        // overflows to ∞ for x below about −9.7 in float32 while s² has already underflowed to 0: ∞·0 = NaN.)
        const V e_s = e * s;
        return dy * fma_any(x * two_du_dx * e_s, s, s);
    }
};

// y = ½ x (1 + erf(x/√2))
template <class T>
struct GeluErf {
    template <class V>
    V operator()(V x) const {
        return T(0.5) * x * (T(1) + erf_any(x * T(kInvSqrt2)));
    }
};

// dx = dy · (Φ(x) + x φ(x))
template <class T>
struct GeluErfBackward {
    template <class V>
    V operator()(V x, V dy) const {
        const V cdf = T(0.5) * (T(1) + erf_any(x * T(kInvSqrt2)));
        const V pdf = T(kInvSqrt2Pi) * exp_any(T(-0.5) * x * x);
        return dy * (cdf + x * pdf);
    }
};

}  // namespace

// ----- the fast kernels: one SIMD map each ----------------------------------------------------------------------

template <class T>
void gelu_tanh_forward(const T* x, T* y, std::int64_t n) {
    map_unary<T>(x, y, n, GeluTanh<T>{});
}
template <class T>
void gelu_tanh_backward(const T* x, const T* dy, T* dx, std::int64_t n) {
    map_binary<T>(x, dy, dx, n, GeluTanhBackward<T>{});
}
template <class T>
void gelu_erf_forward(const T* x, T* y, std::int64_t n) {
    map_unary<T>(x, y, n, GeluErf<T>{});
}
template <class T>
void gelu_erf_backward(const T* x, const T* dy, T* dx, std::int64_t n) {
    map_binary<T>(x, dy, dx, n, GeluErfBackward<T>{});
}

// ----- references: the textbook formulas, one element at a time --------------------------------------------

template <class T>
void gelu_tanh_forward_reference(const T* x, T* y, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
        const T u = T(kSqrt2OverPi) * (x[i] + T(kCubic) * x[i] * x[i] * x[i]);
        y[i] = T(0.5) * x[i] * (T(1) + std::tanh(u));
    }
}

template <class T>
void gelu_tanh_backward_reference(const T* x, const T* dy, T* dx, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
        const T t = std::tanh(T(kSqrt2OverPi) * (x[i] + T(kCubic) * x[i] * x[i] * x[i]));
        const T du_dx = T(kSqrt2OverPi) * (T(1) + T(3 * kCubic) * x[i] * x[i]);
        dx[i] = dy[i] * (T(0.5) * (T(1) + t) + T(0.5) * x[i] * (T(1) - t * t) * du_dx);
    }
}

template <class T>
void gelu_erf_forward_reference(const T* x, T* y, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = T(0.5) * x[i] * (T(1) + std::erf(x[i] * T(kInvSqrt2)));
}

template <class T>
void gelu_erf_backward_reference(const T* x, const T* dy, T* dx, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
        const T cdf = T(0.5) * (T(1) + std::erf(x[i] * T(kInvSqrt2)));
        const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x[i] * x[i]);
        dx[i] = dy[i] * (cdf + x[i] * pdf);
    }
}

// ----- the float and double versions the header declares (explicit instantiations) ---------------------------

template void gelu_tanh_forward(const float*, float*, std::int64_t);
template void gelu_tanh_forward(const double*, double*, std::int64_t);
template void gelu_tanh_backward(const float*, const float*, float*, std::int64_t);
template void gelu_tanh_backward(const double*, const double*, double*, std::int64_t);
template void gelu_erf_forward(const float*, float*, std::int64_t);
template void gelu_erf_forward(const double*, double*, std::int64_t);
template void gelu_erf_backward(const float*, const float*, float*, std::int64_t);
template void gelu_erf_backward(const double*, const double*, double*, std::int64_t);
template void gelu_tanh_forward_reference(const float*, float*, std::int64_t);
template void gelu_tanh_forward_reference(const double*, double*, std::int64_t);
template void gelu_tanh_backward_reference(const float*, const float*, float*, std::int64_t);
template void gelu_tanh_backward_reference(const double*, const double*, double*, std::int64_t);
template void gelu_erf_forward_reference(const float*, float*, std::int64_t);
template void gelu_erf_forward_reference(const double*, double*, std::int64_t);
template void gelu_erf_backward_reference(const float*, const float*, float*, std::int64_t);
template void gelu_erf_backward_reference(const double*, const double*, double*, std::int64_t);

}  // namespace tg::kernels
