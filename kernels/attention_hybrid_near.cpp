// The exact near part of the hybrid attention (kernels/attention_hybrid.h, equations (H1)–(H7) of
// docs/approximate-attention.md): tiles of FlashAttention's kind restricted to the band of the last W keys
// and to the first S ("sink") columns, so the work is O(T·(W + S)·D) and the memory per task O((W + S)·64).
//
// A query tile [i0, i1) needs the sink keys [0, min(S, i1)) and the window keys [max(S, i0 − W + 1), i1):
// two disjoint column ranges (keys below S are counted once, as sinks), laid side by side in one score tile
// and masked row by row to N(i). A window key tile [j0, j1) (j0 >= S) is seen by the queries [j0, j1 + W − 1);
// the sink keys by every later query. Products of tiles are our GEMM on the operands in place (any row stride).
//
// Because the near set of a row has at most W + S + 64 keys, the forward needs no online rescaling: it takes
// the row's whole near score row at once, M_i = max(max near score, log z^far_i), and adds the far part as
// one more term (the polynomial kernels' O^far, z^far). The backward rebuilds A_ij = exp(s_ij − lse_i) from
// the saved lse = log z, exact for the same reason as in FlashAttention: lse is the row's own normaliser.

#include "kernels/attention_hybrid_near.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/vecmath.h"

namespace tg::kernels::hybrid_near {

namespace {

constexpr std::int64_t kQueryTile = 64;   // rows of a query tile (forward, dQ)
constexpr std::int64_t kKeyTile = 64;     // keys of a window key tile (dK, dV)
constexpr std::int64_t kSinkRows = 256;   // query rows per step of the sink keys' task

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

// C = alpha·op(A)·op(B) + beta·C (row-major, leading dimensions in elements).
template <class T>
void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a, std::int64_t lda,
          const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if constexpr (std::is_same_v<T, float>)
        sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// One task's scratch, kept per thread and grown on demand (tasks never nest).
template <class T>
T* scratch(std::int64_t n) {
    thread_local std::vector<T> buffer;
    if (static_cast<std::int64_t>(buffer.size()) < n) buffer.resize(static_cast<std::size_t>(n));
    return buffer.data();
}

// The rows of one (batch, head).
template <class T>
struct Head {
    const T *q, *k, *v, *dout, *lse, *drow;
    std::int64_t ldq, ldk, ldv, lddo;
    T *dq, *dk, *dv;
    std::int64_t lddq, lddk, lddv;
};

// The sizes every routine needs.
struct Band {
    std::int64_t t, d, dv, window, sinks;
    // Is key j near for query i (j <= i assumed or checked here)? (H1): j > i − W or j < S.
    bool near(std::int64_t i, std::int64_t j) const { return j <= i && (j < sinks || j > i - window); }
};

Band band_of(const HybridAttentionProblem& p) { return {p.poly.tq, p.poly.d, p.poly.dv, p.window, p.sinks}; }

// The first row of (batch b, head h) in a tensor of layout l.
template <class P>
P head_start(P base, AttentionLayout l, std::int64_t b, std::int64_t h) {
    return base + b * l.batch + h * l.head;
}

// The near columns of query tile [i0, i1): sink keys [0, ns) then window keys [w0, w0 + nw).
struct Columns {
    std::int64_t ns = 0, w0 = 0, nw = 0;
    std::int64_t count() const { return ns + nw; }
    std::int64_t key(std::int64_t c) const { return c < ns ? c : w0 + c - ns; }
};

Columns columns_of(const Band& bd, std::int64_t i0, std::int64_t i1) {
    Columns c;
    c.ns = std::min(bd.sinks, i1);
    // Clamped to i1: with S or W near 2^63 (allowed: "everything is near"), w0 · row stride would overflow.
    c.w0 = bd.window > 0 ? std::min(i1, std::max<std::int64_t>(bd.sinks, i0 - bd.window + 1)) : i1;
    c.nw = i1 - c.w0;
    return c;
}

// s (mq × ld) = scale·Q[i0..] Kᵀ over the columns, then −∞ where key is not near for the row.
template <class T>
void near_scores(const Band& bd, const Columns& cols, const Head<T>& hd, T scale, std::int64_t i0, std::int64_t mq,
                 T* s, std::int64_t ld) {
    const T* qi = hd.q + i0 * hd.ldq;
    gemm<T>(false, true, mq, cols.ns, bd.d, scale, qi, hd.ldq, hd.k, hd.ldk, T(0), s, ld);
    gemm<T>(false, true, mq, cols.nw, bd.d, scale, qi, hd.ldq, hd.k + cols.w0 * hd.ldk, hd.ldk, T(0), s + cols.ns, ld);
    for (std::int64_t r = 0; r < mq; ++r)
        for (std::int64_t c = 0; c < cols.count(); ++c)
            if (!bd.near(i0 + r, cols.key(c))) s[r * ld + c] = kNegInf<T>;
}

// Rows of a tile: P = exp(s − lse_i) in place (masked entries −∞ give 0); then dS = scale·P∘(dP − D_i) into dp.
template <class T>
void probabilities(const Head<T>& hd, std::int64_t i0, std::int64_t mq, T* s, std::int64_t ld, std::int64_t n) {
    for (std::int64_t r = 0; r < mq; ++r) vec::exp_shifted_sum(s + r * ld, hd.lse[i0 + r], s + r * ld, n);
}
template <class T>
void score_gradients(const Head<T>& hd, T scale, std::int64_t i0, std::int64_t mq, const T* prob, T* dp,
                     std::int64_t ld, std::int64_t n) {
    for (std::int64_t r = 0; r < mq; ++r) {
        const T d = hd.drow[i0 + r];
        for (std::int64_t c = 0; c < n; ++c) dp[r * ld + c] = scale * prob[r * ld + c] * (dp[r * ld + c] - d);
    }
}

// dst rows (strided) += src (rows × n, contiguous).
template <class T>
void add_rows(T* dst, std::int64_t ld, const T* src, std::int64_t rows, std::int64_t n) {
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t e = 0; e < n; ++e) dst[r * ld + e] += src[r * n + e];
}

// dK, dV of keys [j0, j0 + nc) from queries [i0, i0 + mq): dka (nc × D) and dva (nc × Dv) (= or +=).
//   P = exp(s − lse),  dV += Pᵀ dO,  dP = dO Vᵀ,  dS = scale·P∘(dP − D),  dK += dSᵀ Q        (H3, H4, H6)
template <class T>
void key_block(const Band& bd, const Head<T>& hd, T scale, std::int64_t i0, std::int64_t mq, std::int64_t j0,
               std::int64_t nc, T* s, T* dp, T* dka, T* dva, bool accumulate) {
    const T* qi = hd.q + i0 * hd.ldq;
    const T* doi = hd.dout + i0 * hd.lddo;
    gemm<T>(false, true, mq, nc, bd.d, scale, qi, hd.ldq, hd.k + j0 * hd.ldk, hd.ldk, T(0), s, nc);
    for (std::int64_t r = 0; r < mq; ++r)
        for (std::int64_t c = 0; c < nc; ++c)
            if (!bd.near(i0 + r, j0 + c)) s[r * nc + c] = kNegInf<T>;
    probabilities(hd, i0, mq, s, nc, nc);
    const T beta = accumulate ? T(1) : T(0);
    gemm<T>(true, false, nc, bd.dv, mq, T(1), s, nc, doi, hd.lddo, beta, dva, bd.dv);
    gemm<T>(false, true, mq, nc, bd.dv, T(1), doi, hd.lddo, hd.v + j0 * hd.ldv, hd.ldv, T(0), dp, nc);
    score_gradients(hd, scale, i0, mq, s, dp, nc, nc);
    gemm<T>(true, false, nc, bd.d, mq, T(1), dp, nc, qi, hd.ldq, beta, dka, bd.d);
}

}  // namespace

template <class T>
void forward(const HybridAttentionProblem& p, const T* q, AttentionLayout ql, const T* k, AttentionLayout kl,
             const T* v, AttentionLayout vl, const FarPart<T>& far, T* o, AttentionLayout ol, T* lse) {
    const Band bd = band_of(p);
    const std::int64_t heads = p.poly.batch * p.poly.heads, tiles = (bd.t + kQueryTile - 1) / kQueryTile;
    const T scale = static_cast<T>(p.poly.scale);
    auto task = [&](std::int64_t index) {
        const std::int64_t bh = index / tiles, b = bh / p.poly.heads, h = bh % p.poly.heads;
        const std::int64_t i0 = (index % tiles) * kQueryTile, i1 = std::min(bd.t, i0 + kQueryTile), mq = i1 - i0;
        Head<T> hd{};
        hd.q = head_start(q, ql, b, h);
        hd.ldq = ql.row;
        hd.k = head_start(k, kl, b, h);
        hd.ldk = kl.row;
        const T* vh = head_start(v, vl, b, h);
        const Columns cols = columns_of(bd, i0, i1);
        const std::int64_t n = cols.count(), ld = std::max<std::int64_t>(n, 1);
        T* s = scratch<T>(mq * ld + mq * bd.dv + 2 * mq);
        T* acc = s + mq * ld;      // (mq, Dv)  Σ_near e^{s − M} v_j
        T* norm = acc + mq * bd.dv;  // (mq)    l_i
        T* far_weight = norm + mq;   // (mq)    e^{log z^far_i − M_i}
        T* shift = lse + bh * bd.t + i0;  // M_i, kept in the lse row until it becomes M_i + log l_i
        near_scores(bd, cols, hd, scale, i0, mq, s, ld);
        for (std::int64_t r = 0; r < mq; ++r) {
            const std::int64_t i = i0 + r;
            T* row = s + r * ld;
            const bool has_far = i >= far.first_row && i - far.first_row < far.rows;
            const T log_far = has_far ? std::log(far.z[bh * far.rows + i - far.first_row]) : kNegInf<T>;
            const T m = std::max(vec::row_max(row, n), log_far);
            // Every row has a near key (j = i when W >= 1, j = 0 when S >= 1) or a far one (W = S = 0).
            const T l = vec::exp_shifted_sum(row, m, row, n);
            far_weight[r] = has_far ? std::exp(log_far - m) : T(0);
            norm[r] = l + far_weight[r];
            shift[r] = m;
        }
        // Σ_near e^{s − M} v_j: the sink columns against V[0, ns), the window columns against V[w0, ...)
        gemm<T>(false, false, mq, bd.dv, cols.ns, T(1), s, ld, vh, vl.row, T(0), acc, bd.dv);
        gemm<T>(false, false, mq, bd.dv, cols.nw, T(1), s + cols.ns, ld, vh + cols.w0 * vl.row, vl.row,
                cols.ns > 0 ? T(1) : T(0), acc, bd.dv);
        if (n == 0) std::fill(acc, acc + mq * bd.dv, T(0));
        for (std::int64_t r = 0; r < mq; ++r) {
            const std::int64_t i = i0 + r;
            T* orow = head_start(o, ol, b, h) + i * ol.row;
            const T inv = T(1) / norm[r];
            const T* arow = acc + r * bd.dv;
            if (far_weight[r] != T(0)) {
                const T* frow = head_start(far.o, far.o_layout, b, h) + (i - far.first_row) * far.o_layout.row;
                for (std::int64_t e = 0; e < bd.dv; ++e) orow[e] = (arow[e] + far_weight[r] * frow[e]) * inv;
            } else {
                for (std::int64_t e = 0; e < bd.dv; ++e) orow[e] = arow[e] * inv;
            }
            shift[r] += std::log(norm[r]);  // lse_i = M_i + log l_i
        }
    };
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, heads * tiles, 1),
                      [&](const tbb::blocked_range<std::int64_t>& rg) {
                          for (std::int64_t i = rg.begin(); i != rg.end(); ++i) task(i);
                      });
}

template <class T>
void backward_add(const HybridAttentionProblem& p, const T* q, AttentionLayout ql, const T* k, AttentionLayout kl,
                  const T* v, AttentionLayout vl, const T* lse, const T* drow, const T* dout, AttentionLayout dol,
                  T* dq, AttentionLayout dql, T* dk, AttentionLayout dkl, T* dv, AttentionLayout dvl) {
    const Band bd = band_of(p);
    const std::int64_t heads = p.poly.batch * p.poly.heads;
    const std::int64_t query_tiles = (bd.t + kQueryTile - 1) / kQueryTile;
    // Window keys are j >= S; with W = 0 there are none.
    const std::int64_t first_window_key = std::min(bd.sinks, bd.t);
    const std::int64_t key_tiles = bd.window > 0 ? (bd.t - first_window_key + kKeyTile - 1) / kKeyTile : 0;
    const bool has_sink_task = bd.sinks > 0 && bd.t > 0;
    const std::int64_t per_head = query_tiles + key_tiles + (has_sink_task ? 1 : 0);
    const T scale = static_cast<T>(p.poly.scale);
    auto head_of = [&](std::int64_t bh) {
        const std::int64_t b = bh / p.poly.heads, h = bh % p.poly.heads;
        Head<T> hd;
        hd.q = head_start(q, ql, b, h);
        hd.ldq = ql.row;
        hd.k = head_start(k, kl, b, h);
        hd.ldk = kl.row;
        hd.v = head_start(v, vl, b, h);
        hd.ldv = vl.row;
        hd.dout = head_start(dout, dol, b, h);
        hd.lddo = dol.row;
        hd.lse = lse + bh * bd.t;
        hd.drow = drow + bh * bd.t;
        hd.dq = head_start(dq, dql, b, h);
        hd.lddq = dql.row;
        hd.dk = head_start(dk, dkl, b, h);
        hd.lddk = dkl.row;
        hd.dv = head_start(dv, dvl, b, h);
        hd.lddv = dvl.row;
        return hd;
    };
    // dQ of query tile [i0, i1):  P = exp(s − lse),  dP = dO Vᵀ,  dS = scale·P∘(dP − D),  dQ += dS K
    auto query_task = [&](const Head<T>& hd, std::int64_t i0) {
        const std::int64_t i1 = std::min(bd.t, i0 + kQueryTile), mq = i1 - i0;
        const Columns cols = columns_of(bd, i0, i1);
        const std::int64_t n = cols.count(), ld = std::max<std::int64_t>(n, 1);
        if (n == 0) return;
        T* s = scratch<T>(2 * mq * ld + mq * bd.d);
        T* dp = s + mq * ld;
        T* dqa = dp + mq * ld;
        near_scores(bd, cols, hd, scale, i0, mq, s, ld);
        probabilities(hd, i0, mq, s, ld, n);
        const T* doi = hd.dout + i0 * hd.lddo;
        gemm<T>(false, true, mq, cols.ns, bd.dv, T(1), doi, hd.lddo, hd.v, hd.ldv, T(0), dp, ld);
        gemm<T>(false, true, mq, cols.nw, bd.dv, T(1), doi, hd.lddo, hd.v + cols.w0 * hd.ldv, hd.ldv, T(0),
                dp + cols.ns, ld);
        score_gradients(hd, scale, i0, mq, s, dp, ld, n);
        gemm<T>(false, false, mq, bd.d, cols.ns, T(1), dp, ld, hd.k, hd.ldk, T(0), dqa, bd.d);
        gemm<T>(false, false, mq, bd.d, cols.nw, T(1), dp + cols.ns, ld, hd.k + cols.w0 * hd.ldk, hd.ldk,
                cols.ns > 0 ? T(1) : T(0), dqa, bd.d);
        add_rows(hd.dq + i0 * hd.lddq, hd.lddq, dqa, mq, bd.d);
    };
    // dK, dV of window key tile [j0, j1): the queries [j0, j1 + W − 1) see some of its keys as near.
    auto key_task = [&](const Head<T>& hd, std::int64_t j0) {
        const std::int64_t j1 = std::min(bd.t, j0 + kKeyTile), nc = j1 - j0;
        const std::int64_t i1 = bd.window >= bd.t ? bd.t : std::min(bd.t, j1 + bd.window - 1), mq = i1 - j0;
        T* s = scratch<T>(2 * mq * nc + nc * (bd.d + bd.dv));
        T* dp = s + mq * nc;
        T* dka = dp + mq * nc;
        T* dva = dka + nc * bd.d;
        key_block(bd, hd, scale, j0, mq, j0, nc, s, dp, dka, dva, false);
        add_rows(hd.dk + j0 * hd.lddk, hd.lddk, dka, nc, bd.d);
        add_rows(hd.dv + j0 * hd.lddv, hd.lddv, dva, nc, bd.dv);
    };
    // dK, dV of the sink keys [0, ns): every query i >= j, in steps of kSinkRows rows.
    auto sink_task = [&](const Head<T>& hd) {
        const std::int64_t nc = std::min(bd.sinks, bd.t);
        T* s = scratch<T>(2 * kSinkRows * nc + nc * (bd.d + bd.dv));
        T* dp = s + kSinkRows * nc;
        T* dka = dp + kSinkRows * nc;
        T* dva = dka + nc * bd.d;
        for (std::int64_t i0 = 0; i0 < bd.t; i0 += kSinkRows) {
            const std::int64_t mq = std::min(kSinkRows, bd.t - i0);
            key_block(bd, hd, scale, i0, mq, 0, nc, s, dp, dka, dva, i0 > 0);
        }
        add_rows(hd.dk, hd.lddk, dka, nc, bd.d);
        add_rows(hd.dv, hd.lddv, dva, nc, bd.dv);
    };
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, heads * per_head, 1),
                      [&](const tbb::blocked_range<std::int64_t>& rg) {
                          for (std::int64_t index = rg.begin(); index != rg.end(); ++index) {
                              const std::int64_t bh = index / per_head, task = index % per_head;
                              const Head<T> hd = head_of(bh);
                              if (task < query_tiles)
                                  query_task(hd, task * kQueryTile);
                              else if (task < query_tiles + key_tiles)
                                  key_task(hd, first_window_key + (task - query_tiles) * kKeyTile);
                              else
                                  sink_task(hd);
                          }
                      });
}

template void forward<float>(const HybridAttentionProblem&, const float*, AttentionLayout, const float*,
                             AttentionLayout, const float*, AttentionLayout, const FarPart<float>&, float*,
                             AttentionLayout, float*);
template void forward<double>(const HybridAttentionProblem&, const double*, AttentionLayout, const double*,
                              AttentionLayout, const double*, AttentionLayout, const FarPart<double>&, double*,
                              AttentionLayout, double*);
template void backward_add<float>(const HybridAttentionProblem&, const float*, AttentionLayout, const float*,
                                  AttentionLayout, const float*, AttentionLayout, const float*, const float*,
                                  const float*, AttentionLayout, float*, AttentionLayout, float*, AttentionLayout,
                                  float*, AttentionLayout);
template void backward_add<double>(const HybridAttentionProblem&, const double*, AttentionLayout, const double*,
                                   AttentionLayout, const double*, AttentionLayout, const double*, const double*,
                                   const double*, AttentionLayout, double*, AttentionLayout, double*,
                                   AttentionLayout, double*, AttentionLayout);

}  // namespace tg::kernels::hybrid_near
