#pragma once
// Internal to kernels/attention_poly.cpp (never installed): the causal forward and consistent backward, fast.
//
// The equations are the ones at the top of attention_poly.cpp; this file changes only how they are computed:
//
// 1. Feature-major chunks and one small register-blocked kernel (attention_poly_simd.h). Per chunk of c rows
//    the features Uᵀ, Wᵀ (R × c) are built W rows at a time, and every product — U_b S, W_bᵀ Ṽ_b, Ĝ_b Sᵀ, the
//    c × c score tiles and their products — is `small_gemm` on operands already in L1/L2: no packing, no
//    allocation, no transposition of anything R wide. The masked triangle of a tile is skipped in the products
//    that consume it.
//
// 2. Segments, for threads inside one head. The sequence is cut at chunk boundaries into P segments, P fixed by
//    the shapes (segments_per_head), never by the thread count. The running states are prefix (S) or suffix
//    (R) sums, so each segment can start from its own initial state once that is known:
//      phase 1 (parallel): the state total of every segment that some other segment needs
//                          (S_s = Σ_{b in s} W_bᵀ Ṽ_b for s < P − 1; R_s = Σ_{b in s} U_bᵀ Ĝ_b for s > 0),
//      combine (serial):   S_prefix[s] = S_0 + … + S_{s−1},  R_suffix[s] = R_{P−1} + … + R_{s+1}, in order,
//      phase 2 (parallel): every segment's forward from its initial state, exactly the serial chunk loop; in
//                          the backward first every segment's pass 1 (dQ, and the intra-chunk parts of dK and
//                          dV from the same score tiles), then every segment's pass 2 (adds the inter-chunk
//                          parts of dK and dV), so each c × c tile is computed once.
//    Extra work: one state update (2·R·E flops) per row of the first P − 1 segments. Extra memory: 2·P states
//    of R × E per head. Every number is computed by one task in an order fixed by the shapes, so results are
//    bitwise identical for any thread count.

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/attention_poly_detail.h"
#include "kernels/attention_poly_simd.h"

namespace tg::kernels::poly_causal {

using poly_detail::Head;
using poly_detail::throw_nonpositive_z;
using namespace poly_simd;

// Tasks a problem is split into, at least (segments × heads); P = ceil(kParallelTasks / (B·H)) segments per
// head, at most one per chunk. A constant, so that the split (and hence the rounding) does not depend on the
// machine or the thread count; 2 suits the 2-core targets while costing one thread only ~1.15× extra work.
constexpr std::int64_t kParallelTasks = 2;
constexpr std::int64_t kMaxSlots = 32;

inline std::int64_t max_segments_per_head(const PolyAttentionProblem& p) {
    const std::int64_t heads = std::max<std::int64_t>(p.batch * p.heads, 1);
    return std::max<std::int64_t>(1, (kParallelTasks + heads - 1) / heads);
}
inline std::int64_t segments_per_head(const PolyAttentionProblem& p, std::int64_t chunks) {
    return std::max<std::int64_t>(1, std::min(max_segments_per_head(p), chunks));
}

// Sizes for element type T; e = Dv + 1 (1 for the normaliser alone), ew = Dv rounded up to W (the value
// columns a state update covers with whole vectors), lds = state row length (column Dv is the normaliser's).
struct Dims {
    std::int64_t c = 0, cp = 0, r = 0, d = 0, dp = 0, dv = 0, e = 0, ew = 0, lds = 0, ldv = 0, lvl = 0;
    std::int64_t n = 0, chunks = 0, segments = 1, heads = 0;
    int g = 0;
};

template <class T>
Dims make_dims(const PolyAttentionProblem& p, bool with_values) {
    constexpr std::int64_t W = kWidth<T>;
    Dims D;
    D.n = p.tq;
    D.c = std::min(p.chunk, std::max<std::int64_t>(p.tq, 1));
    D.cp = round_up(D.c, W);
    D.g = p.degree;
    D.r = poly_feature_rank(p.d, p.degree);
    D.lvl = poly_feature_rank(p.d, p.degree - 1);  // monomials of degree < g
    D.d = p.d;
    D.dp = round_up(p.d, W);
    D.dv = with_values ? p.dv : 0;
    D.e = D.dv + 1;
    D.ew = round_up(D.dv, W);
    D.lds = std::max(D.ew, D.e);
    D.ldv = round_up(D.e, W);
    D.chunks = (D.n + D.c - 1) / D.c;
    D.segments = segments_per_head(p, D.chunks);
    D.heads = p.batch * p.heads;
    return D;
}

// One task's panels (offsets in elements, each 64-byte aligned).
struct Slot {
    std::int64_t qt, kt, vt, vtt, gh, ght, ones, u, w, du, sc, t2, t3, nt, dxt, mono, dm, st, qr, dkr, dvr, size;
};

inline Slot make_slot(const Dims& D, bool backward, std::int64_t align) {
    Slot S{};
    std::int64_t at = 0;
    auto take = [&](std::int64_t n) {
        const std::int64_t off = at;
        at += round_up(std::max<std::int64_t>(n, 1), align);
        return off;
    };
    S.qt = take(D.d * D.cp);
    S.kt = take(D.d * D.cp);
    S.vt = take(D.c * D.ldv);
    S.ones = take(D.cp);
    S.u = take(D.r * D.cp);
    S.w = take(D.r * D.cp);
    S.sc = take(D.c * D.cp);
    S.nt = take(D.e * D.cp);
    S.mono = take(D.lvl * D.cp);
    S.st = take(D.r * D.lds);
    if (backward) {
        S.vtt = take(D.e * D.cp);
        S.gh = take(D.c * D.ldv);
        S.ght = take(D.e * D.cp);
        S.du = take(D.r * D.cp);
        S.t2 = take(D.c * D.cp);
        S.t3 = take(D.c * D.cp);
        S.dxt = take(D.d * D.cp);
        S.dm = take(D.lvl * D.cp);
        S.qr = take(D.c * D.dp);
        S.dkr = take(D.c * D.dp);
        S.dvr = take(D.c * std::max(D.ew, D.dv));
    }
    S.size = at + align;  // room to align the slot's start
    return S;
}

// Workspace elements: task slots plus the per-head segment states (2 per segment: the forward's two halves
// of a segment's key state, the backward's S and R).
template <class T>
std::int64_t workspace_elements(const PolyAttentionProblem& p, bool backward) {
    const Dims D = make_dims<T>(p, true);
    const std::int64_t align = 64 / static_cast<std::int64_t>(sizeof(T));
    const Slot S = make_slot(D, backward, align);
    const std::int64_t pmax = max_segments_per_head(p);
    (void)backward;  // both: at most 2 tasks and 2 states per segment
    const std::int64_t slots = std::min(D.heads * pmax * 2, kMaxSlots);
    const std::int64_t states = pmax > 1 ? D.heads * pmax * 2 : 0;
    return slots * S.size + states * round_up(D.r * D.lds, align) + align;
}

template <class T>
T* aligned(T* p) {
    const std::int64_t align = 64 / static_cast<std::int64_t>(sizeof(T));
    const auto mis = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(p) / sizeof(T)) % align;
    return p + (align - mis) % align;
}

// Runs f(task, slot pointer) for tasks 0 .. n−1: slot s runs tasks s, s + slots, ... in order. The caller
// makes every task's result independent of the slot it ran in.
template <class T, class F>
void run_tasks(std::int64_t n, T* slots, std::int64_t slot_size, F&& f) {
    if (n <= 0) return;
    if (n == 1) {
        f(0, slots);
        return;
    }
    const std::int64_t count = std::min(n, kMaxSlots);
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, count, 1), [&](const tbb::blocked_range<std::int64_t>& rg) {
        for (std::int64_t s = rg.begin(); s != rg.end(); ++s)
            for (std::int64_t t = s; t < n; t += count) f(t, slots + s * slot_size);
    });
}

// Everything a chunk routine needs.
template <class T>
struct Ctx {
    const PolyFeatureMap& fm;
    const Dims& D;
    const Slot& S;
    const T* a;  // coefficients a_0..a_g of p
    T t;         // √scale
};

// ---------------------------------------------------------------------------------------------------------
// Loading a chunk [row0, row0 + rows).
// ---------------------------------------------------------------------------------------------------------
// xt[v][i] = t·src[i][v] (D × cp, padding columns zero).
template <class T>
void load_t(T* xt, std::int64_t cp, const T* src, std::int64_t ld, std::int64_t rows, std::int64_t n, T t) {
    transpose_scaled(src, ld, xt, cp, rows, n, t);
    for (std::int64_t v = 0; v < n; ++v) std::fill(xt + v * cp + rows, xt + (v + 1) * cp, T(0));
}

// Ṽ = [V | 1 | 0…] row-major (c × ldv); Dv = 0: only the ones.
template <class T>
void load_vtilde(const Ctx<T>& cx, T* vt, const Head<T>& hd, std::int64_t row0, std::int64_t rows) {
    using V = Vec<T>;
    constexpr std::int64_t W = kWidth<T>;
    const std::int64_t dv = cx.D.dv, ldv = cx.D.ldv, full = dv / W * W;
    for (std::int64_t i = 0; i < rows; ++i) {
        T* row = vt + i * ldv;
        const T* src = dv > 0 ? hd.v + (row0 + i) * hd.ldv : nullptr;
        for (std::int64_t c = 0; c < full; c += W) V::load_unaligned(src + c).store_aligned(row + c);
        for (std::int64_t c = full; c < ldv; c += W) V(T(0)).store_aligned(row + c);
        for (std::int64_t c = full; c < dv; ++c) row[c] = src[c];
        row[dv] = T(1);
    }
}

// Ĝ = [dO/z | −δ/z | 0…] row-major, δ_i = dO_i·O_i, with the z <= 0 guard.
template <class T>
void load_ghat(const Ctx<T>& cx, T* gh, const Head<T>& hd, std::int64_t row0, std::int64_t rows) {
    using V = Vec<T>;
    constexpr std::int64_t W = kWidth<T>;
    const std::int64_t dv = cx.D.dv, ldv = cx.D.ldv, full = dv / W * W;
    for (std::int64_t i = 0; i < rows; ++i) {
        const T* dout = hd.dout + (row0 + i) * hd.lddo;
        const T* o = hd.o + (row0 + i) * hd.ldo;
        const T z = hd.z[row0 + i];
        if (z <= T(0)) throw_nonpositive_z("backward", static_cast<double>(z), hd.b, hd.h, row0 + i);
        const T inv = T(1) / z;
        T* row = gh + i * ldv;
        V dacc(T(0));
        for (std::int64_t c = 0; c < full; c += W) {
            const V g = V::load_unaligned(dout + c);
            dacc = xsimd::fma(g, V::load_unaligned(o + c), dacc);
            (g * V(inv)).store_aligned(row + c);
        }
        for (std::int64_t c = full; c < ldv; c += W) V(T(0)).store_aligned(row + c);
        T delta = xsimd::hadd(dacc);
        for (std::int64_t c = full; c < dv; ++c) {
            delta += dout[c] * o[c];
            row[c] = dout[c] * inv;
        }
        row[dv] = -delta * inv;
    }
}

// dst (e × cp) = src (rows × ld)ᵀ restricted to e columns, padding columns zero.
template <class T>
void transpose_in(T* dst, std::int64_t cp, const T* src, std::int64_t ld, std::int64_t rows, std::int64_t e) {
    transpose_scaled(src, ld, dst, cp, rows, e, T(1));
    for (std::int64_t c = 0; c < e; ++c) std::fill(dst + c * cp + rows, dst + (c + 1) * cp, T(0));
}

// dst rows (strided) = scale · srcᵀ (n × cp, feature-major), rows rows.
template <class T>
void store_t(T* dst, std::int64_t ld, const T* src, std::int64_t cp, std::int64_t rows, std::int64_t n, T scale,
             bool accumulate = false) {
    transpose_scaled(src, cp, dst, ld, n, rows, scale, accumulate);
}

// dst[i][:n] = scale · src[i][:n] for rows rows; with pad, dst rows are then zero-filled up to ldd (a multiple
// of W). Whole vectors where n allows, scalars for the tail.
template <class T>
void copy_rows(T* dst, std::int64_t ldd, const T* src, std::int64_t lds, std::int64_t rows, std::int64_t n, T scale,
               bool pad = true) {
    using V = Vec<T>;
    constexpr std::int64_t W = kWidth<T>;
    const std::int64_t full = n / W * W;
    const V sv(scale);
    for (std::int64_t i = 0; i < rows; ++i) {
        T* d = dst + i * ldd;
        const T* x = src + i * lds;
        for (std::int64_t c = 0; c < full; c += W) (sv * V::load_unaligned(x + c)).store_unaligned(d + c);
        if (pad) std::fill(d + full, d + ldd, T(0));
        for (std::int64_t c = full; c < n; ++c) d[c] = scale * x[c];
    }
}

template <class T>
void load_ones(T* ones, std::int64_t cp, std::int64_t rows) {
    for (std::int64_t i = 0; i < cp; ++i) ones[i] = i < rows ? T(1) : T(0);
}

// ---------------------------------------------------------------------------------------------------------
// Causal masks on c × cp tiles, only rows < rows; masked entries written as 0 without being read.
// ---------------------------------------------------------------------------------------------------------
template <class T>
Vec<T> lane_index() {
    alignas(64) T idx[kWidth<T>];
    for (std::int64_t l = 0; l < kWidth<T>; ++l) idx[l] = static_cast<T>(l);
    return Vec<T>::load_aligned(idx);
}

// Transposed tile (row j = key, column i = query; visible iff i >= j). mode 0: sc ← M∘p(sc);
// mode 1: mb ← M∘mb∘p′(sc); mode 2: both, M∘p(sc) into a.
template <class T>
void mask_t(const Ctx<T>& cx, T* sc, T* mb, std::int64_t rows, int mode, T* a = nullptr) {
    using V = Vec<T>;
    constexpr std::int64_t W = kWidth<T>;
    const std::int64_t cp = cx.D.cp;
    const V lanes = lane_index<T>(), zero(T(0));
    for (std::int64_t j = 0; j < rows; ++j) {
        T* srow = sc + j * cp;
        T* mrow = mb ? mb + j * cp : nullptr;
        T* out = mode == 0 ? srow : mrow;
        T* arow = a ? a + j * cp : nullptr;
        for (std::int64_t l = 0; l < cp; l += W) {
            if (l + W <= j) {
                zero.store_aligned(out + l);
                if (mode == 2) zero.store_aligned(arow + l);
                continue;
            }
            const V x = V::load_aligned(srow + l);
            const auto vis = lanes + V(static_cast<T>(l)) >= V(static_cast<T>(j));
            if (mode == 2) xsimd::select(vis, poly_value(cx.a, cx.D.g, x), zero).store_aligned(arow + l);
            const V y = mode == 0 ? poly_value(cx.a, cx.D.g, x) : V::load_aligned(mrow + l) * poly_derivative(cx.a, cx.D.g, x);
            xsimd::select(vis, y, zero).store_aligned(out + l);
        }
    }
}

// Row-major tile (row i = query, column j = key; visible iff j <= i): a ← M∘p(sc), mb ← M∘mb∘p′(sc).
template <class T>
void mask_rows(const Ctx<T>& cx, const T* sc, T* a, T* mb, std::int64_t rows) {
    using V = Vec<T>;
    constexpr std::int64_t W = kWidth<T>;
    const std::int64_t cp = cx.D.cp;
    const V lanes = lane_index<T>(), zero(T(0));
    for (std::int64_t i = 0; i < rows; ++i) {
        for (std::int64_t l = 0; l < cp; l += W) {
            const std::int64_t at = i * cp + l;
            if (l > i) {
                zero.store_aligned(a + at);
                zero.store_aligned(mb + at);
                continue;
            }
            const V x = V::load_aligned(sc + at);
            const auto vis = lanes + V(static_cast<T>(l)) <= V(static_cast<T>(i));
            xsimd::select(vis, poly_value(cx.a, cx.D.g, x), zero).store_aligned(a + at);
            xsimd::select(vis, V::load_aligned(mb + at) * poly_derivative(cx.a, cx.D.g, x), zero).store_aligned(mb + at);
        }
    }
}

// A c × cp score tile (c = A(rows × k) · B[k × cp]), only the vectors a causal mask leaves visible, band by
// band of W rows: upper = transposed tile (row j needs columns i >= j), else row-major (row i needs j <= i).
// Skipped vectors are never read: the masks above write them as zeros.
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

// state (R × lds) += Mᵀ X over the chunk's rows: M = feature panel (R × cp, feature-major), X row-major
// (c × ldv) whose column Dv is the normaliser's (ones, or −δ/z); xcol = that column as a zero-padded vector,
// used when column Dv lies outside the vectorised columns.
template <class T>
void update_state(const Ctx<T>& cx, T* st, const T* mt, const T* x, const T* xcol, std::int64_t rows) {
    const Dims& D = cx.D;
    if (D.ew > 0) small_gemm<T>(D.r, D.ew / kWidth<T>, rows, mt, D.cp, 1, x, D.ldv, st, D.lds, true);
    if (D.dv >= D.ew) row_dots<T>(D.r, D.cp, mt, D.cp, xcol, st + D.dv, D.lds);
}

// Asks for the rows of chunk b of the arrays a pass reads (bit 1 q, 2 k, 4 v, 8 dout and o) while the
// current chunk is computed: short row runs, which the hardware prefetcher picks up late.
template <class T>
void prefetch_chunk(const Ctx<T>& cx, const Head<T>& hd, std::int64_t b, int which) {
    const Dims& D = cx.D;
    if (b < 0 || b >= D.chunks) return;
    const std::int64_t row0 = b * D.c, rows = std::min(D.c, D.n - row0);
    auto rows_of = [&](const T* base, std::int64_t ld, std::int64_t width) {
        if (base == nullptr) return;
        for (std::int64_t i = 0; i < rows; ++i) {
            const char* row = reinterpret_cast<const char*>(base + (row0 + i) * ld);
            for (std::int64_t off = 0; off < width * static_cast<std::int64_t>(sizeof(T)); off += 64)
                __builtin_prefetch(row + off);
        }
    };
    if (which & 1) rows_of(hd.q, hd.ldq, D.d);
    if (which & 2) rows_of(hd.k, hd.ldk, D.d);
    if (which & 4) rows_of(hd.v, hd.ldv, D.dv);
    if (which & 8) {
        rows_of(hd.dout, hd.lddo, D.dv);
        rows_of(hd.o, hd.ldo, D.dv);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Chunk loops. ws = the task's slot; the running state is ws + S.st, set by the caller.
// ---------------------------------------------------------------------------------------------------------
// S += Σ_b W_bᵀ Ṽ_b over chunks [b0, b1).
template <class T>
void key_state(const Ctx<T>& cx, const Head<T>& hd, T* ws, std::int64_t b0, std::int64_t b1) {
    const Dims& D = cx.D;
    const Slot& S = cx.S;
    for (std::int64_t b = b0; b < b1; ++b) {
        prefetch_chunk(cx, hd, b + 1, 2 | 4);
        const std::int64_t row0 = b * D.c, rows = std::min(D.c, D.n - row0);
        load_t(ws + S.kt, D.cp, hd.k + row0 * hd.ldk, hd.ldk, rows, D.d, cx.t);
        load_vtilde(cx, ws + S.vt, hd, row0, rows);
        load_ones(ws + S.ones, D.cp, rows);
        features_t(cx.fm, D.cp, ws + S.kt, false, ws + S.w, ws + S.mono);
        update_state(cx, ws + S.st, ws + S.w, ws + S.vt, ws + S.ones, rows);
    }
}

// R += Σ_b U_bᵀ Ĝ_b over chunks [b0, b1).
template <class T>
void query_state(const Ctx<T>& cx, const Head<T>& hd, T* ws, std::int64_t b0, std::int64_t b1) {
    const Dims& D = cx.D;
    const Slot& S = cx.S;
    for (std::int64_t b = b0; b < b1; ++b) {
        prefetch_chunk(cx, hd, b + 1, 1 | 8);
        const std::int64_t row0 = b * D.c, rows = std::min(D.c, D.n - row0);
        load_t(ws + S.qt, D.cp, hd.q + row0 * hd.ldq, hd.ldq, rows, D.d, cx.t);
        load_ghat(cx, ws + S.gh, hd, row0, rows);
        transpose_in(ws + S.ght, D.cp, ws + S.gh, D.ldv, rows, D.e);
        features_t(cx.fm, D.cp, ws + S.qt, true, ws + S.u, ws + S.mono);
        update_state(cx, ws + S.st, ws + S.u, ws + S.gh, ws + S.ght + D.dv * D.cp, rows);
    }
}

// Forward over chunks [b0, b1) from the state in ws + S.st:
//   Ñ_bᵀ = Sᵀ U_bᵀ + Ṽ_bᵀ (M∘p(Kt_b Qt_bᵀ));  z = Ñ[:, Dv];  O = Ñ[:, :Dv]/z;  then S += W_bᵀ Ṽ_b.
template <class T>
void forward_chunks(const Ctx<T>& cx, const Head<T>& hd, T* ws, std::int64_t b0, std::int64_t b1) {
    const Dims& D = cx.D;
    const Slot& S = cx.S;
    const std::int64_t cp = D.cp, nv = cp / kWidth<T>;
    T *qt = ws + S.qt, *kt = ws + S.kt, *vt = ws + S.vt, *u = ws + S.u, *w = ws + S.w, *sc = ws + S.sc;
    T *nt = ws + S.nt, *st = ws + S.st;
    for (std::int64_t b = b0; b < b1; ++b) {
        prefetch_chunk(cx, hd, b + 1, 1 | 2 | 4);
        const std::int64_t row0 = b * D.c, rows = std::min(D.c, D.n - row0);
        load_t(qt, cp, hd.q + row0 * hd.ldq, hd.ldq, rows, D.d, cx.t);
        load_t(kt, cp, hd.k + row0 * hd.ldk, hd.ldk, rows, D.d, cx.t);
        load_vtilde(cx, vt, hd, row0, rows);
        load_ones(ws + S.ones, cp, rows);
        features_t(cx.fm, cp, qt, true, u, ws + S.mono);
        features_t(cx.fm, cp, kt, false, w, ws + S.mono);
        // inter-chunk: Ñᵀ[e][i] = Σ_k S[k][e] Uᵀ[k][i]
        small_gemm<T>(D.e, nv, D.r, st, 1, D.lds, u, cp, nt, cp, false);
        // intra-chunk: scoresᵀ[j][i] = Kt_j·Qt_i → M∘p;  Ñᵀ[e][i] += Σ_{j<=i} Ṽ[j][e] Aᵀ[j][i]
        tile_gemm<T>(rows, nv, D.d, kt, 1, cp, qt, cp, sc, cp, true);
        mask_t(cx, sc, static_cast<T*>(nullptr), rows, 0);
        small_gemm<T>(D.e, nv, rows, vt, 1, D.ldv, sc, cp, nt, cp, true, Tri::p_below);
        update_state(cx, st, w, vt, ws + S.ones, rows);
        const T* zrow = nt + D.dv * cp;
        for (std::int64_t i = 0; i < rows; ++i) {
            const T z = zrow[i];
            if (!(z > T(0)) && !(z != z)) throw_nonpositive_z("forward", static_cast<double>(z), hd.b, hd.h, row0 + i);
            hd.z_out[row0 + i] = z;
        }
        if (hd.o_out)
            for (std::int64_t i = 0; i < rows; ++i) {
                T* o = hd.o_out + (row0 + i) * hd.ldo_out;
                const T z = zrow[i];
                for (std::int64_t c = 0; c < D.dv; ++c) o[c] = nt[c * cp + i] / z;
            }
    }
}

// Backward pass 1 over chunks [b0, b1) in order, from the prefix state S in ws + S.st: dQ, and the
// intra-chunk parts of dK and dV (pass 2 adds the inter-chunk parts), all from one transposed tile pair:
//   Aᵀ = Mᵀ∘p(scoresᵀ),  dSᵀ = Mᵀ∘(Ṽ_b Ĝ_bᵀ)∘p′(scoresᵀ);
//   dQtᵀ = Ktᵀ dSᵀ + φ_Q′ᵀ(dUᵀ),  dUᵀ = S Ĝ_bᵀ;   dKt_b = dSᵀ Qt_b;   dV_b = Aᵀ G_b;   then S += W_bᵀ Ṽ_b.
template <class T>
void backward_pass1(const Ctx<T>& cx, const Head<T>& hd, T* ws, std::int64_t b0, std::int64_t b1) {
    const Dims& D = cx.D;
    const Slot& S = cx.S;
    const std::int64_t cp = D.cp, nv = cp / kWidth<T>;
    T *qt = ws + S.qt, *kt = ws + S.kt, *vt = ws + S.vt, *gh = ws + S.gh, *ght = ws + S.ght, *w = ws + S.w;
    T *du = ws + S.du, *sc = ws + S.sc, *mb = ws + S.t2, *a = ws + S.t3, *dxt = ws + S.dxt, *st = ws + S.st;
    T *qr = ws + S.qr, *dkr = ws + S.dkr, *dvr = ws + S.dvr;
    const std::int64_t ldr = std::max(D.ew, D.dv);
    for (std::int64_t b = b0; b < b1; ++b) {
        prefetch_chunk(cx, hd, b + 1, 1 | 2 | 4 | 8);
        const std::int64_t row0 = b * D.c, rows = std::min(D.c, D.n - row0);
        load_t(qt, cp, hd.q + row0 * hd.ldq, hd.ldq, rows, D.d, cx.t);
        load_t(kt, cp, hd.k + row0 * hd.ldk, hd.ldk, rows, D.d, cx.t);
        load_vtilde(cx, vt, hd, row0, rows);
        load_ghat(cx, gh, hd, row0, rows);
        transpose_in(ght, cp, gh, D.ldv, rows, D.e);
        load_ones(ws + S.ones, cp, rows);
        copy_rows(qr, D.dp, hd.q + row0 * hd.ldq, hd.ldq, rows, D.d, cx.t);  // Qt row-major, for dKt_b = dSᵀ Qt_b
        // intra-chunk, transposed tiles (row j = key, column i = query)
        tile_gemm<T>(rows, nv, D.d, kt, 1, cp, qt, cp, sc, cp, true);
        tile_gemm<T>(rows, nv, D.e, vt, D.ldv, 1, ght, cp, mb, cp, true);
        mask_t(cx, sc, mb, rows, 2, a);
        small_gemm<T>(D.d, nv, rows, kt, cp, 1, mb, cp, dxt, cp, false, Tri::p_below);
        // dKt_b[j][:] = Σ_{i>=j} dSᵀ[j][i] Qt[i][:],  dV_b[j][:] = Σ_{i>=j} Aᵀ[j][i] G[i][:]  (row-major)
        small_gemm<T>(rows, D.dp / kWidth<T>, rows, mb, cp, 1, qr, D.dp, dkr, D.dp, false, Tri::p_from_row);
        small_gemm<T>(rows, D.ew / kWidth<T>, rows, a, cp, 1, gh, D.ldv, dvr, ldr, false, Tri::p_from_row);
        copy_rows(hd.dk + row0 * hd.lddk, hd.lddk, dkr, D.dp, rows, D.d, cx.t, false);
        copy_rows(hd.dv + row0 * hd.lddv, hd.lddv, dvr, ldr, rows, D.dv, T(1), false);
        // inter-chunk: dUᵀ[k][i] = Σ_e S[k][e] Ĝᵀ[e][i], through the feature VJP
        small_gemm<T>(D.r, nv, D.e, st, D.lds, 1, ght, cp, du, cp, false);
        monomials_t(cx.fm, cp, qt, ws + S.mono);
        features_vjp_t(cx.fm, cp, qt, true, du, ws + S.mono, ws + S.dm, dxt);
        store_t(hd.dq + row0 * hd.lddq, hd.lddq, dxt, cp, rows, D.d, cx.t);
        features_t(cx.fm, cp, kt, false, w, ws + S.mono);
        update_state(cx, st, w, vt, ws + S.ones, rows);
    }
}

// Backward pass 2 over chunks [b0, b1) in reverse, from the suffix state R in ws + S.st: adds the inter-chunk
// parts of dK and dV to what pass 1 wrote.
//   dKt_b += φ_K′ᵀ(dWᵀ),  dWᵀ = R Ṽ_bᵀ;   dV_b += W_b R[:, :Dv];   then R += U_bᵀ Ĝ_b.
template <class T>
void backward_pass2(const Ctx<T>& cx, const Head<T>& hd, T* ws, std::int64_t b0, std::int64_t b1) {
    const Dims& D = cx.D;
    const Slot& S = cx.S;
    const std::int64_t cp = D.cp, nv = cp / kWidth<T>;
    T *qt = ws + S.qt, *kt = ws + S.kt, *vt = ws + S.vt, *vtt = ws + S.vtt, *gh = ws + S.gh, *ght = ws + S.ght;
    T *u = ws + S.u, *w = ws + S.w, *dw = ws + S.du, *dxt = ws + S.dxt, *dvt = ws + S.nt, *st = ws + S.st;
    for (std::int64_t b = b1 - 1; b >= b0; --b) {
        prefetch_chunk(cx, hd, b - 1, 1 | 2 | 4 | 8);
        const std::int64_t row0 = b * D.c, rows = std::min(D.c, D.n - row0);
        load_t(qt, cp, hd.q + row0 * hd.ldq, hd.ldq, rows, D.d, cx.t);
        load_t(kt, cp, hd.k + row0 * hd.ldk, hd.ldk, rows, D.d, cx.t);
        load_vtilde(cx, vt, hd, row0, rows);
        transpose_in(vtt, cp, vt, D.ldv, rows, D.e);
        load_ghat(cx, gh, hd, row0, rows);
        transpose_in(ght, cp, gh, D.ldv, rows, D.e);
        features_t(cx.fm, cp, qt, true, u, ws + S.mono);
        features_t(cx.fm, cp, kt, false, w, ws + S.mono);  // leaves K's monomials for the VJP
        // dWᵀ[k][j] = Σ_e R[k][e] Ṽᵀ[e][j], through the feature VJP
        small_gemm<T>(D.r, nv, D.e, st, D.lds, 1, vtt, cp, dw, cp, false);
        std::fill(dxt, dxt + D.d * cp, T(0));
        features_vjp_t(cx.fm, cp, kt, false, dw, ws + S.mono, ws + S.dm, dxt);
        store_t(hd.dk + row0 * hd.lddk, hd.lddk, dxt, cp, rows, D.d, cx.t, true);
        // dVᵀ[e][j] = Σ_k R[k][e] Wᵀ[k][j]
        small_gemm<T>(D.dv, nv, D.r, st, 1, D.lds, w, cp, dvt, cp, false);
        store_t(hd.dv + row0 * hd.lddv, hd.lddv, dvt, cp, rows, D.dv, T(1), true);
        update_state(cx, st, u, gh, ght + D.dv * cp, rows);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Drivers: heads × segments as tasks, in the two phases described at the top.
// ---------------------------------------------------------------------------------------------------------
inline std::int64_t segment_begin(const Dims& D, std::int64_t s) { return s * D.chunks / D.segments; }

// states[s] ← Σ_{s' < s} states[s'] (prefix, forward = true) or Σ_{s' > s} (suffix), element by element in a
// fixed order.
template <class T>
void exclusive_scan(T* states, std::int64_t count, std::int64_t stride, std::int64_t size, bool forward) {
    for (std::int64_t x = 0; x < size; ++x) {
        T run = T(0);
        for (std::int64_t k = 0; k < count; ++k) {
            const std::int64_t s = forward ? k : count - 1 - k;
            const T t = states[s * stride + x];
            states[s * stride + x] = run;
            run += t;
        }
    }
}

// make_head(bh) → Head<T> of flat head index bh.
template <class T, class MakeHead>
void forward(const PolyAttentionProblem& p, const PolyFeatureMap& fm, const T* a, T t, bool with_values,
             T* workspace, MakeHead&& make_head) {
    const Dims D = make_dims<T>(p, with_values);
    const Dims Dw = make_dims<T>(p, true);  // the workspace is laid out for the values
    const std::int64_t align = 64 / static_cast<std::int64_t>(sizeof(T));
    const Slot S = make_slot(D, false, align);
    const Slot Sw = make_slot(Dw, false, align);
    std::vector<T> own;
    if (workspace == nullptr) {
        own.resize(static_cast<std::size_t>(workspace_elements<T>(p, false)));
        workspace = own.data();
    }
    T* base = aligned(workspace);
    const std::int64_t pmax = max_segments_per_head(p), P = D.segments;
    const std::int64_t state_size = round_up(Dw.r * Dw.lds, align);
    T* states = base + std::min(D.heads * pmax * 2, kMaxSlots) * Sw.size;
    const Ctx<T> cx{fm, D, S, a, t};
    auto slot = [&](T* s) { return aligned(s); };
    // per head: 2·pmax states; phase 1 writes the key-state totals of the two halves of segment s into 2s and
    // 2s + 1 (two tasks per segment, so that two threads share phase 1 even when P = 2), the scan turns 2s
    // into segment s's prefix state.
    auto part = [&](std::int64_t bh, std::int64_t i) { return states + (bh * 2 * pmax + i) * state_size; };
    const std::int64_t size = D.r * D.lds;
    if (P > 1) {  // phase 1: S totals of the halves of segments 0 .. P−2
        run_tasks(D.heads * (P - 1) * 2, base, Sw.size, [&](std::int64_t task, T* sp) {
            const std::int64_t bh = task / (2 * (P - 1)), k = task % (2 * (P - 1)), s = k / 2, h = k % 2;
            const std::int64_t b0 = segment_begin(D, s), b1 = segment_begin(D, s + 1), mid = b0 + (b1 - b0) / 2;
            T* ws = slot(sp);
            std::fill(ws + S.st, ws + S.st + size, T(0));
            key_state(cx, make_head(bh), ws, h == 0 ? b0 : mid, h == 0 ? mid : b1);
            std::copy(ws + S.st, ws + S.st + size, part(bh, k));
        });
        for (std::int64_t bh = 0; bh < D.heads; ++bh)
            for (std::int64_t x = 0; x < size; ++x) {
                T run = T(0);
                for (std::int64_t s = 0; s < P; ++s) {
                    const T first = s < P - 1 ? part(bh, 2 * s)[x] : T(0);
                    const T second = s < P - 1 ? part(bh, 2 * s + 1)[x] : T(0);
                    part(bh, 2 * s)[x] = run;
                    run = (run + first) + second;
                }
            }
    }
    run_tasks(D.heads * P, base, Sw.size, [&](std::int64_t task, T* sp) {
        const std::int64_t bh = task / P, s = task % P;
        T* ws = slot(sp);
        if (s == 0)
            std::fill(ws + S.st, ws + S.st + D.r * D.lds, T(0));
        else {
            const T* init = part(bh, 2 * s);
            std::copy(init, init + size, ws + S.st);
        }
        forward_chunks(cx, make_head(bh), ws, segment_begin(D, s), segment_begin(D, s + 1));
    });
}

template <class T, class MakeHead>
void backward(const PolyAttentionProblem& p, const PolyFeatureMap& fm, const T* a, T t, T* workspace,
              MakeHead&& make_head) {
    const Dims D = make_dims<T>(p, true);
    const std::int64_t align = 64 / static_cast<std::int64_t>(sizeof(T));
    const Slot S = make_slot(D, true, align);
    std::vector<T> own;
    if (workspace == nullptr) {
        own.resize(static_cast<std::size_t>(workspace_elements<T>(p, true)));
        workspace = own.data();
    }
    T* base = aligned(workspace);
    const std::int64_t pmax = max_segments_per_head(p), P = D.segments;
    const std::int64_t state_size = round_up(D.r * D.lds, align);
    // per head: pmax S states, then pmax R states
    T* states = base + std::min(D.heads * pmax * 2, kMaxSlots) * S.size;
    auto s_state = [&](std::int64_t bh, std::int64_t s) { return states + (bh * 2 * pmax + s) * state_size; };
    auto r_state = [&](std::int64_t bh, std::int64_t s) { return states + (bh * 2 * pmax + pmax + s) * state_size; };
    const Ctx<T> cx{fm, D, S, a, t};
    const std::int64_t size = D.r * D.lds;
    if (P > 1) {  // phase 1: S totals of segments 0 .. P−2, R totals of segments 1 .. P−1
        run_tasks(D.heads * 2 * (P - 1), base, S.size, [&](std::int64_t task, T* sp) {
            const std::int64_t bh = task / (2 * (P - 1)), k = task % (2 * (P - 1));
            T* ws = aligned(sp);
            std::fill(ws + S.st, ws + S.st + size, T(0));
            const Head<T> hd = make_head(bh);
            if (k < P - 1) {
                key_state(cx, hd, ws, segment_begin(D, k), segment_begin(D, k + 1));
                std::copy(ws + S.st, ws + S.st + size, s_state(bh, k));
            } else {
                const std::int64_t s = k - (P - 1) + 1;
                query_state(cx, hd, ws, segment_begin(D, s), segment_begin(D, s + 1));
                std::copy(ws + S.st, ws + S.st + size, r_state(bh, s));
            }
        });
        for (std::int64_t bh = 0; bh < D.heads; ++bh) {
            std::fill(s_state(bh, P - 1), s_state(bh, P - 1) + size, T(0));  // unused totals: the scans skip them
            std::fill(r_state(bh, 0), r_state(bh, 0) + size, T(0));
            exclusive_scan(s_state(bh, 0), P, state_size, size, true);
            exclusive_scan(r_state(bh, 0), P, state_size, size, false);
        }
    }
    // phase 2: pass 1 of every segment (writes dQ and the intra-chunk parts of dK, dV), then pass 2 of every
    // segment (adds the inter-chunk parts), each from its initial state
    for (const bool pass2 : {false, true}) {
        run_tasks(D.heads * P, base, S.size, [&](std::int64_t task, T* sp) {
            const std::int64_t bh = task / P, s = task % P;
            T* ws = aligned(sp);
            if (P == 1)
                std::fill(ws + S.st, ws + S.st + size, T(0));
            else {
                const T* init = pass2 ? r_state(bh, s) : s_state(bh, s);
                std::copy(init, init + size, ws + S.st);
            }
            const Head<T> hd = make_head(bh);
            if (pass2)
                backward_pass2(cx, hd, ws, segment_begin(D, s), segment_begin(D, s + 1));
            else
                backward_pass1(cx, hd, ws, segment_begin(D, s), segment_begin(D, s + 1));
        });
    }
}

}  // namespace tg::kernels::poly_causal
