#pragma once
// Internal to the causal polynomial kernels (kernels/attention_poly_causal.h): the running states.
// S = Σ W_bᵀ Ṽ_b (over the keys of earlier chunks) and, in the backward, R = Σ U_bᵀ Ĝ_b (over the queries of
// later chunks) are prefix and suffix sums over chunks: the state update of one chunk, and the chunk loop that
// only accumulates a segment's key state (phase 1 of the forward).

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

}  // namespace tg::kernels::poly_causal
