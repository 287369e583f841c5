#pragma once
// Near-exact / far-polynomial ("hybrid") causal attention, forward and backward. Equations (H1)–(H7) of
// docs/approximate-attention.md, "Near-exact / far-polynomial attention"; the polynomial method is arXiv
// 2408.13233's low-rank approximation (kernels/attention_poly.h), here applied only to the far keys.
//
// Each causal row i splits its keys j <= i into a near set, computed exactly, and a far set, through the
// polynomial p of degree g (the Taylor polynomial of exp):
//   N(i) = { j <= i : j > i − W } ∪ { j <= i : j < S }   (the last W keys and the first S "sink" keys)
//   F(i) = { j <= i } \ N(i) = { S <= j <= i − W }
//   w_ij = exp(s_ij) for j in N(i),  p(s_ij) for j in F(i),     s_ij = scale·q_i·k_j              (H1)
//   z_i = Σ_{j<=i} w_ij,   A_ij = w_ij / z_i,   O_i = Σ_j A_ij v_j                                 (H2)
// W = S = 0 is the polynomial forward of kernels/attention_poly.h; W >= T is exact softmax attention.
//
// Backward: the exact gradient of that forward (the "consistent" gradient), with D_i = dO_i·O_i:
//   dV_j = Σ_{i>=j} A_ij dO_i,   dw_ij = (dO_i·v_j − D_i) / z_i                                   (H3)
//   ds_ij = dw_ij·exp(s_ij) = A_ij (dO_i·v_j − D_i)   for j in N(i)                                (H4)
//   ds_ij = dw_ij·p′(s_ij)                            for j in F(i)                                (H5)
//   dQ_i = scale·Σ_j ds_ij k_j,   dK_j = scale·Σ_i ds_ij q_i                                       (H6)
// It reads O and lse = log z from the hybrid forward (the attention node's `approx_backward` mode recomputes
// them in its backward: it keeps exact softmax values in the forward but differentiates the hybrid).
//
// How it is computed (O(T·(W+S)·D + T·R·D) time, O(T) memory, no T × T buffer):
//   far part   F(i) is a causal prefix lagged by W + S rows: row i sees keys S .. i − W. So the far sums are
//              the ordinary causal polynomial kernels (kernels/attention_poly.h, unchanged) on shifted views:
//              queries q[W+S ..], keys and values k, v[S .. T−W): view row t = query W+S+t sees view keys
//              <= t, i.e. keys j = S + t' <= i − W. They give Ñ^far_i = z^far_i·O^far_i.               (H7)
//   near part  the exact FlashAttention kernels restricted to the band and the sink columns
//              (kernels/attention_band.h, in kernels/attention_exact.cpp): the far part enters each row's
//              online softmax as its starting state, m_i = log z^far_i, l_i = 1, O'_i = O^far_i, so
//              z_i = e^{M_i}(Σ_near e^{s_ij − M_i} + e^{log z^far_i − M_i}) never overflows (FlashAttention's
//              scaling with the far part as one more term).
//   backward   the far terms of (H3)–(H6) are the polynomial consistent backward on the same views, given the
//              hybrid O and z (its δ is then D_i and its G = dO/z the hybrid's); the near terms are the exact
//              backward's tiles on the band, added (its D_i = dO_i·O_i and P = e^{s − lse} are the hybrid's).
// Every number is computed by one task in an order fixed by the shapes: results are bitwise identical run to
// run and for any thread count.
//
// Shapes (B, H, T, D as everywhere; causal, Tq = Tk = T): q, k (B, H, T, D), v (B, H, T, Dv), o, dout
// (B, H, T, Dv), lse (B, H, T) contiguous. Operands are base pointers plus AttentionLayouts (only the last
// dimension contiguous), as for the exact and polynomial kernels.
//
// Invalid problems throw std::invalid_argument starting with "hybrid_attention:"; a far normaliser z^far <= 0
// (only with odd degrees or custom coefficients) throws std::domain_error from the polynomial kernels.

#include <cstdint>
#include <type_traits>

#include "kernels/attention_poly.h"

namespace tg::kernels {

struct HybridAttentionProblem {
    PolyAttentionProblem poly;  // sizes, scale, degree, chunk of the far part; must be causal (Tq = Tk = T)
    std::int64_t window = 0;    // W >= 0: keys i − W < j <= i are near
    std::int64_t sinks = 0;     // S >= 0: keys j < S (and j <= i) are near
};

enum class HybridAttentionPass { forward, backward };

// Throws std::invalid_argument naming the problem (W, S < 0, not causal, or the polynomial's own checks).
void check_hybrid_attention_problem(const HybridAttentionProblem& p);

// The far part as a causal polynomial problem of T − W − S rows (0 when every key is near).
PolyAttentionProblem hybrid_far_problem(const HybridAttentionProblem& p);

// Workspace elements (float or double) a pass needs: the forward, the polynomial kernels' workspace for the far
// problem plus the far O and z; the backward, the larger of that (with z) and the exact backward's workspace
// (D_i and its partial dQ buffers): O(B·H·T·D) either way.
std::int64_t hybrid_attention_workspace(const HybridAttentionProblem& p, HybridAttentionPass pass);

// O and lse_i = log z_i (B, H, T). workspace: hybrid_attention_workspace(p, forward) elements, or nullptr.
template <class T>
void hybrid_attention_forward(const HybridAttentionProblem& p, const T* q, AttentionLayout q_layout, const T* k,
                              AttentionLayout k_layout, const T* v, AttentionLayout v_layout, T* o,
                              AttentionLayout o_layout, T* lse, std::type_identity_t<T>* workspace);

// dQ, dK, dV (written, not accumulated) from Q, K, V, the hybrid forward's O and lse, and dO.
// workspace: hybrid_attention_workspace(p, backward) elements, or nullptr.
template <class T>
void hybrid_attention_backward(const HybridAttentionProblem& p, const T* q, AttentionLayout q_layout, const T* k,
                               AttentionLayout k_layout, const T* v, AttentionLayout v_layout, const T* o,
                               AttentionLayout o_layout, const T* lse, const T* dout, AttentionLayout dout_layout,
                               T* dq, AttentionLayout dq_layout, T* dk, AttentionLayout dk_layout, T* dv,
                               AttentionLayout dv_layout, std::type_identity_t<T>* workspace);

}  // namespace tg::kernels
