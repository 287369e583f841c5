#pragma once
// tg::nn::functional: the stateless forms of the layers and losses, like torch.nn.functional. Modules call
// these with their own parameters; you can call them directly with any tensors.
//
// dropout and mse_loss are composed from differentiable tensor ops (core/ops.h), so autograd needs no rule of
// their own. linear, layer_norm and cross_entropy are fused: one tape node each, running the kernels of
// kernels/gemm.h (with the bias added as the output is stored), kernels/layernorm.h and kernels/cross_entropy.h
// with a hand-written backward. Their composed versions,
// layer_norm_reference and cross_entropy_reference, compute the same thing from primitive ops; tests compare
// the two, and they show the math step by step.
// linear, residual_add, dropout and layer_norm are in nn/functional.cpp; the losses in nn/loss.cpp.

#include "core/random.h"
#include "core/tensor.h"

#include <cstdint>

namespace tg::nn::functional {

// How a loss turns per-element losses into its result, like PyTorch's reduction="mean" | "sum" | "none".
enum class Reduction { None, Mean, Sum };

// y = x Wᵀ + b, with x [..., in], weight [out, in], bias [out] (or undefined for no bias) -> y [..., out].
// One node "linear": one GEMM over all leading rows (W read transposed in place, b added in the store); its
// backward is dx = dy W and dW = dyᵀ x (one GEMM each) and db = Σ_rows dy.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// Inverted dropout: in training, each element is zeroed with probability p and the survivors are scaled by
// 1/(1 - p), so E[y] = x and evaluation needs no rescaling. Identity when !training or p = 0; all zeros when
// p = 1. The mask comes from `gen` (nullptr: the global generator). Throws ValueError unless 0 <= p <= 1.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true, Generator* gen = nullptr);

// x + branch, for a residual connection (x + attn(ln1(x)) in a transformer block): the same values, bits and
// tape node ("add") as x + branch. branch is taken by value so that the sum may reuse its memory: when the
// caller hands it over (a temporary, as in residual_add(x, attn(ln1(x))), or std::move) and nothing else can
// see that memory, the sum is added into it in place instead of into a new buffer; otherwise it is x + branch.
// A tensor the caller keeps (an lvalue) is copied into the parameter, so it is never overwritten.
Tensor residual_add(const Tensor& x, Tensor branch);

// Layer normalisation over the last normalized_shape.size() dims of x, which must equal normalized_shape:
//   y = (x − E[x]) / sqrt(Var[x] + eps) · weight + bias
// with the biased variance (divide by the count, as PyTorch). weight and bias have shape normalized_shape
// and may be undefined (no affine transform). One fused node "layer_norm" with inputs (x, weight, bias); it
// computes in x's dtype (weight and bias are converted to it).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
// The same, composed from mean, square, rsqrt, mul and add (many nodes; autograd differentiates each).
Tensor layer_norm_reference(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                            const Tensor& bias = Tensor(), double eps = 1e-5);

// ---- losses (nn/loss.cpp) -----------------------------------------------------------------------------------

// Cross-entropy between logits [N, C] and integer class targets [N] (int32 or int64):
//   loss_n = −log softmax(logits_n)[target_n] = logsumexp(logits_n) − logits_n[target_n]
// computed by one fused node "cross_entropy" (input: logits) that also forms the gradient
// (softmax − onehot) in the same pass, stable (the row max is subtracted before exp). Targets equal to
// ignore_index contribute nothing: Mean divides by the number of *non-ignored* targets (NaN when all are
// ignored, like PyTorch), None gives 0 at ignored positions. For [B, T, C] logits, flatten first:
// cross_entropy(logits.view({-1, C}), targets.view({-1})). Throws IndexError for a target outside [0, C)
// that is not ignore_index.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index = -100,
                     Reduction reduction = Reduction::Mean);
// The same, composed from log_softmax, gather and where (autograd differentiates each).
Tensor cross_entropy_reference(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index = -100,
                               Reduction reduction = Reduction::Mean);

// Mean squared error: (input − target)², reduced. input and target must have the same shape (PyTorch only
// warns when they broadcast; here it is an error, since it is nearly always a bug).
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

}  // namespace tg::nn::functional
