#pragma once
// Internal to the causal polynomial kernels (kernels/attention_poly_causal.h): the intra-chunk c × cp score
// tiles — computing only the part a causal mask leaves visible, and applying p or p′ under the mask.

#include <algorithm>
#include <cstdint>

#include "kernels/attention_poly_simd.h"
#include "kernels/poly_causal/layout.h"

namespace tg::kernels::poly_causal {

using namespace poly_simd;

template <class T>
Vec<T> lane_index() {
    alignas(64) T idx[kWidth<T>];
    for (std::int64_t l = 0; l < kWidth<T>; ++l) idx[l] = static_cast<T>(l);
    return Vec<T>::load_aligned(idx);
}

// What mask_tile_t computes from a transposed score tile sc (Mᵀ keeps query i >= key j):
enum class TileMask {
    weights,               // sc ← Mᵀ∘p(sc): the forward's Aᵀ, in place
    weights_and_dscores,   // a ← Mᵀ∘p(sc) and mb ← Mᵀ∘mb∘p′(sc): the backward's Aᵀ and dSᵀ (mb: Ṽ Ĝᵀ)
};

// Transposed tile (row j = key, column i = query; visible iff i >= j), only rows < rows; masked entries are
// written as 0 without being read.
template <class T>
void mask_tile_t(const Context<T>& cx, TileMask what, std::int64_t rows, T* sc, T* mb = nullptr, T* a = nullptr) {
    using V = Vec<T>;
    constexpr std::int64_t W = kWidth<T>;
    const std::int64_t cp = cx.L.cp;
    const bool both = what == TileMask::weights_and_dscores;
    const V lanes = lane_index<T>(), zero(T(0));
    for (std::int64_t j = 0; j < rows; ++j) {
        T* srow = sc + j * cp;
        T* mrow = mb ? mb + j * cp : nullptr;
        T* out = both ? mrow : srow;
        T* arow = a ? a + j * cp : nullptr;
        for (std::int64_t l = 0; l < cp; l += W) {
            if (l + W <= j) {
                zero.store_aligned(out + l);
                if (both) zero.store_aligned(arow + l);
                continue;
            }
            const V x = V::load_aligned(srow + l);
            const auto vis = lanes + V(static_cast<T>(l)) >= V(static_cast<T>(j));
            if (both) xsimd::select(vis, poly_value(cx.a, cx.L.g, x), zero).store_aligned(arow + l);
            const V y = both ? V::load_aligned(mrow + l) * poly_derivative(cx.a, cx.L.g, x)
                             : poly_value(cx.a, cx.L.g, x);
            xsimd::select(vis, y, zero).store_aligned(out + l);
        }
    }
}

// A c × cp score tile (c = A(rows × k) · B[k × cp]), only the vectors a causal mask leaves visible, band by
// band of W rows: upper = transposed tile (row j needs columns i >= j), else row-major (row i needs j <= i).
// Skipped vectors are never read: mask_tile_t writes them as zeros.
template <class T>
void tile_gemm(std::int64_t rows, std::int64_t nv, std::int64_t k, const T* a, std::int64_t sam, std::int64_t sap,
               const T* b, std::int64_t ldb, T* c, std::int64_t ldc, bool upper) {
    constexpr std::int64_t W = kWidth<T>;
    for (std::int64_t r0 = 0; r0 < rows; r0 += W) {
        const std::int64_t band = r0 / W, v0 = upper ? band : 0, v1 = upper ? nv : std::min(nv, band + 1);
        small_gemm<T>(std::min(W, rows - r0), v1 - v0, k, a + r0 * sam, sam, sap, b + v0 * W, ldb,
                      c + r0 * ldc + v0 * W, ldc, false);
    }
}

}  // namespace tg::kernels::poly_causal
