#pragma once
// The GEMM micro-kernel: the only place where the floating-point work of sgemm/dgemm happens.
//
// It computes one MR×NR tile of C from a packed sliver of A (MR rows, kc columns, stored column by column:
// MR values for p = 0, then MR values for p = 1, ...) and a packed sliver of B (kc rows, NR columns, stored
// row by row). Per step p it is a rank-1 update of the tile:
//
//     acc[i][j] += ap[p][i] * bp[p][j]        i < MR, j < NR
//
// The tile lives in registers for the whole k loop: NR = NV·W floats per row is NV xsimd batches of width W,
// so acc is MR·NV vector registers. Each step loads NV batches of B, broadcasts MR scalars of A, and issues
// MR·NV independent FMAs, which is enough independent work to keep both FMA pipes busy (latency 4 × 2 pipes
// = 8 FMAs in flight needed; we have 12 with AVX2, 24 with AVX-512).
//
// Internal header (not installed): only gemm.cpp includes it.

#include "kernels/spread_prefetch.h"

#include <xsimd/xsimd.hpp>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace tg::kernels::gemm_detail {

// The build-time instruction set decides the register budget. AVX-512 has 32 vector registers, AVX2 and
// SSE2 have 16; the tile must leave a few free for the B batches and the A broadcast.
inline constexpr bool k_has_32_vector_registers = std::is_base_of_v<xsimd::avx512f, xsimd::default_arch>;

// Tile shape for element type T: MR rows × NV batches. The A sliver is MR scalars per step; the B sliver is
// NR = NV·W scalars per step.
//   AVX-512: 6×4 batches = 6×64 floats, 24 accumulators (+4 for B, +1 broadcast = 29 of 32 registers).
//   AVX2:    6×2 batches = 6×16 floats, 12 accumulators (+2 for B, +1 broadcast = 15 of 16).
//   SSE2:    6×2 batches = 6×8 floats.
// On Zen 4 with AVX-512, 6×64, 8×48 and 14×32 all run at ~95% of peak with the data in L1; 6×64 was the
// fastest inside the full GEMM (docs/performance.md), and 64 divides the transformer widths we care about.
template <class T>
struct TileShape {
    static constexpr int W = static_cast<int>(xsimd::batch<T>::size);
    static constexpr int MR = 6;
    static constexpr int NV = k_has_32_vector_registers ? 4 : 2;
    static constexpr int NR = NV * W;
};

// When the micro-kernel asks for its C tile: from this many steps of the k loop before the end, one row of the
// tile every k_c_prefetch_gap steps. C is usually far from L1 (a product with several KC blocks reads and
// writes all of C once per block, and M's C, 2048×384 or 1536×384 floats, is 2.4-3 MB: beyond L2). Asked at
// the start of the loop, as before, the lines were evicted again from L1 by the B sliver streaming through it
// (KC × NR floats, 128 KB, against a 48 KB L1) before the tile was stored, so the loads of C with beta = 1
// waited for L2 or L3. 64 steps of 24 FMAs take about 800 cycles, longer than a load from DRAM; one row at a
// time (4-5 lines) rather than all 24-30 lines at once leaves the miss buffers to the B sliver's stream. One
// thread, warm operands, old/new alternating (docs/performance.md, "Session 11"): products with several k
// blocks 0.93-0.98× the time, one-block products 0.98-1.00×; all of M's GEMMs in its step 0.966×.
inline constexpr std::int64_t k_c_prefetch_steps = 64;
inline constexpr std::int64_t k_c_prefetch_gap = 8;

// Asks for every cache line of one row of NR values of C, for writing.
template <class T, int NR>
inline void prefetch_row_for_writing(const T* row) {
    constexpr int row_bytes = NR * static_cast<int>(sizeof(T));
    const char* bytes = reinterpret_cast<const char*>(row);
#pragma GCC unroll 16
    for (int offset = 0; offset < row_bytes; offset += 64) __builtin_prefetch(bytes + offset, 1);
    __builtin_prefetch(bytes + row_bytes - 1, 1);  // the last line, when the row does not start on a line
}

// Makes v, as computed so far, the value the code after it sees: the compiler can no longer fuse the
// multiplication that produced v into a later addition. xsimd 8.1's fma is x·y + z on AVX-512 (a fused
// multiply-add only because the compiler contracts it), so in alpha·acc + beta·C the compiler may fuse either
// product, and its choice changed with unrelated edits of this kernel (session 11: moving the C prefetch made
// it fuse alpha·acc, and results with alpha ≠ 1 then differed between the full tiles and the scalar edge path,
// hence between thread counts). With alpha·acc rounded here, beta·C + r has one product left to fuse.
template <class Batch>
inline void rounded_here(Batch& v) {
#if defined(__AVX512F__)
    asm("" : "+v"(v.data));
#elif defined(__SSE2__)
    asm("" : "+x"(v.data));
#endif
}

// The row sums of the A sliver (sgemm_a_sums), taken by the micro-kernel as it reads A: sum i adds A's value
// of row i at every step, left to right from 0 — the same additions in the same order as the plain pass of
// kernels/gemm.cpp (add_row_sums_transposed), so the bits do not depend on which of the two took a row.
//
// With AVX, two 4-lane vectors: `low` adds the step's values 0-3, `high` its values MR-4 .. MR-1 (2-5 for
// MR = 6; lanes 0-1 of `high` repeat values 2-3 and are not used). Each is one addition with its load folded
// in, on the FP-add pipes beside the FMAs, and the two registers fit beside the 24 accumulators and 4 B
// vectors. Nothing past the sliver is read. (A masked 16-lane load of the MR values measured 1.2-1.4× the
// product's time on cold operands; MR scalar sums, six more registers beside the 29 the tile keeps live: 1.05×.)
#if defined(__AVX__)
// Four lanes of T: the sums of four rows (SSE for floats, AVX for doubles), one addition per step with its
// load folded in.
template <class T>
struct FourSums;
template <>
struct FourSums<float> {
    __m128 v = _mm_setzero_ps();
    void add(const float* a) { v = _mm_add_ps(v, _mm_loadu_ps(a)); }
    void store(float* out) const { _mm_storeu_ps(out, v); }
};
template <>
struct FourSums<double> {
    __m256d v = _mm256_setzero_pd();
    void add(const double* a) { v = _mm256_add_pd(v, _mm256_loadu_pd(a)); }
    void store(double* out) const { _mm256_storeu_pd(out, v); }
};
#endif

template <class T, int MR>
struct SliverSums {
#if defined(__AVX__)
    static_assert(MR >= 4 && MR <= 8, "two 4-lane vectors hold the MR sums");
    FourSums<T> low, high;
    void add(const T* a) {
        low.add(a);
        high.add(a + MR - 4);
    }
    // out[i] = sum_i, or out[i] + sum_i when `started` (the sums of earlier k blocks are there), i < rows
    // (a partial sliver, packed with zeros after its `rows` rows, has only those).
    void finish(T* out, bool started, int rows) const {
        T lanes[8];
        low.store(lanes);
        high.store(lanes + 4);  // lane j of high is row MR - 4 + j, stored at lanes[4 + j]
        for (int i = 0; i < rows; ++i) {
            const T s = i < 4 ? lanes[i] : lanes[4 + i - (MR - 4)];
            out[i] = started ? out[i] + s : s;
        }
    }
#else
    T sum[MR] = {};
    void add(const T* a) {
        for (int i = 0; i < MR; ++i) sum[i] = sum[i] + a[i];
    }
    void finish(T* out, bool started, int rows) const {
        for (int i = 0; i < rows; ++i) out[i] = started ? out[i] + sum[i] : sum[i];
    }
#endif
};

// How the finished tile is written to C:  C = alpha·acc + beta·C, and with beta == 0 C is never read (it may
// hold NaN from an uninitialised buffer, and 0·NaN would be NaN). The same rounding (alpha·acc first, then
// one fused multiply-add with beta·C) is used by the scalar edge path, so a C element gets bit-identical
// values whether it sits in a full or an edge tile.
//
// Where the operands come from (the packed layouts above are the default):
//   A: element (i, p) is ap[i + p·a_step]: a packed sliver (a_step = MR), or a transposed A read in place
//      (stored k×m: step p's MR values are contiguous, a_step = lda). With kRowsA it is ap[i·a_step + p]:
//      MR rows of a row-major A read in place (a_step = lda), MR forward streams.
//   B: row p of the sliver is at bp + p·NR (packed, aligned loads), or with kRowsB at bp + p·b_step: a
//      row-major B read in place (b_step = ldb, unaligned loads).
// bias (may be null): NR values added to every row of the tile as it is stored (a Linear layer's + b):
//   C = alpha·acc + bias, or with beta ≠ 0, beta·C + alpha·acc + bias.
//
// sums (read only with kSums, which needs a column-major A: packed or transposed in place): where the row sums
// of this k block of the sliver's first sums_rows rows go (SliverSums::finish; sums_started: add to what is
// there).
//
// spread (read only with kSpread): cache lines of other data (the next B sliver, the next tile's A) to ask for
// while the tile computes, one request every few steps of the k loop (kernels/spread_prefetch.h). Without
// kSpread the k loop has no prefetch bookkeeping at all.
template <class T, int MR, int NV, bool kRowsA = false, bool kRowsB = false, bool kSpread = false,
          bool kSums = false>
void microkernel(std::int64_t kc, const T* ap, const T* bp, T alpha, T beta, T* c, std::int64_t ldc,
                 std::int64_t a_step = MR, const T* bias = nullptr, std::int64_t b_step = 0,
                 const SpreadPrefetch& spread = {}, T* sums = nullptr, bool sums_started = false,
                 int sums_rows = MR) {
    static_assert(!(kSums && kRowsA), "the sums read A's MR values of a step side by side");
    using Batch = xsimd::batch<T>;
    constexpr int W = static_cast<int>(Batch::size);
    constexpr int NR = NV * W;

    // The C tile is asked for row by row near the end of the k loop (see k_c_prefetch_steps), so its lines
    // arrive while the last steps compute instead of stalling the loads and stores at the end. Row c_row is
    // asked at step p_c_row (-1: all rows asked).
    const std::int64_t p_c_first = kc > k_c_prefetch_steps ? kc - k_c_prefetch_steps : 0;
    const std::int64_t c_gap = std::clamp<std::int64_t>((kc - p_c_first) / MR, 1, k_c_prefetch_gap);
    int c_row = 0;
    std::int64_t p_c_row = p_c_first;

    Batch acc[MR][NV];
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[i][v] = Batch(T(0));
    }

    SpreadCursor<> next_line(spread, kc);  // (unused, and compiled away, without kSpread)
    SliverSums<T, MR> a_sums;                // (unused, and compiled away, without kSums)
    for (std::int64_t p = 0; p < kc; ++p) {
        if (p == p_c_row) {
            prefetch_row_for_writing<T, NR>(c + c_row * ldc);
            ++c_row;
            p_c_row = c_row < MR ? p_c_row + c_gap : -1;
        }
        if constexpr (kSpread) next_line.at_step(p);
        Batch b[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
            b[v] = kRowsB ? Batch::load_unaligned(bp + v * W) : Batch::load_aligned(bp + v * W);
        }
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) {
            const Batch a(kRowsA ? ap[i * a_step] : ap[i]);  // broadcast, folded into the FMA's memory operand
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) acc[i][v] = xsimd::fma(a, b[v], acc[i][v]);
        }
        if constexpr (kSums) a_sums.add(ap);
        ap += kRowsA ? 1 : a_step;
        bp += kRowsB ? b_step : NR;
    }

    if constexpr (kSpread) next_line.finish();
    if constexpr (kSums) a_sums.finish(sums, sums_started, sums_rows);

    const Batch alpha_v(alpha);
    const Batch beta_v(beta);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
        T* c_row = c + i * ldc;
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
            Batch r = alpha_v * acc[i][v];
            rounded_here(r);
            if (beta != T(0)) r = xsimd::fma(beta_v, Batch::load_unaligned(c_row + v * W), r);
            if (bias != nullptr) r = r + Batch::load_unaligned(bias + v * W);
            r.store_unaligned(c_row + v * W);
        }
    }
}

}  // namespace tg::kernels::gemm_detail
