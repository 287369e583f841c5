#pragma once
// nn::LayerNorm, like torch.nn.LayerNorm: normalises the last dims of its input to zero mean and unit
// variance, then applies a learned per-element scale (weight, init 1) and shift (bias, init 0):
//   y = (x − E[x]) / sqrt(Var[x] + eps) · weight + bias      (biased variance)

#include "nn/module.h"

#include <cstdint>

namespace tg::nn {

class LayerNorm : public Module {
public:
    LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true, DType dtype = kFloat32);
    explicit LayerNorm(std::int64_t dim, double eps = 1e-5, bool elementwise_affine = true, DType dtype = kFloat32)
        : LayerNorm(Shape{dim}, eps, elementwise_affine, dtype) {}

    std::string name() const override { return "LayerNorm"; }
    std::string extra_repr() const override;
    Tensor forward(const Tensor& x) override;  // x [..., normalized_shape] -> same shape

    Shape normalized_shape;
    double eps;
    bool elementwise_affine;
    Tensor weight;  // (normalized_shape), undefined without elementwise_affine
    Tensor bias;    // (normalized_shape), undefined without elementwise_affine
};

}  // namespace tg::nn
