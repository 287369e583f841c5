#pragma once
// Causal multi-head self-attention of a GPT block (nanoGPT's CausalSelfAttention):
//
//   [q | k | v] = x W_qkvᵀ + b_qkv          (B, T, 3C)    one fused weight `qkv`: C -> 3C (applied as three
//                                                         products with its row blocks; see project())
//   q, k, v     -> (B, H, T, D)              heads split by views: no copy
//   q, k        = LayerNorm_D(q), LayerNorm_D(k)     optional QK-LayerNorm (no affine), scale = τ / D
//   q, k        = RoPE(q), RoPE(k)           optional rotary positions (nn/models/rope.h)
//   y           = softmax(s·q kᵀ + M) v      (B, H, T, D)  one fused node, causal mask M
//   y           -> (B, T, C)                 merge heads: the one copy of the layer
//   out         = dropout(y W_projᵀ + b_proj)  `proj`: C -> C, a residual projection
//
// Why QK-LayerNorm with scale τ/D bounds the scores: a layer-normalised vector of width D has zero mean and
// unit (biased) variance, so its norm is sqrt(D); by Cauchy–Schwarz |q̂·k̂| ≤ D, hence |s·q̂·k̂| ≤ τ.
//
// Dropout: only on the output (nanoGPT also drops attention probabilities; the fused kernel never forms them).
//
// Decoding with a KV cache (forward_cached): the keys and values of earlier positions are kept, so a new
// token only computes its own q, k, v and attends to the cache: O(T) per token instead of O(T²).

#include "nn/attention.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/models/gpt.h"
#include "nn/module.h"

#include <array>
#include <cstdint>
#include <memory>

namespace tg::nn {

class GPTAttention : public Module {
public:
    explicit GPTAttention(const GPTConfig& config, DType dtype = kFloat32);

    std::string name() const override { return "GPTAttention"; }
    std::string extra_repr() const override;
    // x (B, T, C) -> (B, T, C), position t of x attends to positions <= t.
    Tensor forward(const Tensor& x) override;
    // x (B, Tnew, C) at positions start .. start+Tnew−1. keys, values (B, H, capacity, D) hold the rotated keys
    // and the values of positions 0 .. start−1; this call writes positions start .. start+Tnew−1 into them and
    // attends over all start+Tnew. Call under NoGradGuard (the cache is written in place).
    Tensor forward_cached(const Tensor& x, Tensor& keys, Tensor& values, std::int64_t start);

    // The options actually passed to the attention node: `options` with causal on and, with QK-LayerNorm,
    // scale = qk_temperature / D.
    functional::AttentionOptions attention_options() const;

    std::int64_t n_embd, n_head, head_dim;  // C, H, D = C / H
    bool qk_layernorm;
    double qk_temperature;
    bool use_rope;
    double rope_base;
    // Mode, degree, monitor, label of this layer's attention (GPT::set_attention); causal is forced on.
    functional::AttentionOptions options;
    std::shared_ptr<Linear> qkv;   // C -> 3C
    std::shared_ptr<Linear> proj;  // C -> C
    std::shared_ptr<Dropout> drop;

private:
    // q, k, v (B, H, T, D) of x (B, T, C) at positions start.., with QK-LayerNorm and RoPE applied.
    std::array<Tensor, 3> project(const Tensor& x, std::int64_t start);
    // y (B, H, T, D) -> dropout(proj(merge heads(y))) (B, T, C).
    Tensor output(const Tensor& y);
};

}  // namespace tg::nn
