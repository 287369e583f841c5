#pragma once
// Scaled dot-product attention, like torch.nn.functional.scaled_dot_product_attention:
//
//   attention(Q, K, V) = softmax(s·Q Kᵀ + M) V        s = 1/sqrt(D) unless options.scale is set
//
// with M = 0 where key j is visible from query i and −∞ where not (causal: j > i is hidden).
//
// scaled_dot_product_attention is ONE node on the tape: its forward is the fused tiled kernel
// (kernels/attention_exact.h) that never stores the Tq×Tk matrix, and its backward is the matching fused
// backward kernel. It saves q, k, v, the output and the per-row log-sum-exp (O(T·D) memory per head).
// scaled_dot_product_attention_reference builds the same function from primitive ops (matmul, masked_fill,
// softmax): T×T memory, autograd through each op. The tests compare the two; read it to see the math.
//
// Shapes: q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv] -> [B, H, Tq, Dv]; D and Dv in [1, 256]. Tq ≠ Tk
// is allowed; with causal it is top-left aligned as in PyTorch (query i sees keys j ≤ i). Inputs may be
// any views whose last dimension is contiguous (e.g. heads split from a fused QKV projection); others are
// copied first. float32 and float64; integer inputs are computed in float32.

#include "core/tensor.h"

#include <optional>
#include <string>

namespace tg::nn::functional {

// Exact: the fused FlashAttention-style kernels, forward and backward.
// ApproxBackward, Approx, Auto: polynomial approximations (next issue); they throw ValueError for now.
enum class AttentionMode { Exact, ApproxBackward, Approx, Auto };

std::string to_string(AttentionMode mode);  // "exact", "approx_backward", "approx", "auto"

struct AttentionOptions {
    bool causal = false;
    std::optional<double> scale;  // default 1/sqrt(D)
    AttentionMode mode = AttentionMode::Exact;
    int degree = 2;  // polynomial degree of the approximate modes
};

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options = {});

// The same function composed from primitive ops: softmax(matmul(q, kᵀ)·s, masked_fill −∞ above the diagonal
// when causal) then matmul with v. Builds the full Tq×Tk matrix: for tests and teaching. Only `causal` and
// `scale` of the options are used.
Tensor scaled_dot_product_attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                              const AttentionOptions& options = {});

}  // namespace tg::nn::functional
