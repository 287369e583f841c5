#pragma once
// Internal to kernels/attention_hybrid*.cpp (never installed): the exact near part of the hybrid attention
// (kernels/attention_hybrid.h), on tiles restricted to the band i − W < j <= i and the sink columns j < S.

#include <cstdint>

#include "kernels/attention_hybrid.h"

namespace tg::kernels::hybrid_near {

// The far part's results the forward blends in: far_o rows and far_z for rows i >= first_row, at view row
// t = i − first_row (far_z contiguous (B, H, rows)); rows = 0 when there is no far part.
template <class T>
struct FarPart {
    const T* o = nullptr;
    AttentionLayout o_layout;
    const T* z = nullptr;
    std::int64_t first_row = 0, rows = 0;
};

// O and lse of every row: the near scores exactly, with the far part as one more term (H1, H2, H7):
//   M_i = max(max_{j in N(i)} s_ij, log z^far_i),   l_i = Σ_{j in N(i)} e^{s_ij − M_i} + e^{log z^far_i − M_i}
//   O_i = (Σ_{j in N(i)} e^{s_ij − M_i} v_j + e^{log z^far_i − M_i} O^far_i) / l_i,   lse_i = M_i + log l_i
template <class T>
void forward(const HybridAttentionProblem& p, const T* q, AttentionLayout ql, const T* k, AttentionLayout kl,
             const T* v, AttentionLayout vl, const FarPart<T>& far, T* o, AttentionLayout ol, T* lse);

// Adds the near terms of (H3), (H4), (H6) to dq, dk, dv, with A_ij = exp(s_ij − lse_i) and drow = D_i
// (B, H, T) contiguous. dQ by query tiles; dK, dV by key tiles (window keys) and one task per head for the
// sink keys, so each output row is written by one task.
template <class T>
void backward_add(const HybridAttentionProblem& p, const T* q, AttentionLayout ql, const T* k, AttentionLayout kl,
                  const T* v, AttentionLayout vl, const T* lse, const T* drow, const T* dout, AttentionLayout dol,
                  T* dq, AttentionLayout dql, T* dk, AttentionLayout dkl, T* dv, AttentionLayout dvl);

}  // namespace tg::kernels::hybrid_near
