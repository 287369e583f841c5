// Polynomial attention: forward (non-causal and causal, chunked) and the consistent backward — the exact
// gradient of that forward. The equations are in attention_poly.h and docs/approximate-attention.md; each
// step below quotes the one it computes. The plugin backward is in attention_poly_plugin.cpp, the feature map
// in attention_poly_features.cpp. The causal forward and consistent backward run on the fast path of
// attention_poly_causal.h (the same equations on feature-major panels with SIMD kernels, segments for threads
// inside a head); the loops here are the non-causal ones.
//
// Shape of the work. A head is processed in chunks of c rows. Per chunk the inputs are loaded once into small
// contiguous panels (t·Q_b, t·K_b, Ṽ_b = [V_b | 1], Ĝ_b), the features U_b = φ_Q(t Q_b), W_b = φ_K(t K_b) are
// computed, and every product is a GEMM: the states H, S, R (R × E) against c × R panels, and the c × c
// intra-chunk tiles. Nothing is stored per position: the backward recomputes features and states.
//
// Non-causal, Tq and Tk free:
//   forward    keys:    H = Σ_b W_bᵀ Ṽ_b;                 queries: Ñ_b = U_b H
//   backward   keys:    H again;                           queries: dU_b = Ĝ_b Hᵀ → dQ_b,  T += U_bᵀ Ĝ_b;
//              keys:    dW_b = Ṽ_b Tᵀ → dK_b,  dV_b = W_b T[:, :Dv]
// Causal (M = lower triangle with the diagonal, A_b = M∘p(t²Q_b K_bᵀ) from the scores):
//   forward    Ñ_b = U_b S + A_b Ṽ_b;   S += W_bᵀ Ṽ_b                          (chunks in order)
//   pass 1     dU_b = Ĝ_b Sᵀ;  dS_b = (M∘Ĝ_b Ṽ_bᵀ)∘p′(scores);  dQt_b = dS_b Kt_b + φ_Q′ᵀ dU_b;  S += W_bᵀ Ṽ_b
//   pass 2     dW_b = Ṽ_b Rᵀ;  dKt_b = dS_bᵀ Qt_b + φ_K′ᵀ dW_b;  dV_b = W_b R[:, :Dv] + A_bᵀ G_b;
//              R += U_bᵀ Ĝ_b                                                    (chunks in reverse)
//   and dQ = t·dQt, dK = t·dKt (the chain rule through Qt = t Q). (attention_poly_causal.h computes the
//   intra-chunk terms dS_bᵀ Qt_b and A_bᵀ G_b of pass 2 already in pass 1, from pass 1's tiles.)

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "kernels/attention_poly_causal.h"
#include "kernels/attention_poly_detail.h"
#include "kernels/parallel_region.h"

namespace tg::kernels {

using namespace poly_detail;

namespace {

// From Ñ_b (rows × e): z_i = Ñ[i][Dv], O_i = Ñ[i][:Dv]/z_i (when O is wanted), with the z <= 0 guard.
template <class T>
void finish_rows(const Head<T>& hd, std::int64_t e, const T* nt, std::int64_t row0, std::int64_t rows) {
    for (std::int64_t i = 0; i < rows; ++i) {
        const T z = nt[i * e + e - 1];
        if (z <= T(0)) throw_nonpositive_z("forward", static_cast<double>(z), hd.b, hd.h, row0 + i);
        hd.z_out[row0 + i] = z;
        if (hd.o_out) {
            T* o = hd.o_out + (row0 + i) * hd.ldo_out;
            for (std::int64_t c = 0; c + 1 < e; ++c) o[c] = nt[i * e + c] / z;
        }
    }
}

// Non-causal forward of one head (the causal kernels are in attention_poly_causal.h); e = Dv + 1 with values, 1 for the normaliser alone (hd.v null).
template <class T>
void forward_head(const Context<T>& cx, const Head<T>& hd, std::int64_t e, T* ws) {
    const auto& L = cx.L;
    const auto& p = cx.p;
    const std::int64_t r = L.r, c = L.c, d = L.d;
    T *qt = ws + L.qt, *kt = ws + L.kt, *vt = ws + L.vt, *u = ws + L.u, *w = ws + L.w, *nt = ws + L.nt;
    T* s = ws + L.s;
    std::fill(s, s + r * e, T(0));
    // H = Σ_b W_bᵀ Ṽ_b  (R × E), accumulated chunk by chunk.
    for (std::int64_t j0 = 0; j0 < p.tk; j0 += c) {
        const std::int64_t rows = std::min(c, p.tk - j0);
        load_scaled(kt, hd.k + j0 * hd.ldk, hd.ldk, rows, d, cx.t);
        load_vtilde(vt, e, hd.v ? hd.v + j0 * hd.ldv : nullptr, hd.ldv, rows);
        cx.fm.forward(rows, kt, d, false, w, r);
        gemm<T>(true, false, r, e, rows, T(1), w, r, vt, e, T(1), s, e);
    }
    // Ñ_b = U_b H;  z = Ñ[:, Dv];  O = Ñ[:, :Dv]/z.
    for (std::int64_t i0 = 0; i0 < p.tq; i0 += c) {
        const std::int64_t rows = std::min(c, p.tq - i0);
        load_scaled(qt, hd.q + i0 * hd.ldq, hd.ldq, rows, d, cx.t);
        cx.fm.forward(rows, qt, d, true, u, r);
        gemm<T>(false, false, rows, e, r, T(1), u, r, s, e, T(0), nt, e);
        finish_rows(hd, e, nt, i0, rows);
    }
}

// Non-causal consistent backward of one head (see the top of the file).
template <class T>
void consistent_backward_head(const Context<T>& cx, const Head<T>& hd, T* ws) {
    const auto& L = cx.L;
    const auto& p = cx.p;
    const std::int64_t r = L.r, c = L.c, d = L.d, e = L.e, dv = L.dv;
    T *qt = ws + L.qt, *kt = ws + L.kt, *vt = ws + L.vt, *u = ws + L.u, *w = ws + L.w;
    T *gh = ws + L.gh, *du = ws + L.du, *dqt = ws + L.dqt;
    T *s = ws + L.s, *rs = ws + L.rs, *scratch = ws + L.scratch;
    std::fill(s, s + r * e, T(0));
    std::fill(rs, rs + r * e, T(0));
    // keys: H = Σ_b W_bᵀ Ṽ_b  (in s)
    for (std::int64_t j0 = 0; j0 < p.tk; j0 += c) {
        const std::int64_t rows = std::min(c, p.tk - j0);
        load_scaled(kt, hd.k + j0 * hd.ldk, hd.ldk, rows, d, cx.t);
        load_vtilde(vt, e, hd.v + j0 * hd.ldv, hd.ldv, rows);
        cx.fm.forward(rows, kt, d, false, w, r);
        gemm<T>(true, false, r, e, rows, T(1), w, r, vt, e, T(1), s, e);
    }
    // queries: T += U_bᵀ Ĝ_b (in rs);  dU_b = Ĝ_b Hᵀ;  dQ_b = t·φ_Q′ᵀ dU_b
    for (std::int64_t i0 = 0; i0 < p.tq; i0 += c) {
        const std::int64_t rows = std::min(c, p.tq - i0);
        load_scaled(qt, hd.q + i0 * hd.ldq, hd.ldq, rows, d, cx.t);
        load_ghat(gh, e, hd, i0, rows);
        cx.fm.forward(rows, qt, d, true, u, r);
        gemm<T>(true, false, r, e, rows, T(1), u, r, gh, e, T(1), rs, e);
        gemm<T>(false, true, rows, r, e, T(1), gh, e, s, e, T(0), du, r);
        cx.fm.backward(rows, qt, d, true, du, r, dqt, d, false, scratch);
        store_scaled(hd.dq + i0 * hd.lddq, hd.lddq, dqt, rows, d, cx.t);
    }
    // keys: dW_b = Ṽ_b Tᵀ → dK_b = t·φ_K′ᵀ dW_b;  dV_b = W_b T[:, :Dv]
    for (std::int64_t j0 = 0; j0 < p.tk; j0 += c) {
        const std::int64_t rows = std::min(c, p.tk - j0);
        load_scaled(kt, hd.k + j0 * hd.ldk, hd.ldk, rows, d, cx.t);
        load_vtilde(vt, e, hd.v + j0 * hd.ldv, hd.ldv, rows);
        cx.fm.forward(rows, kt, d, false, w, r);
        gemm<T>(false, true, rows, r, e, T(1), vt, e, rs, e, T(0), du, r);
        cx.fm.backward(rows, kt, d, false, du, r, dqt, d, false, scratch);
        store_scaled(hd.dk + j0 * hd.lddk, hd.lddk, dqt, rows, d, cx.t);
        gemm<T>(false, false, rows, dv, r, T(1), w, r, rs, e, T(0), hd.dv + j0 * hd.lddv, hd.lddv);
    }
}

// Runs f(head, slot workspace) for every (batch, head): slot s handles heads s, s + S, s + 2S, ... in order,
// so each head is computed serially by one task and the result does not depend on the thread count.
template <class T, class F>
void for_each_head(const PolyAttentionProblem& p, const Layout& L, T* workspace, F&& f) {
    const std::int64_t heads = p.batch * p.heads;
    if (heads == 0) return;
    const std::int64_t slots = slot_count(p);
    std::vector<T> own;
    if (workspace == nullptr) {
        own.resize(static_cast<std::size_t>(slots * L.per_slot));
        workspace = own.data();
    }
    const ParallelRegion region;
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, slots, 1), [&](const tbb::blocked_range<std::int64_t>& rg) {
        for (std::int64_t s = rg.begin(); s != rg.end(); ++s) {
            T* ws = slot_base(workspace, L, s);
            for (std::int64_t bh = s; bh < heads; bh += slots) f(bh / p.heads, bh % p.heads, ws);
        }
    });
}

template <class T>
std::vector<T> coefficients_as(const std::vector<double>& a) {
    return std::vector<T>(a.begin(), a.end());
}

}  // namespace

template <class T>
void poly_attention_forward(const PolyAttentionProblem& p, const T* q, AttentionLayout ql, const T* k,
                            AttentionLayout kl, const T* v, AttentionLayout vl, T* o, AttentionLayout ol, T* z,
                            std::type_identity_t<T>* workspace, std::type_identity_t<T>* checkpoints) {
    const auto coeffs = poly_attention_coefficients(p);
    const PolyFeatureMap fm(p.d, coeffs);
    const Layout L = make_layout(p, fm.rank(), PolyAttentionPass::forward, sizeof(T));
    const std::vector<T> a = coefficients_as<T>(coeffs);
    const Context<T> cx{p, fm, L, a.data(), static_cast<T>(std::sqrt(p.scale))};
    const std::int64_t e = v ? p.dv + 1 : 1;
    auto make_head = [&](std::int64_t b, std::int64_t h) {
        Head<T> hd;
        hd.b = b;
        hd.h = h;
        hd.q = at(q, ql, b, h);
        hd.ldq = ql.row;
        hd.k = at(k, kl, b, h);
        hd.ldk = kl.row;
        hd.v = at(v, vl, b, h);
        hd.ldv = vl.row;
        hd.o_out = at(o, ol, b, h);
        hd.ldo_out = ol.row;
        hd.z_out = z + (b * p.heads + h) * p.tq;
        return hd;
    };
    if (p.causal) {  // Tq = Tk: never the "no keys" case below with rows to fill
        poly_causal::forward<T>(p, fm, cx.a, cx.t, v != nullptr, workspace, v != nullptr ? checkpoints : nullptr,
                                [&](std::int64_t bh) { return make_head(bh / p.heads, bh % p.heads); });
        return;
    }
    for_each_head(p, L, workspace, [&](std::int64_t b, std::int64_t h, T* ws) {
        const Head<T> hd = make_head(b, h);
        if (p.tk == 0) {  // no keys: O = 0 and z = 0, as the exact kernel's empty rows
            for (std::int64_t i = 0; i < p.tq; ++i) {
                hd.z_out[i] = T(0);
                if (hd.o_out) std::fill(hd.o_out + i * hd.ldo_out, hd.o_out + i * hd.ldo_out + p.dv, T(0));
            }
            return;
        }
        forward_head(cx, hd, e, ws);
    });
}

template <class T>
void poly_attention_backward(const PolyAttentionProblem& p, PolyGradient grad, const T* q, AttentionLayout ql,
                             const T* k, AttentionLayout kl, const T* v, AttentionLayout vl, const T* o,
                             AttentionLayout ol, const T* z, const T* dout, AttentionLayout dol, T* dq,
                             AttentionLayout dql, T* dk, AttentionLayout dkl, T* dv, AttentionLayout dvl,
                             std::type_identity_t<T>* workspace, const std::type_identity_t<T>* checkpoints) {
    const auto coeffs = poly_attention_coefficients(p);
    const PolyFeatureMap fm(p.d, coeffs);
    const PolyAttentionPass pass = poly_backward_pass(grad);
    const Layout L = make_layout(p, fm.rank(), pass, sizeof(T));
    const std::vector<T> a = coefficients_as<T>(coeffs);
    const Context<T> cx{p, fm, L, a.data(), static_cast<T>(std::sqrt(p.scale))};
    auto make_head = [&](std::int64_t b, std::int64_t h) {
        Head<T> hd;
        hd.b = b;
        hd.h = h;
        hd.q = at(q, ql, b, h);
        hd.ldq = ql.row;
        hd.k = at(k, kl, b, h);
        hd.ldk = kl.row;
        hd.v = at(v, vl, b, h);
        hd.ldv = vl.row;
        hd.o = at(o, ol, b, h);
        hd.ldo = ol.row;
        hd.z = z + (b * p.heads + h) * p.tq;
        hd.dout = at(dout, dol, b, h);
        hd.lddo = dol.row;
        hd.dq = at(dq, dql, b, h);
        hd.lddq = dql.row;
        hd.dk = at(dk, dkl, b, h);
        hd.lddk = dkl.row;
        hd.dv = at(dv, dvl, b, h);
        hd.lddv = dvl.row;
        return hd;
    };
    if (p.causal && grad == PolyGradient::consistent) {
        poly_causal::backward<T>(p, fm, cx.a, cx.t, workspace, checkpoints,
                                 [&](std::int64_t bh) { return make_head(bh / p.heads, bh % p.heads); });
        return;
    }
    for_each_head(p, L, workspace, [&](std::int64_t b, std::int64_t h, T* ws) {
        const Head<T> hd = make_head(b, h);
        if (p.tk == 0 || p.tq == 0) {  // no keys or no queries: every gradient is zero
            for (std::int64_t i = 0; i < p.tq; ++i) std::fill(hd.dq + i * hd.lddq, hd.dq + i * hd.lddq + p.d, T(0));
            for (std::int64_t j = 0; j < p.tk; ++j) {
                std::fill(hd.dk + j * hd.lddk, hd.dk + j * hd.lddk + p.d, T(0));
                std::fill(hd.dv + j * hd.lddv, hd.dv + j * hd.lddv + p.dv, T(0));
            }
            return;
        }
        if (grad == PolyGradient::plugin)
            plugin_backward_head(cx, hd, ws);
        else
            consistent_backward_head(cx, hd, ws);
    });
}

std::int64_t poly_attention_workspace(const PolyAttentionProblem& p, PolyAttentionPass pass) {
    check_poly_attention_problem(p);
    // Elements are counted for float32; a float64 workspace of the same count is also enough, since pieces
    // are aligned to 16 elements for float and 8 for double (the float layout is never smaller).
    if (p.causal && pass != PolyAttentionPass::backward_plugin) {
        const bool backward = pass == PolyAttentionPass::backward_consistent;
        return std::max(poly_causal::workspace_elements<float>(p, backward),
                        poly_causal::workspace_elements<double>(p, backward));
    }
    const Layout Lf = make_layout(p, poly_feature_rank(p.d, p.degree), pass, sizeof(float));
    const Layout Ld = make_layout(p, poly_feature_rank(p.d, p.degree), pass, sizeof(double));
    return slot_count(p) * std::max(Lf.per_slot, Ld.per_slot);
}

std::int64_t poly_attention_checkpoints(const PolyAttentionProblem& p) {
    check_poly_attention_problem(p);
    if (!p.causal) return 0;
    return std::max(poly_causal::checkpoint_elements<float>(p), poly_causal::checkpoint_elements<double>(p));
}

// z alone: the forward without values (null V and O).
template <class T>
void poly_attention_normaliser(const PolyAttentionProblem& p, const T* q, AttentionLayout ql, const T* k,
                               AttentionLayout kl, T* z, std::type_identity_t<T>* workspace) {
    poly_attention_forward<T>(p, q, ql, k, kl, nullptr, {}, nullptr, {}, z, workspace, nullptr);
}

// ----- the float and double versions the header declares (explicit instantiations) ---------------------------

template void poly_attention_forward(const PolyAttentionProblem&, const float*, AttentionLayout, const float*,
                                     AttentionLayout, const float*, AttentionLayout, float*, AttentionLayout, float*,
                                     float*, float*);
template void poly_attention_forward(const PolyAttentionProblem&, const double*, AttentionLayout, const double*,
                                     AttentionLayout, const double*, AttentionLayout, double*, AttentionLayout, double*,
                                     double*, double*);
template void poly_attention_normaliser(const PolyAttentionProblem&, const float*, AttentionLayout, const float*,
                                        AttentionLayout, float*, float*);
template void poly_attention_normaliser(const PolyAttentionProblem&, const double*, AttentionLayout, const double*,
                                        AttentionLayout, double*, double*);
template void poly_attention_backward(const PolyAttentionProblem&, PolyGradient, const float*, AttentionLayout,
                                      const float*, AttentionLayout, const float*, AttentionLayout, const float*,
                                      AttentionLayout, const float*, const float*, AttentionLayout, float*,
                                      AttentionLayout, float*, AttentionLayout, float*, AttentionLayout, float*,
                                      const float*);
template void poly_attention_backward(const PolyAttentionProblem&, PolyGradient, const double*, AttentionLayout,
                                      const double*, AttentionLayout, const double*, AttentionLayout, const double*,
                                      AttentionLayout, const double*, const double*, AttentionLayout, double*,
                                      AttentionLayout, double*, AttentionLayout, double*, AttentionLayout, double*,
                                      const double*);

}  // namespace tg::kernels
