#pragma once
// Internal to kernels/attention_poly.cpp (never installed): the SIMD building blocks of the fast causal path.
//
// Layout. Inside a chunk of c rows everything wide is stored feature-major ("transposed"): Uᵀ, Wᵀ, dUᵀ are
// R × cp, t·Qᵀ and t·Kᵀ are D × cp, with cp = c rounded up to the SIMD width W and the padding columns zero
// (or finite values that only reach padding columns). Then
//   - the feature map and its VJP run W rows at a time (one SIMD lane per row, every level a vector product),
//   - every product is one register-blocked kernel, `small_gemm`: C[m][:] (+)= Σ_p A(m, p) · B[p][:] with
//     A read by broadcast at any strides (so A or Aᵀ, row-major or feature-major, all cost the same) and B, C
//     rows of whole SIMD vectors. Row-major [V | 1] and Ĝ panels play B when the state update is vectorised
//     over the value columns; the state S (R × lds) plays A when it multiplies a feature panel.
// No packing and no allocation: the operands are a few tens of KB and stay in L1/L2.

#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/attention_poly.h"

namespace tg::kernels::poly_simd {

template <class T>
using Vec = xsimd::batch<T>;

template <class T>
inline constexpr std::int64_t kWidth = static_cast<std::int64_t>(Vec<T>::size);

// Accumulator registers a block may use: AVX-512 has 32 vector registers, AVX2/SSE2 16.
inline constexpr int kAccBudget = std::is_base_of_v<xsimd::avx512f, xsimd::default_arch> ? 24 : 12;
// Rows per block at most: A is read at run-time strides, one address register per row; with more than ~6 rows
// GCC spills the row offsets (measured: 12 and 24 rows with one vector were slower than 6).
inline constexpr int kMaxRows = 6;

inline std::int64_t round_up(std::int64_t n, std::int64_t m) { return (n + m - 1) / m * m; }

// One MR × NV·W block: C[i][v] (+)= Σ_{p0 <= p < p1} a[i·sam + p·sap] · b[p·ldb + v·W]. b aligned rows.
template <class T, int MR, int NV>
void gemm_block(std::int64_t p0, std::int64_t p1, const T* a, std::int64_t sam, std::int64_t sap, const T* b,
                std::int64_t ldb, T* c, std::int64_t ldc, bool accumulate) {
    using V = Vec<T>;
    constexpr std::int64_t W = V::size;
    V acc[MR][NV];
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = V(T(0));
    const T* ap = a + p0 * sap;
    const T* bp = b + p0 * ldb;
    for (std::int64_t p = p0; p < p1; ++p, ap += sap, bp += ldb) {
        V bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) bv[v] = V::load_aligned(bp + v * W);
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) {
            const V ai(ap[i * sam]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[i][v] = xsimd::fma(ai, bv[v], acc[i][v]);
        }
    }
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            T* cp = c + i * ldc + v * W;
            if (accumulate)
                (acc[i][v] + V::load_unaligned(cp)).store_unaligned(cp);
            else
                acc[i][v].store_unaligned(cp);
        }
}

template <class T, int NV, int... Ms>
constexpr auto block_table(std::integer_sequence<int, Ms...>) {
    return std::array<void (*)(std::int64_t, std::int64_t, const T*, std::int64_t, std::int64_t, const T*,
                               std::int64_t, T*, std::int64_t, bool),
                      sizeof...(Ms)>{&gemm_block<T, Ms + 1, NV>...};
}

// Which p a column block needs when B is a causal tile whose masked entries are zero:
//   p_below: p < (last column of the block) + 1   (B[p][i] = 0 for p > i; p = key j, columns = queries i)
//   p_above: p >= first column of the block       (B[p][j] = 0 for p < j; p = query i, columns = keys j)
//   p_from_row: p >= the row of C                 (A[m][p] = 0 for p < m; A a transposed tile, rows = keys)
enum class Tri { none, p_below, p_above, p_from_row };

template <class T, int NV>
void gemm_columns(std::int64_t m, std::int64_t v0, std::int64_t k, const T* a, std::int64_t sam, std::int64_t sap,
                  const T* b, std::int64_t ldb, T* c, std::int64_t ldc, bool accumulate, Tri tri) {
    constexpr int MR = std::min(kMaxRows, kAccBudget / NV > 0 ? kAccBudget / NV : 1);
    static constexpr auto table = block_table<T, NV>(std::make_integer_sequence<int, MR>{});
    constexpr std::int64_t W = kWidth<T>;
    std::int64_t p0 = 0, p1 = k;
    if (tri == Tri::p_below) p1 = std::min(k, (v0 + NV) * W);
    if (tri == Tri::p_above) p0 = std::min(k, v0 * W);
    for (std::int64_t i = 0; i < m; i += MR) {
        const int mr = static_cast<int>(std::min<std::int64_t>(MR, m - i));
        const std::int64_t p0i = tri == Tri::p_from_row ? std::min(k, i) : p0;
        table[mr - 1](p0i, p1, a + i * sam, sam, sap, b + v0 * W, ldb, c + i * ldc + v0 * W, ldc, accumulate);
    }
}

// C[m × nv·W] (+)= A(m × k) · B[k × nv·W], A(i, p) = a[i·sam + p·sap]. B rows (ldb) and b must be aligned to W;
// C may be unaligned. With a causal `tri`, each column vector gets its own p range.
template <class T>
void small_gemm(std::int64_t m, std::int64_t nv, std::int64_t k, const T* a, std::int64_t sam, std::int64_t sap,
                const T* b, std::int64_t ldb, T* c, std::int64_t ldc, bool accumulate, Tri tri = Tri::none) {
    if (m <= 0 || nv <= 0) return;
    if (tri == Tri::p_below || tri == Tri::p_above) {
        for (std::int64_t v = 0; v < nv; ++v) gemm_columns<T, 1>(m, v, k, a, sam, sap, b, ldb, c, ldc, accumulate, tri);
        return;
    }
    std::int64_t v = 0;
    for (; v + 4 <= nv; v += 4) gemm_columns<T, 4>(m, v, k, a, sam, sap, b, ldb, c, ldc, accumulate, tri);
    switch (nv - v) {
        case 3: gemm_columns<T, 3>(m, v, k, a, sam, sap, b, ldb, c, ldc, accumulate, tri); break;
        case 2: gemm_columns<T, 2>(m, v, k, a, sam, sap, b, ldb, c, ldc, accumulate, tri); break;
        case 1: gemm_columns<T, 1>(m, v, k, a, sam, sap, b, ldb, c, ldc, accumulate, tri); break;
        default: break;
    }
}

// out[i·ldo] += Σ_{l < n} a[i·lda + l] · x[l] for i < m (n a multiple of W, rows aligned): the one state
// column (the normaliser's) that falls outside the vectorised value columns.
template <class T>
void row_dots(std::int64_t m, std::int64_t n, const T* a, std::int64_t lda, const T* x, T* out, std::int64_t ldo) {
    using V = Vec<T>;
    constexpr std::int64_t W = V::size;
    // Four rows at a time (four independent chains); xsimd::haddp is not used: in xsimd 8.1 it returns the
    // sums of AVX-512 float batches in the wrong order.
    std::int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
        V acc[4] = {V(T(0)), V(T(0)), V(T(0)), V(T(0))};
        for (std::int64_t l = 0; l < n; l += W) {
            const V xv = V::load_aligned(x + l);
            for (int r = 0; r < 4; ++r) acc[r] = xsimd::fma(V::load_aligned(a + (i + r) * lda + l), xv, acc[r]);
        }
        for (int r = 0; r < 4; ++r) out[(i + r) * ldo] += xsimd::hadd(acc[r]);
    }
    for (; i < m; ++i) {
        const T* ai = a + i * lda;
        V acc(T(0));
        for (std::int64_t l = 0; l < n; l += W) acc = xsimd::fma(V::load_aligned(ai + l), V::load_aligned(x + l), acc);
        out[i * ldo] += xsimd::hadd(acc);
    }
}

#if defined(__AVX512F__)
// dst[c·ldd + r] = scale · src[r·lds + c] for r, c < 16: four rounds of shuffles (pairs of floats, pairs of
// doubles, 128-bit lanes twice) instead of 256 scalar moves.
inline void transpose16x16(const float* src, std::int64_t lds, float* dst, std::int64_t ldd, float scale,
                           bool accumulate) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    for (int i = 0; i < 4; ++i) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    const __m512 sv = _mm512_set1_ps(scale);
    for (int i = 0; i < 8; ++i) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
    for (int i = 0; i < 16; ++i) {
        if (accumulate) r[i] = _mm512_add_ps(r[i], _mm512_loadu_ps(dst + i * ldd));
        _mm512_storeu_ps(dst + i * ldd, _mm512_mul_ps(sv, r[i]));
    }
}
#endif

// dst[c·ldd + r] = scale · src[r·lds + c] for r < rows, c < cols (moving rows of a chunk to and from the
// feature-major layout); accumulating, dst[c·ldd + r] = scale · (dst[c·ldd + r] + src[r·lds + c]): the scale
// goes on the sum, so that the sum of two parts is the same whichever part was stored first (a·b + c may be
// compiled to one fused multiply-add, which is not symmetric in the parts). 16 × 16 blocks by shuffles for
// float with AVX-512, scalar moves for the rest.
template <class T>
void transpose_scaled(const T* src, std::int64_t lds, T* dst, std::int64_t ldd, std::int64_t rows, std::int64_t cols,
                      T scale, bool accumulate = false) {
    std::int64_t rb = 0, cb = 0;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
        rb = rows / 16 * 16;
        cb = cols / 16 * 16;
        for (std::int64_t r0 = 0; r0 < rb; r0 += 16)
            for (std::int64_t c0 = 0; c0 < cb; c0 += 16)
                transpose16x16(src + r0 * lds + c0, lds, dst + c0 * ldd + r0, ldd, scale, accumulate);
    }
#endif
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = r < rb ? cb : 0; c < cols; ++c) {
            const T x = src[r * lds + c];
            dst[c * ldd + r] = scale * (accumulate ? dst[c * ldd + r] + x : x);
        }
}

// Horner on a vector: p(x) = Σ a_j x^j and p′(x).
template <class T>
inline Vec<T> poly_value(const T* a, int g, Vec<T> x) {
    Vec<T> y(a[g]);
    for (int j = g - 1; j >= 0; --j) y = xsimd::fma(y, x, Vec<T>(a[j]));
    return y;
}
template <class T>
inline Vec<T> poly_derivative(const T* a, int g, Vec<T> x) {
    Vec<T> y(static_cast<T>(g) * a[g]);
    for (int j = g - 1; j >= 1; --j) y = xsimd::fma(y, x, Vec<T>(static_cast<T>(j) * a[j]));
    return y;
}

// ---------------------------------------------------------------------------------------------------------
// The feature map, feature-major: xt is D × cp (row v = coordinate v of the cp rows), phit R × cp, mono
// (levels 0 .. g−1 of the unweighted monomials) level_offsets()[g] × cp. Level j from level j − 1:
//   m_j[child] = m_{j−1}[parent] · x[v],   φ[child] = w[child] · m_j[child]
// ---------------------------------------------------------------------------------------------------------
template <class T>
void features_t(const PolyFeatureMap& fm, std::int64_t cp, const T* xt, bool query, T* phit, T* mono) {
    using V = Vec<T>;
    constexpr std::int64_t W = V::size;
    const auto& off = fm.level_offsets();
    const int g = fm.degree();
    const T* w = fm.weights<T>(query);
    for (std::int64_t l = 0; l < cp; l += W) {
        if (g > 0) V(T(1)).store_aligned(mono + l);
        V(w[0]).store_aligned(phit + l);
    }
    for (int j = 1; j <= g; ++j) {
        const auto& parents = fm.parents(j);
        const bool keep = j < g;
        for (std::size_t pi = 0; pi < parents.size(); ++pi) {
            const T* mp = mono + (off[j - 1] + static_cast<std::int64_t>(pi)) * cp;
            const std::int64_t first = parents[pi].first_var;
            const std::int64_t child0 = off[j] + parents[pi].child_start - first;
            for (std::int64_t v = first; v < fm.dim(); ++v) {
                const std::int64_t ch = child0 + v;
                const T* xv = xt + v * cp;
                T* out = phit + ch * cp;
                T* mo = mono + ch * cp;
                const V wv(w[ch]);
                for (std::int64_t l = 0; l < cp; l += W) {
                    const V m = V::load_aligned(mp + l) * V::load_aligned(xv + l);
                    if (keep) m.store_aligned(mo + l);
                    (wv * m).store_aligned(out + l);
                }
            }
        }
    }
}

// Only the unweighted monomials of levels < g (what the VJP needs), into mono.
template <class T>
void monomials_t(const PolyFeatureMap& fm, std::int64_t cp, const T* xt, T* mono) {
    using V = Vec<T>;
    constexpr std::int64_t W = V::size;
    const auto& off = fm.level_offsets();
    const int g = fm.degree();
    for (std::int64_t l = 0; l < cp; l += W) V(T(1)).store_aligned(mono + l);
    for (int j = 1; j < g; ++j) {
        const auto& parents = fm.parents(j);
        for (std::size_t pi = 0; pi < parents.size(); ++pi) {
            const T* mp = mono + (off[j - 1] + static_cast<std::int64_t>(pi)) * cp;
            const std::int64_t first = parents[pi].first_var;
            const std::int64_t child0 = off[j] + parents[pi].child_start - first;
            for (std::int64_t v = first; v < fm.dim(); ++v) {
                const T* xv = xt + v * cp;
                T* mo = mono + (child0 + v) * cp;
                for (std::int64_t l = 0; l < cp; l += W)
                    (V::load_aligned(mp + l) * V::load_aligned(xv + l)).store_aligned(mo + l);
            }
        }
    }
}

// The VJP, feature-major: dxt (D × cp) += J_φ(x)ᵀ dφ, with mono holding x's monomials of levels < g and dm
// scratch of the same size. Levels g .. 1, each complete before it is pushed down:
//   dx[v] += dm_j[child] · m_{j−1}[parent],   dm_{j−1}[parent] += Σ_children dm_j[child] · x[v]
// with dm_j = w ∘ dφ_j plus what the level above pushed down.
template <class T>
void features_vjp_t(const PolyFeatureMap& fm, std::int64_t cp, const T* xt, bool query, const T* dphit,
                    const T* mono, T* dm, T* dxt) {
    using V = Vec<T>;
    constexpr std::int64_t W = V::size;
    const auto& off = fm.level_offsets();
    const int g = fm.degree();
    const T* w = fm.weights<T>(query);
    // dm of levels 1 .. g−1 starts at w ∘ dφ (level 0's adjoint is not needed: it has no input).
    for (std::int64_t idx = off[1]; idx < off[g]; ++idx) {
        const V wv(w[idx]);
        for (std::int64_t l = 0; l < cp; l += W)
            (wv * V::load_aligned(dphit + idx * cp + l)).store_aligned(dm + idx * cp + l);
    }
    for (int j = g; j >= 1; --j) {
        const auto& parents = fm.parents(j);
        const bool top = j == g;
        for (std::size_t pi = 0; pi < parents.size(); ++pi) {
            const std::int64_t parent = off[j - 1] + static_cast<std::int64_t>(pi);
            const T* mp = mono + parent * cp;
            const std::int64_t first = parents[pi].first_var;
            const std::int64_t child0 = off[j] + parents[pi].child_start - first;
            for (std::int64_t l = 0; l < cp; l += W) {
                const V m = V::load_aligned(mp + l);
                V acc(T(0));
                for (std::int64_t v = first; v < fm.dim(); ++v) {
                    const std::int64_t ch = child0 + v;
                    const V d = top ? V(w[ch]) * V::load_aligned(dphit + ch * cp + l) : V::load_aligned(dm + ch * cp + l);
                    T* dx = dxt + v * cp + l;
                    xsimd::fma(d, m, V::load_aligned(dx)).store_aligned(dx);
                    if (j >= 2) acc = xsimd::fma(d, V::load_aligned(xt + v * cp + l), acc);
                }
                if (j >= 2) {
                    T* dp = dm + parent * cp + l;
                    (V::load_aligned(dp) + acc).store_aligned(dp);
                }
            }
        }
    }
}

}  // namespace tg::kernels::poly_simd
