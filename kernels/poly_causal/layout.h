#pragma once
// Internal to the causal polynomial kernels (kernels/attention_poly_causal.h): the sizes of one problem and
// where each panel of a chunk lives in a task's slot of the workspace.

#include <algorithm>
#include <cstdint>

#include "kernels/attention_poly.h"
#include "kernels/attention_poly_detail.h"
#include "kernels/attention_poly_simd.h"
#include "kernels/poly_causal/schedule.h"

namespace tg::kernels::poly_causal {

using poly_simd::kWidth;
using poly_simd::round_up;

// Sizes for element type T (W = SIMD width of T) and the offsets of one task's panels.
//
// Sizes (short names: they are the symbols of the equations):
//   n       rows of the head (Tq = Tk)               c, cp    rows of a chunk; c rounded up to W
//   d, dp   D, the query/key width; D rounded up     g        the polynomial's degree
//   r       R, the feature rank                      lvl      monomials of degree < g (the feature map's scratch)
//   dv      Dv value columns (0: the normaliser      e        Dv + 1, the columns of Ṽ and Ĝ (column Dv is the
//           alone, no values)                                 normaliser's)
//   ew      Dv rounded up to W: the value columns    ldv      row length of the row-major Ṽ, Ĝ panels (e rounded
//           a state update covers with vectors                up to W)
//   lds     row length of an R-row state (max(ew, e))
//   chunks, segments   per head (schedule.h);  heads = B·H
//
// Panels: offsets in elements into a task's slot, each 64-byte aligned. "_t" panels are feature-major
// (transposed): one row per feature or column, cp columns = the chunk's rows, padding columns zero. "_rows"
// panels are row-major. In the equations (attention_poly.cpp) Qt = t·Q, Kt = t·K, U = φ_Q(Qt), W = φ_K(Kt),
// Ṽ = [V | 1], Ĝ = [dO/z | −δ/z], A = M∘p(scores) with the causal mask M, S and R the running states.
struct CausalLayout {
    std::int64_t c = 0, cp = 0, r = 0, d = 0, dp = 0, dv = 0, e = 0, ew = 0, lds = 0, ldv = 0, lvl = 0;
    std::int64_t n = 0, chunks = 0, segments = 1, heads = 0;
    std::int64_t block = 1, blocks = 0;  // chunks per checkpoint block, blocks per head (checkpoints, below)
    int g = 0;

    // every pass
    std::int64_t q_t = 0;           // Qt_bᵀ                                   D × cp
    std::int64_t k_t = 0;           // Kt_bᵀ                                   D × cp
    std::int64_t v_tilde = 0;       // Ṽ_b                                     c × ldv
    std::int64_t ones = 0;          // 1 per row of the chunk, 0 in padding   cp
    std::int64_t u_t = 0;           // U_bᵀ, the queries' features             R × cp
    std::int64_t w_t = 0;           // W_bᵀ, the keys' features                R × cp
    std::int64_t scores_t = 0;      // scoresᵀ = Kt_b Qt_bᵀ, in the forward then Aᵀ in place        c × cp
    std::int64_t numerator_t = 0;   // Ñ_bᵀ (forward); dV_bᵀ's inter-chunk part (backward pass 2)  e × cp
    std::int64_t monomials_t = 0;   // the feature map's monomials of degree < g                    lvl × cp
    std::int64_t state = 0;         // the running state: S (forward, pass 1) or R (pass 2)         R × lds
    // backward only
    std::int64_t v_tilde_t = 0;     // Ṽ_bᵀ                                    e × cp
    std::int64_t g_hat = 0;         // Ĝ_b                                     c × ldv
    std::int64_t g_hat_t = 0;       // Ĝ_bᵀ                                    e × cp
    std::int64_t d_features_t = 0;  // dU_bᵀ (pass 1), dW_bᵀ (pass 2)           R × cp
    std::int64_t dscores_t = 0;     // dSᵀ = Mᵀ∘(Ṽ_b Ĝ_bᵀ)∘p′(scoresᵀ)         c × cp
    std::int64_t weights_t = 0;     // Aᵀ = Mᵀ∘p(scoresᵀ)                      c × cp
    std::int64_t dx_t = 0;          // dQt_bᵀ (pass 1), dKt_bᵀ (pass 2)         D × cp
    std::int64_t dmonomials_t = 0;  // the monomials' gradients in the feature VJP                 lvl × cp
    std::int64_t q_rows = 0;        // Qt_b row-major, for dKt_b = dSᵀ Qt_b     c × dp
    std::int64_t dk_rows = 0;       // dKt_b's intra-chunk part                c × dp
    std::int64_t dv_rows = 0;       // dV_b's intra-chunk part                 c × max(ew, Dv)
    std::int64_t carry = 0;         // R kept between the blocks of the checkpointed backward      R × lds
    std::int64_t slot_size = 0;     // elements of one slot, with room to align its start
};

template <class T>
constexpr std::int64_t kAlign = 64 / static_cast<std::int64_t>(sizeof(T));  // elements per 64 bytes

// The layout for element type T; with_values = false for the normaliser alone (Dv = 0), backward adds the
// backward's panels.
template <class T>
CausalLayout make_causal_layout(const PolyAttentionProblem& p, bool with_values, bool backward) {
    constexpr std::int64_t W = kWidth<T>;
    CausalLayout L;
    L.n = p.tq;
    L.c = std::min(p.chunk, std::max<std::int64_t>(p.tq, 1));
    L.cp = round_up(L.c, W);
    L.g = p.degree;
    L.r = poly_feature_rank(p.d, p.degree);
    L.lvl = poly_feature_rank(p.d, p.degree - 1);  // monomials of degree < g
    L.d = p.d;
    L.dp = round_up(p.d, W);
    L.dv = with_values ? p.dv : 0;
    L.e = L.dv + 1;
    L.ew = round_up(L.dv, W);
    L.lds = std::max(L.ew, L.e);
    L.ldv = round_up(L.e, W);
    L.chunks = (L.n + L.c - 1) / L.c;
    L.segments = segments_per_head(p, L.chunks);
    L.block = std::clamp<std::int64_t>(L.chunks / kMinBlocks, 1, kMaxBlockChunks);
    L.blocks = (L.chunks + L.block - 1) / L.block;
    L.heads = p.batch * p.heads;

    std::int64_t at = 0;
    auto take = [&](std::int64_t n) {
        const std::int64_t off = at;
        at += round_up(std::max<std::int64_t>(n, 1), kAlign<T>);
        return off;
    };
    L.q_t = take(L.d * L.cp);
    L.k_t = take(L.d * L.cp);
    L.v_tilde = take(L.c * L.ldv);
    L.ones = take(L.cp);
    L.u_t = take(L.r * L.cp);
    L.w_t = take(L.r * L.cp);
    L.scores_t = take(L.c * L.cp);
    L.numerator_t = take(L.e * L.cp);
    L.monomials_t = take(L.lvl * L.cp);
    L.state = take(L.r * L.lds);
    if (backward) {
        L.v_tilde_t = take(L.e * L.cp);
        L.g_hat = take(L.c * L.ldv);
        L.g_hat_t = take(L.e * L.cp);
        L.d_features_t = take(L.r * L.cp);
        L.dscores_t = take(L.c * L.cp);
        L.weights_t = take(L.c * L.cp);
        L.dx_t = take(L.d * L.cp);
        L.dmonomials_t = take(L.lvl * L.cp);
        L.q_rows = take(L.c * L.dp);
        L.dk_rows = take(L.c * L.dp);
        L.dv_rows = take(L.c * std::max(L.ew, L.dv));
        L.carry = take(L.r * L.lds);
    }
    L.slot_size = at + kAlign<T>;  // room to align the slot's start
    return L;
}

// Elements between two running states stored one after the other (segment states, checkpoints).
template <class T>
std::int64_t state_stride(const CausalLayout& L) {
    return round_up(L.r * L.lds, kAlign<T>);
}

// Checkpoints: the forward can leave S at the start of every block of L.block chunks (the first block's is
// zero), so that the backward can run each block's pass 1 from it and the block's pass 2 right after, while
// the block's rows are still in cache (backward.h). Elements for T: blocks × one state per head.
template <class T>
std::int64_t checkpoint_elements(const PolyAttentionProblem& p) {
    const CausalLayout L = make_causal_layout<T>(p, true, false);
    return L.heads * L.blocks * state_stride<T>(L);
}

// The first chunk of segment s (segment s is chunks [segment_begin(s), segment_begin(s + 1))).
inline std::int64_t segment_begin(const CausalLayout& L, std::int64_t s) { return s * L.chunks / L.segments; }

// Workspace elements: task slots plus the per-head segment states (2 per segment: the forward's two halves
// of a segment's key state, the backward's S and R).
template <class T>
std::int64_t workspace_elements(const PolyAttentionProblem& p, bool backward) {
    const CausalLayout L = make_causal_layout<T>(p, true, backward);
    const std::int64_t pmax = max_segments_per_head(p);
    const std::int64_t slots = std::min(L.heads * pmax * 2, kMaxSlots);
    const std::int64_t states = pmax > 1 ? L.heads * pmax * 2 : 0;
    return slots * L.slot_size + states * round_up(L.r * L.lds, kAlign<T>) + kAlign<T>;
}

// p rounded up to the next 64-byte boundary.
template <class T>
T* aligned(T* p) {
    const auto mis = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(p) / sizeof(T)) % kAlign<T>;
    return p + (kAlign<T> - mis) % kAlign<T>;
}

// What every chunk routine gets: the problem, the feature map, this layout, p's coefficients and t = √scale.
template <class T>
using Context = poly_detail::Context<T, CausalLayout>;

}  // namespace tg::kernels::poly_causal
