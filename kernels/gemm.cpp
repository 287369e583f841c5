// Packed, cache-blocked GEMM in the BLIS/GotoBLAS style (Van Zee & van de Geijn, "BLIS: A Framework for
// Rapidly Instantiating BLAS Functionality", 2015). Read kernels/gemm_reference.cpp first: this file computes
// exactly that triple loop, reordered so every operand is read from the fastest memory that can hold it.
//
// The loop nest, outermost first (C is m×n, the shared dimension is k):
//
//   for jc in steps of NC          columns of C and B      the packed B block (kc×nc) lives in L3
//     for pc in steps of KC        the shared dimension    pack op(B)[pc:pc+kc, jc:jc+nc] once, shared
//       for ic in steps of MC      rows of C and A         pack op(A)[ic:ic+mc, pc:pc+kc], lives in L2
//         for jr in steps of NR    one B sliver (kc×NR)    brought to L2, reused by all A slivers
//           for ir in steps of MR  one A sliver (MR×kc)    streamed from L2
//             micro-kernel: C[ir:ir+MR, jr:jr+NR] += A sliver · B sliver, the tile held in registers
//
// (Textbook BLIS keeps the B sliver in L1; with the 6×64 tile and KC = 512 that would need 128 KB. The
// longer KC measured faster anyway: both slivers stream forward from L2, which the prefetchers keep up with,
// and each C tile is loaded and stored half as often.)
//
// Packing pays when a packed value is reused many times. When it is not (a thin C: the Linear layer's weight
// gradient dW = dYᵀ·X, or X·Wᵀ with 128 output columns), the micro-kernel reads A or B where they are
// instead: see a_in_place, a_rows_in_place and b_in_place below. The arithmetic is the same either way.
//
// Parallelism: with few threads C is cut into one rectangle per thread, and each thread runs the loop nest
// above on its rectangle for all of k, packing its own operands (gemm_rectangles). Otherwise, for each
// (jc, pc) block the threads first pack B together, then split the (ic, jr) loops into tasks that each own a
// rectangle of C (gemm_blocks). A small C with a long k (the weight gradient of a small layer) is cut along k
// instead: each thread takes whole k blocks, and the blocks' partial products are added in order
// (gemm_k_split). Every way, every C element is summed over k in the same order (pc blocks in sequence, p in
// sequence inside the micro-kernel), so the result does not depend on which thread ran which task nor on how
// many threads there were.

#include "kernels/gemm.h"

#include "kernels/gemm_microkernel.h"
#include "kernels/gemm_pack.h"
#include "kernels/parallel_region.h"

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>
#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace tg::kernels {

namespace {

using gemm_detail::microkernel;
using gemm_detail::pack_a;
using gemm_detail::pack_b;
using gemm_detail::SpreadPrefetch;
using gemm_detail::TileShape;

// ---------------------------------------------------------------------------------------------------------
// Block sizes (in elements of T), measured on Zen 4 (docs/performance.md has the sweep):
//   KC = 2 KB of T per row: long enough that the C tile's load and store at the end of each micro-kernel
//        call is a small fraction of the call (512 floats: 512 steps × 24 FMAs per C tile), and long rows make
//        long forward streams for the prefetchers when packing;
//   MC = 72 rows: the packed A block (MC × KC, 144 KB of floats) stays in L2 (1 MB on Zen 4/5);
//   NC = 4096 columns: the packed B block (KC × NC, 8 MB) is a share of L3, and amortises packing A.
template <class T>
struct Blocking {
    static constexpr std::int64_t MR = TileShape<T>::MR;
    static constexpr std::int64_t NR = TileShape<T>::NR;
    static constexpr std::int64_t KC = 2048 / static_cast<std::int64_t>(sizeof(T));
    static constexpr std::int64_t MC = MR * 12;
    static constexpr std::int64_t NC = 4096;
    static_assert(NC % NR == 0, "a column block is a whole number of B slivers");
};

// Products below this many flops run on the calling thread: waking the pool costs several microseconds,
// about what a 64×64×64 product takes in total.
constexpr double k_parallel_min_flops = 2.0 * 96 * 96 * 96;
// Batched products whose matrices are smaller than this run one matrix per task (no synchronisation inside
// a matrix); larger ones are parallelised inside each matrix, one matrix after the other.
constexpr double k_batch_parallel_max_flops = 2.0 * 384 * 384 * 384;
// Products with at most this many rows read a row-major B in place (see gemm_blocks): measured on one core,
// 128×128×2048 (Aᵀ·B) 97 -> 103 GFLOP/s and 128×512×2048 90 -> 92; no gain at m = 384 or 512, and a loss
// for 384×1536×2048 (99 -> 81): with more rows the packed sliver, read once per row sliver, is the better copy.
constexpr std::int64_t k_b_in_place_max_rows = 128;
// Tasks per thread: a few more tasks than threads, so a thread slowed by another process does not hold the
// others back at the end of a block.
constexpr int k_tasks_per_thread = 4;

// The number of threads a kernel may use: the arena's size, capped by tg::set_num_threads (a
// tbb::global_control on max_allowed_parallelism).
int available_threads() {
    const auto cap = tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism);
    return static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(tbb::this_task_arena::max_concurrency()),
                                                  cap));
}

// ---------------------------------------------------------------------------------------------------------
// Packing buffers. Allocating a few MB per call would cost page faults on every product, so each thread keeps
// its buffers and reuses them. A thread can be inside two products at once (while it waits in parallel_for,
// oneTBB may run a task of an unrelated product on it), so a thread owns a small pool, not a single buffer:
// a product borrows a buffer and returns it when done.

// Aligned to 64 bytes: a cache line, and what aligned AVX-512 loads need.
class ScratchBuffer {
public:
    void* reserve(std::size_t bytes) {
        if (bytes > capacity_) {
            data_.reset(static_cast<std::byte*>(::operator new(bytes, std::align_val_t{64})));
            capacity_ = bytes;
        }
        return data_.get();
    }

private:
    struct Free {
        void operator()(std::byte* p) const { ::operator delete(p, std::align_val_t{64}); }
    };
    std::unique_ptr<std::byte, Free> data_;
    std::size_t capacity_ = 0;
};

thread_local std::vector<std::unique_ptr<ScratchBuffer>> t_free_buffers;

// Borrows a buffer from this thread's pool for one scope; must be destroyed on the thread that created it,
// which holds because oneTBB never moves a running task to another thread.
template <class T>
class BorrowedBuffer {
public:
    explicit BorrowedBuffer(std::int64_t elements) {
        if (t_free_buffers.empty()) {
            buffer_ = std::make_unique<ScratchBuffer>();
        } else {
            buffer_ = std::move(t_free_buffers.back());
            t_free_buffers.pop_back();
        }
        data_ = static_cast<T*>(buffer_->reserve(static_cast<std::size_t>(elements) * sizeof(T)));
    }
    ~BorrowedBuffer() { t_free_buffers.push_back(std::move(buffer_)); }
    BorrowedBuffer(const BorrowedBuffer&) = delete;
    BorrowedBuffer& operator=(const BorrowedBuffer&) = delete;

    T* data() const { return data_; }

private:
    std::unique_ptr<ScratchBuffer> buffer_;
    T* data_ = nullptr;
};

// ---------------------------------------------------------------------------------------------------------

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Runs body(begin, end) over [0, count) split into `tasks` equal chunks: serially when tasks == 1, else on
// oneTBB with one chunk per task. The body is the same either way.
template <class Body>
void for_each_chunk(std::int64_t count, std::int64_t tasks, const Body& body) {
    if (tasks <= 1) {
        body(std::int64_t{0}, count);
        return;
    }
    const ParallelRegion region;
    tbb::parallel_for(
        tbb::blocked_range<std::int64_t>(0, tasks, 1),
        [&](const tbb::blocked_range<std::int64_t>& range) {
            for (std::int64_t t = range.begin(); t != range.end(); ++t) body(t * count / tasks, (t + 1) * count / tasks);
        },
        tbb::simple_partitioner());
}

// C = beta · C (for k == 0 or alpha == 0); beta == 0 writes zeros without reading C.
template <class T>
void scale_c(std::int64_t m, std::int64_t n, T beta, T* c, std::int64_t ldc) {
    for (std::int64_t i = 0; i < m; ++i) {
        for (std::int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    }
}

// One MR×NR tile of C. Full tiles go straight to C; edge tiles (the last rows or columns when m or n is not
// a multiple of the tile) are computed into a local tile and only the valid part is written, with the same
// rounding as the micro-kernel's own store. sums (may be null; a column-major A sliver, packed or in place):
// where the kernel puts the row sums of this k block of the sliver's `rows` rows (see SliverSums).
template <class T, bool kRowsA = false, bool kRowsB = false>
void compute_tile(std::int64_t kc, const T* ap, std::int64_t a_step, const T* bp, std::int64_t b_step, T alpha,
                  T beta, T* c, std::int64_t ldc, std::int64_t rows, std::int64_t cols, const T* bias,
                  const SpreadPrefetch& spread, T* sums = nullptr, bool sums_started = false) {
    constexpr int MR = TileShape<T>::MR;
    constexpr int NV = TileShape<T>::NV;
    constexpr int NR = TileShape<T>::NR;
    const bool spreads = spread.rows > 0;
    // The kernel with or without the spread prefetch and the sums (each a template flag: without them its
    // k loop has no trace of either), storing into c_out.
    const auto run = [&](T beta_out, T* c_out, std::int64_t ldc_out, const T* bias_out) {
        const auto with = [&](auto spread_flag, auto sums_flag) {
            microkernel<T, MR, NV, kRowsA, kRowsB, decltype(spread_flag)::value, decltype(sums_flag)::value>(
                kc, ap, bp, alpha, beta_out, c_out, ldc_out, a_step, bias_out, b_step, spread, sums, sums_started,
                static_cast<int>(rows));
        };
        using yes = std::true_type;
        using no = std::false_type;
        if constexpr (!kRowsA) {
            if (sums != nullptr) {
                if (spreads) {
                    with(yes{}, yes{});
                } else {
                    with(no{}, yes{});
                }
                return;
            }
        }
        if (spreads) {
            with(yes{}, no{});
        } else {
            with(no{}, no{});
        }
    };
    if (rows == MR && cols == NR) {
        run(beta, c, ldc, bias);
        return;
    }
    alignas(64) T tile[MR * NR];
    run(T(0), tile, NR, nullptr);
    for (std::int64_t i = 0; i < rows; ++i) {
        for (std::int64_t j = 0; j < cols; ++j) {
            T& out = c[i * ldc + j];
            T r = beta == T(0) ? tile[i * NR + j] : std::fma(beta, out, tile[i * NR + j]);
            if (bias != nullptr) r = r + bias[j];
            out = r;
        }
    }
}

// C = beta · C (+ bias on every row): the product when k == 0 or alpha == 0.
template <class T>
void scale_c_add_bias(std::int64_t m, std::int64_t n, T beta, T* c, std::int64_t ldc, const T* bias) {
    scale_c(m, n, beta, c, ldc);
    if (bias != nullptr) {
        for (std::int64_t i = 0; i < m; ++i) {
            for (std::int64_t j = 0; j < n; ++j) c[i * ldc + j] += bias[j];
        }
    }
}

// One block of the product: columns [jc, jc + nc) of C and the k slice [pc, pc + kc), with op(B)'s block
// packed (or read in place) — what every task of the block shares.
template <class T>
struct BlockProduct {
    std::int64_t nc = 0, kc = 0, jc = 0;
    T alpha = T(1), beta = T(0);  // beta: the caller's for the first k block, 1 after (adds to the partial sums)
    bool trans_a = false;
    const T* a_block = nullptr;   // column pc of op(A): A is m×k (row i at a + i·lda) or k×m when transposed
    std::int64_t lda = 0;
    bool a_in_place = false;      // a transposed A whose full slivers the kernel reads in place
    const T* b_block = nullptr;   // op(B)[pc:pc+kc, jc:jc+nc] in the caller's memory
    std::int64_t ldb = 0;
    const T* bp = nullptr;        // the packed slivers of op(B), NR·kc each
    std::int64_t b_full = 0;      // slivers s < b_full are read in place from b_block, the rest from bp
    const T* next_b_block = nullptr;  // b_block of the next k block (null for the last), to prefetch
    T* c = nullptr;
    std::int64_t ldc = 0;
    const T* bias = nullptr;      // bias + jc on the first k block, else null
    std::int64_t bp_first = 0;    // the first sliver bp holds (gemm_few_rows packs one sliver at a time)
    T* a_sums = nullptr;          // the row sums of op(A) to extend by this k block (see add_block_row_sums)
    bool a_sums_started = false;  // a_sums already holds the earlier k blocks' sums (false on the first block)
};

// ---------------------------------------------------------------------------------------------------------
// The row sums of op(A), s[i] = Σ_p op(A)[i][p] (sgemm_a_sums: a Linear layer's bias gradient db = Σ_r dY_r
// from the dW = dYᵀ·X it already computes, op(A) = dYᵀ).
//
// They are summed per KC block while the product reads the block: block b's partial sum of row i,
// s_b[i] = op(A)[i][p₀] + op(A)[i][p₀+1] + … (added left to right from 0 over the block's p), and the partials
// added in block order, s[i] = (…(s_0[i] + s_1[i]) + …) + s_last[i]. For a transposed A (the Linear case) the
// micro-kernel takes s_b as its tiles read A (SliverSums in kernels/gemm_microkernel.h; block_task and
// gemm_few_rows say which tiles); for a row-major A, and for the products that run no tiles (n == 0,
// alpha == 0), the plain passes below. Both add the same values in the same order, so whichever path, thread
// or code takes a row, like C the sums have the same bits on any number of threads. Accuracy: recursive summation of KC terms and then of the
// ⌈k / KC⌉ partials, |error| <= (KC - 1 + ⌈k / KC⌉ - 1)·u·Σ_p |op(A)[i][p]| (Higham, "Accuracy and Stability
// of Numerical Algorithms", eq. 4.4; u = 2^-24 for floats, KC = 512: about 3.1e-5 relative to Σ|x| at
// k = 2048, and ~sqrt(KC)·u ≈ 1.4e-6 typically).

// The plain passes. out[i] = s_b[i] (started = false) or out[i] + s_b[i] for `rows` rows of a transposed op(A)
// (stored k×m; only for the products without tiles, see above):
// step p of the block holds the rows' values side by side at a + p·lda, so SIMD lanes take columns and every
// lane adds its column's values in p order. Columns not a multiple of the vector width are taken by one more
// vector that ends at the last column and overlaps the previous one: a column's lane computes the same sum
// whichever vector holds it, so the overlap only writes the same values twice.
template <class T>
void add_row_sums_transposed(const T* a, std::int64_t lda, std::int64_t kc, std::int64_t rows, bool started, T* out) {
    using Batch = xsimd::batch<T>;
    constexpr std::int64_t W = Batch::size;
    constexpr std::int64_t V = 4;  // vectors of accumulators held in registers while the block's rows go by
    const auto store = [&](const Batch& s, std::int64_t i) {
        (started ? Batch::load_unaligned(out + i) + s : s).store_unaligned(out + i);
    };
    std::int64_t i = 0;
    for (; i + V * W <= rows; i += V * W) {
        Batch acc[V];
        for (auto& v : acc) v = Batch(T(0));
        for (std::int64_t p = 0; p < kc; ++p) {
            const T* row = a + p * lda + i;
#pragma GCC unroll 4
            for (std::int64_t v = 0; v < V; ++v) acc[v] = acc[v] + Batch::load_unaligned(row + v * W);
        }
        for (std::int64_t v = 0; v < V; ++v) store(acc[v], i + v * W);
    }
    if (i < rows && rows >= W) {  // whole vectors, the last one ending at the last column
        for (; i < rows; i += W) {
            const std::int64_t i0 = std::min(i, rows - W);
            Batch acc(T(0));
            for (std::int64_t p = 0; p < kc; ++p) acc = acc + Batch::load_unaligned(a + p * lda + i0);
            if (i0 < i) {  // overlaps columns already written: write only the new ones
                alignas(64) T lanes[W];
                acc.store_aligned(lanes);
                for (std::int64_t j = i; j < rows; ++j) out[j] = started ? out[j] + lanes[j - i0] : lanes[j - i0];
            } else {
                store(acc, i0);
            }
        }
    }
    if (i < rows) {  // fewer columns than a vector: scalars, the columns' chains interleaved
        T acc[W] = {};
        for (std::int64_t p = 0; p < kc; ++p) {
            for (std::int64_t j = 0; j < rows; ++j) acc[j] = acc[j] + a[p * lda + j];
        }
        for (std::int64_t j = 0; j < rows; ++j) out[j] = started ? out[j] + acc[j] : acc[j];
    }
}

// The same for a row-major op(A) (row i at a + i·lda): each row is one left-to-right chain, eight rows at a
// time so eight chains are in flight. (No product of the framework asks for this layout; it is here so that
// every layout has the sums, with the same bits as the transposed one.)
template <class T>
void add_row_sums_rows(const T* a, std::int64_t lda, std::int64_t kc, std::int64_t rows, bool started, T* out) {
    constexpr std::int64_t R = 8;
    std::int64_t i = 0;
    for (; i + R <= rows; i += R) {
        T acc[R] = {};
        for (std::int64_t p = 0; p < kc; ++p) {
#pragma GCC unroll 8
            for (std::int64_t r = 0; r < R; ++r) acc[r] = acc[r] + a[(i + r) * lda + p];
        }
        for (std::int64_t r = 0; r < R; ++r) out[i + r] = started ? out[i + r] + acc[r] : acc[r];
    }
    for (; i < rows; ++i) {
        T acc = T(0);
        for (std::int64_t p = 0; p < kc; ++p) acc = acc + a[i * lda + p];
        out[i] = started ? out[i] + acc : acc;
    }
}

// One k block's partial sums of rows [i, i + rows) of op(A), added to sums[0, rows) (or stored there when
// !started); a_block is op(A)'s column pc, as in BlockProduct.
template <class T>
void add_block_row_sums(bool trans_a, const T* a_block, std::int64_t lda, std::int64_t kc, std::int64_t i,
                        std::int64_t rows, bool started, T* sums) {
    if (trans_a) {
        add_row_sums_transposed(a_block + i, lda, kc, rows, started, sums);
    } else {
        add_row_sums_rows(a_block + i * lda, lda, kc, rows, started, sums);
    }
}

// All of op(A)'s row sums, block after block (for the products that run no tiles: n == 0 or alpha == 0).
template <class T>
void row_sums_by_blocks(bool trans_a, std::int64_t m, std::int64_t k, const T* a, std::int64_t lda, T* sums) {
    constexpr std::int64_t KC = Blocking<T>::KC;
    if (k == 0) std::fill(sums, sums + m, T(0));
    for (std::int64_t pc = 0; pc < k; pc += KC) {
        add_block_row_sums(trans_a, trans_a ? a + pc * lda : a + pc, lda, std::min(KC, k - pc), 0, m, pc > 0, sums);
    }
}

// The MR×NR tile of C at rows ic + ir, sliver s of the block: picks where the kernel reads A and B (packed or
// in place) and runs it; `spread`: lines to ask for while it computes (none by default); `sums` (null, or a
// sliver of a transposed A, in place or packed): where the kernel adds this k block's row sums of the sliver.
template <class T>
void block_tile(const BlockProduct<T>& bk, const T* ap, std::int64_t full, bool a_rows_in_place, std::int64_t ic,
                std::int64_t mc, std::int64_t ir, std::int64_t s, const SpreadPrefetch& spread = {},
                T* sums = nullptr) {
    constexpr std::int64_t MR = Blocking<T>::MR, NR = Blocking<T>::NR;
    const std::int64_t kc = bk.kc, jr = s * NR, cols = std::min(NR, bk.nc - jr);
    const bool b_direct = s < bk.b_full;
    const T* b_sliver = b_direct ? bk.b_block + s * NR : bk.bp + (s - bk.bp_first) * NR * kc;
    const std::int64_t b_step = b_direct ? bk.ldb : NR;
    T* c_tile = bk.c + (ic + ir) * bk.ldc + bk.jc + jr;
    const T* bias_tile = bk.bias != nullptr ? bk.bias + jr : nullptr;
    const std::int64_t rows = std::min(MR, mc - ir);
    const T* a_sliver = ir >= full ? ap + ir * kc
                        : a_rows_in_place ? bk.a_block + (ic + ir) * bk.lda
                                          : bk.a_block + ic + ir;
    const std::int64_t a_step = ir >= full ? MR : bk.lda;
    const bool a_rows = ir < full && a_rows_in_place;
    const T alpha = bk.alpha, beta = bk.beta;
    const std::int64_t ldc = bk.ldc;
    if (a_rows && b_direct) {
        compute_tile<T, true, true>(kc, a_sliver, a_step, b_sliver, b_step, alpha, beta, c_tile, ldc, rows, cols,
                                    bias_tile, spread);
    } else if (a_rows) {
        compute_tile<T, true, false>(kc, a_sliver, a_step, b_sliver, b_step, alpha, beta, c_tile, ldc, rows, cols,
                                     bias_tile, spread);
    } else if (b_direct) {
        compute_tile<T, false, true>(kc, a_sliver, a_step, b_sliver, b_step, alpha, beta, c_tile, ldc, rows, cols,
                                     bias_tile, spread, sums, bk.a_sums_started);
    } else {
        compute_tile<T, false, false>(kc, a_sliver, a_step, b_sliver, b_step, alpha, beta, c_tile, ldc, rows, cols,
                                      bias_tile, spread, sums, bk.a_sums_started);
    }
}

// Asks for `rows` rows of `cols` values (row r at a + r·lda) to be brought into the cache, one request per
// cache line; nothing when rows <= 0. Prefetches never fault, but we stay inside the matrix anyway.
template <class T>
void prefetch_rows(const T* a, std::int64_t lda, std::int64_t rows, std::int64_t cols) {
    constexpr std::int64_t line = 64 / static_cast<std::int64_t>(sizeof(T));
    for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < cols; c += line) __builtin_prefetch(a + r * lda + c);
        __builtin_prefetch(a + r * lda + cols - 1);  // the last line, when the row does not start on a line
    }
}

// Asks for rows [r_begin, r_end) of an NR-column sliver of a row-major B read in place (row p at b + p·ldb)
// to be brought into L2 (not L1: a whole sliver, kc × NR, is larger than L1).
template <class T>
void prefetch_sliver_rows_l2(const T* b, std::int64_t ldb, std::int64_t r_begin, std::int64_t r_end) {
    constexpr std::int64_t line = 64 / static_cast<std::int64_t>(sizeof(T));
    constexpr std::int64_t NR = Blocking<T>::NR;
    for (std::int64_t r = r_begin; r < r_end; ++r) {
        for (std::int64_t c = 0; c < NR; c += line) __builtin_prefetch(b + r * ldb + c, 0, 2);
    }
}

// A transposed A read in place (stored k×m: the dY of dW = dYᵀ·X) gives each tile MR values of every one of
// its kc rows, rows lda apart: one cache line per row, shared by 2-3 tiles, which the hardware prefetcher does
// not predict. When the next tile's values start a new line, the tile at rows [i0, i0 + MR) asks for that
// line of every row, one per k step (kernels/spread_prefetch.h); the later B slivers find A in cache. Nothing
// when the next tile's values are in the same lines or past i_end. Operands from memory, one core, old/new
// alternating: GPT-2's dW 768×768×256 0.97×, 2304×768×256 0.98×, 50257×768×256 (the LM head) 0.93-0.97× the
// time, M's 384×384×2048 0.94-0.95× and 1536×384×2048 0.94×, S's 128×128×2048 0.95× and 512×128×2048 0.88×.
// (Session 9's version, the same lines in one burst before the tile, measured 0.80-0.95× alone and was not
// kept; inside the S, M and GPT-2 steps, where dY is mostly still in cache from dY·W, both are within the
// noise: one thread, 0.97-0.98× the step's CPU time in three alternating rounds.)
template <class T>
SpreadPrefetch next_a_line(const BlockProduct<T>& bk, std::int64_t i0, std::int64_t i_end) {
    constexpr std::int64_t MR = Blocking<T>::MR;
    if (i0 + MR >= i_end) return {};
    const auto line = [](const T* p) { return reinterpret_cast<std::uintptr_t>(p) / 64; };
    const T* last = bk.a_block + i0 + MR - 1;
    const T* next_last = bk.a_block + std::min(i0 + 2 * MR, i_end) - 1;
    if (line(next_last) == line(last)) return {};
    return {reinterpret_cast<const char*>(next_last), bk.lda * static_cast<std::int64_t>(sizeof(T)),
            static_cast<std::int64_t>(sizeof(T)), bk.kc};
}

// One task of a block: rows [i_begin, i_end) × slivers [s_begin, s_end) of C. Packs its rows of A, MC at a
// time, and runs every tile.
template <class T>
void block_task(const BlockProduct<T>& bk, std::int64_t i_begin, std::int64_t i_end, std::int64_t s_begin,
                std::int64_t s_end) {
    constexpr std::int64_t MR = Blocking<T>::MR, MC = Blocking<T>::MC;
    const std::int64_t kc = bk.kc;
    // A row-major A is read in place when the task has at most two B slivers (n <= 128 floats): each A value
    // then serves only n columns, so packing it cost up to 10% of the product (2048×128×512: 96 -> 102
    // GFLOP/s on one core); with more B slivers the packed copy, read again for every sliver, measured faster
    // (2048×384×128: 96 packed, 82 in place).
    const bool a_rows_in_place = !bk.trans_a && s_end - s_begin <= 2;

    BorrowedBuffer<T> a_buffer(MC * kc);
    T* const ap = a_buffer.data();
    for (std::int64_t ic = i_begin; ic < i_end; ic += MC) {
        const std::int64_t mc = std::min(MC, i_end - ic);
        // A transposed (stored k×m) already holds each step's MR values side by side, rows lda apart: the
        // kernel reads full slivers in place and only a partial last sliver is packed (zero-padded). Packing
        // cost 5-15% of the product when n is small (dW = dYᵀ·X with n = in_features: each A value is used
        // only n times).
        const std::int64_t full = bk.a_in_place || a_rows_in_place ? mc / MR * MR : 0;
        if (full < mc) {
            const T* a_rows = bk.trans_a ? bk.a_block + ic + full : bk.a_block + (ic + full) * bk.lda;
            pack_a<T, MR>(bk.trans_a, a_rows, bk.lda, mc - full, kc, ap + full * kc);
        }
        // This k block's row sums, by the task with the first slivers (the others have the same rows): with a
        // transposed A the tiles of the task's last sliver take them as they read A (in place, or the packed
        // partial last sliver), when A is in L2 from the earlier slivers (the first sliver's tiles, which read
        // A from memory, measured the same within the noise); a row-major A gets the plain pass, which adds
        // the same values in the same order. A plain pass over the rows of a transposed A before its tiles
        // cost 1.07-1.11× the product's time (S's 384 and 512 × 128 × 2048, operands in cache; it reads A
        // with a stride of lda and nothing overlaps it with the FMAs).
        const bool sums_here = bk.a_sums != nullptr && s_begin == 0;
        const std::int64_t sums_in_tiles = sums_here && bk.a_in_place ? mc : 0;
        if (sums_here && sums_in_tiles < mc) {
            add_block_row_sums(bk.trans_a, bk.a_block, bk.lda, kc, ic + sums_in_tiles, mc - sums_in_tiles,
                               bk.a_sums_started, bk.a_sums + ic + sums_in_tiles);
        }
        for (std::int64_t s = s_begin; s < s_end; ++s) {
            // A B sliver read in place (kc rows of NR values, ldb apart) comes from L3 or DRAM on its first
            // use, and the tile that reads it first waited for all of it: the rows are too short and too far
            // apart for the hardware prefetcher. While this sliver's tiles compute, ask for the next one, a
            // share of its rows per tile: the next sliver of this k block (on the first row block), or the
            // first one of the next k block (on the last row block). Weight gradients dW = dYᵀ·X with
            // m <= 128, operands from memory, one core: 128×128×2048 and 128×512×2048 7-15% faster.
            const T* next_sliver = nullptr;
            if (s + 1 < std::min(s_end, bk.b_full) && ic == i_begin) {
                next_sliver = bk.b_block + (s + 1) * Blocking<T>::NR;
            } else if (s + 1 == s_end && s_begin < bk.b_full && ic + MC >= i_end && bk.next_b_block != nullptr) {
                next_sliver = bk.next_b_block + s_begin * Blocking<T>::NR;
            }
            const std::int64_t tiles = ceil_div(mc, MR);
            for (std::int64_t ir = 0; ir < mc; ir += MR) {
                if (next_sliver != nullptr) {
                    const std::int64_t tile = ir / MR;
                    prefetch_sliver_rows_l2(next_sliver, bk.ldb, tile * kc / tiles, (tile + 1) * kc / tiles);
                }
                // Rows of A read in place come from L3 or DRAM on the first sliver, and each is only kc values
                // long: too short a stream for the hardware prefetcher (2048×128×128 measured 200 GFLOP/s with
                // A in L2 and 117 from DRAM). Ask for the next MR rows while this tile computes.
                if (a_rows_in_place && s == s_begin) {
                    const std::int64_t next = ic + ir + MR;
                    prefetch_rows(bk.a_block + next * bk.lda, bk.lda, std::min(MR, i_end - next), kc);
                }
                block_tile(bk, ap, full, a_rows_in_place, ic, mc, ir, s,
                           bk.a_in_place && s == s_begin ? next_a_line(bk, ic + ir, i_end) : SpreadPrefetch{},
                           s + 1 == s_end && ir < sums_in_tiles ? bk.a_sums + ic + ir : nullptr);
            }
        }
    }
}

// Asks for `rows` rows of `cols` values (row r at p + r·ld) to be brought into L2, one request per cache line.
template <class T>
void prefetch_rows_l2(const T* p, std::int64_t ld, std::int64_t rows, std::int64_t cols) {
    constexpr std::int64_t line = 64 / static_cast<std::int64_t>(sizeof(T));
    for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < cols; c += line) __builtin_prefetch(p + r * ld + c, 0, 2);
        __builtin_prefetch(p + r * ld + cols - 1, 0, 2);
    }
}

// Part `part` of `parts` of B sliver s of a k block (stored rows of op(B) when !trans_b, kc rows of NR values;
// stored columns when trans_b, NR rows of kc values), asked into L2; nothing past the last sliver.
template <class T>
void prefetch_b_sliver_l2(const BlockProduct<T>& bk, bool trans_b, std::int64_t s, std::int64_t part,
                          std::int64_t parts) {
    constexpr std::int64_t NR = Blocking<T>::NR;
    const std::int64_t cols = std::min(NR, bk.nc - s * NR);
    if (cols <= 0) return;
    if (trans_b) {
        const std::int64_t r0 = part * cols / parts, r1 = (part + 1) * cols / parts;
        prefetch_rows_l2(bk.b_block + (s * NR + r0) * bk.ldb, bk.ldb, r1 - r0, bk.kc);
    } else {
        const std::int64_t r0 = part * bk.kc / parts, r1 = (part + 1) * bk.kc / parts;
        prefetch_rows_l2(bk.b_block + r0 * bk.ldb + s * NR, bk.ldb, r1 - r0, cols);
    }
}

// Products with at most this many rows run serially by gemm_few_rows: all rows of A's k block, packed
// (256 × 512 floats, 512 KB), stay in L2 next to one packed B sliver (128 KB).
constexpr std::int64_t k_few_rows_max = 256;

// gemm_few_rows takes the k blocks of one B sliver back to back (see there) when op(A) packed for all of k
// takes at most this many bytes: the size of L2 on Zen 4/5.
constexpr std::int64_t k_few_rows_all_of_a_bytes = 1 << 20;

// One product with few rows (m <= k_few_rows_max), m, n, k > 0, serial, op(B) always packed (gemm_serial
// says when this pays). All rows of op(A) are packed once per k block (or read in place when transposed), and
// op(B) one sliver at a time, right before the tiles of all rows use it. Each packed B value is written once
// and read m / MR times from L2, where gemm_blocks packs a KC × NC block of B into L3 and streams it once per
// MC rows. While the tiles of one sliver compute, the next sliver's rows of B are asked into L2: the weights
// of X·Wᵀ come from memory.
//
// The order of the (k block, sliver) pairs: when op(A) packed for all of k fits k_few_rows_all_of_a_bytes, A
// is packed once for every k block and each sliver runs its k blocks back to back, so its 256 × 64 column of C
// stays in cache from one k block to the next and goes to memory once; else the k blocks run one after the
// other over all slivers, and C is read and written again per k block (with k = 768 and n = 50,257, the LM
// head's logits: 51 MB twice). Every C element still sums its k blocks in order: the same bits either way.
template <class T>
void gemm_few_rows(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
                   std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc, const T* bias,
                   T* a_sums) {
    using Blk = Blocking<T>;
    constexpr std::int64_t MR = Blk::MR, NR = Blk::NR, KC = Blk::KC;
    const std::int64_t col_slivers = ceil_div(n, NR);
    const std::int64_t row_tiles = ceil_div(m, MR);
    const std::int64_t k_blocks = ceil_div(k, KC);
    const bool slivers_outer =
        k_blocks > 1 && row_tiles * MR * k * static_cast<std::int64_t>(sizeof(T)) <= k_few_rows_all_of_a_bytes;
    BorrowedBuffer<T> a_buffer(row_tiles * MR * (slivers_outer ? k : std::min(KC, k)));
    BorrowedBuffer<T> b_buffer(NR * std::min(KC, k));
    const std::int64_t full = trans_a ? m / MR * MR : 0;  // a transposed A's full slivers are read in place

    // k block j: what its tiles share, and where its packed A starts.
    const auto block = [&](std::int64_t j) {
        const std::int64_t pc = j * KC;
        BlockProduct<T> bk;
        bk.nc = n;
        bk.kc = std::min(KC, k - pc);
        bk.alpha = alpha;
        bk.beta = pc == 0 ? beta : T(1);
        bk.bias = pc == 0 ? bias : nullptr;
        bk.c = c;
        bk.ldc = ldc;
        bk.b_block = trans_b ? b + pc : b + pc * ldb;
        bk.ldb = ldb;
        bk.bp = b_buffer.data();
        bk.trans_a = trans_a;
        bk.a_block = trans_a ? a + pc * lda : a + pc;
        bk.lda = lda;
        bk.a_in_place = trans_a;
        bk.a_sums = a_sums;
        bk.a_sums_started = j > 0;
        return bk;
    };
    const auto packed_a = [&](std::int64_t j) { return a_buffer.data() + (slivers_outer ? row_tiles * MR * j * KC : 0); };
    // Packs k block j's rows of op(A) (only a partial last sliver when transposed). The row sums: the tiles of
    // the last sliver take them for a transposed A (block_task says why the last), else a plain pass here.
    const auto pack_a_block = [&](std::int64_t j, const BlockProduct<T>& bk, T* ap) {
        if (a_sums != nullptr && !trans_a) add_block_row_sums(trans_a, bk.a_block, lda, bk.kc, 0, m, j > 0, a_sums);
        if (full < m) {
            pack_a<T, MR>(trans_a, trans_a ? bk.a_block + full : bk.a_block + full * lda, lda, m - full, bk.kc,
                          ap + full * bk.kc);
        }
    };
    if (slivers_outer) {
        for (std::int64_t j = 0; j < k_blocks; ++j) pack_a_block(j, block(j), packed_a(j));
    }

    // Step t of the walk is (k block j, sliver s): sliver-major when slivers_outer, else block-major.
    const std::int64_t steps = k_blocks * col_slivers;
    const auto pair_at = [&](std::int64_t t) {
        return slivers_outer ? std::pair{t % k_blocks, t / k_blocks} : std::pair{t / col_slivers, t % col_slivers};
    };
    BlockProduct<T> bk = block(0);
    for (std::int64_t t = 0; t < steps; ++t) {
        const auto [j, s] = pair_at(t);
        if (t == 0 || j != pair_at(t - 1).first) bk = block(j);
        if (!slivers_outer && s == 0) pack_a_block(j, bk, packed_a(j));
        const T* src = trans_b ? bk.b_block + s * NR * ldb : bk.b_block + s * NR;
        pack_b<T, NR>(trans_b, src, ldb, bk.kc, n - s * NR, 0, 1, b_buffer.data());
        bk.bp_first = s;
        // The sliver of the next step, asked into L2 a share per tile (nothing after the last step).
        const bool last = t + 1 == steps;
        const auto [j_next, s_next] = last ? std::pair{j, col_slivers} : pair_at(t + 1);
        const BlockProduct<T> bk_next = j_next == j ? bk : block(j_next);
        for (std::int64_t ir = 0; ir < m; ir += MR) {
            prefetch_b_sliver_l2(bk_next, trans_b, s_next, ir / MR, row_tiles);
            block_tile(bk, packed_a(j), full, false, 0, m, ir, s, SpreadPrefetch{},
                       trans_a && a_sums != nullptr && s + 1 == col_slivers ? a_sums + ir : nullptr);
        }
    }
}

// One product C = alpha · op(A) · op(B) + beta · C (+ bias on every row, when bias is not null), m, n, k > 0,
// on up to `threads` threads (1 = serial on this thread) sharing each block: column blocks of NC, k blocks of
// KC, and per block a grid of tasks over rows and slivers of C.
template <class T>
void gemm_blocks(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
                 std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc, int threads,
                 const T* bias, T* a_sums) {
    using Blk = Blocking<T>;
    constexpr std::int64_t MR = Blk::MR, NR = Blk::NR, KC = Blk::KC, NC = Blk::NC;

    const std::int64_t row_slivers = ceil_div(m, MR);
    BorrowedBuffer<T> b_buffer(std::min(KC, k) * ceil_div(std::min(NC, n), NR) * NR);
    T* const bp = b_buffer.data();

    for (std::int64_t jc = 0; jc < n; jc += NC) {
        const std::int64_t nc = std::min(NC, n - jc);
        const std::int64_t col_slivers = ceil_div(nc, NR);

        // The task grid over this column block: split rows first (each task packs its own A rows, so
        // splitting columns would pack the same A rows twice), columns only when there are too few rows.
        const std::int64_t target_tasks = threads == 1 ? 1 : std::int64_t{threads} * k_tasks_per_thread;
        const std::int64_t row_tasks = std::min(row_slivers, target_tasks);
        const std::int64_t col_tasks = std::min(col_slivers, ceil_div(target_tasks, row_tasks));

        for (std::int64_t pc = 0; pc < k; pc += KC) {
            BlockProduct<T> bk;
            bk.nc = nc;
            bk.kc = std::min(KC, k - pc);
            bk.jc = jc;
            bk.alpha = alpha;
            bk.beta = pc == 0 ? beta : T(1);
            bk.bias = pc == 0 && bias != nullptr ? bias + jc : nullptr;
            bk.c = c;
            bk.ldc = ldc;

            // Pack op(B)[pc:pc+kc, jc:jc+nc], shared by every task below.
            bk.b_block = trans_b ? b + jc * ldb + pc : b + pc * ldb + jc;
            bk.ldb = ldb;
            bk.bp = bp;
            const std::int64_t kc = bk.kc;
            const std::int64_t pack_tasks = kc * nc >= 64 * 1024 ? std::min<std::int64_t>(threads, col_slivers) : 1;
            // A row-major B is read in place by full slivers when C has few rows: each B value then serves
            // only m rows, and packing it cost as much as reading it in place (dW = dYᵀ·X, m = out_features).
            // Only a partial last sliver is packed (zero-padded: reading past n could leave the matrix).
            const bool b_in_place = !trans_b && m <= k_b_in_place_max_rows;
            bk.b_full = b_in_place ? nc / NR : 0;
            bk.next_b_block = pc + KC < k ? bk.b_block + KC * ldb : nullptr;  // (read only when B is in place)
            const std::int64_t b_full = bk.b_full;
            if (b_full < col_slivers) {
                for_each_chunk(col_slivers - b_full, b_full > 0 ? 1 : pack_tasks,
                               [&](std::int64_t s_begin, std::int64_t s_end) {
                                   pack_b<T, NR>(trans_b, bk.b_block, ldb, kc, nc, b_full + s_begin, b_full + s_end,
                                                 bp);
                               });
            }

            bk.trans_a = trans_a;
            bk.a_block = trans_a ? a + pc * lda : a + pc;
            bk.lda = lda;
            // A transposed A's full slivers are read in place, whatever lda: on Zen 4 (L1 32 KB, 8-way) an lda
            // of a multiple of 2 KB (512, 1536 floats), whose rows share 2 of the L1's 64 sets, measured 10-15%
            // slower in place than packed and was packed; on the Zen 5 of docs/performance.md (48 KB, 12-way)
            // packing is the slower one: one thread, old/new alternating, 512×128×2048 0.79-0.94× the time,
            // 512×64×2048 0.65-0.75×, 2048×128×2048 0.82×, 512×256×1024 0.91-0.95×, wide products (n >= 384)
            // 0.97-1.02×.
            bk.a_in_place = trans_a;
            // The row sums come with the first column block's tiles (each k block once).
            bk.a_sums = jc == 0 ? a_sums : nullptr;
            bk.a_sums_started = pc > 0;

            auto task = [&](std::int64_t t) {
                const std::int64_t rt = t / col_tasks, ct = t % col_tasks;
                const std::int64_t i_begin = rt * row_slivers / row_tasks * MR;
                const std::int64_t i_end = std::min(m, (rt + 1) * row_slivers / row_tasks * MR);
                block_task(bk, i_begin, i_end, ct * col_slivers / col_tasks, (ct + 1) * col_slivers / col_tasks);
            };
            const std::int64_t tasks = row_tasks * col_tasks;
            for_each_chunk(tasks, tasks, [&](std::int64_t t_begin, std::int64_t t_end) {
                for (std::int64_t t = t_begin; t < t_end; ++t) task(t);
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Threads: one rectangle of C per thread.
//
// gemm_blocks shares each (column block, k block) among the threads: they pack that block of op(B) together,
// wait, split its tiles into tasks, and wait again, two parallel_for per k block. On the products of the GPT
// steps with few rows (GPT-2: m = 256; S's weight gradients: m = 128-512, k = 2048) that scaled only 1.55-1.65x
// from 1 to 2 threads on the idle 2-core Zen 5, against 1.95x for the FMA peak. Timers per phase and thread
// (docs/performance.md, "The GEMM on two threads") found three costs, each a tenth or so of the product:
//   - packing B took as long on two threads as on one (256×768×3072: 735 µs on one thread, 714 + 705 µs on
//     two): a copy bound by the memory bandwidth both cores share;
//   - every row task streams the whole packed B block, half of it written by the other core (a core reads
//     lines the other one wrote at ~30 GB/s, its own at ~45), and there are 4 row tasks per thread instead of
//     the single row block of one thread (S's 128×512×2048 dW: 1427 µs of tiles on one thread, 1843 on two);
//   - a thread waits for the other at the end of every pack and every k block.
// So when it costs little, each thread instead gets its own rectangle of C and runs the serial product on it
// for all of k: it packs its own B slivers and reads them from its own cache, and the threads meet once, at
// the end. The prices: a rectangle packs all of op(A) for its rows and all of op(B) for its columns (with a
// rows × cols grid the threads pack rows·n·k + cols·m·k values instead of (m + n)·k), and with one task per
// thread a thread that loses its core to another process holds the product up (k_tasks_per_thread does not
// apply). Measured 2 threads against gemm_blocks: 256×3072×768 (X·Wᵀ) 0.76-0.81× the time, dX 256×768×3072
// 0.88-0.89×, S's dW 128×512×2048 0.85×, the products with 2048 rows 0.97-1.00×.
// Results are unchanged bit for bit: every C element is still summed over the same k blocks in order.

// One product on this thread: gemm_few_rows when C has few rows and op(B) is packed and wider than two slivers,
// else gemm_blocks. One thread and two, old/new alternating: the GPT-2 LM head 256×50257×768 (X·Wᵀ) 0.90×
// the time, 256×3072×768 0.89-0.95×, 256×768×3072 (dY·W) 0.96-0.99×; but 128×128×128 1.08× and S's
// 128×128×2048 dW 1.02-1.04×: with B read in place or only two slivers, gemm_blocks' A read in place and
// its prefetches win.
template <class T>
void gemm_serial(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
                 std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc, const T* bias,
                 T* a_sums) {
    const bool b_packed = trans_b || m > k_b_in_place_max_rows;
    if (m <= k_few_rows_max && n > 2 * Blocking<T>::NR && b_packed) {
        gemm_few_rows(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, a_sums);
    } else {
        gemm_blocks(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1, bias, a_sums);
    }
}

// A grid of rows × cols rectangles of C, one per thread.
struct ThreadGrid {
    std::int64_t rows = 0, cols = 0;  // 0 × 0: no grid
};

// The grid of `threads` rectangles that packs the least (rows·n + cols·m), with whole slivers in every band
// (at least MR rows and NR columns); none when its packing is more than twice the serial product's (m + n):
// then the work a thread would repeat is better shared (many threads on a small product).
template <class T>
ThreadGrid rectangle_grid(std::int64_t m, std::int64_t n, int threads) {
    const std::int64_t row_slivers = ceil_div(m, Blocking<T>::MR), col_slivers = ceil_div(n, Blocking<T>::NR);
    ThreadGrid best;
    std::int64_t best_cost = 2 * (m + n) + 1;
    for (std::int64_t rows = 1; rows <= threads; ++rows) {
        const std::int64_t cols = threads / rows;
        if (rows * cols != threads || rows > row_slivers || cols > col_slivers) continue;
        const std::int64_t cost = rows * n + cols * m;
        if (cost < best_cost) {
            best = {rows, cols};
            best_cost = cost;
        }
    }
    return best;
}

// The product on a grid of rectangles, one task each, every task the serial gemm_blocks on its part of C
// (rows [i0, i1) take the same rows of op(A), columns [j0, j1) the same columns of op(B) and of bias). The
// rectangles of the first column band also sum their rows of op(A), when asked.
template <class T>
void gemm_rectangles(ThreadGrid grid, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                     T alpha, const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
                     std::int64_t ldc, const T* bias, T* a_sums) {
    constexpr std::int64_t MR = Blocking<T>::MR, NR = Blocking<T>::NR;
    const std::int64_t row_slivers = ceil_div(m, MR), col_slivers = ceil_div(n, NR);
    const std::int64_t tasks = grid.rows * grid.cols;
    for_each_chunk(tasks, tasks, [&](std::int64_t t_begin, std::int64_t t_end) {
        for (std::int64_t t = t_begin; t < t_end; ++t) {
            const std::int64_t r = t / grid.cols, q = t % grid.cols;
            const std::int64_t i0 = r * row_slivers / grid.rows * MR;
            const std::int64_t i1 = std::min(m, (r + 1) * row_slivers / grid.rows * MR);
            const std::int64_t j0 = q * col_slivers / grid.cols * NR;
            const std::int64_t j1 = std::min(n, (q + 1) * col_slivers / grid.cols * NR);
            const T* a_rows = trans_a ? a + i0 : a + i0 * lda;
            const T* b_cols = trans_b ? b + j0 * ldb : b + j0;
            gemm_serial<T>(trans_a, trans_b, i1 - i0, j1 - j0, k, alpha, a_rows, lda, b_cols, ldb, beta,
                           c + i0 * ldc + j0, ldc, bias != nullptr ? bias + j0 : nullptr,
                           a_sums != nullptr && q == 0 ? a_sums + i0 : nullptr);  // rows' sums: first column
        }
    });
}

// ---------------------------------------------------------------------------------------------------------
// Threads: k blocks side by side, for a small C and a long k.
//
// The weight gradients dW = dYᵀ·X of a small layer have a small C and a long k (S: 128×128 .. 512×128 outputs,
// k = 2048 tokens). Cut into rectangles, every thread still reads all k rows of the operand its rectangle
// shares (all of dYᵀ for a column split, all of X, packed, for a row split), from memory; on two threads these
// products took 1.2-1.4x half their one-thread time inside S's step. Instead each thread takes a range of
// whole k blocks and computes all of C over it, reading only its share of both operands.
//
// The bits stay those of the serial product. There, C is updated once per KC block in order: the first block
// stores alpha·acc₀ (+ beta·C, + bias), every later one C + alpha·acc_b, each rounded once (the micro-kernel's
// store with beta = 1). Here the thread of the first range runs that same serial product on its blocks,
// straight into C; every later block b is computed alone (beta = 0: its partial P_b = alpha·acc_b, rounded
// the same way) into a buffer of its own, and once all threads are done, C = (…(C + P_h) + P_h+1 …) + P_last,
// element by element in block order: the same additions as the serial product, in the same order.

// Whether to split k: enough KC blocks for an even share per thread (no thread more than 1.25× the mean
// share of k), a small C (up to S's largest weight gradient, 512×128: where rectangles share the work
// without reading much twice, a C 2.25× that size, M's 384×384×2048, lost nothing on two threads) and
// partial products that fit in a few MB (one m×n buffer per block after the first thread's).
constexpr std::int64_t k_split_max_c_elements = 512 * 128;
constexpr std::int64_t k_split_max_partial_elements = 1024 * 1024;

// The first k block of thread t's range when nb blocks are shared by `threads` threads as evenly as the
// lengths of the blocks allow (the last one may be short).
template <class T>
std::int64_t k_split_first_block(std::int64_t t, std::int64_t k, int threads) {
    const std::int64_t kc = Blocking<T>::KC;
    if (t >= threads) return ceil_div(k, kc);
    return (2 * t * k / threads + kc) / (2 * kc);  // round(t·k / threads / KC)
}

template <class T>
bool k_split_pays(std::int64_t m, std::int64_t n, std::int64_t k, int threads) {
    if (threads < 2 || m * n > k_split_max_c_elements) return false;
    const std::int64_t kc = Blocking<T>::KC;
    const std::int64_t partials = ceil_div(k, kc) - k_split_first_block<T>(1, k, threads);
    if (partials * m * n > k_split_max_partial_elements) return false;
    for (int t = 0; t < threads; ++t) {
        const std::int64_t first = k_split_first_block<T>(t, k, threads);
        const std::int64_t end = k_split_first_block<T>(t + 1, k, threads);
        const std::int64_t share = std::min(k, end * kc) - first * kc;  // this thread's k
        if (share <= 0 || 4 * share * threads > 5 * k) return false;
    }
    return true;
}

template <class T>
void gemm_k_split(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
                  std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc, int threads,
                  const T* bias, T* a_sums) {
    constexpr std::int64_t KC = Blocking<T>::KC;
    const std::int64_t blocks = ceil_div(k, KC);
    const std::int64_t first_own = k_split_first_block<T>(1, k, threads);  // blocks [0, first_own) go into C
    const std::int64_t sums_per_block = a_sums != nullptr ? m : 0;
    BorrowedBuffer<T> partials_buffer((blocks - first_own) * (m * n + sums_per_block));
    T* const partials = partials_buffer.data();  // P_b at partials + (b - first_own)·m·n, row length n
    // The row sums of op(A) the same way: blocks [0, first_own) into a_sums, block b's own s_b after the P_b.
    T* const partial_sums = partials + (blocks - first_own) * m * n;
    for_each_chunk(threads, threads, [&](std::int64_t t_begin, std::int64_t t_end) {
        for (std::int64_t t = t_begin; t < t_end; ++t) {
            const std::int64_t b_begin = k_split_first_block<T>(t, k, threads);
            const std::int64_t b_end = k_split_first_block<T>(t + 1, k, threads);
            if (t == 0) {
                gemm_serial<T>(trans_a, trans_b, m, n, std::min(k, b_end * KC), alpha, a, lda, b, ldb, beta, c, ldc,
                               bias, a_sums);
                continue;
            }
            for (std::int64_t blk = b_begin; blk < b_end; ++blk) {
                const std::int64_t p0 = blk * KC, kc = std::min(KC, k - p0);
                gemm_serial<T>(trans_a, trans_b, m, n, kc, alpha, trans_a ? a + p0 * lda : a + p0, lda,
                               trans_b ? b + p0 : b + p0 * ldb, ldb, T(0), partials + (blk - first_own) * m * n, n,
                               nullptr, a_sums != nullptr ? partial_sums + (blk - first_own) * m : nullptr);
            }
        }
    });
    // C += P_b in block order, rows shared by the threads.
    for_each_chunk(m, m * n >= 16 * 1024 ? threads : 1, [&](std::int64_t i_begin, std::int64_t i_end) {
        for (std::int64_t i = i_begin; i < i_end; ++i) {
            T* c_row = c + i * ldc;
            for (std::int64_t blk = first_own; blk < blocks; ++blk) {
                const T* p_row = partials + (blk - first_own) * m * n + i * n;
                for (std::int64_t j = 0; j < n; ++j) c_row[j] = c_row[j] + p_row[j];
            }
        }
    });
    if (a_sums != nullptr) {  // s += s_b in block order
        for (std::int64_t blk = first_own; blk < blocks; ++blk) {
            const T* s_b = partial_sums + (blk - first_own) * m;
            for (std::int64_t i = 0; i < m; ++i) a_sums[i] = a_sums[i] + s_b[i];
        }
    }
}

// One product C = alpha · op(A) · op(B) + beta · C (+ bias on every row, when bias is not null; and the row
// sums of op(A) into a_sums[m], when a_sums is not null) on up to `threads` threads: serial when small, else
// one rectangle per thread when a grid packs little, else the threads share every block.
template <class T>
void gemm_blocked(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
                  std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc, int threads,
                  const T* bias = nullptr, T* a_sums = nullptr) {
    if (m == 0) return;
    if (n == 0 || k == 0 || alpha == T(0)) {  // no tiles to run: the sums (if asked) in a pass of their own
        if (a_sums != nullptr) row_sums_by_blocks(trans_a, m, k, a, lda, a_sums);
        if (n > 0) scale_c_add_bias(m, n, beta, c, ldc, bias);
        return;
    }
    if (2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) < k_parallel_min_flops) {
        threads = 1;
    }
    const ThreadGrid grid = threads > 1 ? rectangle_grid<T>(m, n, threads) : ThreadGrid{};
    if (threads == 1) {
        gemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, a_sums);
    } else if (k_split_pays<T>(m, n, k, threads)) {
        gemm_k_split(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, bias, a_sums);
    } else if (grid.rows > 0) {
        gemm_rectangles(grid, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, a_sums);
    } else {
        gemm_blocks(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, bias, a_sums);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Argument checks shared by the entry points: user mistakes throw, naming the function and the sizes.

void check_sizes(const char* name, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                 std::int64_t lda, std::int64_t ldb, std::int64_t ldc) {
    const auto shape = [&] {
        return std::string(" (m = ") + std::to_string(m) + ", n = " + std::to_string(n) + ", k = " +
               std::to_string(k) + ", trans_a = " + (trans_a ? "true" : "false") +
               ", trans_b = " + (trans_b ? "true" : "false") + ")";
    };
    if (m < 0 || n < 0 || k < 0) throw std::invalid_argument(std::string(name) + ": negative size" + shape());
    const std::int64_t a_row = trans_a ? m : k;  // length of a stored row of A
    const std::int64_t b_row = trans_b ? k : n;
    if (lda < a_row) {
        throw std::invalid_argument(std::string(name) + ": lda = " + std::to_string(lda) +
                                    " is smaller than a row of A, " + std::to_string(a_row) + shape());
    }
    if (ldb < b_row) {
        throw std::invalid_argument(std::string(name) + ": ldb = " + std::to_string(ldb) +
                                    " is smaller than a row of B, " + std::to_string(b_row) + shape());
    }
    if (ldc < n) {
        throw std::invalid_argument(std::string(name) + ": ldc = " + std::to_string(ldc) +
                                    " is smaller than a row of C, " + std::to_string(n) + shape());
    }
}

template <class T>
void gemm_batched_impl(const char* name, bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m,
                       std::int64_t n, std::int64_t k, T alpha, const T* a, std::int64_t lda, std::int64_t stride_a,
                       const T* b, std::int64_t ldb, std::int64_t stride_b, T beta, T* c, std::int64_t ldc,
                       std::int64_t stride_c) {
    check_sizes(name, trans_a, trans_b, m, n, k, lda, ldb, ldc);
    if (batch < 0) throw std::invalid_argument(std::string(name) + ": negative batch " + std::to_string(batch));
    if (batch == 0 || m == 0 || n == 0) return;

    const int threads = available_threads();
    const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    auto one = [&](std::int64_t i, int inner_threads) {
        gemm_blocked<T>(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
                        c + i * stride_c, ldc, inner_threads);
    };
    // Small matrices: one matrix per task, each serial. stride_c == 0 (one C for all) must run in order.
    const bool over_batch = threads > 1 && batch > 1 && stride_c != 0 &&
                            (flops < k_parallel_min_flops || (batch >= threads && flops < k_batch_parallel_max_flops));
    if (over_batch) {
        const ParallelRegion region;
        tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, batch), [&](const tbb::blocked_range<std::int64_t>& r) {
            for (std::int64_t i = r.begin(); i != r.end(); ++i) one(i, 1);
        });
    } else {
        for (std::int64_t i = 0; i < batch; ++i) one(i, threads);
    }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
           std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
    check_sizes("sgemm", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    gemm_blocked<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, available_threads());
}

void dgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
           const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c,
           std::int64_t ldc) {
    check_sizes("dgemm", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    gemm_blocked<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, available_threads());
}

void sgemm_a_sums(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                  const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                  std::int64_t ldc, float* a_sums) {
    check_sizes("sgemm_a_sums", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    gemm_blocked<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, available_threads(), nullptr,
                        a_sums);
}

void dgemm_a_sums(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                  const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c,
                  std::int64_t ldc, double* a_sums) {
    check_sizes("dgemm_a_sums", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    gemm_blocked<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, available_threads(),
                         nullptr, a_sums);
}

void sgemm_bias(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const float* a,
                std::int64_t lda, const float* b, std::int64_t ldb, const float* bias, float* c, std::int64_t ldc) {
    check_sizes("sgemm_bias", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    gemm_blocked<float>(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc, available_threads(), bias);
}

void dgemm_bias(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const double* a,
                std::int64_t lda, const double* b, std::int64_t ldb, const double* bias, double* c,
                std::int64_t ldc) {
    check_sizes("dgemm_bias", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    gemm_blocked<double>(trans_a, trans_b, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc, available_threads(), bias);
}

void sgemm_batched(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m, std::int64_t n, std::int64_t k,
                   float alpha, const float* a, std::int64_t lda, std::int64_t stride_a, const float* b,
                   std::int64_t ldb, std::int64_t stride_b, float beta, float* c, std::int64_t ldc,
                   std::int64_t stride_c) {
    gemm_batched_impl<float>("sgemm_batched", trans_a, trans_b, batch, m, n, k, alpha, a, lda, stride_a, b, ldb,
                             stride_b, beta, c, ldc, stride_c);
}

void dgemm_batched(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m, std::int64_t n, std::int64_t k,
                   double alpha, const double* a, std::int64_t lda, std::int64_t stride_a, const double* b,
                   std::int64_t ldb, std::int64_t stride_b, double beta, double* c, std::int64_t ldc,
                   std::int64_t stride_c) {
    gemm_batched_impl<double>("dgemm_batched", trans_a, trans_b, batch, m, n, k, alpha, a, lda, stride_a, b, ldb,
                              stride_b, beta, c, ldc, stride_c);
}

}  // namespace tg::kernels
