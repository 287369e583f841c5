#pragma once
// The feed-forward half of a GPT block (nanoGPT's MLP), applied to every position on its own:
//
//   h   = x W_fcᵀ + b_fc            (B, T, 4C)   `fc`: C -> 4C
//   h   = GELU_tanh(h)              (B, T, 4C)   0.5 h (1 + tanh(sqrt(2/π)(h + 0.044715 h³))), as GPT-2
//   out = dropout(h W_projᵀ + b_proj) (B, T, C)  `proj`: 4C -> C, a residual projection (GPT-2 scales its init)
//
// Parameters: fc.{weight,bias}, proj.{weight,bias} (biases only with config.bias).

#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/models/gpt.h"
#include "nn/module.h"

#include <memory>

namespace tg::nn {

class GPTMLP : public Module {
public:
    explicit GPTMLP(const GPTConfig& config, DType dtype = kFloat32);

    std::string name() const override { return "GPTMLP"; }
    Tensor forward(const Tensor& x) override;  // (B, T, C) -> (B, T, C)

    std::shared_ptr<Linear> fc;    // C -> 4C
    std::shared_ptr<Linear> proj;  // 4C -> C
    std::shared_ptr<Dropout> drop;
};

}  // namespace tg::nn
