#pragma once
// One transformer block of a GPT, pre-LayerNorm (GPT-2): each half normalises its input, transforms it, and
// adds the result back onto the residual stream x, so the stream itself is never normalised.
//
//   x = x + attn(ln1(x))     (B, T, C)   causal self-attention (nn/models/gpt_attention.h)
//   x = x + mlp(ln2(x))      (B, T, C)   position-wise MLP    (nn/models/gpt_mlp.h)
//
// Parameters: ln1.{weight,bias}, attn.*, ln2.{weight,bias}, mlp.* (LayerNorm biases only with config.bias).

#include "nn/layernorm.h"
#include "nn/models/gpt.h"
#include "nn/models/gpt_attention.h"
#include "nn/models/gpt_mlp.h"
#include "nn/module.h"

#include <cstdint>
#include <memory>

namespace tg::nn {

class GPTBlock : public Module {
public:
    explicit GPTBlock(const GPTConfig& config, DType dtype = kFloat32);

    std::string name() const override { return "GPTBlock"; }
    Tensor forward(const Tensor& x) override;  // (B, T, C) -> (B, T, C)
    // The same for new positions start.. of a sequence whose earlier keys/values are in the cache
    // (GPTAttention::forward_cached).
    Tensor forward_cached(const Tensor& x, Tensor& keys, Tensor& values, std::int64_t start);

    std::shared_ptr<LayerNorm> ln1;
    std::shared_ptr<GPTAttention> attn;
    std::shared_ptr<LayerNorm> ln2;
    std::shared_ptr<GPTMLP> mlp;
};

// LayerNorm over C as GPT uses it (ln1, ln2, ln_f): weight 1 and bias 0, or, with config.bias off, a weight only
// (nanoGPT's LayerNorm(bias=False)).
std::shared_ptr<LayerNorm> make_gpt_layer_norm(const GPTConfig& config, DType dtype = kFloat32);

}  // namespace tg::nn
