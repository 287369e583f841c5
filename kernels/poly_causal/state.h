#pragma once
// Internal to the causal polynomial kernels (kernels/attention_poly_causal.h): the running states.
// S = Σ W_bᵀ Ṽ_b (over the keys of earlier chunks) and, in the backward, R = Σ U_bᵀ Ĝ_b (over the queries of
// later chunks) are prefix and suffix sums over chunks: the state update of one chunk, the chunk loops that
// only accumulate a segment's total (phase 1 of the drivers), and the scan that turns segment totals into
// each segment's initial state.

#include <algorithm>
#include <cstdint>

#include "kernels/attention_poly_simd.h"
#include "kernels/poly_causal/chunk_io.h"
#include "kernels/poly_causal/layout.h"

namespace tg::kernels::poly_causal {

using namespace poly_simd;

// state (R × lds) += Mᵀ X over the chunk's rows: M = feature panel (R × cp, feature-major), X row-major
// (c × ldv) whose column Dv is the normaliser's (ones, or −δ/z); xcol = that column as a zero-padded vector,
// used when column Dv lies outside the vectorised columns.
template <class T>
void update_state(const Context<T>& cx, T* st, const T* mt, const T* x, const T* xcol, std::int64_t rows) {
    const CausalLayout& L = cx.L;
    if (L.ew > 0) small_gemm<T>(L.r, L.ew / kWidth<T>, rows, mt, L.cp, 1, x, L.ldv, st, L.lds, true);
    if (L.dv >= L.ew) row_dots<T>(L.r, L.cp, mt, L.cp, xcol, st + L.dv, L.lds);
}

// ws = the task's slot; the running state is ws + L.state, set by the caller.
// S += Σ_b W_bᵀ Ṽ_b over chunks [b0, b1).
template <class T>
void key_state(const Context<T>& cx, const Head<T>& hd, T* ws, std::int64_t b0, std::int64_t b1) {
    const CausalLayout& L = cx.L;
    for (std::int64_t b = b0; b < b1; ++b) {
        prefetch_chunk(cx, hd, b + 1, prefetch::k | prefetch::v);
        const std::int64_t row0 = b * L.c, rows = std::min(L.c, L.n - row0);
        load_t(ws + L.k_t, L.cp, hd.k + row0 * hd.ldk, hd.ldk, rows, L.d, cx.t);
        load_vtilde(cx, ws + L.v_tilde, hd, row0, rows);
        load_ones(ws + L.ones, L.cp, rows);
        features_t(cx.fm, L.cp, ws + L.k_t, false, ws + L.w_t, ws + L.monomials_t);
        update_state(cx, ws + L.state, ws + L.w_t, ws + L.v_tilde, ws + L.ones, rows);
    }
}

// R += Σ_b U_bᵀ Ĝ_b over chunks [b0, b1).
template <class T>
void query_state(const Context<T>& cx, const Head<T>& hd, T* ws, std::int64_t b0, std::int64_t b1) {
    const CausalLayout& L = cx.L;
    for (std::int64_t b = b0; b < b1; ++b) {
        prefetch_chunk(cx, hd, b + 1, prefetch::q | prefetch::dout_and_o);
        const std::int64_t row0 = b * L.c, rows = std::min(L.c, L.n - row0);
        load_t(ws + L.q_t, L.cp, hd.q + row0 * hd.ldq, hd.ldq, rows, L.d, cx.t);
        load_ghat(cx, ws + L.g_hat, hd, row0, rows);
        transpose_in(ws + L.g_hat_t, L.cp, ws + L.g_hat, L.ldv, rows, L.e);
        features_t(cx.fm, L.cp, ws + L.q_t, true, ws + L.u_t, ws + L.monomials_t);
        update_state(cx, ws + L.state, ws + L.u_t, ws + L.g_hat, ws + L.g_hat_t + L.dv * L.cp, rows);
    }
}

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

}  // namespace tg::kernels::poly_causal
