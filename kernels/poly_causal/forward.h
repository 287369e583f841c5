#pragma once
// Internal to the causal polynomial kernels (kernels/attention_poly_causal.h): the causal forward. Per chunk
// b, from the prefix state S of the chunks before it: Ñ_b = U_b S + A_b Ṽ_b (inter-chunk through the
// features, intra-chunk from the masked score tile), z and O from Ñ_b, then S += W_bᵀ Ṽ_b.

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

// Forward over chunks [b0, b1) from the state in ws + L.state:
//   Ñ_bᵀ = Sᵀ U_bᵀ + Ṽ_bᵀ (M∘p(Kt_b Qt_bᵀ));  z = Ñ[:, Dv];  O = Ñ[:, :Dv]/z;  then S += W_bᵀ Ṽ_b.
// checkpoints (the head's, or null): S at the start of every checkpoint block is copied there (layout.h).
template <class T>
void forward_chunks(const Context<T>& cx, const Head<T>& hd, T* ws, std::int64_t b0, std::int64_t b1,
                    T* checkpoints) {
    const CausalLayout& L = cx.L;
    const std::int64_t cp = L.cp, nv = cp / kWidth<T>;
    T *qt = ws + L.q_t, *kt = ws + L.k_t, *vt = ws + L.v_tilde, *u = ws + L.u_t, *w = ws + L.w_t;
    T *sc = ws + L.scores_t, *nt = ws + L.numerator_t, *st = ws + L.state;
    for (std::int64_t b = b0; b < b1; ++b) {
        prefetch_chunk(cx, hd, b + 1, prefetch::q | prefetch::k | prefetch::v);
        if (checkpoints && b % L.block == 0)
            std::copy(st, st + L.r * L.lds, checkpoints + b / L.block * state_stride<T>(L));
        const std::int64_t row0 = b * L.c, rows = std::min(L.c, L.n - row0);
        load_t(qt, cp, hd.q + row0 * hd.ldq, hd.ldq, rows, L.d, cx.t);
        load_t(kt, cp, hd.k + row0 * hd.ldk, hd.ldk, rows, L.d, cx.t);
        load_vtilde(cx, vt, hd, row0, rows);
        load_ones(ws + L.ones, cp, rows);
        features_t(cx.fm, cp, qt, true, u, ws + L.monomials_t);
        features_t(cx.fm, cp, kt, false, w, ws + L.monomials_t);
        // inter-chunk: Ñᵀ[e][i] = Σ_k S[k][e] Uᵀ[k][i]
        small_gemm<T>(L.e, nv, L.r, st, 1, L.lds, u, cp, nt, cp, false);
        // intra-chunk: scoresᵀ[j][i] = Kt_j·Qt_i → M∘p;  Ñᵀ[e][i] += Σ_{j<=i} Ṽ[j][e] Aᵀ[j][i]
        tile_gemm<T>(rows, nv, L.d, kt, 1, cp, qt, cp, sc, cp, true);
        mask_tile_t(cx, TileMask::weights, rows, sc);
        small_gemm<T>(L.e, nv, rows, vt, 1, L.ldv, sc, cp, nt, cp, true, Tri::p_below);
        update_state(cx, st, w, vt, ws + L.ones, rows);
        const T* zrow = nt + L.dv * cp;
        for (std::int64_t i = 0; i < rows; ++i) {
            const T z = zrow[i];
            if (!(z > T(0)) && !(z != z)) throw_nonpositive_z("forward", static_cast<double>(z), hd.b, hd.h, row0 + i);
            hd.z_out[row0 + i] = z;
        }
        if (hd.o_out)
            for (std::int64_t i = 0; i < rows; ++i) {
                T* o = hd.o_out + (row0 + i) * hd.ldo_out;
                const T z = zrow[i];
                for (std::int64_t c = 0; c < L.dv; ++c) o[c] = nt[c * cp + i] / z;
            }
    }
}

// The forward of every head, in the two phases of attention_poly_causal.h: O and z (O only when
// with_values; the normaliser alone otherwise), and the checkpoints when not null (with_values only;
// checkpoint_elements<T>(p) of them, head after head). make_head(bh) → Head<T> of flat head index bh.
template <class T, class MakeHead>
void forward(const PolyAttentionProblem& p, const PolyFeatureMap& fm, const T* a, T t, bool with_values,
             T* workspace, T* checkpoints, MakeHead&& make_head) {
    const CausalLayout L = make_causal_layout<T>(p, with_values, false);
    const CausalLayout Lw = make_causal_layout<T>(p, true, false);  // the workspace is laid out for the values
    std::vector<T> own;
    if (workspace == nullptr) {
        own.resize(static_cast<std::size_t>(workspace_elements<T>(p, false)));
        workspace = own.data();
    }
    T* base = aligned(workspace);
    const std::int64_t pmax = max_segments_per_head(p), P = L.segments;
    const std::int64_t state_size = round_up(Lw.r * Lw.lds, kAlign<T>);
    T* states = base + std::min(L.heads * pmax * 2, kMaxSlots) * Lw.slot_size;
    const Context<T> cx{p, fm, L, a, t};
    auto slot = [&](T* s) { return aligned(s); };
    // per head: 2·pmax states; phase 1 writes the key-state totals of the two halves of segment s into 2s and
    // 2s + 1 (two tasks per segment, so that two threads share phase 1 even when P = 2), the scan turns 2s
    // into segment s's prefix state.
    auto part = [&](std::int64_t bh, std::int64_t i) { return states + (bh * 2 * pmax + i) * state_size; };
    const std::int64_t size = L.r * L.lds;
    if (P > 1) {  // phase 1: S totals of the halves of segments 0 .. P−2
        run_tasks(L.heads * (P - 1) * 2, base, Lw.slot_size, [&](std::int64_t task, T* sp) {
            const std::int64_t bh = task / (2 * (P - 1)), k = task % (2 * (P - 1)), s = k / 2, h = k % 2;
            const std::int64_t b0 = segment_begin(L, s), b1 = segment_begin(L, s + 1), mid = b0 + (b1 - b0) / 2;
            T* ws = slot(sp);
            std::fill(ws + L.state, ws + L.state + size, T(0));
            key_state(cx, make_head(bh), ws, h == 0 ? b0 : mid, h == 0 ? mid : b1);
            std::copy(ws + L.state, ws + L.state + size, part(bh, k));
        });
        for (std::int64_t bh = 0; bh < L.heads; ++bh)
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
    run_tasks(L.heads * P, base, Lw.slot_size, [&](std::int64_t task, T* sp) {
        const std::int64_t bh = task / P, s = task % P;
        T* ws = slot(sp);
        if (s == 0)
            std::fill(ws + L.state, ws + L.state + L.r * L.lds, T(0));
        else {
            const T* init = part(bh, 2 * s);
            std::copy(init, init + size, ws + L.state);
        }
        T* head_checkpoints = checkpoints ? checkpoints + bh * L.blocks * state_stride<T>(L) : nullptr;
        forward_chunks(cx, make_head(bh), ws, segment_begin(L, s), segment_begin(L, s + 1), head_checkpoints);
    });
}

}  // namespace tg::kernels::poly_causal
