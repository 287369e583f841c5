// nn::FeedForward: Linear C->M, GELU, Linear M->C, dropout.

#include "nn/feed_forward.h"

namespace tg::nn {

FeedForward::FeedForward(std::int64_t n_embd, std::int64_t hidden, bool bias, double dropout, GeluApproximation gelu, DType dtype)
    : gelu_approximation(gelu) {
    fc = register_module("fc", std::make_shared<Linear>(n_embd, hidden, bias, dtype));
    proj = register_module("proj", std::make_shared<Linear>(hidden, n_embd, bias, dtype));
    drop = register_module("drop", std::make_shared<Dropout>(dropout));
}

Tensor FeedForward::forward(const Tensor& x) {
    const Tensor h = tg::gelu(fc->forward(x), gelu_approximation);  // (B, T, M), one fused node
    return drop->forward(proj->forward(h));                         // (B, T, C)
}

}  // namespace tg::nn
