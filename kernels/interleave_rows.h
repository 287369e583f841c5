#pragma once
// Six rows of 16 floats interleaved column by column in AVX-512 registers: dst[p·6 + i] = src[i·lds + p] for
// i < 6, p < 16. This is the GEMM's packed A sliver (kernels/gemm_pack.h: MR = 6 rows, stored column by
// column) made from a row-major A, 16 columns at a time.
//
// The scalar loop moves one value per load and store, 96 of each per call. Here six loads bring the 16
// columns of the six rows into registers, and two rounds of permutes put them in packed order:
//   1. rows (0, 1), (2, 3), (4, 5) are merged into pairs (row 2q, row 2q+1) of column p, one 64-bit element
//      each: a = pairs of rows 0-1, b = rows 2-3, c = rows 4-5, for columns 0-7 (lo) and 8-15 (hi);
//   2. the packed order of eight columns is the pair sequence a0 b0 c0 a1 b1 c1 ... a7 b7 c7, 24 pairs or three
//      registers of 8. Each register takes its a and b pairs with one two-source permute and its c pairs with
//      one masked permute (tables below: slot s of register v is pair q = 8v + s, column q / 3, source q % 3).
// Six stores write the 96 packed values. Measured alone (one thread, a 256 × 512 block of a 256 × 3072
// matrix in L2): 2.4× faster than the scalar loop.
//
// Only compiled for AVX-512 builds (k_has_interleave_6x16); other builds keep the scalar loop.
// Internal header (not installed).

#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace tg::kernels::simd {

#if defined(__AVX512F__)
inline constexpr bool k_has_interleave_6x16 = true;

inline void interleave_6x16(const float* src, std::int64_t lds, float* dst) {
    // Round 1: pairs (row 2q[p], row 2q+1[p]) for p = 0..7 (lo) and 8..15 (hi).
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    __m512d pairs[3][2];
#pragma GCC unroll 3
    for (int q = 0; q < 3; ++q) {
        const __m512 even = _mm512_loadu_ps(src + 2 * q * lds), odd = _mm512_loadu_ps(src + (2 * q + 1) * lds);
        pairs[q][0] = _mm512_castps_pd(_mm512_permutex2var_ps(even, lo, odd));
        pairs[q][1] = _mm512_castps_pd(_mm512_permutex2var_ps(even, hi, odd));
    }
    // Round 2: register v of eight columns holds pairs q = 8v .. 8v + 7 of a0 b0 c0 a1 b1 c1 ...: an a pair of
    // column p is index p of the two-source permute, a b pair index 8 + p; the c pairs (mask bits) come from a
    // second, masked permute (unused slots of each table are 0).
    alignas(64) static constexpr std::int64_t from_ab[3][8] = {
        {0, 8, 0, 1, 9, 0, 2, 10},    // a0 b0 c0 a1 b1 c1 a2 b2
        {0, 3, 11, 0, 4, 12, 0, 5},   // c2 a3 b3 c3 a4 b4 c4 a5
        {13, 0, 6, 14, 0, 7, 15, 0},  // b5 c5 a6 b6 c6 a7 b7 c7
    };
    alignas(64) static constexpr std::int64_t from_c[3][8] = {
        {0, 0, 0, 0, 0, 1, 0, 0},
        {2, 0, 0, 3, 0, 0, 4, 0},
        {0, 5, 0, 0, 6, 0, 0, 7},
    };
    static constexpr __mmask8 c_slots[3] = {0b00100100, 0b01001001, 0b10010010};
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
#pragma GCC unroll 3
        for (int v = 0; v < 3; ++v) {
            __m512d out = _mm512_permutex2var_pd(pairs[0][h], _mm512_load_si512(from_ab[v]), pairs[1][h]);
            out = _mm512_mask_permutexvar_pd(out, c_slots[v], _mm512_load_si512(from_c[v]), pairs[2][h]);
            _mm512_storeu_pd(reinterpret_cast<double*>(dst + 48 * h + 16 * v), out);
        }
    }
}
#else
inline constexpr bool k_has_interleave_6x16 = false;

// Never called in non-AVX-512 builds (callers test k_has_interleave_6x16 first); a plain loop keeps it defined.
inline void interleave_6x16(const float* src, std::int64_t lds, float* dst) {
    for (int p = 0; p < 16; ++p) {
        for (int i = 0; i < 6; ++i) dst[p * 6 + i] = src[i * lds + p];
    }
}
#endif

}  // namespace tg::kernels::simd
