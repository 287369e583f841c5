#pragma once
// Internal to the causal polynomial kernels (kernels/attention_poly_causal.h): the consistent causal backward
// (the exact gradient of forward.h). Pass 1 runs the chunks in order from the prefix state S and writes dQ
// and the intra-chunk parts of dK and dV; pass 2 runs them in reverse from the suffix state R and writes the
// inter-chunk parts. Two schedules drive them: from the forward's checkpoints, block by block from the last
// (backward_checkpointed), or without them as a wavefront over segments (backward_wavefront). Whichever of
// the two passes comes second to a segment adds its part to the other's; the
// parts of dKt are summed unscaled and the second writer applies t (dK = t·dKt): one rounded sum of two terms,
// the same in either order.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>
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
// intra-chunk parts of dK and dV (stored, or added to pass 2's when accumulate), all from one transposed tile
// pair:
//   Aᵀ = Mᵀ∘p(scoresᵀ),  dSᵀ = Mᵀ∘(Ṽ_b Ĝ_bᵀ)∘p′(scoresᵀ);
//   dQtᵀ = Ktᵀ dSᵀ + φ_Q′ᵀ(dUᵀ),  dUᵀ = S Ĝ_bᵀ;   dKt_b = dSᵀ Qt_b;   dV_b = Aᵀ G_b;   then S += W_bᵀ Ṽ_b.
template <class T>
void backward_pass1(const Context<T>& cx, const Head<T>& hd, T* ws, std::int64_t b0, std::int64_t b1,
                    bool accumulate) {
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
        store_rows(hd.dk + row0 * hd.lddk, hd.lddk, dkr, L.dp, rows, L.d, accumulate ? cx.t : T(1), accumulate);
        store_rows(hd.dv + row0 * hd.lddv, hd.lddv, dvr, ldr, rows, L.dv, T(1), accumulate);
        // inter-chunk: dUᵀ[k][i] = Σ_e S[k][e] Ĝᵀ[e][i], through the feature VJP
        small_gemm<T>(L.r, nv, L.e, st, L.lds, 1, ght, cp, du, cp, false);
        monomials_t(cx.fm, cp, qt, ws + L.monomials_t);
        features_vjp_t(cx.fm, cp, qt, true, du, ws + L.monomials_t, ws + L.dmonomials_t, dxt);
        store_t(hd.dq + row0 * hd.lddq, hd.lddq, dxt, cp, rows, L.d, cx.t);
        features_t(cx.fm, cp, kt, false, w, ws + L.monomials_t);
        update_state(cx, st, w, vt, ws + L.ones, rows);
    }
}

// Backward pass 2 over chunks [b0, b1) in reverse, from the suffix state R in ws + L.state: the inter-chunk
// parts of dK and dV (stored, or added to pass 1's when accumulate).
//   dKt_b += φ_K′ᵀ(dWᵀ),  dWᵀ = R Ṽ_bᵀ;   dV_b += W_b R[:, :Dv];   then R += U_bᵀ Ĝ_b.
template <class T>
void backward_pass2(const Context<T>& cx, const Head<T>& hd, T* ws, std::int64_t b0, std::int64_t b1,
                    bool accumulate) {
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
        store_t(hd.dk + row0 * hd.lddk, hd.lddk, dxt, cp, rows, L.d, accumulate ? cx.t : T(1), accumulate);
        // dVᵀ[e][j] = Σ_k R[k][e] Wᵀ[k][j]
        small_gemm<T>(L.dv, nv, L.r, st, 1, L.lds, w, cp, dvt, cp, false);
        store_t(hd.dv + row0 * hd.lddv, hd.lddv, dvt, cp, rows, L.dv, T(1), accumulate);
        update_state(cx, st, u, gh, ght + L.dv * cp, rows);
    }
}

// Which pass of a segment runs first (and stores dK, dV with `=`; the second adds with `+=`). In the
// wavefront below pass 1 of segment s runs at step s and pass 2 at step P − 1 − s.
inline bool pass1_first(const CausalLayout& L, std::int64_t s) { return s <= L.segments - 1 - s; }

// dQ, dK, dV of every head without checkpoints; make_head(bh) → Head<T> of flat head index bh.
//
// The schedule is a wavefront over the P segments of a head (attention_poly_causal.h): S flows forward through
// the segments and R backward, so at step k pass 1 of segment k (from the S left by pass 1 of segment k − 1)
// runs beside pass 2 of segment P − 1 − k (from the R left by pass 2 of segment P − k). Each pass hands its
// final state to the next segment of its chain; no pass runs only to sum a segment's state. A segment met by
// both passes in one step (the middle one of an odd P, and P = 1) gets them in one task, pass 1 then pass 2.
// dK and dV are the sum of an intra-chunk part (pass 1) and an inter-chunk part (pass 2): whichever pass
// reaches a segment first stores its part, the other adds — one addition of two terms, so the result is the
// same in either order, and S and R go through the chunks in the same order as unsegmented: the gradients are
// bitwise those of P = 1, for any P and thread count.
//
// For one thread the order also keeps rows in cache: step 1 starts (pass 1 of segment 1) where step 0 ended
// (pass 2 of segment 1, P = 2), so the rows pass 2 touched last are read again while still in cache.
template <class T, class MakeHead>
void backward_wavefront(const PolyAttentionProblem& p, const Context<T>& cx, T* base, MakeHead&& make_head) {
    const CausalLayout& L = cx.L;
    const std::int64_t pmax = max_segments_per_head(p), P = L.segments;
    const std::int64_t state_size = round_up(L.r * L.lds, kAlign<T>);
    // per head: pmax S states (s_state(s): S at the start of segment s), then pmax R states (r_state(s): R
    // at the end of segment s, i.e. over the segments after it)
    T* states = base + std::min(L.heads * pmax * 2, kMaxSlots) * L.slot_size;
    auto s_state = [&](std::int64_t bh, std::int64_t s) { return states + (bh * 2 * pmax + s) * state_size; };
    auto r_state = [&](std::int64_t bh, std::int64_t s) { return states + (bh * 2 * pmax + pmax + s) * state_size; };
    const std::int64_t size = L.r * L.lds;
    auto run_pass1 = [&](const Head<T>& hd, std::int64_t bh, std::int64_t s, T* ws) {
        if (s == 0)
            std::fill(ws + L.state, ws + L.state + size, T(0));
        else
            std::copy(s_state(bh, s), s_state(bh, s) + size, ws + L.state);
        backward_pass1(cx, hd, ws, segment_begin(L, s), segment_begin(L, s + 1), !pass1_first(L, s));
        if (s + 1 < P) std::copy(ws + L.state, ws + L.state + size, s_state(bh, s + 1));
    };
    auto run_pass2 = [&](const Head<T>& hd, std::int64_t bh, std::int64_t s, T* ws) {
        if (s == P - 1)
            std::fill(ws + L.state, ws + L.state + size, T(0));
        else
            std::copy(r_state(bh, s), r_state(bh, s) + size, ws + L.state);
        backward_pass2(cx, hd, ws, segment_begin(L, s), segment_begin(L, s + 1), pass1_first(L, s));
        if (s > 0) std::copy(ws + L.state, ws + L.state + size, r_state(bh, s - 1));
    };
    for (std::int64_t k = 0; k < P; ++k) {
        const std::int64_t k2 = P - 1 - k;  // the segment of pass 2 at this step
        const std::int64_t per_head = k == k2 ? 1 : 2;
        run_tasks(L.heads * per_head, base, L.slot_size, [&](std::int64_t task, T* sp) {
            const std::int64_t bh = task / per_head;
            T* ws = aligned(sp);
            const Head<T> hd = make_head(bh);
            if (k == k2) {
                run_pass1(hd, bh, k, ws);
                run_pass2(hd, bh, k, ws);
            } else if (task % 2 == 0)
                run_pass1(hd, bh, k, ws);
            else
                run_pass2(hd, bh, k2, ws);
        });
    }
}

// dQ, dK, dV of every head from the forward's checkpoints (layout.h): S at the start of every block of L.block
// chunks. Blocks are taken from the last to the first; for each, pass 1 from its checkpoint, then pass 2 from
// the R the block after it left (kept in the slot's carry panel), so pass 2 reads the block's rows while pass
// 1 has just brought them into cache: each T-long array is read once per backward where the wavefront reads
// it twice, and dK, dV are written once, not written then read back. The last block is where the forward
// ended, so its rows may still be cached from the forward too. Pass 1 stores the intra-chunk parts of dK and
// dV, pass 2 adds the inter-chunk parts, always in that order.
//
// Threads. With B·H >= 2, one task per head. One head is a pipeline for two tasks: the chain task runs pass 2
// of the blocks in order (R passes from block to block), the helper runs pass 1 of the blocks ahead of it, at
// most kAhead blocks ahead (unbounded, the 2-thread backward at T = 65536 measured 6% slower: presumably a
// block's rows left the cache before its pass 2). Each claims the next pass 1 from BlockClaims (schedule.h),
// and the chain task, when the pass 1 it needs is not done, runs the next unclaimed one itself, so it never
// waits for work nobody has started (one thread runs everything in the chain task). Every block's pass 1
// starts from its checkpoint and the chain runs in a fixed order, so the results are bitwise the same for any
// thread count and any B·H.
template <class T, class MakeHead>
void backward_checkpointed(const Context<T>& cx, T* base, const T* checkpoints, MakeHead&& make_head) {
    const CausalLayout& L = cx.L;
    const std::int64_t size = L.r * L.lds, stride = state_stride<T>(L);
    auto pass1 = [&](const Head<T>& hd, std::int64_t bh, std::int64_t j, T* ws) {
        const T* s0 = checkpoints + (bh * L.blocks + j) * stride;
        std::copy(s0, s0 + size, ws + L.state);
        backward_pass1(cx, hd, ws, j * L.block, std::min(L.chunks, (j + 1) * L.block), false);
    };
    auto pass2 = [&](const Head<T>& hd, std::int64_t j, T* ws) {  // R from ws + L.carry, left there
        std::copy(ws + L.carry, ws + L.carry + size, ws + L.state);
        backward_pass2(cx, hd, ws, j * L.block, std::min(L.chunks, (j + 1) * L.block), true);
        std::copy(ws + L.state, ws + L.state + size, ws + L.carry);
    };
    if (L.heads > 1) {
        run_tasks(L.heads, base, L.slot_size, [&](std::int64_t bh, T* sp) {
            T* ws = aligned(sp);
            const Head<T> hd = make_head(bh);
            std::fill(ws + L.carry, ws + L.carry + size, T(0));
            for (std::int64_t j = L.blocks - 1; j >= 0; --j) {
                pass1(hd, bh, j, ws);
                pass2(hd, j, ws);
            }
        });
        return;
    }
    const Head<T> hd = make_head(0);
    constexpr std::int64_t kAhead = 2;
    BlockClaims claims(L.blocks, kAhead);
    std::vector<std::atomic<bool>> done(static_cast<std::size_t>(L.blocks));  // pass 1 of block j finished
    auto claim_pass1 = [&](T* ws) {  // runs the next pass 1 if there is one to run now
        const std::optional<std::int64_t> j = claims.claim();
        if (!j) return false;
        pass1(hd, 0, *j, ws);
        done[static_cast<std::size_t>(*j)].store(true, std::memory_order_release);
        return true;
    };
    run_tasks(2, base, L.slot_size, [&](std::int64_t task, T* sp) {
        T* ws = aligned(sp);
        if (task == 1) {  // the helper
            while (!claims.all_claimed())
                if (!claim_pass1(ws)) std::this_thread::yield();
            return;
        }
        std::fill(ws + L.carry, ws + L.carry + size, T(0));
        for (std::int64_t j = L.blocks - 1; j >= 0; --j) {
            claims.chain_reached(j);
            while (!done[static_cast<std::size_t>(j)].load(std::memory_order_acquire))
                if (!claim_pass1(ws)) std::this_thread::yield();  // block j's pass 1 runs on the helper
            pass2(hd, j, ws);
        }
    });
}

// dQ, dK, dV of every head: from the forward's checkpoints when given (mode approx, whose forward leaves
// them), else by the wavefront (approx_backward, whose forward is the exact one).
template <class T, class MakeHead>
void backward(const PolyAttentionProblem& p, const PolyFeatureMap& fm, const T* a, T t, T* workspace,
              const T* checkpoints, MakeHead&& make_head) {
    const CausalLayout L = make_causal_layout<T>(p, true, true);
    std::vector<T> own;
    if (workspace == nullptr) {
        own.resize(static_cast<std::size_t>(workspace_elements<T>(p, true)));
        workspace = own.data();
    }
    const Context<T> cx{p, fm, L, a, t};
    if (checkpoints)
        backward_checkpointed(cx, aligned(workspace), checkpoints, make_head);
    else
        backward_wavefront(p, cx, aligned(workspace), make_head);
}

}  // namespace tg::kernels::poly_causal
