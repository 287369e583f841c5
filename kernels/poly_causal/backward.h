#pragma once
// Internal to the causal polynomial kernels (kernels/attention_poly_causal.h): the consistent causal backward
// (the exact gradient of forward.h). Pass 1 runs the chunks in order from the prefix state S and writes dQ
// and the intra-chunk parts of dK and dV; pass 2 runs them in reverse from the suffix state R and adds the
// inter-chunk parts.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/attention_poly_simd.h"
#include "kernels/poly_causal/chunk_io.h"
#include "kernels/poly_causal/layout.h"
#include "kernels/poly_causal/schedule.h"
#include "kernels/poly_causal/state.h"
#include "kernels/poly_causal/tiles.h"

namespace tg::kernels::poly_causal {

using namespace poly_simd;

// Backward pass 1 over chunks [b0, b1) in order, from the prefix state S in ws + L.state: dQ, and the
// intra-chunk parts of dK and dV (pass 2 adds the inter-chunk parts), all from one transposed tile pair:
//   Aᵀ = Mᵀ∘p(scoresᵀ),  dSᵀ = Mᵀ∘(Ṽ_b Ĝ_bᵀ)∘p′(scoresᵀ);
//   dQtᵀ = Ktᵀ dSᵀ + φ_Q′ᵀ(dUᵀ),  dUᵀ = S Ĝ_bᵀ;   dKt_b = dSᵀ Qt_b;   dV_b = Aᵀ G_b;   then S += W_bᵀ Ṽ_b.
template <class T>
void backward_pass1(const Context<T>& cx, const Head<T>& hd, T* ws, std::int64_t b0, std::int64_t b1) {
    const CausalLayout& L = cx.L;
    const std::int64_t cp = L.cp, nv = cp / kWidth<T>;
    T *qt = ws + L.q_t, *kt = ws + L.k_t, *vt = ws + L.v_tilde, *gh = ws + L.g_hat, *ght = ws + L.g_hat_t;
    T *w = ws + L.w_t, *du = ws + L.d_features_t, *sc = ws + L.scores_t, *mb = ws + L.dscores_t;
    T *a = ws + L.weights_t, *dxt = ws + L.dx_t, *st = ws + L.state;
    T *qr = ws + L.q_rows, *dkr = ws + L.dk_rows, *dvr = ws + L.dv_rows;
    const std::int64_t ldr = std::max(L.ew, L.dv);
    for (std::int64_t b = b0; b < b1; ++b) {
        prefetch_chunk(cx, hd, b + 1, prefetch::q | prefetch::k | prefetch::v | prefetch::dout_and_o);
        const std::int64_t row0 = b * L.c, rows = std::min(L.c, L.n - row0);
        load_t(qt, cp, hd.q + row0 * hd.ldq, hd.ldq, rows, L.d, cx.t);
        load_t(kt, cp, hd.k + row0 * hd.ldk, hd.ldk, rows, L.d, cx.t);
        load_vtilde(cx, vt, hd, row0, rows);
        load_ghat(cx, gh, hd, row0, rows);
        transpose_in(ght, cp, gh, L.ldv, rows, L.e);
        load_ones(ws + L.ones, cp, rows);
        copy_rows(qr, L.dp, hd.q + row0 * hd.ldq, hd.ldq, rows, L.d, cx.t);  // Qt row-major, for dKt_b = dSᵀ Qt_b
        // intra-chunk, transposed tiles (row j = key, column i = query)
        tile_gemm<T>(rows, nv, L.d, kt, 1, cp, qt, cp, sc, cp, true);
        tile_gemm<T>(rows, nv, L.e, vt, L.ldv, 1, ght, cp, mb, cp, true);
        mask_tile_t(cx, TileMask::weights_and_dscores, rows, sc, mb, a);
        small_gemm<T>(L.d, nv, rows, kt, cp, 1, mb, cp, dxt, cp, false, Tri::p_below);
        // dKt_b[j][:] = Σ_{i>=j} dSᵀ[j][i] Qt[i][:],  dV_b[j][:] = Σ_{i>=j} Aᵀ[j][i] G[i][:]  (row-major)
        small_gemm<T>(rows, L.dp / kWidth<T>, rows, mb, cp, 1, qr, L.dp, dkr, L.dp, false, Tri::p_from_row);
        small_gemm<T>(rows, L.ew / kWidth<T>, rows, a, cp, 1, gh, L.ldv, dvr, ldr, false, Tri::p_from_row);
        copy_rows(hd.dk + row0 * hd.lddk, hd.lddk, dkr, L.dp, rows, L.d, cx.t, false);
        copy_rows(hd.dv + row0 * hd.lddv, hd.lddv, dvr, ldr, rows, L.dv, T(1), false);
        // inter-chunk: dUᵀ[k][i] = Σ_e S[k][e] Ĝᵀ[e][i], through the feature VJP
        small_gemm<T>(L.r, nv, L.e, st, L.lds, 1, ght, cp, du, cp, false);
        monomials_t(cx.fm, cp, qt, ws + L.monomials_t);
        features_vjp_t(cx.fm, cp, qt, true, du, ws + L.monomials_t, ws + L.dmonomials_t, dxt);
        store_t(hd.dq + row0 * hd.lddq, hd.lddq, dxt, cp, rows, L.d, cx.t);
        features_t(cx.fm, cp, kt, false, w, ws + L.monomials_t);
        update_state(cx, st, w, vt, ws + L.ones, rows);
    }
}

// Backward pass 2 over chunks [b0, b1) in reverse, from the suffix state R in ws + L.state: adds the
// inter-chunk parts of dK and dV to what pass 1 wrote.
//   dKt_b += φ_K′ᵀ(dWᵀ),  dWᵀ = R Ṽ_bᵀ;   dV_b += W_b R[:, :Dv];   then R += U_bᵀ Ĝ_b.
template <class T>
void backward_pass2(const Context<T>& cx, const Head<T>& hd, T* ws, std::int64_t b0, std::int64_t b1) {
    const CausalLayout& L = cx.L;
    const std::int64_t cp = L.cp, nv = cp / kWidth<T>;
    T *qt = ws + L.q_t, *kt = ws + L.k_t, *vt = ws + L.v_tilde, *vtt = ws + L.v_tilde_t, *gh = ws + L.g_hat;
    T *ght = ws + L.g_hat_t, *u = ws + L.u_t, *w = ws + L.w_t, *dw = ws + L.d_features_t, *dxt = ws + L.dx_t;
    T *dvt = ws + L.numerator_t, *st = ws + L.state;
    for (std::int64_t b = b1 - 1; b >= b0; --b) {
        prefetch_chunk(cx, hd, b - 1, prefetch::q | prefetch::k | prefetch::v | prefetch::dout_and_o);
        const std::int64_t row0 = b * L.c, rows = std::min(L.c, L.n - row0);
        load_t(qt, cp, hd.q + row0 * hd.ldq, hd.ldq, rows, L.d, cx.t);
        load_t(kt, cp, hd.k + row0 * hd.ldk, hd.ldk, rows, L.d, cx.t);
        load_vtilde(cx, vt, hd, row0, rows);
        transpose_in(vtt, cp, vt, L.ldv, rows, L.e);
        load_ghat(cx, gh, hd, row0, rows);
        transpose_in(ght, cp, gh, L.ldv, rows, L.e);
        features_t(cx.fm, cp, qt, true, u, ws + L.monomials_t);
        features_t(cx.fm, cp, kt, false, w, ws + L.monomials_t);  // leaves K's monomials for the VJP
        // dWᵀ[k][j] = Σ_e R[k][e] Ṽᵀ[e][j], through the feature VJP
        small_gemm<T>(L.r, nv, L.e, st, L.lds, 1, vtt, cp, dw, cp, false);
        std::fill(dxt, dxt + L.d * cp, T(0));
        features_vjp_t(cx.fm, cp, kt, false, dw, ws + L.monomials_t, ws + L.dmonomials_t, dxt);
        store_t(hd.dk + row0 * hd.lddk, hd.lddk, dxt, cp, rows, L.d, cx.t, true);
        // dVᵀ[e][j] = Σ_k R[k][e] Wᵀ[k][j]
        small_gemm<T>(L.dv, nv, L.r, st, 1, L.lds, w, cp, dvt, cp, false);
        store_t(hd.dv + row0 * hd.lddv, hd.lddv, dvt, cp, rows, L.dv, T(1), true);
        update_state(cx, st, u, gh, ght + L.dv * cp, rows);
    }
}

// dQ, dK, dV of every head, in the two phases of attention_poly_causal.h; make_head(bh) → Head<T> of flat
// head index bh.
template <class T, class MakeHead>
void backward(const PolyAttentionProblem& p, const PolyFeatureMap& fm, const T* a, T t, T* workspace,
              MakeHead&& make_head) {
    const CausalLayout L = make_causal_layout<T>(p, true, true);
    std::vector<T> own;
    if (workspace == nullptr) {
        own.resize(static_cast<std::size_t>(workspace_elements<T>(p, true)));
        workspace = own.data();
    }
    T* base = aligned(workspace);
    const std::int64_t pmax = max_segments_per_head(p), P = L.segments;
    const std::int64_t state_size = round_up(L.r * L.lds, kAlign<T>);
    // per head: pmax S states, then pmax R states
    T* states = base + std::min(L.heads * pmax * 2, kMaxSlots) * L.slot_size;
    auto s_state = [&](std::int64_t bh, std::int64_t s) { return states + (bh * 2 * pmax + s) * state_size; };
    auto r_state = [&](std::int64_t bh, std::int64_t s) { return states + (bh * 2 * pmax + pmax + s) * state_size; };
    const Context<T> cx{p, fm, L, a, t};
    const std::int64_t size = L.r * L.lds;
    if (P > 1) {  // phase 1: S totals of segments 0 .. P−2, R totals of segments 1 .. P−1
        run_tasks(L.heads * 2 * (P - 1), base, L.slot_size, [&](std::int64_t task, T* sp) {
            const std::int64_t bh = task / (2 * (P - 1)), k = task % (2 * (P - 1));
            T* ws = aligned(sp);
            std::fill(ws + L.state, ws + L.state + size, T(0));
            const Head<T> hd = make_head(bh);
            if (k < P - 1) {
                key_state(cx, hd, ws, segment_begin(L, k), segment_begin(L, k + 1));
                std::copy(ws + L.state, ws + L.state + size, s_state(bh, k));
            } else {
                const std::int64_t s = k - (P - 1) + 1;
                query_state(cx, hd, ws, segment_begin(L, s), segment_begin(L, s + 1));
                std::copy(ws + L.state, ws + L.state + size, r_state(bh, s));
            }
        });
        for (std::int64_t bh = 0; bh < L.heads; ++bh) {
            std::fill(s_state(bh, P - 1), s_state(bh, P - 1) + size, T(0));  // unused totals: the scans skip them
            std::fill(r_state(bh, 0), r_state(bh, 0) + size, T(0));
            exclusive_scan(s_state(bh, 0), P, state_size, size, true);
            exclusive_scan(r_state(bh, 0), P, state_size, size, false);
        }
    }
    // phase 2: pass 1 of every segment (writes dQ and the intra-chunk parts of dK, dV), then pass 2 of every
    // segment (adds the inter-chunk parts), each from its initial state
    for (const bool pass2 : {false, true}) {
        run_tasks(L.heads * P, base, L.slot_size, [&](std::int64_t task, T* sp) {
            const std::int64_t bh = task / P, s = task % P;
            T* ws = aligned(sp);
            if (P == 1)
                std::fill(ws + L.state, ws + L.state + size, T(0));
            else {
                const T* init = pass2 ? r_state(bh, s) : s_state(bh, s);
                std::copy(init, init + size, ws + L.state);
            }
            const Head<T> hd = make_head(bh);
            if (pass2)
                backward_pass2(cx, hd, ws, segment_begin(L, s), segment_begin(L, s + 1));
            else
                backward_pass1(cx, hd, ws, segment_begin(L, s), segment_begin(L, s + 1));
        });
    }
}

}  // namespace tg::kernels::poly_causal
