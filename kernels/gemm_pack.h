#pragma once
// Packing for the GEMM: copies a block of op(A) or op(B) into the order the micro-kernel reads it, so the
// kernel's inner loop walks memory strictly forward with no strides, whatever the layout of the operands.
// This is the only place the transposes are handled: after packing, all four (trans_a, trans_b) cases run
// the same kernel.
//
//   packed A (mc × kc block): row slivers of MR rows; in a sliver, column p holds op(A)[i0..i0+MR)[p]
//                             contiguously. Rows past mc are zero, so edge tiles need no special kernel.
//   packed B (kc × nc block): column slivers of NR columns; in a sliver, row p holds op(B)[p][j0..j0+NR)
//                             contiguously. Columns past nc are zero.
//
// Internal header (not installed): only gemm.cpp includes it.

#include "kernels/interleave_rows.h"
#include "kernels/transpose_block.h"

#include <cstdint>
#include <type_traits>

namespace tg::kernels::gemm_detail {

// Whether full slivers of a row-major A are packed 16 columns at a time by register permutes: float on AVX-512
// builds with the 6-row tile.
template <class T, int MR>
constexpr bool interleave_by_blocks() {
    return std::is_same_v<T, float> && MR == 6 && simd::k_has_interleave_6x16;
}

// op(A)[i][p] for an A that starts at `a`: A is stored m×k (row i at a + i·lda), or k×m when transposed.
// Packs rows [0, mc) and columns [0, kc) of op(A) into slivers of MR rows; dst holds ceil(mc/MR)·MR·kc.
template <class T, int MR>
void pack_a(bool trans_a, const T* a, std::int64_t lda, std::int64_t mc, std::int64_t kc, T* dst) {
    for (std::int64_t i0 = 0; i0 < mc; i0 += MR) {
        const std::int64_t rows = mc - i0 < MR ? mc - i0 : MR;
        if (trans_a) {
            // Column p of op(A) is row p of the stored A: `rows` contiguous values, read and written forward,
            // the rest of the sliver zero. (gemm.cpp reads the full slivers of a transposed A in place and packs
            // only a partial last one.)
            for (std::int64_t p = 0; p < kc; ++p) {
                const T* src = a + p * lda + i0;
                for (std::int64_t i = 0; i < rows; ++i) dst[p * MR + i] = src[i];
                for (std::int64_t i = rows; i < MR; ++i) dst[p * MR + i] = T(0);
            }
        } else if (rows == MR) {
            // Row i of op(A) is contiguous in memory. Walk all MR rows side by side (MR forward streams) and
            // write the sliver strictly forward. Each new cache line of this sliver's rows is also the cue to
            // prefetch the same line of the next sliver's rows: A usually comes from L3 or DRAM, and a sliver
            // only reads a few KB of each row, too short for the hardware prefetcher to get ahead on its own.
            const T* src = a + i0 * lda;
            const T* next = i0 + 2 * MR <= mc ? src + MR * lda : src;
            std::int64_t p = 0;
            if constexpr (interleave_by_blocks<T, MR>()) {
                // 16 columns at a time in registers (kernels/interleave_rows.h); the scalar loop below takes
                // the last kc % 16. Packing A was 5-9% of the GPT-2 products with 256 rows (X·Wᵀ, dY·W).
                for (; p + 16 <= kc; p += 16) {
#pragma GCC unroll 32
                    for (int i = 0; i < MR; ++i) __builtin_prefetch(next + i * lda + p);
                    simd::interleave_6x16(src + p, lda, dst + p * MR);
                }
            }
            for (; p < kc; ++p) {
                if (p % 16 == 0) {
#pragma GCC unroll 32
                    for (int i = 0; i < MR; ++i) __builtin_prefetch(next + i * lda + p);
                }
#pragma GCC unroll 32
                for (int i = 0; i < MR; ++i) dst[p * MR + i] = src[i * lda + p];
            }
        } else {
            // The last, partial sliver: the same copy with the missing rows set to zero.
            for (std::int64_t i = 0; i < rows; ++i) {
                const T* src = a + (i0 + i) * lda;
                for (std::int64_t p = 0; p < kc; ++p) dst[p * MR + i] = src[p];
            }
            for (std::int64_t i = rows; i < MR; ++i) {
                for (std::int64_t p = 0; p < kc; ++p) dst[p * MR + i] = T(0);
            }
        }
        dst += MR * kc;
    }
}

// Whether a transposed B's sliver of `cols` columns is packed by 16 × 16 register transposes: float on AVX-512
// builds, full slivers only (the partial last one keeps the scalar loop, which zero-pads it).
template <class T, int NR>
constexpr bool full_sliver_by_blocks(std::int64_t cols) {
    if constexpr (std::is_same_v<T, float> && simd::k_has_transpose_16x16 && NR % 16 == 0) {
        return cols == NR;
    } else {
        return false;
    }
}

// op(B)[p][j] for a B that starts at `b`: B is stored k×n (row p at b + p·ldb), or n×k when transposed.
// Packs column slivers [j_begin, j_end) (in units of NR columns) of the kc × nc block; sliver s goes to
// dst + s·NR·kc, so several threads can pack disjoint sliver ranges of one buffer.
template <class T, int NR>
void pack_b(bool trans_b, const T* b, std::int64_t ldb, std::int64_t kc, std::int64_t nc, std::int64_t s_begin,
            std::int64_t s_end, T* dst) {
    for (std::int64_t s = s_begin; s < s_end; ++s) {
        const std::int64_t j0 = s * NR;
        const std::int64_t cols = nc - j0 < NR ? nc - j0 : NR;
        T* out = dst + s * NR * kc;
        if (trans_b && full_sliver_by_blocks<T, NR>(cols)) {
            // Column j of op(B) is row j of the stored B: the sliver is the transpose of NR stored rows,
            // moved as 16 × 16 blocks in registers (kernels/transpose_block.h). This pass was a fifth of the
            // whole product when C has few rows (X·Wᵀ with 256 tokens: each packed value then serves only 256
            // rows). The last kc % 16 rows of the sliver take the scalar loop below.
            const std::int64_t kb = kc / 16 * 16;
            for (std::int64_t p0 = 0; p0 < kb; p0 += 16) {
#pragma GCC unroll 4
                for (std::int64_t jb = 0; jb < NR; jb += 16) {
                    const T* src = b + (j0 + jb) * ldb + p0;
                    for (int j = 0; j < 16; ++j) __builtin_prefetch(src + j * ldb + 32);
                    if constexpr (std::is_same_v<T, float>) simd::transpose_16x16(src, ldb, out + p0 * NR + jb, NR);
                }
            }
            for (std::int64_t j = 0; j < NR; ++j) {
                const T* src = b + (j0 + j) * ldb;
                for (std::int64_t p = kb; p < kc; ++p) out[p * NR + j] = src[p];
            }
        } else if (trans_b) {
            // Column j of op(B) is row j of the stored B. Copy 16 values of p at a time: the 16 × NR piece of
            // the sliver being written stays in L1 while each of the NR rows gives one cache line. (Row by
            // row over all kc would write one value into each of kc cache lines per row, evicting them
            // before the next row fills them further.) The NR rows are NR short streams, often 4 KB apart,
            // which the hardware prefetcher does not follow: ask for each row's line two chunks ahead.
            for (std::int64_t p0 = 0; p0 < kc; p0 += 16) {
                const std::int64_t p_end = kc - p0 < 16 ? kc : p0 + 16;
                for (std::int64_t j = 0; j < cols; ++j) {
                    const T* src = b + (j0 + j) * ldb;
                    __builtin_prefetch(src + p0 + 32);
                    for (std::int64_t p = p0; p < p_end; ++p) out[p * NR + j] = src[p];
                }
                for (std::int64_t j = cols; j < NR; ++j) {
                    for (std::int64_t p = p0; p < p_end; ++p) out[p * NR + j] = T(0);
                }
            }
        } else {
            // Row p of op(B) is contiguous: a straight copy of `cols` values per row (vectorised by the
            // compiler), zero-padded to NR.
            for (std::int64_t p = 0; p < kc; ++p) {
                const T* src = b + p * ldb + j0;
                for (std::int64_t j = 0; j < cols; ++j) out[p * NR + j] = src[j];
                for (std::int64_t j = cols; j < NR; ++j) out[p * NR + j] = T(0);
            }
        }
    }
}

}  // namespace tg::kernels::gemm_detail
