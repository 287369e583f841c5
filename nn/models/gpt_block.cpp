// GPTBlock: x + attn(ln1(x)), then x + mlp(ln2(x)).

#include "nn/models/gpt_block.h"

#include "core/ops.h"

namespace tg::nn {

std::shared_ptr<LayerNorm> make_gpt_layer_norm(const GPTConfig& config, DType dtype) {
    if (config.bias) return std::make_shared<LayerNorm>(config.n_embd, 1e-5, true, dtype);
    // No affine transform from the class, then a learned scale of our own: y = x̂ · weight.
    auto ln = std::make_shared<LayerNorm>(config.n_embd, 1e-5, false, dtype);
    ln->weight = ln->register_parameter("weight", ones({config.n_embd}, dtype));
    return ln;
}

GPTBlock::GPTBlock(const GPTConfig& config, DType dtype) {
    ln1 = register_module("ln1", make_gpt_layer_norm(config, dtype));
    attn = register_module("attn", std::make_shared<GPTAttention>(config, dtype));
    ln2 = register_module("ln2", make_gpt_layer_norm(config, dtype));
    mlp = register_module("mlp", std::make_shared<GPTMLP>(config, dtype));
}

Tensor GPTBlock::forward(const Tensor& x) {
    const Tensor h = x + attn->forward(ln1->forward(x));  // (B, T, C)
    return h + mlp->forward(ln2->forward(h));             // (B, T, C)
}

Tensor GPTBlock::forward_cached(const Tensor& x, Tensor& keys, Tensor& values, std::int64_t start) {
    const Tensor h = x + attn->forward_cached(ln1->forward(x), keys, values, start);
    return h + mlp->forward(ln2->forward(h));
}

}  // namespace tg::nn
