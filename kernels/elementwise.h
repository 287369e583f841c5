#pragma once
// Elementwise inner loops: one row of n elements with a stride per operand. Internal header (uses xsimd).
//
// `op` is a generic callable that works on scalars and on xsimd batches alike, e.g.
// [](auto a, auto b) { return a + b; }. When every stride is 0 or 1 and the output's is 1, the row runs as
// an xsimd main loop (stride 0 = a broadcast scalar, splatted once) plus a scalar tail; otherwise a plain
// strided loop. Integer types always take the scalar loop.

#include <xsimd/xsimd.hpp>

#include <cstdint>
#include <type_traits>

namespace tg::kernels {

template <typename T>
inline constexpr bool kSimdType = std::is_same_v<T, float> || std::is_same_v<T, double>;

// out[i] = op(a[i])
template <typename T, typename U, typename Op>
void map1_row(const T* a, std::int64_t sa, U* out, std::int64_t so, std::int64_t n, Op op) {
    std::int64_t i = 0;
    if constexpr (kSimdType<T> && std::is_same_v<T, U>) {
        using V = xsimd::batch<T>;
        constexpr std::int64_t W = V::size;
        if (sa == 1 && so == 1) {
            for (; i + W <= n; i += W) op(V::load_unaligned(a + i)).store_unaligned(out + i);
        }
    }
    for (; i < n; ++i) out[i * so] = static_cast<U>(op(a[i * sa]));
}

// out[i] = op(a[i], b[i])
template <typename T, typename Op>
void map2_row(const T* a, std::int64_t sa, const T* b, std::int64_t sb, T* out, std::int64_t so, std::int64_t n,
              Op op) {
    std::int64_t i = 0;
    if constexpr (kSimdType<T>) {
        using V = xsimd::batch<T>;
        constexpr std::int64_t W = V::size;
        if (so == 1 && (sa == 0 || sa == 1) && (sb == 0 || sb == 1)) {
            const V a_splat(a[0]), b_splat(b[0]);
            for (; i + W <= n; i += W) {
                const V va = sa ? V::load_unaligned(a + i) : a_splat;
                const V vb = sb ? V::load_unaligned(b + i) : b_splat;
                op(va, vb).store_unaligned(out + i);
            }
        }
    }
    for (; i < n; ++i) out[i * so] = static_cast<T>(op(a[i * sa], b[i * sb]));
}

// Scalar/batch helpers so one lambda body serves both paths.
template <typename T>
T select(bool condition, T if_true, T if_false) {
    return condition ? if_true : if_false;
}
template <typename T, typename A>
xsimd::batch<T, A> select(const xsimd::batch_bool<T, A>& condition, const xsimd::batch<T, A>& if_true,
                          const xsimd::batch<T, A>& if_false) {
    return xsimd::select(condition, if_true, if_false);
}

}  // namespace tg::kernels
