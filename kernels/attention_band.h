#pragma once
// Internal to kernels/ (never installed): the exact attention kernels (kernels/attention_exact.cpp) restricted
// to a band of keys — the near set of the hybrid attention (kernels/attention_hybrid.h, (H1)–(H7) of
// docs/approximate-attention.md). Causal, Tq = Tk = T; row i sees the keys
//     N(i) = { j <= i : j > i − W } ∪ { j <= i : j < S }      (the last W keys and the first S "sink" keys)
// W >= T (or S >= T) is ordinary causal attention; W = S = 0 sees no key.
//
// The same tiles, micro-kernel and online softmax as the exact kernels: the forward of a query tile [i0, i0+64)
// visits only the key tiles that hold sink keys (cut to the S sink columns when no window key of the tile's
// rows lies in them) and the tiles from the one holding key i0 − W + 1 on; the backward of a key tile visits only
// the query tiles whose rows see one of its keys. Each visited tile pair is masked to N(i) row by row. So the
// work is O(T·(W + S + 64)·D), the memory that of the exact kernels (tiles, and the backward's workspace of
// attention_backward_workspace: linear in T), and the results bitwise the same for any thread count.

#include <cstdint>

#include "kernels/attention_exact.h"

namespace tg::kernels {

struct AttentionBand {
    std::int64_t window = 0;  // W >= 0
    std::int64_t sinks = 0;   // S >= 0
};

// One more term of each row's softmax, given as a normaliser and an output: row i of [first_row, first_row +
// rows) adds z0_i > 0 to the normaliser and z0_i·O0_i to the unnormalised output (the hybrid's far part, (H7)):
//     O_i = (Σ_{j in N(i)} e^{s_ij} v_j + z0_i O0_i) / z_i,   z_i = Σ_{j in N(i)} e^{s_ij} + z0_i,   lse_i = log z_i
// It enters the online softmax as its starting state: m = log z0_i, l = 1, O' = O0_i. z0 is contiguous
// (B, H, rows); o0's row t is row first_row + t. rows = 0: no such term.
template <class T>
struct AttentionPrior {
    const T* o = nullptr;
    AttentionLayout o_layout;
    const T* z = nullptr;
    std::int64_t first_row = 0, rows = 0;
};

// O and lse = log z of the band (plus the prior). Throws std::invalid_argument unless causal with Tq = Tk and
// W, S >= 0.
template <class T>
void attention_forward_band(const AttentionProblem& p, AttentionBand band, const AttentionPrior<T>& prior,
                            const T* q, AttentionLayout q_layout, const T* k, AttentionLayout k_layout, const T* v,
                            AttentionLayout v_layout, T* o, AttentionLayout o_layout, T* lse);

// Adds the band's terms of the attention gradient to dq, dk, dv (the exact backward's formulas with P_ij =
// e^{s_ij − lse_i} for j in N(i) and 0 elsewhere, D_i = dO_i·O_i from the O and lse given). workspace:
// attention_backward_workspace(p, sizeof(T)) elements.
template <class T>
void attention_backward_band_add(const AttentionProblem& p, AttentionBand band, const T* q, AttentionLayout q_layout,
                                 const T* k, AttentionLayout k_layout, const T* v, AttentionLayout v_layout,
                                 const T* o, AttentionLayout o_layout, const T* lse, const T* dout,
                                 AttentionLayout dout_layout, T* dq, AttentionLayout dq_layout, T* dk,
                                 AttentionLayout dk_layout, T* dv, AttentionLayout dv_layout, T* workspace);

}  // namespace tg::kernels
