#pragma once
// nn::MultiHeadAttention: self-attention over x [B, T, C] with H heads of width D = C / H, GPT-2 style:
//
//   [q | k | v] = x W_qkvᵀ + b_qkv              one fused projection C -> 3C   (the `qkv` Linear)
//   q, k, v     -> [B, H, T, D]                 split into heads by views: no copy
//   y_h         = softmax(q_h k_hᵀ/√D + M) v_h  one fused attention node       (functional::scaled_dot_product_attention)
//   y           = merge heads -> [B, T, C]
//   out         = dropout(y W_projᵀ + b_proj)    output projection (`proj`), dropout on the output
//
// Parameters: qkv.weight [3C, C], qkv.bias [3C], proj.weight [C, C], proj.bias [C] (biases only with bias).
// `options` (causal, scale, mode, degree) is public so a model can choose the attention of each layer.

#include "nn/attention.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/module.h"

#include <cstdint>
#include <memory>

namespace tg::nn {

class MultiHeadAttention : public Module {
public:
    // Throws ValueError unless embed_dim > 0 is divisible by num_heads > 0 (and 0 <= dropout <= 1).
    MultiHeadAttention(std::int64_t embed_dim, std::int64_t num_heads, bool causal = true, double dropout = 0.0,
                       bool bias = true, DType dtype = kFloat32);

    std::string name() const override { return "MultiHeadAttention"; }
    std::string extra_repr() const override;
    Tensor forward(const Tensor& x) override;  // x [B, T, C] -> [B, T, C]

    std::int64_t embed_dim, num_heads, head_dim;
    functional::AttentionOptions options;  // causal as constructed; mode Exact
    std::shared_ptr<Linear> qkv;           // C -> 3C
    std::shared_ptr<Linear> proj;          // C -> C
    std::shared_ptr<Dropout> dropout;
};

}  // namespace tg::nn
