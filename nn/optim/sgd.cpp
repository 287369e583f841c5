// tg::optim::SGD: stochastic gradient descent with momentum, as torch.optim.SGD.
//
// For each parameter p with gradient g, in PyTorch's order (torch/optim/sgd.py, _single_tensor_sgd), with
// μ = momentum, τ = dampening, λ = weight_decay, η = lr:
//
//   g ← g + λ p                          if λ ≠ 0          (L2 penalty, coupled into the gradient)
//   if μ ≠ 0:
//       b ← g                            on the first step  (no dampening then: the buffer starts at g)
//       b ← μ b + (1 − τ) g              afterwards
//       g ← g + μ b                      if nesterov
//       g ← b                            otherwise
//   p ← p − η g
//
// Each element is independent, so the loop runs over elements in parallel blocks with the same result at any
// thread count. Scalars are rounded to the parameter's type before use, as PyTorch's CPU kernels do.

#include "nn/optim.h"

#include <string>

namespace tg::optim {

SGD::SGD(std::vector<Tensor> params, double lr, double momentum, double dampening, double weight_decay,
         bool nesterov)
    : Optimizer(std::move(params), lr),
      momentum(momentum),
      dampening(dampening),
      weight_decay(weight_decay),
      nesterov(nesterov) {
    if (!(momentum >= 0.0)) throw ValueError("SGD: invalid momentum " + std::to_string(momentum) + " (must be >= 0)");
    if (!(weight_decay >= 0.0)) {
        throw ValueError("SGD: invalid weight_decay " + std::to_string(weight_decay) + " (must be >= 0)");
    }
    if (nesterov && (momentum <= 0.0 || dampening != 0.0)) {
        throw ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening (got momentum " +
                         std::to_string(momentum) + ", dampening " + std::to_string(dampening) + ")");
    }
}

void SGD::update(std::size_t i, const Tensor& param, const Tensor& grad) {
    const bool use_momentum = momentum != 0.0;
    const bool first_step = use_momentum && !has_buffer(i, "momentum_buffer");
    Tensor buf = use_momentum ? buffer(i, "momentum_buffer") : Tensor();

    dispatch_floating(param.dtype(), [&](auto tag) {
        using T = decltype(tag);
        T* p = param.data<T>();
        const T* g_in = grad.data<T>();
        T* b = use_momentum ? buf.data<T>() : nullptr;
        const T lr_t = static_cast<T>(lr()), mu = static_cast<T>(momentum);
        const T wd = static_cast<T>(weight_decay), one_minus_tau = static_cast<T>(1.0 - dampening);

        for_each_block(param.numel(), [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t k = begin; k < end; ++k) {
                T g = g_in[k];
                if (weight_decay != 0.0) g = g + wd * p[k];  // grad.add(param, alpha=weight_decay)
                if (use_momentum) {
                    b[k] = first_step ? g : b[k] * mu + one_minus_tau * g;  // buf.mul_(μ).add_(g, alpha=1 − τ)
                    g = nesterov ? g + mu * b[k] : b[k];                    // grad.add(buf, alpha=μ) / buf
                }
                p[k] = p[k] + (-lr_t) * g;  // param.add_(grad, alpha=-lr)
            }
        });
    });
}

}  // namespace tg::optim
