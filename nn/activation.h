#pragma once
// Activation modules, like torch.nn.GELU / ReLU / Tanh: parameter-free wrappers of the elementwise ops in
// core/ops.h, so they can sit in a Sequential.

#include "core/ops.h"
#include "nn/module.h"

namespace tg::nn {

// GELU(x) = x · Φ(x) (Hendrycks & Gimpel 2016); approximate = Tanh uses
// 0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³))), as GPT-2 did.
class GELU : public Module {
public:
    explicit GELU(GeluApproximation approximate = GeluApproximation::None) : approximate(approximate) {}
    std::string name() const override { return "GELU"; }
    std::string extra_repr() const override;
    Tensor forward(const Tensor& x) override { return gelu(x, approximate); }

    GeluApproximation approximate;
};

// ReLU(x) = max(0, x).
class ReLU : public Module {
public:
    std::string name() const override { return "ReLU"; }
    Tensor forward(const Tensor& x) override { return relu(x); }
};

class Tanh : public Module {
public:
    std::string name() const override { return "Tanh"; }
    Tensor forward(const Tensor& x) override { return tanh(x); }
};

}  // namespace tg::nn
