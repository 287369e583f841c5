#pragma once
// nn::FeedForward: the position-wise feed-forward half (the "MLP") of a transformer block (GPT, ViT),
// applied to every position on its own:
//
//   h   = x W_fcᵀ + b_fc               (B, T, M)   `fc`: C -> M (GPT: M = 4C)
//   h   = GELU(h)                      (B, T, M)   exact (erf) or the tanh form GPT-2 uses (core/ops.h gelu)
//   out = dropout(h W_projᵀ + b_proj)  (B, T, C)   `proj`: M -> C, a residual projection
//
// Parameters: fc.{weight,bias}, proj.{weight,bias} (biases only with bias).

#include "core/ops.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/module.h"

#include <cstdint>
#include <memory>

namespace tg::nn {

class FeedForward : public Module {
public:
    FeedForward(std::int64_t n_embd, std::int64_t hidden, bool bias = true, double dropout = 0.0,
        GeluApproximation gelu = GeluApproximation::None, DType dtype = kFloat32);

    std::string name() const override { return "FeedForward"; }
    Tensor forward(const Tensor& x) override;  // (B, T, C) -> (B, T, C)

    GeluApproximation gelu_approximation;
    std::shared_ptr<Linear> fc;    // C -> M
    std::shared_ptr<Linear> proj;  // M -> C
    std::shared_ptr<Dropout> drop;
};

}  // namespace tg::nn
