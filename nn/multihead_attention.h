#pragma once
// nn::MultiHeadAttention: the self-attention of every model (GPT, ViT), over x (B, T, C) with H heads of
// width D = C / H:
//
//   q = x W_qᵀ + b_q,  k = x W_kᵀ + b_k,  v = x W_vᵀ + b_v    (B, T, C) each; W_q, W_k, W_v are the row blocks
//                                                            of one fused weight `qkv` [3C, C] (see project())
//   q, k, v     -> (B, H, T, D)              heads split by views: no copy
//   q, k        = LayerNorm_D(q), LayerNorm_D(k)     optional QK-LayerNorm (no affine); then s = τ / D
//   q, k        = RoPE(q), RoPE(k)           optional rotary positions (nn/rope.h)
//   y           = softmax(s·q kᵀ + M) v      (B, H, T, D)  one fused node (nn/attention.h); M causal or 0
//   y           -> (B, T, C)                 merge heads: the one copy of the layer
//   out         = dropout(y W_projᵀ + b_proj)  `proj`: C -> C
//
// s is 1/sqrt(D) (AttentionOptions::scale_for) unless options.scale is set, or τ/D with QK-LayerNorm: a
// layer-normalised vector of width D has zero mean and unit (biased) variance, so its norm is sqrt(D); by
// Cauchy–Schwarz |q̂·k̂| ≤ D, hence |s·q̂·k̂| ≤ τ. Bounded scores keep the approximate attention modes in their
// accurate regime (docs/approximate-attention.md).
//
// Dropout only on the output (the fused kernel never forms the attention probabilities to drop them).
//
// Decoding with a KV cache (forward_cached): the keys and values of earlier positions are kept, so a new token
// computes only its own q, k, v and attends to the cache: O(T) per token instead of O(T²).
//
// Parameters: qkv.weight [3C, C], qkv.bias [3C], proj.weight [C, C], proj.bias [C] (biases only with bias).
// `options` (mode, degree, gradient formula, monitor, label) is public so a model can choose the attention of
// each layer; causality and the scale are the module's (attention_options()).

#include "nn/attention.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/module.h"

#include <array>
#include <cstdint>
#include <memory>

namespace tg::nn {

struct MultiHeadAttentionConfig {
    std::int64_t embed_dim = 0;  // C
    std::int64_t num_heads = 1;  // H; C must be a multiple of H
    bool causal = true;          // position t attends to positions <= t only
    double dropout = 0.0;        // on the output
    bool bias = true;            // biases of qkv and proj
    bool qk_layernorm = false;   // QK-LayerNorm with scale qk_temperature / D
    double qk_temperature = 1.0;
    bool rope = false;           // rotary position embeddings on q and k
    double rope_base = 10000.0;
    // The attention computation (mode, degree, gradient formula, ...). Its `causal` is ignored (the field
    // above decides) and so is its scale with qk_layernorm.
    functional::AttentionOptions attention;
};

class MultiHeadAttention : public Module {
public:
    // Throws ValueError unless embed_dim > 0 is divisible by num_heads > 0, 0 <= dropout <= 1, and (with rope)
    // the head width is even.
    explicit MultiHeadAttention(const MultiHeadAttentionConfig& config, DType dtype = kFloat32);
    // The short form of the common case (PyTorch's argument order).
    MultiHeadAttention(std::int64_t embed_dim, std::int64_t num_heads, bool causal = true, double dropout = 0.0,
                       bool bias = true, DType dtype = kFloat32);

    std::string name() const override { return "MultiHeadAttention"; }
    std::string extra_repr() const override;
    // x (B, T, C) -> (B, T, C). Throws ShapeError naming x's shape unless it is (B, T, C).
    Tensor forward(const Tensor& x) override;
    // x (B, Tnew, C) at positions start .. start+Tnew−1. keys, values (B, H, capacity, D) hold the (rotated)
    // keys and the values of positions 0 .. start−1; this call writes positions start .. start+Tnew−1 into them
    // and attends over all start+Tnew (causal). Call under NoGradGuard (the cache is written in place).
    Tensor forward_cached(const Tensor& x, Tensor& keys, Tensor& values, std::int64_t start);
    // The attention probabilities softmax(s·q kᵀ + M) of every head for the input x, (B, H, T, T), composed
    // from matmul and softmax (the fused node never forms them): for pictures. No autograd.
    Tensor attention_probabilities(const Tensor& x);

    // The options passed to the attention node: `options` with this module's causality and scale.
    functional::AttentionOptions attention_options() const;

    std::int64_t embed_dim, num_heads, head_dim;  // C, H, D = C / H
    bool causal;
    bool qk_layernorm;
    double qk_temperature;
    bool use_rope;
    double rope_base;
    functional::AttentionOptions options;  // this layer's attention computation (see above)
    std::shared_ptr<Linear> qkv;           // C -> 3C
    std::shared_ptr<Linear> proj;          // C -> C
    std::shared_ptr<Dropout> drop;

private:
    // q, k, v (B, H, T, D) of x (B, T, C) at positions start.., with QK-LayerNorm and RoPE applied.
    std::array<Tensor, 3> project(const Tensor& x, std::int64_t start);
    // y (B, H, T, D) -> dropout(proj(merge heads(y))) (B, T, C).
    Tensor output(const Tensor& y);
    void check_input(const Tensor& x) const;
};

}  // namespace tg::nn
