#pragma once
// Internal to kernels/ (never installed): vectorised exp, tanh and erf for xsimd batches, the row
// reductions the fused NN kernels share, and the one driver that decides between a serial loop and a
// tbb::parallel_for. Public kernel headers must not include this file, because it pulls in xsimd and oneTBB.
//
// Accuracy (maximum relative error against std::exp / std::tanh / std::erf evaluated in long double,
// measured by tests/test_kernels_nn.cpp over a dense grid of the stated range):
//
//   function   float32 range    max rel. error      float64 range    max rel. error
//   vec::exp   [-86.9, 88.7]    7.7e-8  (0.65 ulp)  [-708, 709.7]    1.4e-16 (0.6 ulp)
//   vec::tanh  [-10, 10]        1.4e-7  (1.2 ulp)   [-20, 20]        2.4e-16 (1.1 ulp)
//   vec::erf   [-6, 6]          1.7e-7  (1.4 ulp)   [-6, 6]          7.6e-15 (34 ulp)
//
// These are for builds with fused multiply-add (AVX-512, AVX2+FMA); the portable SSE2 build, where each
// Horner step rounds twice, measures exp at 9.4e-8 / 1.8e-16. (1 ulp here means machine epsilon: 1.19e-7
// for float32, 2.22e-16 for float64.) Below those ranges exp returns exactly 0 (results under 2^-125 /
// 2^-1021 are flushed to zero, see exp below), above them +inf; exp(-inf) = 0, exp(+inf) = +inf,
// exp(NaN) = NaN; tanh(±inf) = ±1. vec::tanh serves elementwise tanh; GELU uses the equivalent logistic
// form (see gelu.cpp).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

// GCC 12 reports false -Wmaybe-uninitialized / -Wuninitialized warnings inside its own AVX-512 intrinsics
// headers whenever they are inlined (GCC bug 105593, fixed in GCC 13). They are attributed to lines of
// <immintrin.h>, so they are silenced for exactly those headers by wrapping the includes that pull them in.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <xsimd/xsimd.hpp>
#include "kernels/parallel_region.h"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace tg::kernels::vec {

// One SIMD register of T for the instruction set the library is compiled for (AVX-512: 16 floats or
// 8 doubles; AVX2: 8 or 4; SSE2: 4 or 2).
template <class T>
using batch = xsimd::batch<T>;

template <class T>
inline constexpr std::int64_t width = static_cast<std::int64_t>(batch<T>::size);

// ---------------------------------------------------------------------------------------------------------
// exp(x)
//
// Range reduction (Cody & Waite, "Software Manual for the Elementary Functions", 1980):
//     exp(x) = 2^n · exp(r),   n = round(x / ln 2),   r = x − n·ln 2  ∈ [−ln2/2, ln2/2].
// ln 2 is split as C1 + C2 where C1 has few significant bits, so n·C1 is exact and r keeps full precision
// (the constants are those of Moshier's Cephes library).
//
// exp(r) is then its Taylor series  Σ_{k=0}^{d} r^k / k!  evaluated by Horner's rule. With |r| ≤ 0.347 the
// truncation error |r|^(d+1)/(d+1)! is 5.2e-9 for float (d = 7) and 4.2e-18 for double (d = 13): below
// half an ulp, so the result is limited by rounding alone.
//
// 2^n is written straight into the exponent bits: adding the "magic" number 2^23 + b (float; 2^52 + b for
// double) to the small whole number n leaves n + b in the low mantissa bits, and a left shift by the
// mantissa width moves them into the exponent field. We build 2^(n−1) (b = bias − 1) and multiply by 2p, so
// that n = 128 (x just below the float overflow threshold 88.72) still has a finite scale factor.
//
// Limits. x is first clamped to [lowest, highest]. At `highest` the result is +inf, as it should be.
// `lowest` is chosen so that n − 1 + bias = 0 there: the scale factor's bits are all zero, i.e. +0.0, and
// every x below about −86.99 (float) / −708.05 (double) gives exactly 0. This flushes the results std::exp
// would give below 2^−125 ≈ 2.4e−38 (float) / 2^−1021 ≈ 4.5e−308 (double) to zero: the smallest normal
// numbers and the subnormals, which no kernel here can tell from 0 (a softmax weight of 1e-38). In exchange
// the function needs no selects. exp(−inf) = 0, exp(+inf) = +inf, and NaN stays NaN: x86's max/min return
// their second operand when either is NaN, and x is passed second (the vecmath test checks it).
// ---------------------------------------------------------------------------------------------------------
template <class T>
struct exp_constants;

template <>
struct exp_constants<float> {
    using bits_type = std::int32_t;
    static constexpr int mantissa_bits = 23;
    static constexpr float magic = 8388608.0f + 126.0f;  // 2^23 + exponent bias − 1
    static constexpr float lowest = -87.3f;              // round(lowest / ln 2) = −126: scale bits 0
    static constexpr float highest = 88.8f;              // round(highest / ln 2) = 128: overflows to +inf
    static constexpr float ln2_c1 = 0.693359375f;
    static constexpr float ln2_c2 = -2.12194440e-4f;
    static constexpr int degree = 7;
};

template <>
struct exp_constants<double> {
    using bits_type = std::int64_t;
    static constexpr int mantissa_bits = 52;
    static constexpr double magic = 4503599627370496.0 + 1022.0;  // 2^52 + exponent bias − 1
    static constexpr double lowest = -708.4;                      // round(lowest / ln 2) = −1022: scale bits 0
    static constexpr double highest = 709.9;                      // round(highest / ln 2) = 1024: +inf
    static constexpr double ln2_c1 = 6.93145751953125e-1;
    static constexpr double ln2_c2 = 1.42860682030941723212e-6;
    static constexpr int degree = 13;
};

// 1/k! for k = 0..d, computed in double and rounded once to T.
template <class T, int d>
constexpr std::array<T, d + 1> inverse_factorials() {
    std::array<T, d + 1> c{};
    double f = 1.0;
    for (int k = 0; k <= d; ++k) {
        if (k > 0) f /= k;
        c[k] = static_cast<T>(f);
    }
    return c;
}

template <class T>
inline batch<T> exp(const batch<T>& x) {
    using C = exp_constants<T>;
    using B = batch<T>;
    using bits = xsimd::batch<typename C::bits_type>;
    const B xc = xsimd::min(B(C::highest), xsimd::max(B(C::lowest), x));  // x second: NaN propagates
    const B n = xsimd::nearbyint(xc * B(T(1.44269504088896340736)));    // x / ln 2
    B r = xsimd::fnma(n, B(C::ln2_c1), xc);                              // x − n·C1 (exact)
    r = xsimd::fnma(n, B(C::ln2_c2), r);                                 //   − n·C2

    // Horner: p = 1 + r(1 + r(1/2! + r(1/3! + ... + r/d!)))
    constexpr auto c = inverse_factorials<T, C::degree>();
    B p(c[C::degree]);
    for (int k = C::degree - 1; k >= 0; --k) p = xsimd::fma(p, r, B(c[k]));

    // 2^(n−1), then exp(x) = 2p · 2^(n−1)
    const B scale = xsimd::bitwise_cast<B>(xsimd::bitwise_cast<bits>(n + B(C::magic)) << C::mantissa_bits);
    return (p + p) * scale;
}

// ---------------------------------------------------------------------------------------------------------
// exp2_softmax(x) = 2^x for the arguments a softmax exponentiates, x = s − max <= 0 (or −∞), base 2: the exact
// attention kernels (kernels/attention_exact.cpp) fold log2(e) into the score scale (s·log2(e)·q·k), so that
// e^(S − m) = 2^(S·log2 e − m·log2 e) and no multiplication by log2(e) is left for the exponential itself.
// In float32, 7 of its 13 vector operations run on the multiply-add units, against 10 of 14 for an exp in base
// e; the others (clamps, additions, a shift) go to the adders and integer units, which the tile products next
// to it leave idle. Measured alone: 25% less time per vector than the base-e version (one sweep over a tile).
//
//   * n = round(x) comes from one addition: t = x + (1.5·2^23 + 127) lies in [2^23, 2^24), where floats are
//     the whole numbers, so the addition itself rounds to nearest and leaves n + 127 in the low mantissa bits
//     of t; r = x − (t − (1.5·2^23 + 127)) = x − n is exact, in [−1/2, 1/2] (no Cody–Waite split of ln 2, as
//     a base-e exp needs), and shifting t's bits left by 23 puts n + 127 into the exponent field: 2^n.
//   * 2^r on |r| <= 1/2 is a degree-6 polynomial fitted for minimal relative error (Lawson's iterated weighted
//     least squares, 1.9e-9 before the coefficients are rounded to float).
//   * x is clamped to [−127, 127]: n stays in [−127, 127], so 2^n is built directly; n = −127 gives exponent
//     bits 0, i.e. exactly 0 for x < −126.5 (where 2^x is below the smallest normal float, 2^−126), and
//     x > 127 gives about 2^127 rather than +inf: a softmax never exponentiates a positive number.
//
// Maximum relative error over [−126, 0]: 7.2e-8 (0.6 ulp) with fused multiply-add in the release build, test
// bound 1.1e-7 (tests/test_attention_tiles.cpp); exp2_softmax(−∞) = 0, NaN stays NaN. float64 uses exp above
// on x·ln 2.
// ---------------------------------------------------------------------------------------------------------
template <class T>
inline batch<T> exp2_softmax(const batch<T>& x) {
    if constexpr (!std::is_same_v<T, float>) {
        return exp<T>(x * batch<T>(T(0.69314718055994530942)));
    } else {
        using B = batch<float>;
        using bits = xsimd::batch<std::int32_t>;
        constexpr float magic = 12582912.0f + 127.0f;  // 1.5·2^23 + exponent bias
        const B xc = xsimd::min(B(127.0f), xsimd::max(B(-127.0f), x));  // x second: NaN propagates
        const B t = xc + B(magic);
        const B r = xc - (t - B(magic));  // x − n, exact
        B p(1.5345819672918406e-4f);
        p = xsimd::fma(p, r, B(1.3399931249926565e-3f));
        p = xsimd::fma(p, r, B(9.61848892578679e-3f));
        p = xsimd::fma(p, r, B(5.550328776861345e-2f));
        p = xsimd::fma(p, r, B(2.4022646890969615e-1f));
        p = xsimd::fma(p, r, B(6.931472057373451e-1f));
        p = xsimd::fma(p, r, B(1.0f));
        return p * xsimd::bitwise_cast<B>(xsimd::bitwise_cast<bits>(t) << 23);
    }
}

// exp2(x) = 2^x for arguments of either sign: exp2_softmax's code, which is just as accurate on [0, 127] (the
// polynomial sees the same r ∈ [−1/2, 1/2]); above 127 it gives about 2^127 instead of +inf (float32) or, in
// float64, +inf above 1024. Maximum relative error over [−126, 126]: 7.2e-8 in float32 (test bound 1.1e-7,
// tests/test_gelu_accuracy.cpp). GELU's tanh form uses it (kernels/gelu.cpp).
template <class T>
inline batch<T> exp2(const batch<T>& x) {
    return exp2_softmax<T>(x);
}

// ---------------------------------------------------------------------------------------------------------
// tanh(x) = sign(x) · (1 − 2 / (exp(2|x|) + 1))                         for |x| ≥ 0.625,
// tanh(x) = x + x·x²·R(x²)                                              for |x| < 0.625,
// the split and the odd polynomial (float) / rational function (double) R are Moshier's (Cephes tanhf.c,
// tanh.c). Near 0 the first form would subtract two numbers close to 1 and lose the leading digits, which
// the series avoids. Both are computed for the whole batch and blended with a select.
// ---------------------------------------------------------------------------------------------------------
inline batch<float> tanh_small(const batch<float>& x) {
    using B = batch<float>;
    const B z = x * x;
    B p(-5.70498872745e-3f);
    p = xsimd::fma(p, z, B(2.06390887954e-2f));
    p = xsimd::fma(p, z, B(-5.37397155531e-2f));
    p = xsimd::fma(p, z, B(1.33314422036e-1f));
    p = xsimd::fma(p, z, B(-3.33332819422e-1f));
    return xsimd::fma(p * z, x, x);
}

inline batch<double> tanh_small(const batch<double>& x) {
    using B = batch<double>;
    const B z = x * x;
    B p(-9.64399179425052238628e-1);
    p = xsimd::fma(p, z, B(-9.92877231001918586564e1));
    p = xsimd::fma(p, z, B(-1.61468768441708447952e3));
    B q = z + B(1.12811678491632931402e2);
    q = xsimd::fma(q, z, B(2.23548839060100448583e3));
    q = xsimd::fma(q, z, B(4.84406305325125486048e3));
    return xsimd::fma(z * (p / q), x, x);
}

template <class T>
inline batch<T> tanh(const batch<T>& x) {
    using B = batch<T>;
    const B ax = xsimd::abs(x);
    const B large = B(T(1)) - B(T(2)) / (exp(ax + ax) + B(T(1)));  // exp → +inf gives exactly 1
    return xsimd::select(ax < B(T(0.625)), tanh_small(x), xsimd::copysign(large, x));
}

// erf from xsimd (boost.simd's rational approximations); accuracy measured in the table above.
template <class T>
inline batch<T> erf(const batch<T>& x) {
    return xsimd::erf(x);
}

// ---------------------------------------------------------------------------------------------------------
// Row reductions. An add or max has 3–4 cycles of latency and the core can start one or two per cycle, so a
// single running accumulator would leave the adder idle; each reduction keeps four independent accumulators
// over consecutive batches, folds them as (a0 ∘ a1) ∘ (a2 ∘ a3), then across the lanes, then takes the scalar
// tail in index order. The order depends only on the row length: a row's result is bitwise reproducible
// whatever thread handles it.
// ---------------------------------------------------------------------------------------------------------

// Σ_j term(j) over a row of n: batch_term(j) returns the width<T> terms starting at j, scalar_term(j) the
// single term j (for the tail).
template <class T, class BatchTerm, class ScalarTerm>
inline T sum_terms(std::int64_t n, const BatchTerm& batch_term, const ScalarTerm& scalar_term) {
    using B = batch<T>;
    constexpr std::int64_t W = width<T>;
    B a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
    std::int64_t j = 0;
    for (; j + 4 * W <= n; j += 4 * W) {
        a0 += batch_term(j);
        a1 += batch_term(j + W);
        a2 += batch_term(j + 2 * W);
        a3 += batch_term(j + 3 * W);
    }
    for (; j + W <= n; j += W) a0 += batch_term(j);
    T s = xsimd::hadd((a0 + a1) + (a2 + a3));
    for (; j < n; ++j) s += scalar_term(j);
    return s;
}

// max_j x[j]; −inf for an empty row or a row of −inf. (A NaN in the row may or may not be returned; callers
// let NaN propagate through the exp that follows.)
template <class T>
inline T row_max(const T* x, std::int64_t n) {
    using B = batch<T>;
    constexpr std::int64_t W = width<T>;
    constexpr T lowest = -std::numeric_limits<T>::infinity();
    B a0(lowest), a1(lowest), a2(lowest), a3(lowest);
    std::int64_t j = 0;
    for (; j + 4 * W <= n; j += 4 * W) {
        a0 = xsimd::max(a0, B::load_unaligned(x + j));
        a1 = xsimd::max(a1, B::load_unaligned(x + j + W));
        a2 = xsimd::max(a2, B::load_unaligned(x + j + 2 * W));
        a3 = xsimd::max(a3, B::load_unaligned(x + j + 3 * W));
    }
    for (; j + W <= n; j += W) a0 = xsimd::max(a0, B::load_unaligned(x + j));
    alignas(64) T lanes[batch<T>::size];
    xsimd::max(xsimd::max(a0, a1), xsimd::max(a2, a3)).store_aligned(lanes);
    T m = lowest;
    for (T lane : lanes) m = std::max(m, lane);
    for (; j < n; ++j) m = std::max(m, x[j]);
    return m;
}

// Σ_j x[j]
template <class T>
inline T row_sum(const T* x, std::int64_t n) {
    return sum_terms<T>(
        n, [&](std::int64_t j) { return batch<T>::load_unaligned(x + j); }, [&](std::int64_t j) { return x[j]; });
}

// Σ_j a[j]·b[j]
template <class T>
inline T row_dot(const T* a, const T* b, std::int64_t n) {
    using B = batch<T>;
    return sum_terms<T>(
        n, [&](std::int64_t j) { return B::load_unaligned(a + j) * B::load_unaligned(b + j); },
        [&](std::int64_t j) { return a[j] * b[j]; });
}

// Σ_j exp(x[j] − shift), also storing each exp(x[j] − shift) in e[j] when e is not null (e may equal x).
// The scalar tail uses std::exp: both agree to about an ulp.
template <class T>
inline T exp_shifted_sum(const T* x, T shift, T* e, std::int64_t n) {
    using B = batch<T>;
    const B s(shift);
    return sum_terms<T>(
        n,
        [&](std::int64_t j) {
            const B ej = exp<T>(B::load_unaligned(x + j) - s);
            if (e != nullptr) ej.store_unaligned(e + j);
            return ej;
        },
        [&](std::int64_t j) {
            const T ej = std::exp(x[j] - shift);
            if (e != nullptr) e[j] = ej;
            return ej;
        });
}

// ---------------------------------------------------------------------------------------------------------
// Threading. A tbb task costs on the order of a microsecond to schedule, so inputs smaller than
// kMinTaskWork elements run serially on the calling thread; larger ones are split into blocks of at least
// that much work. Every row (or element block) is computed by exactly one call with the same code path, so
// the results never depend on the split or on the number of threads.
// ---------------------------------------------------------------------------------------------------------
inline constexpr std::int64_t kMinTaskWork = std::int64_t{1} << 15;  // elements, ≈ 10 µs of streaming

// body(begin, end) over the items [0, count), each costing about work_per_item elements.
template <class Body>
inline void parallel_rows(std::int64_t count, std::int64_t work_per_item, const Body& body) {
    const std::int64_t work = std::max<std::int64_t>(1, work_per_item);
    if (count <= 1 || count * work <= kMinTaskWork) {
        if (count > 0) body(std::int64_t{0}, count);
        return;
    }
    const std::int64_t grain = std::max<std::int64_t>(1, kMinTaskWork / work);
    const ParallelRegion region;
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, count, static_cast<std::size_t>(grain)),
                      [&](const tbb::blocked_range<std::int64_t>& range) { body(range.begin(), range.end()); });
}

// body(begin, end) over the elements [0, n) of an elementwise kernel. The split points are multiples of
// kElementBlock (itself a multiple of every SIMD width), so a body's SIMD loop meets its scalar tail only at
// the very end of the array, and element i is computed the same way for any number of threads.
inline constexpr std::int64_t kElementBlock = std::int64_t{1} << 12;

template <class Body>
inline void parallel_elements(std::int64_t n, const Body& body) {
    const std::int64_t blocks = (n + kElementBlock - 1) / kElementBlock;
    parallel_rows(blocks, kElementBlock, [&](std::int64_t b0, std::int64_t b1) {
        body(b0 * kElementBlock, std::min(n, b1 * kElementBlock));
    });
}

}  // namespace tg::kernels::vec
