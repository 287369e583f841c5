// nn::Linear: y = x Wᵀ + b.

#include "nn/linear.h"

#include "nn/functional.h"
#include "nn/init.h"

#include <cmath>
#include <string>

namespace tg::nn {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool bias, DType dtype)
    : in_features(in_features), out_features(out_features) {
    if (in_features < 0 || out_features < 0) {
        throw ValueError("Linear: in_features and out_features must be >= 0, got " + std::to_string(in_features) +
                         " and " + std::to_string(out_features));
    }
    weight = register_parameter("weight", empty({out_features, in_features}, dtype));
    if (bias) this->bias = register_parameter("bias", empty({out_features}, dtype));
    reset_parameters();
}

void Linear::reset_parameters() {
    // PyTorch's choice: kaiming_uniform_ with a = sqrt(5), i.e. gain² = 2 / (1 + 5) = 1/3 and
    // bound = sqrt(1/3) · sqrt(3 / in) = 1 / sqrt(in); the bias uses the same bound.
    init::kaiming_uniform_(weight, std::sqrt(5.0));
    if (bias.defined()) {
        const double bound = in_features > 0 ? 1.0 / std::sqrt(static_cast<double>(in_features)) : 0.0;
        init::uniform_(bias, -bound, bound);
    }
}

std::string Linear::extra_repr() const {
    return "in_features=" + std::to_string(in_features) + ", out_features=" + std::to_string(out_features) +
           ", bias=" + (bias.defined() ? "true" : "false");
}

Tensor Linear::forward(const Tensor& x) { return functional::linear(x, weight, bias); }

}  // namespace tg::nn
