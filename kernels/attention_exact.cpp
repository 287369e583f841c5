// Exact attention, FlashAttention-2 style (Dao, "FlashAttention-2: Faster Attention with Better Parallelism
// and Work Partitioning", 2023), on the CPU with xsimd and oneTBB. The equations are in attention_exact.h
// and, for a learner, in docs/attention.md; each step below quotes the one it computes.
//
// Why no Tq×Tk memory. The forward walks key tiles left to right for one tile of queries and keeps, per query
// row, only the running max m, the running sum l and an unnormalised output row (the online softmax, Milakov
// & Gimelshein 2018):
//     m' = max(m, max_j S_ij),  l' = e^(m − m') l + Σ_j e^(S_ij − m'),  O' = e^(m − m') O + Σ_j e^(S_ij − m') V_j
// and at the end O = O'/l, L = m + log l. The backward needs P again, and recomputes each tile of it from Q, K
// and the saved L: P_ij = exp(S_ij − L_i), exact because L is the softmax's own normaliser.
//
// Work partitioning and determinism. The forward's tasks are (batch, head, query tile): each owns its rows of
// O and L. The backward's tasks own key tiles, so dK and dV rows are each written by one task. dQ is the
// hard part: every key tile adds into every (visible) row of dQ. GPUs use atomic adds, which makes the sum's
// order (and so its rounding) vary run to run. We instead give each (batch, head) a fixed number G of
// partial dQ buffers: task (b, h, g) handles key tiles g, g + G, g + 2G, ... in order and adds into buffer
// g only, and a last pass sums the G buffers in order g = 0, 1, ... G depends only on B·H and the number of
// key tiles (never on the thread count), so the result is bitwise the same for any number of threads.
// Memory is G·Tq·D per head: linear in T. The alternative, a second pass over query tiles that recomputes
// S and dP once more to get dQ, needs no partial buffers but costs 7 instead of 5 tile products in the
// backward; with G ≤ 8 the buffers are a few MB, so we pay memory (linear) rather than 40% more flops.
// Interleaving the key tiles (g, g + G, ...) balances the causal case, where early key tiles are seen by
// more queries than late ones.
//
// Speed. Every product of two tiles goes through one register-blocked micro-kernel (the GEMM one's shape: 6 rows × 4
// SIMD batches of accumulators; 8 × 2 and 12 × 1 for outputs two and one batch wide), whose right operand is a 64-byte
// aligned tile in scratch memory and whose left operand is broadcast element by element with arbitrary strides: Pᵀ,
// dSᵀ, Vᵀ, Qᵀ, dOᵀ are the same memory read with swapped strides, and Q, K, V, dO are read in place from the caller's
// (strided) tensors whenever they are the left operand. Only Qᵀ (once per forward task) and the key tile's Kᵀ, K, Vᵀ
// (once per key tile in the backward) are packed. Padded widths (D rounded up to the SIMD width, key tiles cut short by
// Tk) are zeros or −∞ inside the tiles, so no SIMD loop has a scalar tail. The products live in
// kernels/attention_tile_product.h; on a causal diagonal tile they compute only the triangle the mask keeps.

#include "kernels/attention_exact.h"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/attention_band.h"
#include "kernels/attention_tile_product.h"
#include "kernels/parallel_region.h"
#include "kernels/transpose_block.h"
#include "kernels/vecmath.h"

namespace tg::kernels {

void check_attention_problem(const AttentionProblem& p) {
    auto fail = [&](const std::string& what) {
        throw std::invalid_argument("attention: " + what + " (B=" + std::to_string(p.batch) +
                                    ", H=" + std::to_string(p.heads) + ", Tq=" + std::to_string(p.tq) +
                                    ", Tk=" + std::to_string(p.tk) + ", D=" + std::to_string(p.d) +
                                    ", Dv=" + std::to_string(p.dv) + ")");
    };
    if (p.batch < 0 || p.heads < 0 || p.tq < 0 || p.tk < 0) fail("sizes must be >= 0");
    if (p.d < 1 || p.d > 256) fail("head dimension D must be in [1, 256]");
    if (p.dv < 1 || p.dv > 256) fail("value dimension Dv must be in [1, 256]");
    if (!std::isfinite(p.scale)) fail("scale must be finite");
}

namespace {

constexpr std::int64_t kBr = 64;  // query rows per tile
constexpr std::int64_t kBc = 64;  // keys per tile (a multiple of every SIMD width)
// The backward aims for at least this many (batch, head, key-tile group) tasks; see G above.
constexpr std::int64_t kBackwardTasks = 8;

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

template <class T>
constexpr std::int64_t W = vec::width<T>;

// The kernels exponentiate in base 2 (vec::exp2_softmax): scores are computed as S₂ = log2(e)·S, so that
// e^(S − m) = 2^(S₂ − m₂) with every running max and normaliser in the same base-2 units. Only the lse the
// kernels exchange with their callers is in natural units: L = ln 2 · L₂.
constexpr double kLog2e = 1.44269504088896340736;
constexpr double kLn2 = 0.69314718055994530942;

std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }
std::int64_t ceil_div(std::int64_t x, std::int64_t m) { return (x + m - 1) / m; }

// ---------------------------------------------------------------------------------------------------------
// Scratch tiles: one aligned buffer per thread, grown on demand and kept (a few hundred KB at D = 256), carved
// into 64-byte aligned pieces. Tasks never nest, so a thread uses its buffer for one task at a time. No heap
// allocation per task (the piece pointers live in a fixed array): at short sequences (a ViT's 17 tokens) a task
// is a few microseconds, and two mallocs per task showed in the profile.
// ---------------------------------------------------------------------------------------------------------
template <class T>
class Scratch {
public:
    static constexpr std::size_t kMaxPieces = 8;
    explicit Scratch(std::initializer_list<std::int64_t> sizes) {
        thread_local std::vector<T> buffer;
        constexpr std::int64_t align = 64 / sizeof(T);
        std::int64_t total = align;
        for (auto n : sizes) total += round_up(n, align);
        if (static_cast<std::int64_t>(buffer.size()) < total) buffer.assign(static_cast<std::size_t>(total), T(0));
        T* base = buffer.data();
        base += (align - (reinterpret_cast<std::uintptr_t>(base) / sizeof(T)) % align) % align;
        std::size_t i = 0;
        for (auto n : sizes) {
            pieces_.at(i++) = base;
            base += round_up(n, align);
        }
    }
    T* operator[](std::size_t i) const { return pieces_[i]; }

private:
    std::array<T*, kMaxPieces> pieces_{};
};

// Every product of two tiles: kernels/attention_tile_product.h (the micro-kernel, and the triangles of a causal
// diagonal tile).
using attention_tiles::tile_product;
using attention_tiles::tile_product_causal;
using attention_tiles::Triangle;

// ---------------------------------------------------------------------------------------------------------
// Packing: copy rows of a strided operand into a tile, zero-padded to the tile's width.
// ---------------------------------------------------------------------------------------------------------

// dst[r][0..width) = src row r (cols < cols), zeros after; rows < rows.
template <class T>
void pack_rows(const T* src, std::int64_t src_row, std::int64_t rows, std::int64_t cols, T* dst,
               std::int64_t ld) {
    for (std::int64_t r = 0; r < rows; ++r) {
        std::copy(src + r * src_row, src + r * src_row + cols, dst + r * ld);
        std::fill(dst + r * ld + cols, dst + (r + 1) * ld, T(0));
    }
}

// dst[e][r] = src row r, element e (the transpose): dst is cols × ld, rows ≥ `rows` zeroed up to `padded` (the
// width the products read: the rows rounded up to the SIMD width). Float on AVX-512 builds moves whole 16 × 16
// blocks through registers (kernels/transpose_block.h), the edges value by value: the value-by-value loop was
// a fifth of the forward's own time at D = 32 (Qᵀ, once per query tile) and showed in the backward (Kᵀ, Vᵀ).
template <class T>
void pack_transposed(const T* src, std::int64_t src_row, std::int64_t rows, std::int64_t cols, T* dst,
                     std::int64_t ld, std::int64_t padded) {
    for (std::int64_t e = 0; e < cols; ++e) std::fill(dst + e * ld + rows, dst + e * ld + padded, T(0));
    std::int64_t rb = 0, cb = 0;  // the part done by blocks: rows [0, rb) × columns [0, cb)
    if constexpr (std::is_same_v<T, float> && simd::k_has_transpose_16x16) {
        rb = rows / 16 * 16;
        cb = cols / 16 * 16;
        for (std::int64_t r0 = 0; r0 < rb; r0 += 16) {
            for (std::int64_t e0 = 0; e0 < cb; e0 += 16) {
                simd::transpose_16x16(src + r0 * src_row + e0, src_row, dst + e0 * ld + r0, ld);
            }
        }
    }
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* s = src + r * src_row;
        for (std::int64_t e = r < rb ? cb : 0; e < cols; ++e) dst[e * ld + r] = s[e];
    }
}

// dst[c·ldd + e] = src[e·lds + c] for e < rows, c < cols (or += with Add): a transposed tile (Oᵀ, dKᵀ, dVᵀ)
// stored as rows of a strided output. Float on AVX-512 builds moves whole 16 × 16 blocks through registers
// (kernels/transpose_block.h); the edges, other types, and the adding version go value by value.
template <class T, bool Add = false>
void store_transposed(const T* src, std::int64_t lds, std::int64_t rows, std::int64_t cols, T* dst,
                      std::int64_t ldd) {
    std::int64_t rb = 0, cb = 0;  // the part done by blocks: rows [0, rb) × columns [0, cb)
    if constexpr (std::is_same_v<T, float> && simd::k_has_transpose_16x16 && !Add) {
        rb = rows / 16 * 16;
        cb = cols / 16 * 16;
        for (std::int64_t e0 = 0; e0 < rb; e0 += 16) {
            for (std::int64_t c0 = 0; c0 < cb; c0 += 16) {
                simd::transpose_16x16(src + e0 * lds + c0, lds, dst + c0 * ldd + e0, ldd);
            }
        }
    }
    for (std::int64_t c = 0; c < cols; ++c) {
        for (std::int64_t e = c < cb ? rb : 0; e < rows; ++e) {
            if constexpr (Add)
                dst[c * ldd + e] += src[e * lds + c];
            else
                dst[c * ldd + e] = src[e * lds + c];
        }
    }
}

// Which keys a query row sees. Plain problems: every key, or the causal ones j <= i (top-left aligned). Banded
// (kernels/attention_band.h, the near set of the hybrid attention): the causal keys with j < sinks or
// j > i − window; window and sinks are clamped to [0, Tk], so the arithmetic below cannot overflow.
struct KeySet {
    bool causal = false;
    bool banded = false;
    std::int64_t window = 0, sinks = 0;
};

// The keys of [j0, j0 + nc) that row i sees, relative to j0: [0, sink_end) ∪ [window_begin, end), with
// sink_end <= window_begin <= end <= nc (plain problems: sink_end = window_begin = 0).
struct RowKeys {
    std::int64_t sink_end = 0, window_begin = 0, end = 0;
};

// (Inlined: called for every row of every tile pair, twice in the backward; as a call it showed in the profile at
// 17 tokens.)
[[gnu::always_inline]] inline RowKeys row_keys(const KeySet& ks, std::int64_t i, std::int64_t j0, std::int64_t nc) {
    RowKeys r;
    r.end = ks.causal ? std::clamp<std::int64_t>(i - j0 + 1, 0, nc) : nc;
    if (ks.banded) {
        r.sink_end = std::clamp<std::int64_t>(ks.sinks - j0, 0, r.end);
        r.window_begin = std::clamp<std::int64_t>(i - ks.window + 1 - j0, r.sink_end, r.end);
    }
    return r;
}

// Lanes [lo, hi) of the SIMD batch at p (aligned) set to −∞, the others kept: one select instead of a fill.
template <class T>
[[gnu::always_inline]] inline void mask_lanes(T* p, std::int64_t lo, std::int64_t hi) {
    using Batch = vec::batch<T>;
    alignas(64) static constexpr T lane[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static_assert(W<T> <= 16);
    const Batch index = Batch::load_aligned(lane);
    const auto hidden = (index >= Batch(static_cast<T>(lo))) && (index < Batch(static_cast<T>(hi)));
    xsimd::select(hidden, Batch(kNegInf<T>), Batch::load_aligned(p)).store_aligned(p);
}

// The causal mask of a diagonal (or cut) tile of S as far as the backward reads it: the P/dS sweep computes only
// the batches of keys a row sees and writes P = dS = 0 after them, so of the keys past row r's last one only
// those in the same batch as it need −∞ (one select per row, instead of a fill to the tile's end).
template <class T>
void mask_tile_causal(T* s, std::int64_t mq, const KeySet& ks, std::int64_t i0, std::int64_t j0, std::int64_t nc) {
    constexpr std::int64_t w = W<T>;
    for (std::int64_t r = 0; r < mq; ++r) {
        const std::int64_t end = row_keys(ks, i0 + r, j0, nc).end;
        if (end % w != 0) mask_lanes(s + r * kBc + end / w * w, end % w, w);
    }
}

// S[r][c] = −∞ for the keys row r cannot see (between its sink and window keys, and after its last visible key
// up to the padded width ncp).
template <class T>
void mask_tile(T* s, std::int64_t mq, std::int64_t ncp, const KeySet& ks, std::int64_t i0, std::int64_t j0,
               std::int64_t nc) {
    for (std::int64_t r = 0; r < mq; ++r) {
        const RowKeys rk = row_keys(ks, i0 + r, j0, nc);
        std::fill(s + r * kBc + rk.sink_end, s + r * kBc + rk.window_begin, kNegInf<T>);
        std::fill(s + r * kBc + rk.end, s + r * kBc + ncp, kNegInf<T>);
    }
}

// Whether a product whose result is rows of `width` (O += P V in the forward, dV += Pᵀ dO and dK += s·dSᵀ Q in the
// backward) is summed straight into the caller's output rows. The products write whole SIMD batches, so the width
// must be whole batches (a ragged one would write into the next head's columns), and at least two of them: one
// batch wide, the products run in 12 × 1 blocks (one broadcast per multiply-add), slower than the transposed
// orientation's 6 × 4 (kernels/attention_tile_product.h). Otherwise the kernels sum the transpose in a tile and
// store it through 16 × 16 transposes.
template <class T>
bool rows_in_place(std::int64_t width) {
    return width % W<T> == 0 && width >= 2 * W<T>;
}

// ---------------------------------------------------------------------------------------------------------
// Forward: one task = one tile of queries of one (b, h).
//
// The task works with queries along the SIMD lanes: it computes the score tile transposed, Sᵀ = s·K Qᵀ
// (keys × queries), and accumulates the output transposed, Oᵀ += Vᵀ Pᵀ (Dv × queries). Then Qᵀ is packed once
// per task while K and V are read in place (no per-tile packing at all); the online softmax, which works per
// query, runs down the columns of Sᵀ as plain vertical SIMD max/exp/sum with no horizontal reductions; the
// rescaling by e^(m − m') is one vector multiply per row of Oᵀ; and the product's wide side is the query tile
// (64) even when Dv is narrow (16). When Dv is two SIMD batches or more (rows_in_place), the output is summed
// the other way round, O += P V (queries × Dv, Pᵀ read through swapped strides), straight into the task's rows
// of O: no transposed store, and on the causal diagonal each block of rows stops at its last key (KToRow)
// instead of each batch of 16 queries.
// ---------------------------------------------------------------------------------------------------------
// One step of the online softmax over a key tile of nc keys, a batch of queries at a time, down the columns of
// Sᵀ (st, Bc × Br; mqp query columns):
//   m' = max(m, max_c S),  Pᵀ = exp(Sᵀ − m') in place,  l' = e^(m − m') l + Σ_c P,  alpha = e^(m − m')
// (the caller rescales O' by alpha), with S and m in base-2 units and every e^x computed as 2^x (kLog2e). Causal, with the key tile starting `offset` = j0 − i0 keys after the query
// tile: key c is hidden from every query of the batch r..r+W−1 once c > r + W − 1 − offset (its whole column
// of Sᵀ is −∞); for those keys P = 0 is stored without computing exp(−∞) — half of a diagonal tile's work.
//
// Up to four batches of queries go down the columns together (NB of them, each with its own max and sum):
// one batch alone makes both loops a chain of dependent instructions, 64 maxima (or additions) each waiting for
// the last, and the max loop had nothing else to overlap with. Every query's max and sum still run over c in
// order 0, 1, ...: the same bits as one batch at a time. seen[b], the keys batch b sees, does not decrease with
// b (a later batch holds later queries), so phase Q, the keys in [seen[Q − 1], seen[Q]), updates batches Q..NB−1.
// Not inlined: one call per key tile costs nothing, and it keeps forward_keys (and its inlined products) the
// same code whatever NB the compiler would otherwise have pasted in.
template <class T, int NB>
[[gnu::noinline]] void online_softmax_batches(T* st, std::int64_t nc, const std::int64_t* seen, T* m, T* l, T* alpha) {
    using Batch = vec::batch<T>;
    constexpr std::int64_t w = W<T>;
    Batch mx[NB], shift[NB], sum[NB];
    for (int b = 0; b < NB; ++b) mx[b] = Batch::load_aligned(m + b * w);
    attention_tiles::static_for<0, NB>([&](auto phase) {
        constexpr int Q = decltype(phase)::value;
        for (std::int64_t c = Q == 0 ? 0 : seen[Q - 1]; c < seen[Q]; ++c) {
#pragma GCC unroll 4
            for (int b = Q; b < NB; ++b) mx[b] = xsimd::max(mx[b], Batch::load_aligned(st + c * kBr + b * w));
        }
    });
    for (int b = 0; b < NB; ++b) {
        // A query that has seen no key yet keeps m' = −∞; shifting by 0 instead of −∞ makes its P and its
        // alpha exp(−∞) = 0 rather than exp(−∞ + ∞) = NaN.
        shift[b] = xsimd::select(mx[b] == Batch(kNegInf<T>), Batch(T(0)), mx[b]);
        sum[b] = Batch(T(0));
    }
    attention_tiles::static_for<0, NB>([&](auto phase) {
        constexpr int Q = decltype(phase)::value;
        for (std::int64_t c = Q == 0 ? 0 : seen[Q - 1]; c < seen[Q]; ++c) {
#pragma GCC unroll 4
            for (int b = Q; b < NB; ++b) {
                const Batch e = vec::exp2_softmax<T>(Batch::load_aligned(st + c * kBr + b * w) - shift[b]);
                e.store_aligned(st + c * kBr + b * w);
                sum[b] += e;
            }
        }
    });
    for (int b = 0; b < NB; ++b) {
        for (std::int64_t c = seen[b]; c < nc; ++c) Batch(T(0)).store_aligned(st + c * kBr + b * w);
        const Batch a = vec::exp2_softmax<T>(Batch::load_aligned(m + b * w) - shift[b]);
        xsimd::fma(a, Batch::load_aligned(l + b * w), sum[b]).store_aligned(l + b * w);
        mx[b].store_aligned(m + b * w);
        a.store_aligned(alpha + b * w);
    }
}

template <class T>
void online_softmax_step(T* st, std::int64_t nc, std::int64_t mqp, T* m, T* l, T* alpha, bool causal,
                         std::int64_t offset) {
    constexpr std::int64_t w = W<T>;
    constexpr int kGroup = 4;  // batches per group: 4 maxima + 4 sums + 4 shifts in registers
    for (std::int64_t r = 0; r < mqp; r += kGroup * w) {
        const int nb = static_cast<int>(std::min<std::int64_t>(kGroup, (mqp - r) / w));
        std::int64_t seen[kGroup];
        for (int b = 0; b < kGroup; ++b) {
            const std::int64_t last = r + (b + 1) * w;  // one past the batch's last query
            seen[b] = causal ? std::clamp<std::int64_t>(last - offset, 0, nc) : nc;
        }
        T* s = st + r;
        switch (nb) {
            case 4: online_softmax_batches<T, 4>(s, nc, seen, m + r, l + r, alpha + r); break;
            case 3: online_softmax_batches<T, 3>(s, nc, seen, m + r, l + r, alpha + r); break;
            case 2: online_softmax_batches<T, 2>(s, nc, seen, m + r, l + r, alpha + r); break;
            default: online_softmax_batches<T, 1>(s, nc, seen, m + r, l + r, alpha + r); break;
        }
    }
}

// The forward of the key set ks (plain or banded), with the prior term (banded only; rows = 0 for none).
template <class T>
void forward_keys(const AttentionProblem& p, const KeySet& ks, const AttentionPrior<T>& prior, const T* q,
                  AttentionLayout ql, const T* k, AttentionLayout kl, const T* v, AttentionLayout vl, T* o,
                  AttentionLayout ol, T* lse) {
    using Batch = vec::batch<T>;
    constexpr std::int64_t w = W<T>;
    const std::int64_t bh = p.batch * p.heads;
    const std::int64_t nqt = ceil_div(p.tq, kBr);
    if (bh == 0 || nqt == 0) return;
    const std::int64_t D = p.d, Dv = p.dv;
    const T scale2 = static_cast<T>(p.scale * kLog2e);  // base-2 scores S₂ = log2(e)·s·Q Kᵀ (see kLog2e)

    auto task = [&](std::int64_t index) {
        const std::int64_t b = index / (p.heads * nqt), h = (index / nqt) % p.heads;
        const std::int64_t qt = nqt - 1 - index % nqt;  // the longest causal rows first
        const std::int64_t i0 = qt * kBr, mq = std::min(kBr, p.tq - i0), mqp = round_up(mq, w);
        const T* kh = k + b * kl.batch + h * kl.head;  // (Tk, D)
        const T* vh = v + b * vl.batch + h * vl.head;  // (Tk, Dv)

        const Scratch<T> scratch({D * kBr, kBc * kBr, Dv * kBr, kBr, kBr, kBr});
        T* qtp = scratch[0];    // (D, Br)     Q tileᵀ
        T* st = scratch[1];     // (Bc, Br)    Sᵀ, then Pᵀ, in place
        T* acc = scratch[2];    // (Dv, Br)    unnormalised Oᵀ (unless o_rows)
        T* m = scratch[3];      // (Br)        running max
        T* l = scratch[4];      // (Br)        running sum
        T* alpha = scratch[5];  // (Br)        e^(m − m'), the rescaling of this step
        pack_transposed(q + b * ql.batch + h * ql.head + i0 * ql.row, ql.row, mq, D, qtp, kBr, mqp);
        // O' is summed either in the task's own rows of O (o_rows: O' += P V, queries × Dv, with Pᵀ read through
        // swapped strides and V's rows as the packed operand; no transposed store at the end), or transposed in
        // acc (Oᵀ += Vᵀ Pᵀ, then stored through 16 × 16 transposes). See rows_in_place.
        T* oi = o + b * ol.batch + h * ol.head + i0 * ol.row;
        const bool o_rows = rows_in_place<T>(Dv);
        // O'ᵀ holds no sum yet: the first key tile's product writes it, instead of adding to zeros that the
        // online softmax has just rescaled by e^(−∞) = 0 (at a ViT's 17 tokens, one key tile, that zero fill and
        // rescaling were a pass over O'ᵀ each for nothing). A prior term starts it with O0 instead.
        bool acc_live = prior.rows > 0;
        auto zero_acc = [&] {
            if (o_rows)
                for (std::int64_t r = 0; r < mq; ++r) std::fill(oi + r * ol.row, oi + r * ol.row + Dv, T(0));
            else
                for (std::int64_t e = 0; e < Dv; ++e) std::fill(acc + e * kBr, acc + e * kBr + mqp, T(0));
        };
        if (acc_live) zero_acc();
        std::fill(m, m + kBr, kNegInf<T>);
        std::fill(l, l + kBr, T(0));
        // The prior term as the starting state: m = log2 z0 (base 2), l = 1, O' = O0 (attention_band.h)
        for (std::int64_t r = 0; r < mq; ++r) {
            const std::int64_t t = i0 + r - prior.first_row;
            if (t < 0 || t >= prior.rows) continue;
            const T* o0 = prior.o + b * prior.o_layout.batch + h * prior.o_layout.head + t * prior.o_layout.row;
            m[r] = std::log2(prior.z[(b * p.heads + h) * prior.rows + t]);
            l[r] = T(1);
            if (o_rows)
                std::copy(o0, o0 + Dv, oi + r * ol.row);
            else
                for (std::int64_t e = 0; e < Dv; ++e) acc[e * kBr + r] = o0[e];
        }

        // O' (its rows in O, or Oᵀ in acc) times a factor per query: the final 1/l, and for Oᵀ in acc the online
        // softmax's rescaling e^(m − m') (O's rows get that inside the product that adds P V to them).
        const auto scale_queries = [&](const T* factor) {
            if (o_rows) {
                for (std::int64_t r = 0; r < mq; ++r) {
                    const Batch f(factor[r]);
                    T* orow = oi + r * ol.row;
                    for (std::int64_t e = 0; e < Dv; e += w)
                        (Batch::load_unaligned(orow + e) * f).store_unaligned(orow + e);
                }
            } else {
                for (std::int64_t e = 0; e < Dv; ++e) {
                    T* ae = acc + e * kBr;
                    for (std::int64_t r = 0; r < mqp; r += w)
                        (Batch::load_aligned(ae + r) * Batch::load_aligned(factor + r)).store_aligned(ae + r);
                }
            }
        };

        // Keys past the tile's last query are invisible to every row (causal): skip those tiles entirely.
        const std::int64_t keys = ks.causal ? std::min(p.tk, i0 + mq) : p.tk;
        // Banded: no row of the tile sees a window key before i0 − W + 1; tiles wholly before it hold only sinks.
        const std::int64_t first_window_key = ks.banded && ks.window > 0 ? std::max<std::int64_t>(0, i0 - ks.window + 1)
                                              : ks.banded                ? keys
                                                                         : 0;
        for (std::int64_t j0 = 0; j0 < keys;) {
            std::int64_t nc = std::min(kBc, keys - j0);
            if (j0 + nc <= first_window_key) {
                nc = std::min(nc, ks.sinks - j0);  // the tile's sink columns only
                if (nc <= 0) {  // no sink left: on to the tile holding the first window key
                    j0 = std::max(j0 + kBc, first_window_key / kBc * kBc);
                    continue;
                }
            }
            // Sᵀ = s·K Qᵀ, in base-2 units (A = K rows read in place). On the causal diagonal (j0 = i0) only the batches of
            // queries at or after each key are computed; the rest is masked to −∞ just below.
            const bool diagonal = ks.causal && j0 == i0;
            tile_product_causal<T, false, Triangle::ColumnsFromRow>(diagonal, nc, mqp, D, kh + j0 * kl.row, kl.row, 1,
                                                                    qtp, kBr, scale2, st, kBr);
            // + M: key j0 + c is hidden from query i0 + r when j0 + c > i0 + r (only tiles on the diagonal),
            // and, banded, a window key (j0 + c >= S) also when i0 + r >= j0 + c + W
            if (ks.banded) {
                for (std::int64_t c = 0; c < nc; ++c) {
                    const std::int64_t j = j0 + c;
                    const std::int64_t lo = std::clamp<std::int64_t>(j - i0, 0, mqp);
                    const std::int64_t hi = j < ks.sinks ? mqp : std::clamp<std::int64_t>(j - i0 + ks.window, lo, mqp);
                    std::fill(st + c * kBr, st + c * kBr + lo, kNegInf<T>);
                    std::fill(st + c * kBr + hi, st + c * kBr + mqp, kNegInf<T>);
                }
            } else if (ks.causal && j0 + nc > i0 + 1) {
                // Only the batch of queries holding key c's diagonal needs −∞ (its queries before the key): the
                // online softmax reads no key past a batch's last query (online_softmax_step), so the batches
                // wholly before the key are never read for it.
                for (std::int64_t c = 0; c < nc; ++c) {
                    const std::int64_t hidden = std::clamp<std::int64_t>(j0 + c - i0, 0, mqp);
                    if (hidden % w != 0) mask_lanes(st + c * kBr + hidden / w * w, 0, hidden % w);
                }
            }
            // m', l' and Pᵀ in place, then O' = e^(m − m') O: rescale what was summed with the old max
            online_softmax_step(st, nc, mqp, m, l, alpha, ks.causal, j0 - i0);
            // O' += P V in O's rows (A(r, c) = Pᵀ[c][r], swapped strides; V's rows read in place), or O'ᵀ += Vᵀ Pᵀ
            // in acc (A(e, c) = V[c][e], read in place with swapped strides: no transpose). On the diagonal,
            // P[r][c] = 0 for keys c > r: a block of rows (KToRow), resp. a batch of queries (KToColumn), stops
            // at its last key.
            if (o_rows) {
                if (acc_live) {  // O' = alpha∘O' + P V in one pass over O's rows (the product's row_scale)
                    tile_product_causal<T, true, Triangle::KToRow>(diagonal, mq, Dv, nc, st, 1, kBr, vh + j0 * vl.row,
                                                                   vl.row, T(1), oi, ol.row, alpha);
                } else {
                    tile_product_causal<T, false, Triangle::KToRow>(diagonal, mq, Dv, nc, st, 1, kBr, vh + j0 * vl.row,
                                                                    vl.row, T(1), oi, ol.row);
                    acc_live = true;
                }
            } else if (acc_live) {
                scale_queries(alpha);
                tile_product_causal<T, true, Triangle::KToColumn>(diagonal, Dv, mqp, nc, vh + j0 * vl.row, 1, vl.row,
                                                                  st, kBr, T(1), acc, kBr);
            } else {
                tile_product_causal<T, false, Triangle::KToColumn>(diagonal, Dv, mqp, nc, vh + j0 * vl.row, 1, vl.row,
                                                                   st, kBr, T(1), acc, kBr);
                acc_live = true;
            }
            j0 += kBc;
        }
        if (!acc_live) zero_acc();  // no key tile at all (Tk = 0): O = 0

        // O = O'/l, L = ln 2 · (m + log2 l) (m in base-2 units); a row that saw no key: O = 0, L = −∞. O's rows are
        // scaled in place (o_rows), or Oᵀ column by column (one vector multiply per row of Oᵀ, 1/l of each query in
        // its lane), then stored transposed.
        T* li = lse + (b * p.heads + h) * p.tq + i0;
        T* inv = alpha;  // (Br) reused: the last step's rescaling is applied
        for (std::int64_t r = 0; r < mqp; ++r) inv[r] = r < mq && l[r] != T(0) ? T(1) / l[r] : T(0);
        // L, a batch of queries at a time, into m (xsimd's log2: one scalar logf call per query was a few
        // percent of the forward at 17 tokens). Rows with l = 0 are set to −∞ below.
        for (std::int64_t r = 0; r < mqp; r += w) {
            ((Batch::load_aligned(m + r) + xsimd::log2(Batch::load_aligned(l + r))) * Batch(T(kLn2)))
                .store_aligned(m + r);
        }
        scale_queries(inv);
        if (!o_rows) store_transposed(acc, kBr, Dv, mq, oi, ol.row);
        for (std::int64_t r = 0; r < mq; ++r) {
            if (l[r] == T(0)) {
                std::fill(oi + r * ol.row, oi + r * ol.row + Dv, T(0));
                li[r] = kNegInf<T>;
            } else {
                li[r] = m[r];
            }
        }
    };
    const ParallelRegion region;
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, bh * nqt, 1),
                      [&](const tbb::blocked_range<std::int64_t>& range) {
                          for (std::int64_t i = range.begin(); i != range.end(); ++i) task(i);
                      });
}

// The banded key set of a band problem, checked (attention_band.h).
KeySet band_keys(const AttentionProblem& p, AttentionBand band, const char* op) {
    check_attention_problem(p);
    if (!p.causal || p.tq != p.tk || band.window < 0 || band.sinks < 0) {
        throw std::invalid_argument(std::string(op) + ": a band needs causal attention with Tq = Tk and W, S >= 0 (Tq=" +
                                    std::to_string(p.tq) + ", Tk=" + std::to_string(p.tk) +
                                    ", W=" + std::to_string(band.window) + ", S=" + std::to_string(band.sinks) + ")");
    }
    return {true, true, std::min(band.window, p.tk), std::min(band.sinks, p.tk)};
}

}  // namespace

template <class T>
void attention_forward(const AttentionProblem& p, const T* q, AttentionLayout ql, const T* k, AttentionLayout kl,
                       const T* v, AttentionLayout vl, T* o, AttentionLayout ol, T* lse) {
    check_attention_problem(p);
    forward_keys(p, KeySet{p.causal}, AttentionPrior<T>{}, q, ql, k, kl, v, vl, o, ol, lse);
}

template <class T>
void attention_forward_band(const AttentionProblem& p, AttentionBand band, const AttentionPrior<T>& prior,
                            const T* q, AttentionLayout ql, const T* k, AttentionLayout kl, const T* v,
                            AttentionLayout vl, T* o, AttentionLayout ol, T* lse) {
    forward_keys(p, band_keys(p, band, "attention_forward_band"), prior, q, ql, k, kl, v, vl, o, ol, lse);
}

namespace {

// ---------------------------------------------------------------------------------------------------------
// Backward.
// ---------------------------------------------------------------------------------------------------------
struct BackwardPlan {
    std::int64_t nqt, nkt, groups, Dp;
};

BackwardPlan backward_plan(const AttentionProblem& p, std::int64_t w) {
    BackwardPlan plan;
    plan.nqt = ceil_div(p.tq, kBr);
    plan.nkt = ceil_div(p.tk, kBc);
    const std::int64_t bh = std::max<std::int64_t>(1, p.batch * p.heads);
    plan.groups = std::max<std::int64_t>(1, std::min(plan.nkt, ceil_div(kBackwardTasks, bh)));
    plan.Dp = round_up(p.d, w);
    return plan;
}

// One (b, h) of the backward: row pointers (row 0) and row strides of its operands, and the task's own partial
// dQ buffer (or the dQ output itself, see backward_keys).
template <class T>
struct BackwardHead {
    std::int64_t b = 0, h = 0;
    const T* q = nullptr;     // (Tq, D)
    const T* k = nullptr;     // (Tk, D)
    const T* v = nullptr;     // (Tk, Dv)
    const T* dout = nullptr;  // (Tq, Dv)
    const T* lse = nullptr;   // (Tq)
    const T* drow = nullptr;  // (Tq)  D_i = dO_i · O_i
    T* dq_group = nullptr;    // (Tq, Dp)  this group's partial dQ, rows lddq apart
    std::int64_t ldq = 0, ldk = 0, ldv = 0, lddo = 0, lddq = 0;
};

// The scratch tiles of one backward task. The key tile's operands are packed once per key tile; Q and dO
// tiles are only ever the broadcast (left) operand, so they are read in place.
template <class T>
struct KeyTileScratch {
    T* kt;   // (D, Bc)     K tileᵀ, for S = Q Kᵀ
    T* kp;   // (Bc, Dp)    K tile, for dQ += dS K (when D is not a multiple of the SIMD width; see backward_key_tile)
    T* vt;   // (Dv, Bc)    V tileᵀ, for dP = dO Vᵀ
    T* s;    // (Br, Bc)    S, then P
    T* ds;   // (Br, Bc)    dP, then dS
    T* dka;  // (D, Bc)     dK tileᵀ accumulator (when dK's rows are not accumulated in place, see KeyTileRows)
    T* dva;  // (Dv, Bc)    dV tileᵀ accumulator (likewise for dV)
};

// Where a key tile's dK and dV rows are summed. dV = Pᵀ dO and dK = s·dSᵀ Q are (keys × width) products: with
// the keys as the micro-kernel's rows, dO's and Q's rows are its packed operand (read in place) and the sums go
// straight into the output rows (rows_in_place), with no transposed accumulator to zero, and no 16 × 16
// transposes to store it. Otherwise (dk or dv null) the product runs transposed, into st.dka / st.dva:
// dKᵀ += s·Qᵀ dS, dVᵀ += dOᵀ P.
template <class T>
struct KeyTileRows {
    T* dk = nullptr;  // row 0 of the key tile's dK rows, lddk apart, or null
    T* dv = nullptr;  // likewise for dV
    std::int64_t lddk = 0, lddv = 0;
};


// One query tile (qt) against the packed key tile [j0, j0 + nc): recomputes P, then adds its share to the key
// tile's dV and dK (their rows, written instead when kv_first, or the transposed accumulators: see KeyTileRows)
// and to the group's partial dQ. kb: the key tile's rows for dQ += dS K, ldkb apart (st.kp, or K itself).
template <class T>
void backward_tile_pair(const AttentionProblem& p, const KeySet& ks, const BackwardHead<T>& hd,
                        const KeyTileScratch<T>& st, const KeyTileRows<T>& rows, const T* kb, std::int64_t ldkb,
                        std::int64_t qt, std::int64_t j0, std::int64_t nc, bool dq_first, bool kv_first) {
    using Batch = vec::batch<T>;
    constexpr std::int64_t w = W<T>;
    const std::int64_t D = p.d, Dv = p.dv, Dp = round_up(D, w), ncp = round_up(nc, w);
    const T scale = static_cast<T>(p.scale);
    const T scale2 = static_cast<T>(p.scale * kLog2e);  // S in base-2 units, as in the forward
    const std::int64_t i0 = qt * kBr, mq = std::min(kBr, p.tq - i0);
    const T* qi = hd.q + i0 * hd.ldq;      // (mq, D)
    const T* doi = hd.dout + i0 * hd.lddo;  // (mq, Dv)
    T *s = st.s, *ds = st.ds;

    // S = s·Q Kᵀ + M;  P = exp(S − L) = 2^(S₂ − L₂)   (recomputed: exact, since L is the softmax's normaliser;
    // base 2 as in the forward: S₂ = log2(e)·S, L₂ = log2(e)·L). On the causal
    // diagonal (j0 = i0: query r sees key c <= r) every product below skips what is masked or multiplied by
    // P = 0 (kernels/attention_tile_product.h).
    const bool diagonal = ks.causal && j0 == i0;
    tile_product_causal<T, false, Triangle::ColumnsToRow>(diagonal, mq, ncp, D, qi, hd.ldq, 1, st.kt, kBc, scale2, s,
                                                          kBc);
    if (ks.banded)
        mask_tile(s, mq, ncp, ks, i0, j0, nc);
    else if (diagonal || ncp != nc)
        mask_tile_causal(s, mq, ks, i0, j0, nc);
    // dP = dO Vᵀ
    tile_product_causal<T, false, Triangle::ColumnsToRow>(diagonal, mq, ncp, Dv, doi, hd.lddo, 1, st.vt, kBc, T(1), ds,
                                                          kBc);
    // One sweep over the two tiles: P = exp(S − L) and dS = P∘(dP − D) (with the scale s of dQ = s·dS K and
    // dK = s·dSᵀ Q folded in), P kept in a register between the two. Two sweeps (P, then dS reading P back)
    // cost a reload of P and a second pass of per-row bookkeeping. Batches of keys the row cannot see at all
    // hold −∞ only: P = dS = 0 there without computing exp (causal), and dP was not computed on the diagonal.
    const Batch sb(scale);
    for (std::int64_t r = 0; r < mq; ++r) {
        T* sr = s + r * kBc;
        T* dsr = ds + r * kBc;
        const T L = hd.lse[i0 + r];
        if (L == kNegInf<T>) {  // a row that saw no key: P = 0 (not exp(−∞ + ∞) = NaN), and so dS = 0
            std::fill(sr, sr + ncp, T(0));
            std::fill(dsr, dsr + ncp, T(0));
            continue;
        }
        const std::int64_t seen = round_up(row_keys(ks, i0 + r, j0, nc).end, w);
        const Batch Lb(static_cast<T>(static_cast<double>(L) * kLog2e));
        const Batch Db(hd.drow[i0 + r]);
        for (std::int64_t c = 0; c < seen; c += w) {
            const Batch pc = vec::exp2_softmax<T>(Batch::load_aligned(sr + c) - Lb);
            pc.store_aligned(sr + c);
            (sb * pc * (Batch::load_aligned(dsr + c) - Db)).store_aligned(dsr + c);
        }
        std::fill(sr + seen, sr + ncp, T(0));
        std::fill(dsr + seen, dsr + ncp, T(0));
    }
    // dV += Pᵀ dO and dK += s·dSᵀ Q (s is folded into dS) have one shape: a key tile's rows += (its columns of a
    // score tile)ᵀ · (an operand's query rows). Into the output rows (A(c, i) = P[i][c]: swapped strides; the
    // operand's rows read in place; the key tile's first pair writes them: kv_first), or into the transposed
    // accumulator (A(e, i) = operand[i][e]). On the diagonal P[i][c] = 0 for queries i < c: row c's sum starts at
    // query c (KFromRow), resp. a batch of keys at its first query (KFromColumn).
    const auto add_to_key_rows = [&](const T* scores, const T* operand, std::int64_t ld_operand, std::int64_t width,
                                     T* out_rows, std::int64_t ld_out, T* transposed_acc) {
        if (out_rows && kv_first)
            tile_product_causal<T, false, Triangle::KFromRow>(diagonal, nc, width, mq, scores, 1, kBc, operand,
                                                              ld_operand, T(1), out_rows, ld_out);
        else if (out_rows)
            tile_product_causal<T, true, Triangle::KFromRow>(diagonal, nc, width, mq, scores, 1, kBc, operand,
                                                             ld_operand, T(1), out_rows, ld_out);
        else
            tile_product_causal<T, true, Triangle::KFromColumn>(diagonal, width, ncp, mq, operand, 1, ld_operand,
                                                                scores, kBc, T(1), transposed_acc, kBc);
    };
    add_to_key_rows(s, doi, hd.lddo, Dv, rows.dv, rows.lddv, st.dva);  // dV += Pᵀ dO
    add_to_key_rows(ds, qi, hd.ldq, D, rows.dk, rows.lddk, st.dka);    // dK += s·dSᵀ Q
    // dQ_g += s·dS K      (partial sum of group g; summed over groups in pass 2). The group's first key tile
    // writes its rows instead (dq_first: no zero fill before it; see backward_keys).
    T* dq_rows = hd.dq_group + i0 * hd.lddq;
    if (dq_first)
        tile_product_causal<T, false, Triangle::KToRow>(diagonal, mq, Dp, nc, ds, kBc, 1, kb, ldkb, T(1), dq_rows,
                                                        hd.lddq);
    else
        tile_product_causal<T, true, Triangle::KToRow>(diagonal, mq, Dp, nc, ds, kBc, 1, kb, ldkb, T(1), dq_rows,
                                                       hd.lddq);
}

// One key tile (index kt_index) of one head: packs its K and V, runs every query tile that sees it, and writes
// (or with Add, adds to) its rows of dK and dV (no other task writes them). With dq_first its products write the
// group's dQ rows instead of adding to them. Returns the query rows [first, last) it visited.
template <class T, bool Add>
std::pair<std::int64_t, std::int64_t> backward_key_tile(const AttentionProblem& p, const KeySet& ks,
                                                        const BackwardPlan& plan, const BackwardHead<T>& hd,
                                                        const KeyTileScratch<T>& st, std::int64_t kt_index, T* dk,
                                                        AttentionLayout dkl, T* dv, AttentionLayout dvl,
                                                        bool dq_first) {
    const std::int64_t D = p.d, Dv = p.dv;
    const std::int64_t j0 = kt_index * kBc, nc = std::min(kBc, p.tk - j0);
    // Only the first ncp columns of the key-tile operands and accumulators are read (products of width ncp).
    const std::int64_t ncp = round_up(nc, W<T>);
    pack_transposed(hd.k + j0 * hd.ldk, hd.ldk, nc, D, st.kt, kBc, ncp);
    // dQ += dS K reads the K tile's rows as its packed operand: in place when they are whole SIMD batches (D a
    // multiple of the width, e.g. 16, 32, 64, 128 in float; the products load them unaligned), else copied and
    // zero-padded to Dp. (The copy was ~1% of the backward at D = 32-64.)
    const bool k_in_place = plan.Dp == D;
    if (!k_in_place) pack_rows(hd.k + j0 * hd.ldk, hd.ldk, nc, D, st.kp, plan.Dp);
    const T* kb = k_in_place ? hd.k + j0 * hd.ldk : st.kp;
    const std::int64_t ldkb = k_in_place ? hd.ldk : plan.Dp;
    pack_transposed(hd.v + j0 * hd.ldv, hd.ldv, nc, Dv, st.vt, kBc, ncp);
    T* dk_rows = dk + hd.b * dkl.batch + hd.h * dkl.head + j0 * dkl.row;
    T* dv_rows = dv + hd.b * dvl.batch + hd.h * dvl.head + j0 * dvl.row;
    KeyTileRows<T> rows;  // see KeyTileRows: in place, or transposed accumulators zeroed here
    if (rows_in_place<T>(D))
        rows = {dk_rows, nullptr, dkl.row, 0};
    else
        for (std::int64_t e = 0; e < D; ++e) std::fill(st.dka + e * kBc, st.dka + e * kBc + ncp, T(0));
    if (rows_in_place<T>(Dv)) {
        rows.dv = dv_rows;
        rows.lddv = dvl.row;
    } else {
        for (std::int64_t e = 0; e < Dv; ++e) std::fill(st.dva + e * kBc, st.dva + e * kBc + ncp, T(0));
    }
    // Rows summed in place are written by the tile's first pair (without Add), unless that pair sees only some
    // of the keys (banded sinks) or there is none: then they are zeroed first, resp. instead.
    bool kv_first = !Add;
    auto zero_rows = [&] {
        for (std::int64_t c = 0; c < nc; ++c) {
            if (rows.dk) std::fill(rows.dk + c * rows.lddk, rows.dk + c * rows.lddk + D, T(0));
            if (rows.dv) std::fill(rows.dv + c * rows.lddv, rows.dv + c * rows.lddv + Dv, T(0));
        }
        kv_first = false;
    };

    // Causal: query tiles wholly above this key tile (every row i < j0) see none of it: skipped. Banded: rows
    // past j0 + nc − 1 + W − 1 see none of its window keys, only its sink keys (the first S − j0 columns), if any.
    const std::int64_t last_window_row = ks.banded ? j0 + nc + ks.window - 2 : p.tq;
    const std::int64_t qt_first = ks.causal ? j0 / kBr : 0;
    std::int64_t qt = qt_first;
    for (; qt < plan.nqt; ++qt) {
        const std::int64_t pair_keys = qt * kBr > last_window_row ? std::min(nc, ks.sinks - j0) : nc;
        if (pair_keys <= 0) break;
        if (kv_first && pair_keys < nc) zero_rows();
        backward_tile_pair(p, ks, hd, st, rows, kb, ldkb, qt, j0, pair_keys, dq_first, kv_first);
        kv_first = false;
    }
    if (kv_first) zero_rows();

    if (!rows.dk) store_transposed<T, Add>(st.dka, kBc, D, nc, dk_rows, dkl.row);
    if (!rows.dv) store_transposed<T, Add>(st.dva, kBc, Dv, nc, dv_rows, dvl.row);
    return {std::min(p.tq, qt_first * kBr), std::min(p.tq, qt * kBr)};
}

// Pass 2: dQ = Σ_g dQ_g in the fixed order g = 0, 1, ..., G − 1 (zeros when there are no keys); with Add,
// dQ += that sum.
template <class T, bool Add>
void backward_sum_dq_groups(const AttentionProblem& p, const BackwardPlan& plan, const T* dq_part, T* dq,
                            AttentionLayout dql) {
    const std::int64_t D = p.d, Dp = plan.Dp, G = plan.groups;
    vec::parallel_rows(p.batch * p.heads * p.tq, G * D, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const std::int64_t head = r / std::max<std::int64_t>(1, p.tq), i = r % p.tq;
            const std::int64_t b = head / p.heads, h = head % p.heads;
            T* out = dq + b * dql.batch + h * dql.head + i * dql.row;
            const T* part = dq_part + (head * G * p.tq + i) * Dp;
            if (plan.nkt == 0) {
                if (!Add) std::fill(out, out + D, T(0));
                continue;
            }
            if constexpr (Add) {
                for (std::int64_t e = 0; e < D; ++e) {
                    T sum = part[e];
                    for (std::int64_t g = 1; g < G; ++g) sum += part[g * p.tq * Dp + e];
                    out[e] += sum;
                }
                continue;
            }
            std::copy(part, part + D, out);
            for (std::int64_t g = 1; g < G; ++g) {
                const T* pg = part + g * p.tq * Dp;
                for (std::int64_t e = 0; e < D; ++e) out[e] += pg[e];
            }
        }
    });
}

// The backward of the key set ks; with Add, dq, dk, dv are added to instead of written.
template <class T, bool Add>
void backward_keys(const AttentionProblem& p, const KeySet& ks, const T* q, AttentionLayout ql, const T* k,
                   AttentionLayout kl, const T* v, AttentionLayout vl, const T* o, AttentionLayout ol, const T* lse,
                   const T* dout, AttentionLayout dol, T* dq, AttentionLayout dql, T* dk, AttentionLayout dkl, T* dv,
                   AttentionLayout dvl, T* workspace) {
    const std::int64_t bh = p.batch * p.heads;
    if (bh == 0) return;
    const BackwardPlan plan = backward_plan(p, W<T>);
    const std::int64_t D = p.d, Dv = p.dv, Dp = plan.Dp, G = plan.groups;

    // Workspace: G partial dQ buffers per head (B, H, G, Tq, Dp). With one group and D a whole number of SIMD
    // batches (16, 32, 64, 128 in float) the group's buffer is the dQ output itself: the products write exactly
    // D columns, so its rows are accumulated in place and pass 2 is skipped (the same sums in the same order).
    // At short sequences (a ViT's 17 tokens, 512 heads) that pass and its zeroing showed in the profile.
    T* dq_part = workspace;
    const bool dq_in_place = !Add && G == 1 && Dp == D;

    // Pass 1: one task per (b, h, group g) walks key tiles g, g + G, ... and for each the query tiles that see it.
    auto task = [&](std::int64_t index) {
        const std::int64_t g = index % G, head = index / G;
        BackwardHead<T> hd;
        hd.b = head / p.heads;
        hd.h = head % p.heads;
        hd.q = q + hd.b * ql.batch + hd.h * ql.head;
        hd.k = k + hd.b * kl.batch + hd.h * kl.head;
        hd.v = v + hd.b * vl.batch + hd.h * vl.head;
        hd.dout = dout + hd.b * dol.batch + hd.h * dol.head;
        hd.lse = lse + head * p.tq;
        hd.ldq = ql.row;
        hd.ldk = kl.row;
        hd.ldv = vl.row;
        hd.lddo = dol.row;
        if (dq_in_place) {
            hd.dq_group = dq + hd.b * dql.batch + hd.h * dql.head;
            hd.lddq = dql.row;
        } else {
            hd.dq_group = dq_part + (head * G + g) * p.tq * Dp;
            hd.lddq = Dp;
        }
        auto zero_dq_rows = [&](std::int64_t i0, std::int64_t i1) {
            for (std::int64_t i = i0; i < i1; ++i) std::fill(hd.dq_group + i * hd.lddq, hd.dq_group + i * hd.lddq + Dp, T(0));
        };

        const Scratch<T> scratch({D * kBc, kBc * Dp, Dv * kBc, kBr * kBc, kBr * kBc, D * kBc, Dv * kBc, p.tq});
        const KeyTileScratch<T> st{scratch[0], scratch[1], scratch[2], scratch[3],
                                   scratch[4], scratch[5], scratch[6]};
        // D_i = Σ_e dO_ie O_ie for the head's rows (the row term of softmax's backward: Σ_j P_ij dP_ij = dO_i · O_i);
        // each of a head's G tasks computes it (Tq·Dv multiply-adds, nothing next to its tiles), so no pass and
        // no workspace for it.
        T* drow = scratch[7];
        const T* oh = o + hd.b * ol.batch + hd.h * ol.head;
        // These rows are the backward's first reads of O and dO (in a training step O was written long before:
        // it comes from memory), and the loop has nothing else to overlap their latency with. So each row asks
        // for the lines of the row kAhead further on, as kernels/gemm.cpp's prefetch_rows does (the last line too,
        // for rows that do not start on a line). Measured: S's backward 0.95x the time, M's 0.99x; asking for the
        // Q rows as well, 0.95-0.98x more at head widths 16-32 with cold caches (as in a training step).
        constexpr std::int64_t kAhead = 16;  // rows
        const std::int64_t line = 64 / static_cast<std::int64_t>(sizeof(T));  // elements per cache line
        for (std::int64_t i = 0; i < p.tq; ++i) {
            if (i + kAhead < p.tq) {
                const T* dout_ahead = hd.dout + (i + kAhead) * hd.lddo;
                const T* o_ahead = oh + (i + kAhead) * ol.row;
                for (std::int64_t e = 0; e < Dv; e += line) {
                    __builtin_prefetch(dout_ahead + e);
                    __builtin_prefetch(o_ahead + e);
                }
                __builtin_prefetch(dout_ahead + Dv - 1);
                __builtin_prefetch(o_ahead + Dv - 1);
                // and, into L2, the head's Q rows, first read by the first key tile's products S = s·Q Kᵀ
                const T* q_ahead = hd.q + (i + kAhead) * hd.ldq;
                for (std::int64_t e = 0; e < D; e += line) __builtin_prefetch(q_ahead + e, 0, 2);
                __builtin_prefetch(q_ahead + D - 1, 0, 2);
            }
            drow[i] = vec::row_dot(hd.dout + i * hd.lddo, oh + i * ol.row, Dv);
        }
        hd.drow = drow;
        // The group's first key tile writes the dQ rows it visits (no zero fill and no load of zeros in its
        // products: 0 + x = x, the same bits); the rows it does not visit (causal: the query tiles above it) are
        // zeroed after it, before any other key tile adds to them.
        if (g >= plan.nkt) {
            zero_dq_rows(0, p.tq);
            return;
        }
        const auto [first, last] = backward_key_tile<T, Add>(p, ks, plan, hd, st, g, dk, dkl, dv, dvl, true);
        zero_dq_rows(0, first);
        zero_dq_rows(last, p.tq);
        for (std::int64_t kt_index = g + G; kt_index < plan.nkt; kt_index += G)
            backward_key_tile<T, Add>(p, ks, plan, hd, st, kt_index, dk, dkl, dv, dvl, false);
    };
    {
        const ParallelRegion region;
        tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, bh * G, 1),
                          [&](const tbb::blocked_range<std::int64_t>& range) {
                              for (std::int64_t i = range.begin(); i != range.end(); ++i) task(i);
                          });
    }

    // Keys with no tile (Tk = 0) leave nothing to write; dK and dV are empty then.
    if (!dq_in_place) backward_sum_dq_groups<T, Add>(p, plan, dq_part, dq, dql);
}

}  // namespace

template <class T>
void attention_backward(const AttentionProblem& p, const T* q, AttentionLayout ql, const T* k, AttentionLayout kl,
                        const T* v, AttentionLayout vl, const T* o, AttentionLayout ol, const T* lse, const T* dout,
                        AttentionLayout dol, T* dq, AttentionLayout dql, T* dk, AttentionLayout dkl, T* dv,
                        AttentionLayout dvl, T* workspace) {
    check_attention_problem(p);
    backward_keys<T, false>(p, KeySet{p.causal}, q, ql, k, kl, v, vl, o, ol, lse, dout, dol, dq, dql, dk, dkl, dv,
                            dvl, workspace);
}

template <class T>
void attention_backward_band_add(const AttentionProblem& p, AttentionBand band, const T* q, AttentionLayout ql,
                                 const T* k, AttentionLayout kl, const T* v, AttentionLayout vl, const T* o,
                                 AttentionLayout ol, const T* lse, const T* dout, AttentionLayout dol, T* dq,
                                 AttentionLayout dql, T* dk, AttentionLayout dkl, T* dv, AttentionLayout dvl,
                                 T* workspace) {
    backward_keys<T, true>(p, band_keys(p, band, "attention_backward_band_add"), q, ql, k, kl, v, vl, o, ol, lse, dout,
                           dol, dq, dql, dk, dkl, dv, dvl, workspace);
}

std::int64_t attention_backward_workspace(const AttentionProblem& p, std::size_t element_size) {
    check_attention_problem(p);
    const std::int64_t w = element_size == sizeof(double) ? W<double> : W<float>;
    const BackwardPlan plan = backward_plan(p, w);
    return p.batch * p.heads * p.tq * plan.groups * plan.Dp;
}

// ----- the float and double versions the header declares (explicit instantiations) ---------------------------

template void attention_forward(const AttentionProblem&, const float*, AttentionLayout, const float*, AttentionLayout,
                                const float*, AttentionLayout, float*, AttentionLayout, float*);
template void attention_forward(const AttentionProblem&, const double*, AttentionLayout, const double*, AttentionLayout,
                                const double*, AttentionLayout, double*, AttentionLayout, double*);
template void attention_backward(const AttentionProblem&, const float*, AttentionLayout, const float*, AttentionLayout,
                                 const float*, AttentionLayout, const float*, AttentionLayout, const float*,
                                 const float*, AttentionLayout, float*, AttentionLayout, float*, AttentionLayout,
                                 float*, AttentionLayout, float*);
template void attention_backward(const AttentionProblem&, const double*, AttentionLayout, const double*,
                                 AttentionLayout, const double*, AttentionLayout, const double*, AttentionLayout,
                                 const double*, const double*, AttentionLayout, double*, AttentionLayout, double*,
                                 AttentionLayout, double*, AttentionLayout, double*);

template void attention_forward_band(const AttentionProblem&, AttentionBand, const AttentionPrior<float>&,
                                     const float*, AttentionLayout, const float*, AttentionLayout, const float*,
                                     AttentionLayout, float*, AttentionLayout, float*);
template void attention_forward_band(const AttentionProblem&, AttentionBand, const AttentionPrior<double>&,
                                     const double*, AttentionLayout, const double*, AttentionLayout, const double*,
                                     AttentionLayout, double*, AttentionLayout, double*);
template void attention_backward_band_add(const AttentionProblem&, AttentionBand, const float*, AttentionLayout,
                                          const float*, AttentionLayout, const float*, AttentionLayout, const float*,
                                          AttentionLayout, const float*, const float*, AttentionLayout, float*,
                                          AttentionLayout, float*, AttentionLayout, float*, AttentionLayout, float*);
template void attention_backward_band_add(const AttentionProblem&, AttentionBand, const double*, AttentionLayout,
                                          const double*, AttentionLayout, const double*, AttentionLayout,
                                          const double*, AttentionLayout, const double*, const double*,
                                          AttentionLayout, double*, AttentionLayout, double*, AttentionLayout,
                                          double*, AttentionLayout, double*);

}  // namespace tg::kernels
