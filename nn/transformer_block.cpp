// nn::TransformerBlock: x + attn(ln1(x)), then x + mlp(ln2(x)).

#include "nn/transformer_block.h"

#include "core/grad_mode.h"
#include "core/ops.h"

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

// h = x + attn(ln1(x)) and ln2(h) come out of one pass (LayerNorm::forward_sum).
Tensor TransformerBlock::forward(const Tensor& x) {
    const auto [h, h_normed] = ln2->forward_sum(x, attn->forward(ln1->forward(x)));  // (B, T, C) each
    return h + mlp->forward(h_normed);                                                 // (B, T, C)
}

functional::SumAndNorm TransformerBlock::forward_normed(const Tensor& x, const Tensor& x_normed, LayerNorm& next) {
    const auto [h, h_normed] = ln2->forward_sum(x, attn->forward(x_normed));  // (B, T, C) each
    return next.forward_sum(h, mlp->forward(h_normed));                         // (B, T, C) each
}

Tensor TransformerBlock::forward_cached(const Tensor& x, Tensor& keys, Tensor& values, std::int64_t start) {
    const auto [h, h_normed] = ln2->forward_sum(x, attn->forward_cached(ln1->forward(x), keys, values, start));
    return h + mlp->forward(h_normed);
}

Tensor TransformerBlock::attention_probabilities(const Tensor& x) {
    NoGradGuard no_grad;
    return attn->attention_probabilities(ln1->forward(x));
}

Tensor forward_blocks(const std::vector<std::shared_ptr<TransformerBlock>>& blocks, const Tensor& x,
                      LayerNorm& final_norm) {
    if (blocks.empty()) return final_norm.forward(x);
    functional::SumAndNorm stream{x, blocks.front()->ln1->forward(x)};  // the input and ln1 of it
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        LayerNorm& next = i + 1 < blocks.size() ? *blocks[i + 1]->ln1 : final_norm;
        stream = blocks[i]->forward_normed(stream.sum, stream.norm, next);
    }
    return stream.norm;
}

}  // namespace tg::nn
