// GPTMLP: Linear C->4C, GELU(tanh), Linear 4C->C, dropout.

#include "nn/models/gpt_mlp.h"

#include "core/ops.h"

namespace tg::nn {

GPTMLP::GPTMLP(const GPTConfig& config, DType dtype) {
    const std::int64_t C = config.n_embd;
    fc = register_module("fc", std::make_shared<Linear>(C, 4 * C, config.bias, dtype));
    proj = register_module("proj", std::make_shared<Linear>(4 * C, C, config.bias, dtype));
    drop = register_module("drop", std::make_shared<Dropout>(config.dropout));
}

Tensor GPTMLP::forward(const Tensor& x) {
    const Tensor h = gelu(fc->forward(x), GeluApproximation::Tanh);  // (B, T, 4C), one fused node
    return drop->forward(proj->forward(h));                         // (B, T, C)
}

}  // namespace tg::nn
