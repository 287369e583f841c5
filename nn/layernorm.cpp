// nn::LayerNorm: holds weight and bias and calls functional::layer_norm.
// The forward is one fused node (kernels/layernorm.h, hand-written backward).

#include "nn/layernorm.h"

#include "nn/functional.h"

#include <sstream>
#include <string>

namespace tg::nn {

LayerNorm::LayerNorm(Shape normalized_shape_in, double eps, bool elementwise_affine, DType dtype)
    : normalized_shape(std::move(normalized_shape_in)), eps(eps), elementwise_affine(elementwise_affine) {
    if (normalized_shape.empty()) throw ValueError("LayerNorm: normalized_shape must not be empty");
    if (!(eps > 0.0)) throw ValueError("LayerNorm: eps must be > 0, got " + std::to_string(eps));
    if (elementwise_affine) {
        weight = register_parameter("weight", ones(normalized_shape, dtype));
        bias = register_parameter("bias", zeros(normalized_shape, dtype));
    }
}

std::string LayerNorm::extra_repr() const {
    std::ostringstream os;
    os << "(";
    for (std::size_t i = 0; i < normalized_shape.size(); ++i) os << (i ? ", " : "") << normalized_shape[i];
    os << (normalized_shape.size() == 1 ? ",)" : ")") << ", eps=" << eps
       << ", elementwise_affine=" << (elementwise_affine ? "true" : "false");
    return os.str();
}

Tensor LayerNorm::forward(const Tensor& x) {
    return functional::layer_norm(x, normalized_shape, weight, bias, eps);
}

}  // namespace tg::nn
