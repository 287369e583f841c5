// tg::optim::AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay
// Regularization", ICLR 2019), as torch.optim.AdamW.
//
// For each parameter p with gradient g at its step t = 1, 2, ..., in PyTorch's order (torch/optim/adam(w).py,
// _single_tensor_adam), with η = lr, λ = weight_decay:
//
//   p ← p − η λ p                                  param.mul_(1 − lr·wd)      decay, not part of the gradient
//   m ← β1 m + (1 − β1) g                          exp_avg.lerp_(grad, 1 − β1)
//   v ← β2 v + (1 − β2) g²                         exp_avg_sq.mul_(β2).addcmul_(grad, grad, value=1 − β2)
//   p ← p − η/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + ε)
//                                                  param.addcdiv_(exp_avg, denom, value=−step_size)
//
// m and v start at zero; dividing by 1 − β^t removes the bias that this start gives their averages (Kingma &
// Ba 2015, sec. 3). ε is added after the bias correction of sqrt(v), as PyTorch does.
// Each element is independent, so the kernel runs over elements in parallel blocks with the same result at
// any thread count.

#include "nn/optim.h"

#include "core/ops.h"
#include "kernels/adamw.h"

#include <string>
#include <type_traits>
#include <vector>

namespace tg::optim {

AdamW::AdamW(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps, double weight_decay)
    : Optimizer(std::move(params), lr), beta1(beta1), beta2(beta2), eps(eps), weight_decay(weight_decay) {
    if (!(eps >= 0.0)) throw ValueError("AdamW: invalid eps " + std::to_string(eps) + " (must be >= 0)");
    if (!(beta1 >= 0.0 && beta1 < 1.0)) {
        throw ValueError("AdamW: invalid beta1 " + std::to_string(beta1) + " (must be in [0, 1))");
    }
    if (!(beta2 >= 0.0 && beta2 < 1.0)) {
        throw ValueError("AdamW: invalid beta2 " + std::to_string(beta2) + " (must be in [0, 1))");
    }
    if (!(weight_decay >= 0.0)) {
        throw ValueError("AdamW: invalid weight_decay " + std::to_string(weight_decay) + " (must be >= 0)");
    }
}

void AdamW::check_buffer(const std::string& key, const std::string& name, const Tensor& value) const {
    // v is an average of squared gradients: a negative element would make sqrt(v) NaN at the next step.
    if (name == "exp_avg_sq" && value.numel() > 0 && min(value).item<double>() < 0) {
        throw ValueError("AdamW.load_state_dict: '" + key + "' has a negative element (minimum " +
                         std::to_string(min(value).item<double>()) + "), impossible for an average of squares: "
                         "the saved state is corrupt");
    }
}

void AdamW::update(std::size_t i, const Tensor& param, const Tensor& grad) {
    update_all({ParamUpdate{i, param, grad}});
}

// Every parameter in one pass over p, g, m and v (kernels::adamw_step_many; its plain twin adamw_step_reference
// is the textbook loop): one parallel loop over all their elements, the float and the double ones each in their
// own, the equations above element by element, in that order.
void AdamW::update_all(const std::vector<ParamUpdate>& updates) {
    std::vector<kernels::AdamWTensor<float>> floats;
    std::vector<kernels::AdamWTensor<double>> doubles;
    for (const ParamUpdate& u : updates) {
        Tensor& exp_avg = buffer(u.index, "exp_avg");
        Tensor& exp_avg_sq = buffer(u.index, "exp_avg_sq");
        dispatch_floating(u.param.dtype(), [&](auto tag) {
            using T = decltype(tag);
            const kernels::AdamWTensor<T> x{u.param.data<T>(), u.grad.data<T>(), exp_avg.data<T>(),
                                            exp_avg_sq.data<T>(), u.param.numel(), param_step(u.index)};
            if constexpr (std::is_same_v<T, float>) {
                floats.push_back(x);
            } else {
                doubles.push_back(x);
            }
        });
    }
    const kernels::AdamWHyper hyper{lr(), beta1, beta2, eps, weight_decay};
    if (!floats.empty()) kernels::adamw_step_many(floats.data(), static_cast<std::int64_t>(floats.size()), hyper);
    if (!doubles.empty()) kernels::adamw_step_many(doubles.data(), static_cast<std::int64_t>(doubles.size()), hyper);
}

}  // namespace tg::optim
