#pragma once
// Exact scaled dot-product attention, forward and backward, in the FlashAttention-2 style: tiles of queries
// against tiles of keys with an online softmax, so the Tq×Tk matrix of scores is never stored.
//
// Shapes (dimension letters as everywhere in tapegrad):
//   q  (B, H, Tq, D)    k  (B, H, Tk, D)    v  (B, H, Tk, Dv)    o  (B, H, Tq, Dv)    lse  (B, H, Tq)
// Every (B, H, T, ·) operand is given as a base pointer plus a Layout: element (b, h, t, e) lives at
// ptr[b·batch + h·head + t·row + e]. Only the last dimension must be contiguous, so heads split from a fused
// QKV projection by views ([B, T, 3, H, D] permuted) are read in place, with no copy. lse is contiguous.
//
// The math (s = scale, usually 1/√D; M = the mask: 0 where key j is visible from query i, −∞ where not):
//   forward    S = s·Q Kᵀ + M,   L_i = log Σ_j exp(S_ij),   P = exp(S − L),   O = P V
//   backward   D_i = Σ_e dO_ie O_ie,   dV = Pᵀ dO,   dP = dO Vᵀ,   dS = P∘(dP − D),
//              dQ = s·dS K,   dK = s·dSᵀ Q
// Causal means top-left aligned, as PyTorch's is_causal: query i sees keys j ≤ i (also when Tq ≠ Tk).
// A query that sees no key at all (Tk = 0) gets O = 0, L = −∞, and zero gradients; no −10000 constants.
//
// Memory. Besides the outputs, the forward needs only tiles (a few tens of KB per task); the backward needs a
// workspace of attention_backward_workspace(problem, sizeof(T)) elements, O(B·H·Tq·D): a small fixed number of
// partial dQ buffers (see attention_exact.cpp for why; unused when there is one group and D is a whole number
// of SIMD batches), allocated by the caller so that the framework's allocator sees it.
//
// Threads and determinism. oneTBB tasks over (batch, head, query tile) in the forward and over
// (batch, head, group of key tiles) in the backward; every output element is summed in an order that depends
// only on the shapes, so results are bitwise identical run to run and for any thread count.
//
// Invalid sizes throw std::invalid_argument. float32 is the fast path; float64 runs the same tiled code.

#include <cstddef>
#include <cstdint>

namespace tg::kernels {

// Where element (b, h, t, e) of a [B, H, T, E] operand lives: ptr[b·batch + h·head + t·row + e].
struct AttentionLayout {
    std::int64_t batch = 0;
    std::int64_t head = 0;
    std::int64_t row = 0;
};

struct AttentionProblem {
    std::int64_t batch = 1;   // B
    std::int64_t heads = 1;   // H
    std::int64_t tq = 0;      // Tq, queries
    std::int64_t tk = 0;      // Tk, keys and values
    std::int64_t d = 0;       // D, query/key width, 1..256
    std::int64_t dv = 0;      // Dv, value width, 1..256
    bool causal = false;      // query i sees keys j <= i
    double scale = 1.0;       // s, usually 1/sqrt(D)
};

// The contiguous layout of a [B, H, T, E] tensor.
inline AttentionLayout contiguous_layout(const AttentionProblem& p, std::int64_t t, std::int64_t e) {
    return {p.heads * t * e, t * e, e};
}

// O and L = lse from Q, K, V.
template <class T>
void attention_forward(const AttentionProblem& p, const T* q, AttentionLayout q_layout, const T* k,
                       AttentionLayout k_layout, const T* v, AttentionLayout v_layout, T* o, AttentionLayout o_layout,
                       T* lse);

// Elements (of the size given) the backward needs as workspace.
std::int64_t attention_backward_workspace(const AttentionProblem& p, std::size_t element_size);

// dQ, dK, dV from Q, K, V, the forward's O and lse, and dO. Outputs are written, not accumulated.
template <class T>
void attention_backward(const AttentionProblem& p, const T* q, AttentionLayout q_layout, const T* k,
                        AttentionLayout k_layout, const T* v, AttentionLayout v_layout, const T* o,
                        AttentionLayout o_layout, const T* lse, const T* dout, AttentionLayout dout_layout, T* dq,
                        AttentionLayout dq_layout, T* dk, AttentionLayout dk_layout, T* dv, AttentionLayout dv_layout,
                        T* workspace);

// Plain references (kernels/attention_reference.cpp): one query row at a time with a full row of Tk scores,
// serial, std::exp. Same arguments and semantics (they need no workspace).
template <class T>
void attention_forward_reference(const AttentionProblem& p, const T* q, AttentionLayout q_layout, const T* k,
                                 AttentionLayout k_layout, const T* v, AttentionLayout v_layout, T* o,
                                 AttentionLayout o_layout, T* lse);
template <class T>
void attention_backward_reference(const AttentionProblem& p, const T* q, AttentionLayout q_layout, const T* k,
                                  AttentionLayout k_layout, const T* v, AttentionLayout v_layout, const T* o,
                                  AttentionLayout o_layout, const T* lse, const T* dout, AttentionLayout dout_layout,
                                  T* dq, AttentionLayout dq_layout, T* dk, AttentionLayout dk_layout, T* dv,
                                  AttentionLayout dv_layout);

// Throws std::invalid_argument naming the problem when sizes are out of range (used by all of the above).
void check_attention_problem(const AttentionProblem& p);

}  // namespace tg::kernels
