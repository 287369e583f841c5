#pragma once
// A 16 × 16 block transpose of floats in AVX-512 registers: dst[c·ldd + r] = src[r·lds + c] for r, c < 16.
//
// Used where a kernel must turn rows into columns in bulk (the GEMM's packing of a transposed B): 16 loads,
// four rounds of shuffles and 16 stores move 256 values, where the scalar loop needs 256 loads and 256 stores
// scattered over 16 cache lines. The four rounds, each pairing registers at twice the distance of the last:
//   1. unpack 32-bit elements of rows (2i, 2i+1)          -> pairs of elements in order
//   2. unpack 64-bit pairs of the results (i, i+2)          -> groups of 4 columns
//   3. shuffle 128-bit lanes of registers (i, i+4)          -> groups of 8
//   4. shuffle 128-bit lanes of registers (i, i+8)          -> whole transposed rows
// (Intel's optimisation manual, "matrix transposition"; the same network as kernels/attention_poly_simd.h.)
//
// Only compiled for AVX-512 builds (k_has_transpose_16x16); other builds keep their scalar loops.
// Internal header (not installed).

#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace tg::kernels::simd {

#if defined(__AVX512F__)
inline constexpr bool k_has_transpose_16x16 = true;

inline void transpose_16x16(const float* src, std::int64_t lds, float* dst, std::int64_t ldd) {
    __m512 r[16], t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
        _mm512_storeu_ps(dst + i * ldd, _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88));
        _mm512_storeu_ps(dst + (i + 8) * ldd, _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd));
    }
}
#else
inline constexpr bool k_has_transpose_16x16 = false;

// Never called in non-AVX-512 builds (callers test k_has_transpose_16x16 first); a plain loop keeps it defined.
inline void transpose_16x16(const float* src, std::int64_t lds, float* dst, std::int64_t ldd) {
    for (int r = 0; r < 16; ++r) {
        for (int c = 0; c < 16; ++c) dst[c * ldd + r] = src[r * lds + c];
    }
}
#endif

}  // namespace tg::kernels::simd
