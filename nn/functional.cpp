// tg::nn::functional: linear, dropout, layer_norm, composed from tensor ops (autograd comes with them).
// The losses are in nn/loss.cpp.

#include "nn/functional.h"

#include "autograd/grad_mode.h"
#include "core/ops.h"

#include <string>

namespace tg::nn::functional {

// y = x Wᵀ + b. x [..., in] @ Wᵀ [in, out] -> [..., out]; b [out] broadcasts over the leading dims.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    if (weight.dim() != 2) {
        throw ShapeError("linear: weight must be 2-D [out_features, in_features], got " + to_string(weight.shape()));
    }
    if (x.dim() < 1 || x.size(-1) != weight.size(1)) {
        throw ShapeError("linear: input " + to_string(x.shape()) + " must end in in_features = " +
                         std::to_string(weight.size(1)) + " to match weight " + to_string(weight.shape()));
    }
    if (bias.defined() && bias.shape() != Shape{weight.size(0)}) {
        throw ShapeError("linear: bias " + to_string(bias.shape()) + " must be [out_features] = [" +
                         std::to_string(weight.size(0)) + "] to match weight " + to_string(weight.shape()));
    }
    Tensor y = matmul(x, weight.t());
    return bias.defined() ? y + bias : y;
}

// Inverted dropout (Srivastava et al. 2014, scaled at training time as PyTorch does):
//   mask_i ~ Bernoulli(1 − p),   y = x ∘ mask / (1 − p)
// The mask is a constant for autograd, so dy/dx = mask / (1 − p) comes from mul's own rule.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
    if (!(p >= 0.0 && p <= 1.0)) {  // also rejects NaN
        throw ValueError("dropout: probability p must be in [0, 1], got " + std::to_string(p));
    }
    if (!is_floating(x.dtype())) throw DTypeError("dropout: input must be floating, got " + x.describe());
    if (!training || p == 0.0) return x;
    if (p == 1.0) return x * 0.0;  // every element dropped; still a graph node, so x gets a zero gradient
    Tensor scaled_mask;
    {
        NoGradGuard no_grad;
        scaled_mask = bernoulli(x.shape(), 1.0 - p, x.dtype(), gen) * (1.0 / (1.0 - p));
    }
    return x * scaled_mask;
}

// Per normalised group (the last k = normalized_shape.size() dims):
//   μ = mean(x),  σ² = mean((x − μ)²)          (biased variance, two passes for stability)
//   y = (x − μ) / sqrt(σ² + eps) · weight + bias
// Composed from mean/square/rsqrt, so the backward pass is the chain rule through those ops. The fused
// kernel in kernels/layernorm.h computes the same thing with a hand-written backward.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
    const std::int64_t k = static_cast<std::int64_t>(normalized_shape.size());
    const bool shape_ok = k >= 1 && x.dim() >= k &&
                          Shape(x.shape().end() - k, x.shape().end()) == normalized_shape;
    if (!shape_ok) {
        throw ShapeError("layer_norm: input " + to_string(x.shape()) + " must end in normalized_shape " +
                         to_string(normalized_shape));
    }
    if (weight.defined() && weight.shape() != normalized_shape) {
        throw ShapeError("layer_norm: weight " + to_string(weight.shape()) + " must have normalized_shape " +
                         to_string(normalized_shape));
    }
    if (bias.defined() && bias.shape() != normalized_shape) {
        throw ShapeError("layer_norm: bias " + to_string(bias.shape()) + " must have normalized_shape " +
                         to_string(normalized_shape));
    }
    if (!is_floating(x.dtype())) throw DTypeError("layer_norm: input must be floating, got " + x.describe());

    std::vector<std::int64_t> dims;
    for (std::int64_t d = x.dim() - k; d < x.dim(); ++d) dims.push_back(d);
    Tensor mu = mean(x, dims, /*keepdim=*/true);
    Tensor centered = x - mu;
    Tensor variance = mean(square(centered), dims, /*keepdim=*/true);
    Tensor y = centered * rsqrt(variance + eps);
    if (weight.defined()) y = y * weight;
    if (bias.defined()) y = y + bias;
    return y;
}

}  // namespace tg::nn::functional
