#pragma once
// nn::TransformerBlock: one pre-LayerNorm transformer block, the block of GPT-2 and of ViT. Each half normalises
// its input, transforms it, and adds the result back onto the residual stream x, so the stream itself is never
// normalised:
//
//   x = x + attn(ln1(x))     (B, T, C)   multi-head self-attention (nn/multihead_attention.h)
//   x = x + mlp(ln2(x))      (B, T, C)   position-wise MLP (nn::FeedForward, nn/feed_forward.h)
//
// Parameters: ln1.{weight,bias}, attn.{qkv,proj}.{weight,bias}, ln2.{weight,bias}, mlp.{fc,proj}.{weight,bias}
// (biases only with bias; the LayerNorms keep their weight).

#include "nn/layernorm.h"
#include "nn/feed_forward.h"
#include "nn/module.h"
#include "nn/multihead_attention.h"

#include <cstdint>
#include <memory>

namespace tg::nn {

struct TransformerBlockConfig {
    // C, heads, causality, QK-LayerNorm, RoPE, the attention computation; its dropout and bias are the block's.
    MultiHeadAttentionConfig attention;
    std::int64_t mlp_hidden = 0;                        // M (GPT: 4C)
    GeluApproximation gelu = GeluApproximation::None;   // GPT-2: Tanh
};

class TransformerBlock : public Module {
public:
    explicit TransformerBlock(const TransformerBlockConfig& config, DType dtype = kFloat32);

    std::string name() const override { return "TransformerBlock"; }
    Tensor forward(const Tensor& x) override;  // (B, T, C) -> (B, T, C)
    // The same for new positions start.. of a sequence whose earlier keys/values are in the cache
    // (MultiHeadAttention::forward_cached).
    Tensor forward_cached(const Tensor& x, Tensor& keys, Tensor& values, std::int64_t start);
    // The attention probabilities (B, H, T, T) of this block for its input x (MultiHeadAttention::
    // attention_probabilities of ln1(x)). No autograd.
    Tensor attention_probabilities(const Tensor& x);

    std::shared_ptr<LayerNorm> ln1;
    std::shared_ptr<MultiHeadAttention> attn;
    std::shared_ptr<LayerNorm> ln2;
    std::shared_ptr<FeedForward> mlp;
};

// LayerNorm over C as the blocks use it (and GPT's ln_f, ViT's ln_f): weight 1 and bias 0, or, with bias off,
// a weight only (nanoGPT's LayerNorm(bias=False)).
std::shared_ptr<LayerNorm> make_layer_norm(std::int64_t n_embd, bool bias, DType dtype = kFloat32);

}  // namespace tg::nn
