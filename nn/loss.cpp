// Losses: cross_entropy and mse_loss (declared in nn/functional.h) and their modules (nn/loss.h).
// cross_entropy is one fused node (kernels/cross_entropy.h, hand-written backward) with its composed
// reference cross_entropy_reference kept for tests; mse_loss is composed from differentiable ops.

#include "nn/loss.h"

#include "core/node.h"
#include "core/ops.h"
#include "kernels/cross_entropy.h"

#include <string>
#include <type_traits>
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

// Shape and dtype checks shared by the fused op and its composed reference.
void check_cross_entropy_args(const Tensor& logits, const Tensor& targets) {
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
    const std::int64_t N = logits.size(0);
    if (targets.shape() != Shape{N}) {
        throw ShapeError("cross_entropy: targets must be [N] = [" + std::to_string(N) + "] for logits " +
                         to_string(logits.shape()) + ", got " + to_string(targets.shape()));
    }
}

// Throws IndexError for the first target outside [0, C) that is not ignore_index; returns how many rows count.
template <typename I>
std::int64_t check_targets(const I* target, const Tensor& logits, std::int64_t ignore_index) {
    const std::int64_t N = logits.size(0), C = logits.size(1);
    std::int64_t kept = 0;
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t t = static_cast<std::int64_t>(target[n]);
        if (t == ignore_index) continue;
        if (t < 0 || t >= C) {
            throw IndexError("cross_entropy: target " + std::to_string(t) + " at position " + std::to_string(n) +
                             " is out of range for " + std::to_string(C) + " classes (logits " +
                             to_string(logits.shape()) + ", ignore_index " + std::to_string(ignore_index) + ")");
        }
        ++kept;
    }
    return kept;
}

}  // namespace

// Fused: one pass per row of kernels/cross_entropy.h gives, for row n with target t_n (N rows, C classes),
//   loss_n       = logsumexp(z_n) − z_n[t_n]                       (= −log softmax(z_n)[t_n])
//   dloss_n/dz_n = softmax(z_n) − onehot(t_n)
// The gradient is computed in the forward pass, while the row is in cache, already multiplied by the
// reduction's factor (1/kept for the mean, 1 otherwise). The backward rule then only scales it by dout:
//   mean, sum:  dz = dout · G          none:  dz[n, :] = dout[n] · G[n, :]
// Ignored rows get loss 0 and a zero gradient row. Without grad (NoGradGuard, eval), the loss-only kernel
// runs and no [N, C] gradient buffer is made. The backward rule treats G as a constant, so the op is
// differentiable once (no double backward), like every fused op here.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index, Reduction reduction) {
    check_cross_entropy_args(logits, targets);
    const std::int64_t N = logits.size(0), C = logits.size(1);
    const DType dtype = logits.dtype();

    // The kernel needs each row contiguous, rows at a stride >= C; anything else (a transpose) is copied.
    Tensor z = logits.detach();
    const bool rows_ok = (C <= 1 || z.stride(1) == 1) && (N <= 1 || z.stride(0) >= C);
    if (!rows_ok) z = z.contiguous();
    const std::int64_t row_stride = N <= 1 ? C : z.stride(0);
    const Tensor t = targets.contiguous();

    const bool want_grad = autograd::needs_grad({logits});
    Tensor losses = empty({N}, dtype);           // (N)
    Tensor dlogits = want_grad ? empty({N, C}, dtype) : Tensor();  // (N, C) gradient G, saved for backward
    std::int64_t kept = 0;
    dispatch_floating(dtype, [&](auto ftag) {
        using T = decltype(ftag);
        dispatch(t.dtype(), [&](auto itag) {
            using I = decltype(itag);
            if constexpr (std::is_same_v<I, std::int64_t> || std::is_same_v<I, std::int32_t>) {
                const I* pt = t.data<I>();
                kept = check_targets(pt, logits, ignore_index);  // IndexError before anything is computed
                if (!want_grad) {
                    kernels::cross_entropy_forward(z.data<T>(), pt, losses.data<T>(), N, C, row_stride, ignore_index);
                    return;
                }
                // 1/kept for the mean; with nothing kept every row is ignored and the scale is never used.
                const T scale = reduction == Reduction::Mean ? (kept > 0 ? T(1) / static_cast<T>(kept) : T(0)) : T(1);
                kernels::cross_entropy_forward_backward(z.data<T>(), pt, losses.data<T>(), dlogits.data<T>(), N, C,
                                                        row_stride, C, scale, ignore_index);
            }
        });
    });

    Tensor out;
    if (reduction == Reduction::None) {
        out = losses;
    } else {
        // Σ losses in row order in double (deterministic); the mean divides by the kept rows, so 0/0 = NaN when
        // every target is ignored, as in PyTorch.
        double total = 0.0;
        dispatch_floating(dtype, [&](auto tag) {
            using T = decltype(tag);
            const T* pl = losses.data<T>();
            for (std::int64_t n = 0; n < N; ++n) total += static_cast<double>(pl[n]);
        });
        if (reduction == Reduction::Mean) total /= static_cast<double>(kept);
        out = scalar_tensor(total, dtype);
    }
    autograd::record("cross_entropy", out, {logits},
                     [saved = autograd::SavedTensor(dlogits), reduction, N, C](const Tensor& dout_in) {
                         const Tensor g = saved.get();  // (N, C) contiguous
                         // dout: (N) for reduction none, a scalar otherwise.
                         const Tensor dout = dout_in.to(g.dtype()).contiguous();
                         // loss.backward() of a reduced loss seeds dout = 1: G itself is the answer, no copy.
                         // (The engine never writes into a gradient it is handed; should anything change G in
                         // place, its SavedTensor version check makes a second backward fail loudly.)
                         if (reduction != Reduction::None && dout.item<double>() == 1.0) return autograd::Grads{g};
                         Tensor dz = empty({N, C}, g.dtype());  // (N, C)
                         dispatch_floating(g.dtype(), [&](auto tag) {
                             using T = decltype(tag);
                             const T* pg = g.data<T>();
                             const T* pd = dout.data<T>();
                             T* pz = dz.data<T>();
                             // A plain scaling loop (the compiler vectorises it): one read of G, one write.
                             for (std::int64_t n = 0; n < N; ++n) {
                                 const T d = reduction == Reduction::None ? pd[n] : pd[0];  // dz[n, :] = d · G[n, :]
                                 for (std::int64_t j = 0; j < C; ++j) pz[n * C + j] = pg[n * C + j] * d;
                             }
                         });
                         return autograd::Grads{dz};
                     });
    return out;
}

// Composed reference, for row n with target t_n = c (N rows, C classes):
//   loss_n = −log softmax(z_n)[c] = −(z_n[c] − logsumexp_j z_n[j])
// log_softmax subtracts the row max before exponentiating, so large logits cannot overflow. The gradient
// that flows back through log_softmax and gather is the familiar dloss_n/dz_n = softmax(z_n) − onehot(c).
Tensor cross_entropy_reference(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index,
                               Reduction reduction) {
    check_cross_entropy_args(logits, targets);
    const std::int64_t N = logits.size(0);

    // Which rows count: an ignored row gathers class 0 (any valid index) and is then masked out.
    const std::vector<std::int64_t> target = targets.to_vector<std::int64_t>();
    const std::int64_t kept = check_targets(target.data(), logits, ignore_index);
    std::vector<std::int64_t> safe_target(static_cast<std::size_t>(N));
    std::vector<double> keep(static_cast<std::size_t>(N));
    for (std::int64_t n = 0; n < N; ++n) {
        if (target[n] == ignore_index) continue;  // safe_target 0, keep 0
        safe_target[n] = target[n];
        keep[n] = 1.0;
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
