// The plugin backward of polynomial attention: the paper's Algorithm 1 (Liang et al. 2024, arXiv 2408.13233) —
// the exact softmax-gradient formula with the low-rank Â = U Wᵀ in place of A:
//     dS = Â∘dÂ,  dÂ = Ĝ Ṽᵀ (= G Vᵀ − δ/z),   dQ = s·dS K,   dK = s·dSᵀ Q,   dV = Âᵀ G.
// dS is never formed. The tensor trick: (u_i·w_j)(ĝ_i·ṽ_j) = (u_i⊗ĝ_i)·(w_j⊗ṽ_j), so with X = U⊗Ĝ and
// Y = W⊗Ṽ (row-wise Kronecker products, rank R·E)
//     dQ = s·X (Yᵀ K),   dK = s·Y (Xᵀ Q)                     (docs/approximate-attention.md, "The plugin backward")
// We never store X or Y either: Yᵀ K = Σ_j w_j (ṽ_j⊗k_j)ᵀ is an R × (E·D) state P_Y = Wᵀ Z with Z_j = ṽ_j⊗k_j
// (one GEMM per chunk), and X_i·(Yᵀ K) = Σ_e ĝ_ie (u_i P_Y)[e, :] — a GEMM U_b P_Y followed by a contraction with
// Ĝ per row. Likewise Xᵀ Q = Uᵀ (Ĝ⊗Q) = P_X. With Qt = t Q, Kt = t K and s = t², s·X(Yᵀ K) = t·X(Yᵀ Kt).
// Causal: P_Y is a prefix state (chunks in order, for dQ), P_X and R_V = Σ U_iᵀ G_i suffix states (chunks in
// reverse, for dK, dV); the c × c intra-chunk tiles are exact: E_b = A_b∘(M∘Ĝ_b Ṽ_bᵀ) with A_b from the scores.
// Cost ≈ D times the consistent backward's (the states are E·D wide instead of E).

#include "kernels/attention_poly_detail.h"

namespace tg::kernels::poly_detail {

namespace {

// zb[i][e·D + k] = x[i][e] · y[i][k]: the row-wise Kronecker product of x (rows × E) and y (rows × D).
template <class T>
void kron_rows(T* zb, const T* x, std::int64_t e, const T* y, std::int64_t d, std::int64_t rows) {
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t c = 0; c < e; ++c) {
            const T xc = x[i * e + c];
            T* out = zb + i * e * d + c * d;
            for (std::int64_t k = 0; k < d; ++k) out[k] = xc * y[i * d + k];
        }
}

// out[i][:] (+)= Σ_c x[i][c] · pb[i][c·D : (c+1)·D]: contract a (rows × E·D) panel with x (rows × E) per row.
template <class T>
void contract_rows(T* out, const T* x, std::int64_t e, const T* pb, std::int64_t d, std::int64_t rows,
                   bool accumulate) {
    for (std::int64_t i = 0; i < rows; ++i) {
        T* o = out + i * d;
        if (!accumulate) std::fill(o, o + d, T(0));
        for (std::int64_t c = 0; c < e; ++c) {
            const T xc = x[i * e + c];
            const T* row = pb + i * e * d + c * d;
            for (std::int64_t k = 0; k < d; ++k) o[k] += xc * row[k];
        }
    }
}

}  // namespace

template <class T>
void plugin_backward_head(const Context<T>& cx, const Head<T>& hd, T* ws) {
    const auto& L = cx.L;
    const auto& p = cx.p;
    const std::int64_t r = L.r, c = L.c, d = L.d, e = L.e, dv = L.dv, ed = L.ed;
    T *qt = ws + L.qt, *kt = ws + L.kt, *vt = ws + L.vt, *u = ws + L.u, *w = ws + L.w, *gh = ws + L.gh;
    T *dqt = ws + L.dqt, *sc = ws + L.sc, *a = ws + L.a, *mb = ws + L.mb;
    T *py = ws + L.py, *px = ws + L.px, *zb = ws + L.zb, *pb = ws + L.pb, *rv = ws + L.rv;
    std::fill(py, py + r * ed, T(0));
    std::fill(px, px + r * ed, T(0));
    std::fill(rv, rv + r * dv, T(0));
    if (!p.causal) {
        // keys: P_Y = Σ_b W_bᵀ (Ṽ_b⊗Kt_b)
        for (std::int64_t j0 = 0; j0 < p.tk; j0 += c) {
            const std::int64_t rows = std::min(c, p.tk - j0);
            load_scaled(kt, hd.k + j0 * hd.ldk, hd.ldk, rows, d, cx.t);
            load_vtilde(vt, e, hd.v + j0 * hd.ldv, hd.ldv, rows);
            cx.fm.forward(rows, kt, d, false, w, r);
            kron_rows(zb, vt, e, kt, d, rows);
            gemm<T>(true, false, r, ed, rows, T(1), w, r, zb, ed, T(1), py, ed);
        }
        // queries: dQ_b = t·contract(U_b P_Y, Ĝ_b);  P_X += U_bᵀ (Ĝ_b⊗Qt_b);  R_V += U_bᵀ G_b
        for (std::int64_t i0 = 0; i0 < p.tq; i0 += c) {
            const std::int64_t rows = std::min(c, p.tq - i0);
            load_scaled(qt, hd.q + i0 * hd.ldq, hd.ldq, rows, d, cx.t);
            load_ghat(gh, e, hd, i0, rows);
            cx.fm.forward(rows, qt, d, true, u, r);
            gemm<T>(false, false, rows, ed, r, T(1), u, r, py, ed, T(0), pb, ed);
            contract_rows(dqt, gh, e, pb, d, rows, false);
            store_scaled(hd.dq + i0 * hd.lddq, hd.lddq, dqt, rows, d, cx.t);
            kron_rows(zb, gh, e, qt, d, rows);
            gemm<T>(true, false, r, ed, rows, T(1), u, r, zb, ed, T(1), px, ed);
            gemm<T>(true, false, r, dv, rows, T(1), u, r, gh, e, T(1), rv, dv);
        }
        // keys: dK_b = t·contract(W_b P_X, Ṽ_b);  dV_b = W_b R_V
        for (std::int64_t j0 = 0; j0 < p.tk; j0 += c) {
            const std::int64_t rows = std::min(c, p.tk - j0);
            load_scaled(kt, hd.k + j0 * hd.ldk, hd.ldk, rows, d, cx.t);
            load_vtilde(vt, e, hd.v + j0 * hd.ldv, hd.ldv, rows);
            cx.fm.forward(rows, kt, d, false, w, r);
            gemm<T>(false, false, rows, ed, r, T(1), w, r, px, ed, T(0), pb, ed);
            contract_rows(dqt, vt, e, pb, d, rows, false);
            store_scaled(hd.dk + j0 * hd.lddk, hd.lddk, dqt, rows, d, cx.t);
            gemm<T>(false, false, rows, dv, r, T(1), w, r, rv, dv, T(0), hd.dv + j0 * hd.lddv, hd.lddv);
        }
        return;
    }
    const std::int64_t n = p.tq;
    // The intra-chunk tiles of chunk [i0, i0 + rows): a = M∘p(scores), mb = E_b = a∘(Ĝ_b Ṽ_bᵀ).
    auto load_chunk = [&](std::int64_t i0, std::int64_t rows) {
        load_scaled(qt, hd.q + i0 * hd.ldq, hd.ldq, rows, d, cx.t);
        load_scaled(kt, hd.k + i0 * hd.ldk, hd.ldk, rows, d, cx.t);
        load_vtilde(vt, e, hd.v + i0 * hd.ldv, hd.ldv, rows);
        load_ghat(gh, e, hd, i0, rows);
        cx.fm.forward(rows, qt, d, true, u, r);
        cx.fm.forward(rows, kt, d, false, w, r);
        gemm<T>(false, true, rows, rows, e, T(1), gh, e, vt, e, T(0), mb, c);
        intra_tiles(cx, rows, qt, kt, sc, a, static_cast<T*>(nullptr));
        for (std::int64_t i = 0; i < rows; ++i)
            for (std::int64_t j = 0; j < rows; ++j) mb[i * c + j] *= a[i * c + j];  // a is 0 above the diagonal
    };
    // Pass 1, chunks in order: dQt_b = E_b Kt_b + contract(U_b P_Y, Ĝ_b);  P_Y += W_bᵀ (Ṽ_b⊗Kt_b).
    for (std::int64_t i0 = 0; i0 < n; i0 += c) {
        const std::int64_t rows = std::min(c, n - i0);
        load_chunk(i0, rows);
        gemm<T>(false, false, rows, d, rows, T(1), mb, c, kt, d, T(0), dqt, d);
        gemm<T>(false, false, rows, ed, r, T(1), u, r, py, ed, T(0), pb, ed);
        contract_rows(dqt, gh, e, pb, d, rows, true);
        store_scaled(hd.dq + i0 * hd.lddq, hd.lddq, dqt, rows, d, cx.t);
        kron_rows(zb, vt, e, kt, d, rows);
        gemm<T>(true, false, r, ed, rows, T(1), w, r, zb, ed, T(1), py, ed);
    }
    // Pass 2, chunks in reverse: dKt_b = E_bᵀ Qt_b + contract(W_b P_X, Ṽ_b);  dV_b = W_b R_V + A_bᵀ G_b;
    // then P_X += U_bᵀ (Ĝ_b⊗Qt_b), R_V += U_bᵀ G_b.
    const std::int64_t last = (n - 1) / c * c;
    for (std::int64_t i0 = last; i0 >= 0; i0 -= c) {
        const std::int64_t rows = std::min(c, n - i0);
        load_chunk(i0, rows);
        gemm<T>(true, false, rows, d, rows, T(1), mb, c, qt, d, T(0), dqt, d);
        gemm<T>(false, false, rows, ed, r, T(1), w, r, px, ed, T(0), pb, ed);
        contract_rows(dqt, vt, e, pb, d, rows, true);
        store_scaled(hd.dk + i0 * hd.lddk, hd.lddk, dqt, rows, d, cx.t);
        T* dvb = hd.dv + i0 * hd.lddv;
        gemm<T>(false, false, rows, dv, r, T(1), w, r, rv, dv, T(0), dvb, hd.lddv);
        gemm<T>(true, false, rows, dv, rows, T(1), a, c, gh, e, T(1), dvb, hd.lddv);
        kron_rows(zb, gh, e, qt, d, rows);
        gemm<T>(true, false, r, ed, rows, T(1), u, r, zb, ed, T(1), px, ed);
        gemm<T>(true, false, r, dv, rows, T(1), u, r, gh, e, T(1), rv, dv);
    }
}

template void plugin_backward_head<float>(const Context<float>&, const Head<float>&, float*);
template void plugin_backward_head<double>(const Context<double>&, const Head<double>&, double*);

}  // namespace tg::kernels::poly_detail
