// nn::TransformerBlock: x + attn(ln1(x)), then x + mlp(ln2(x)).

#include "nn/transformer_block.h"

#include "core/grad_mode.h"
#include "core/ops.h"
#include "nn/functional.h"

namespace tg::nn {

std::shared_ptr<LayerNorm> make_layer_norm(std::int64_t n_embd, bool bias, DType dtype) {
    if (bias) return std::make_shared<LayerNorm>(n_embd, 1e-5, true, dtype);
    // No affine transform from the class, then a learned scale of our own: y = x̂ · weight.
    auto ln = std::make_shared<LayerNorm>(n_embd, 1e-5, false, dtype);
    ln->weight = ln->register_parameter("weight", ones({n_embd}, dtype));
    return ln;
}

TransformerBlock::TransformerBlock(const TransformerBlockConfig& config, DType dtype) {
    const MultiHeadAttentionConfig& a = config.attention;
    ln1 = register_module("ln1", make_layer_norm(a.embed_dim, a.bias, dtype));
    attn = register_module("attn", std::make_shared<MultiHeadAttention>(a, dtype));
    ln2 = register_module("ln2", make_layer_norm(a.embed_dim, a.bias, dtype));
    mlp = register_module("mlp", std::make_shared<FeedForward>(a.embed_dim, config.mlp_hidden, a.bias, a.dropout, config.gelu,
                                                       dtype));
}

// x + attn(ln1(x)), then h + mlp(ln2(h)); residual_add writes each sum into the branch's output, which only it
// holds (the output of the branch's last Linear, just written and still in cache), instead of a new buffer.
Tensor TransformerBlock::forward(const Tensor& x) {
    const Tensor h = functional::residual_add(x, attn->forward(ln1->forward(x)));  // (B, T, C)
    return functional::residual_add(h, mlp->forward(ln2->forward(h)));             // (B, T, C)
}

Tensor TransformerBlock::forward_cached(const Tensor& x, Tensor& keys, Tensor& values, std::int64_t start) {
    const Tensor h = functional::residual_add(x, attn->forward_cached(ln1->forward(x), keys, values, start));
    return functional::residual_add(h, mlp->forward(ln2->forward(h)));
}

Tensor TransformerBlock::attention_probabilities(const Tensor& x) {
    NoGradGuard no_grad;
    return attn->attention_probabilities(ln1->forward(x));
}

}  // namespace tg::nn
