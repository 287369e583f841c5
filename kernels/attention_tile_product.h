#pragma once
// Internal to kernels/ (never installed): the products of attention tiles, C (= or +=) alpha · A · Bp, that the
// exact attention kernels (kernels/attention_exact.cpp) do all their floating-point work with, and the
// triangles of those products a causal diagonal tile needs.
//
// Operands. A(r, p) = a[r·a_rs + p·a_ps] is broadcast element by element, so any strides work (a row-major tile,
// or its transpose for Pᵀ dO and dSᵀ Q, or a caller's strided Q, K, V rows read in place); Bp has rows of ldb
// elements, n a multiple of the SIMD width w, every row readable up to n (a packed tile with zero-padded rows, or
// a caller's K rows read in place when the head width is a multiple of w: rows need not be aligned); C has rows of
// ldc elements.
//
// Causal diagonal tiles. A query tile and a key tile that start at the same position (both are 64 long and
// aligned) form a diagonal tile pair: query r sees key c only when c <= r, counted from the tile's corner. Half
// of each product there is multiplied by zeros or thrown away by the mask, so the products take a Triangle
// telling which part is needed, in whole SIMD batches of w columns (a batch is computed when any of its columns
// is needed; the rest of it is masked or zero, as before):
//
//   ColumnsFromRow   C[i][j] is needed for j >= i only     Sᵀ = s·K Qᵀ (forward; keys × queries)
//   ColumnsToRow     C[i][j] is needed for j <= i only     S = s·Q Kᵀ, dP = dO Vᵀ (backward; queries × keys)
//   KFromColumn      Bp[p][j] = 0 for p < j                dVᵀ += dOᵀ P, dKᵀ += s·Qᵀ dS (k runs over queries)
//   KToColumn        Bp[p][j] = 0 for p > j                Oᵀ += Vᵀ Pᵀ (forward; k runs over keys)
//   KToRow           A(i, p) = 0 for p > i                 dQ += dS K (k runs over keys)
//   KFromRow         A(i, p) = 0 for p < i                 dV += Pᵀ dO, dK += s·dSᵀ Q (keys × D; k runs over queries)
//
// Columns that are not computed keep whatever C held: the callers mask them (−∞ before the softmax) or never
// read them. On a 64 × 64 tile with w = 16 this does about 5/8 of the full tile's multiply-adds. KToRow and
// KFromRow cut the k loop per block of rows (6, 8 or 12), not per SIMD batch: closer to the triangle's half.

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/vecmath.h"

namespace tg::kernels::attention_tiles {

enum class Triangle { Full, ColumnsFromRow, ColumnsToRow, KFromColumn, KToColumn, KToRow, KFromRow };

template <class T>
constexpr std::int64_t kW = vec::width<T>;

// f(integral_constant<int, S>) for S = S0, ..., N − 1: a loop whose index is a compile-time constant.
template <int S, int N, class F>
inline void static_for(F&& f) {
    if constexpr (S < N) {
        f(std::integral_constant<int, S>{});
        static_for<S + 1, N>(f);
    }
}

// acc[i][v] += Σ_{p0 <= p < p1} A(i, p) · Bp[p][v·w ..]   for i < MR and the batches V0 <= v < V1 only.
template <class T, int MR, int NV, int V0, int V1>
[[gnu::always_inline]] inline void rank1_steps(vec::batch<T> (&acc)[MR][NV], std::int64_t p0, std::int64_t p1,
                                               const T* a, std::int64_t a_rs, std::int64_t a_ps, const T* b,
                                               std::int64_t ldb) {
    using Batch = vec::batch<T>;
    constexpr std::int64_t w = kW<T>;
    for (std::int64_t p = p0; p < p1; ++p) {
        Batch bv[NV];
#pragma GCC unroll 4
        for (int v = V0; v < V1; ++v) bv[v] = Batch::load_unaligned(b + p * ldb + v * w);
        const T* ap = a + p * a_ps;
#pragma GCC unroll 12
        for (int i = 0; i < MR; ++i) {
            const Batch ai(ap[i * a_rs]);
#pragma GCC unroll 4
            for (int v = V0; v < V1; ++v) acc[i][v] = xsimd::fma(ai, bv[v], acc[i][v]);
        }
    }
}

// The micro-kernel: an MR × (NV·w) block of C,
//
//     C[i][:] (= or +=) alpha · Σ_p A(i, p) · Bp[p][:]        i < MR,
//
// where += with row_scale given is C[i][:] = row_scale[i] · C[i][:] + alpha · Σ_p ... (the online softmax's
// rescaling of O' by e^(m − m'), attention_exact.cpp: one pass over C's rows instead of two),
//
// with MR·NV accumulators in registers over the whole p loop (6 × 4 = 24 of AVX-512's 32 registers, or 12 × 1 for
// tiles one batch wide), as in kernels/gemm_microkernel.h. `batch0` is the index of the block's first column
// batch within the tile: with KFromColumn / KToColumn the p loop runs in phases of w steps, each updating only
// the batches whose Bp entries are not zero there (batch g contributes for p >= g·w, resp. p < (g + 1)·w).
template <class T, int MR, int NV, bool Accumulate, Triangle Tri>
inline void micro_tile(std::int64_t kc, const T* a, std::int64_t a_rs, std::int64_t a_ps, const T* b,
                       std::int64_t ldb, T alpha, T* c, std::int64_t ldc, std::int64_t batch0,
                       const T* row_scale) {
    using Batch = vec::batch<T>;
    constexpr std::int64_t w = kW<T>;
    Batch acc[MR][NV];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = Batch(T(0));
    }
    if constexpr (Tri == Triangle::KFromColumn) {
        // Phase S (p in [(batch0 + S)·w, (batch0 + S + 1)·w)) updates batches 0..S; the last phase runs to kc.
        std::int64_t p = std::min(kc, batch0 * w);
        static_for<0, NV>([&](auto s) {
            constexpr int S = decltype(s)::value;
            const std::int64_t p1 = S == NV - 1 ? kc : std::min(kc, (batch0 + S + 1) * w);
            rank1_steps<T, MR, NV, 0, S + 1>(acc, p, p1, a, a_rs, a_ps, b, ldb);
            p = std::max(p, p1);
        });
    } else if constexpr (Tri == Triangle::KToColumn) {
        // Phase S (p in [(batch0 + S)·w, (batch0 + S + 1)·w), from 0 for S = 0) updates batches S..NV − 1.
        std::int64_t p = 0;
        static_for<0, NV>([&](auto s) {
            constexpr int S = decltype(s)::value;
            const std::int64_t p1 = std::min(kc, (batch0 + S + 1) * w);
            rank1_steps<T, MR, NV, S, NV>(acc, p, p1, a, a_rs, a_ps, b, ldb);
            p = std::max(p, p1);
        });
    } else {
        rank1_steps<T, MR, NV, 0, NV>(acc, 0, kc, a, a_rs, a_ps, b, ldb);
    }
    const Batch alpha_v(alpha);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            T* cp = c + i * ldc + v * w;
            Batch r = alpha_v * acc[i][v];
            if constexpr (Accumulate) {
                const Batch old = Batch::load_unaligned(cp);
                r = row_scale ? xsimd::fma(old, Batch(row_scale[i]), r) : r + old;
            }
            r.store_unaligned(cp);  // C may be a caller's workspace: alignment not assumed
        }
    }
}

// micro_tile for a run-time block shape (mr rows, nv batches); `args` are micro_tile's own arguments.
template <class T, int MR, bool Accumulate, Triangle Tri, class... Args>
inline void micro_tile_nv(int nv, Args... args) {
    switch (nv) {
        case 4: micro_tile<T, MR, 4, Accumulate, Tri>(args...); break;
        case 3: micro_tile<T, MR, 3, Accumulate, Tri>(args...); break;
        case 2: micro_tile<T, MR, 2, Accumulate, Tri>(args...); break;
        default: micro_tile<T, MR, 1, Accumulate, Tri>(args...); break;
    }
}

template <class T, bool Accumulate, Triangle Tri, class... Args>
inline void micro_tile_mr(std::int64_t mr, int nv, Args... args) {
    if (mr == 12) {  // tall blocks for tiles one batch wide, see tile_product
        micro_tile<T, 12, 1, Accumulate, Tri>(args...);
        return;
    }
    if (mr == 8) {  // and for tiles two batches wide (one, where a triangle needs only one of the two)
        if (nv == 2) micro_tile<T, 8, 2, Accumulate, Tri>(args...);
        else micro_tile<T, 8, 1, Accumulate, Tri>(args...);
        return;
    }
    switch (mr) {
        case 6: micro_tile_nv<T, 6, Accumulate, Tri>(nv, args...); break;
        case 5: micro_tile_nv<T, 5, Accumulate, Tri>(nv, args...); break;
        case 4: micro_tile_nv<T, 4, Accumulate, Tri>(nv, args...); break;
        case 3: micro_tile_nv<T, 3, Accumulate, Tri>(nv, args...); break;
        case 2: micro_tile_nv<T, 2, Accumulate, Tri>(nv, args...); break;
        default: micro_tile_nv<T, 1, Accumulate, Tri>(nv, args...); break;
    }
}

// C[m × n] (= or +=) alpha · A[m × kc] · Bp[kc × n] over the part Tri says is needed. For each column panel of
// Bp (≤ 4 batches: kc × 64 floats, 16 KB, stays in L1) sweep the row blocks of A: 6 rows, 12 when the panel is
// one batch wide (dQ += dS K at head width 16), 8 when it is two (every product at head width 32 that is 32
// wide: O += P V, dV += Pᵀ dO, dK += dSᵀ Q, dQ += dS K). A 6 × 1 block has only 6 independent sums for the two
// FMA pipes' 2 × 4 cycles of latency (measured alone in L1: 165 GFLOP/s with 6 rows, 173 with 12, 200-215 for
// wider tiles). Two batches wide, 8 rows split a 64-row tile into whole blocks where 6 leave a block of 4, and
// give 16 sums instead of 12: measured alone in L1 (Zen 5, one thread, 64 × 32 × 64) 237 GFLOP/s with 6 rows,
// 240 with 12 (and a block of 4), 252 with 8; the S model's attention at head width 32 alone (8 × 4 heads,
// T = 256, causal), one thread, old/new alternating: forward 0.82-0.86 → 0.76-0.81 ms, backward 1.84-1.91 →
// 1.74-1.79 ms. The remainder takes 6-row blocks, then what is left. Each entry of C sums over p in the same
// order whatever the block: the same bits.
template <class T, bool Accumulate, Triangle Tri = Triangle::Full>
void tile_product(std::int64_t m, std::int64_t n, std::int64_t kc, const T* a, std::int64_t a_rs,
                  std::int64_t a_ps, const T* b, std::int64_t ldb, T alpha, T* c, std::int64_t ldc,
                  const T* row_scale = nullptr) {
    constexpr std::int64_t w = kW<T>;
    const std::int64_t nb = n / w;
    for (std::int64_t j = 0; j < nb; j += 4) {
        const std::int64_t panel_end = std::min<std::int64_t>(nb, j + 4);
        const std::int64_t tall = panel_end - j == 1 ? 12 : panel_end - j == 2 ? 8 : 6;
        for (std::int64_t i = 0; i < m;) {
            const std::int64_t mr = m - i >= tall ? tall : std::min<std::int64_t>(6, m - i);
            std::int64_t first = j, last = panel_end, k0 = 0, k = kc;  // batches [first, last), k0 <= p < k
            if constexpr (Tri == Triangle::ColumnsFromRow) first = std::max(j, i / w);
            if constexpr (Tri == Triangle::ColumnsToRow) last = std::min(last, (i + mr - 1) / w + 1);
            if constexpr (Tri == Triangle::KToRow) k = std::min(kc, i + mr);
            if constexpr (Tri == Triangle::KFromRow) k0 = std::min(kc, i);  // an empty k range writes zeros
            if (first < last) {
                micro_tile_mr<T, Accumulate, Tri>(mr, static_cast<int>(last - first), k - k0,
                                                  a + i * a_rs + k0 * a_ps, a_rs, a_ps, b + k0 * ldb + first * w, ldb,
                                                  alpha, c + i * ldc + first * w, ldc, first,
                                                  row_scale ? row_scale + i : nullptr);
            }
            i += mr;
        }
    }
}

// The product over the triangle Tri when `diagonal` (a causal diagonal tile pair), over the whole tile otherwise.
template <class T, bool Accumulate, Triangle Tri>
inline void tile_product_causal(bool diagonal, std::int64_t m, std::int64_t n, std::int64_t kc, const T* a,
                                std::int64_t a_rs, std::int64_t a_ps, const T* b, std::int64_t ldb, T alpha, T* c,
                                std::int64_t ldc, const T* row_scale = nullptr) {
    if (diagonal)
        tile_product<T, Accumulate, Tri>(m, n, kc, a, a_rs, a_ps, b, ldb, alpha, c, ldc, row_scale);
    else
        tile_product<T, Accumulate>(m, n, kc, a, a_rs, a_ps, b, ldb, alpha, c, ldc, row_scale);
}

}  // namespace tg::kernels::attention_tiles
