// Losses: cross_entropy and mse_loss (declared in nn/functional.h) and their modules (nn/loss.h).
// Both are composed from differentiable ops, so their gradients come from those ops' rules.
// TODO(kernels): kernels/cross_entropy.h will give cross_entropy a fused forward/backward.

#include "nn/loss.h"

#include "core/ops.h"

#include <string>
#include <vector>

namespace tg::nn {

namespace functional {

namespace {
Tensor reduce(const Tensor& losses, Reduction reduction) {
    switch (reduction) {
        case Reduction::None: return losses;
        case Reduction::Sum: return sum(losses);
        case Reduction::Mean: return mean(losses);
    }
    return losses;  // unreachable: every enumerator is handled above
}
}  // namespace

// For row n with target t_n = c (N rows, C classes):
//   loss_n = −log softmax(z_n)[c] = −(z_n[c] − logsumexp_j z_n[j])
// log_softmax subtracts the row max before exponentiating, so large logits cannot overflow. The gradient
// that flows back through log_softmax and gather is the familiar dloss_n/dz_n = softmax(z_n) − onehot(c).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index, Reduction reduction) {
    if (!logits.defined() || !targets.defined()) throw ValueError("cross_entropy: logits or targets is undefined");
    if (logits.dim() != 2) {
        throw ShapeError("cross_entropy: logits must be 2-D [N, C], got " + to_string(logits.shape()) +
                         " (targets " + to_string(targets.shape()) +
                         "); flatten [B, T, C] logits with view({-1, C}) and targets with view({-1})");
    }
    if (!is_floating(logits.dtype())) {
        throw DTypeError("cross_entropy: logits must be floating, got " + logits.describe());
    }
    if (targets.dtype() != kInt64 && targets.dtype() != kInt32) {
        throw DTypeError("cross_entropy: targets must be int64 or int32 class indices, got " + targets.describe());
    }
    const std::int64_t N = logits.size(0), C = logits.size(1);
    if (targets.shape() != Shape{N}) {
        throw ShapeError("cross_entropy: targets must be [N] = [" + std::to_string(N) + "] for logits " +
                         to_string(logits.shape()) + ", got " + to_string(targets.shape()));
    }

    // Which rows count: an ignored row gathers class 0 (any valid index) and is then masked out.
    const std::vector<std::int64_t> target = targets.to_vector<std::int64_t>();
    std::vector<std::int64_t> safe_target(static_cast<std::size_t>(N));
    std::vector<double> keep(static_cast<std::size_t>(N));
    std::int64_t kept = 0;
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t t = target[n];
        if (t == ignore_index) continue;  // safe_target 0, keep 0
        if (t < 0 || t >= C) {
            throw IndexError("cross_entropy: target " + std::to_string(t) + " at position " + std::to_string(n) +
                             " is out of range for " + std::to_string(C) + " classes (logits " +
                             to_string(logits.shape()) + ", ignore_index " + std::to_string(ignore_index) + ")");
        }
        safe_target[n] = t;
        keep[n] = 1.0;
        ++kept;
    }

    Tensor log_probs = log_softmax(logits, 1);                                            // (N, C)
    Tensor picked = gather(log_probs, 1, from_vector(safe_target, {N, 1})).view({N});     // (N) log p(t_n)
    Tensor keep_mask = from_vector(keep, {N}).to(logits.dtype());                         // (N) 1 or 0
    // where, not a multiply by the mask: an ignored row's log-probability may be -inf (masked logits), and
    // -inf * 0 would be NaN.
    Tensor losses = where(keep_mask, -picked, zeros({N}, logits.dtype()));               // (N)

    if (reduction == Reduction::Mean) {
        // Average over the rows that count; 0 / 0 = NaN when every target is ignored, as in PyTorch.
        return sum(losses) / scalar_tensor(static_cast<double>(kept), logits.dtype());
    }
    return reduce(losses, reduction);
}

// loss_i = (input_i − target_i)²; d loss_i / d input_i = 2 (input_i − target_i).
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
    if (!input.defined() || !target.defined()) throw ValueError("mse_loss: input or target is undefined");
    if (input.shape() != target.shape()) {
        throw ShapeError("mse_loss: input " + to_string(input.shape()) + " and target " + to_string(target.shape()) +
                         " must have the same shape");
    }
    if (!is_floating(input.dtype()) || !is_floating(target.dtype())) {
        throw DTypeError("mse_loss: input and target must be floating, got " + input.describe() + " and " +
                         target.describe());
    }
    return reduce(square(input - target), reduction);
}

}  // namespace functional

std::string reduction_name(functional::Reduction reduction) {
    switch (reduction) {
        case functional::Reduction::None: return "none";
        case functional::Reduction::Sum: return "sum";
        case functional::Reduction::Mean: return "mean";
    }
    return "mean";  // unreachable
}

std::string CrossEntropyLoss::extra_repr() const {
    return "ignore_index=" + std::to_string(ignore_index) + ", reduction='" + reduction_name(reduction) + "'";
}

Tensor CrossEntropyLoss::forward(const Tensor& logits, const Tensor& targets) const {
    return functional::cross_entropy(logits, targets, ignore_index, reduction);
}

std::string MSELoss::extra_repr() const { return "reduction='" + reduction_name(reduction) + "'"; }

Tensor MSELoss::forward(const Tensor& input, const Tensor& target) const {
    return functional::mse_loss(input, target, reduction);
}

}  // namespace tg::nn
