#pragma once
// nn::Linear, like torch.nn.Linear: y = x Wᵀ + b with W [out_features, in_features], b [out_features].

#include "nn/module.h"

#include <cstdint>

namespace tg::nn {

class Linear : public Module {
public:
    // Initialised as PyTorch does: W and b both ~ U(−1/sqrt(in), 1/sqrt(in)), from the global generator.
    Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true, DType dtype = kFloat32);

    std::string name() const override { return "Linear"; }
    std::string extra_repr() const override;
    Tensor forward(const Tensor& x) override;  // x [..., in] -> [..., out]

    // Re-draws W and b as the constructor does.
    void reset_parameters();

    std::int64_t in_features, out_features;
    Tensor weight;  // (out, in)
    Tensor bias;    // (out), undefined when constructed with bias = false
};

}  // namespace tg::nn
