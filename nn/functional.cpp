// tg::nn::functional: linear, one fused node over kernels/gemm.h; dropout, composed from tensor ops (autograd
// comes with them); layer_norm, one fused node over kernels/layernorm.h with its composed layer_norm_reference.
// The losses are in nn/loss.cpp.

#include "nn/functional.h"

#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "kernels/gemm.h"
#include "kernels/layernorm.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

namespace tg::nn::functional {

namespace {

// The weight as the GEMM reads it transposed (row j of W = column j of Wᵀ): rows of `in` contiguous values.
// Parameters always are; anything else is copied once.
Tensor gemm_rows(const Tensor& t) {
    const bool rows_ok = t.size(-1) <= 1 || t.stride(-1) == 1;
    const bool ld_ok = t.dim() < 2 || t.size(-2) <= 1 || t.stride(-2) >= t.size(-1);
    return rows_ok && ld_ok ? t : t.contiguous();
}

// Leading dimension of a matrix view that gemm_rows accepted.
std::int64_t leading_dim(const Tensor& m) {
    return m.size(0) <= 1 ? std::max<std::int64_t>(m.size(1), 1) : m.stride(0);
}

template <class T>
void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda, const T* b,
          std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
    } else {
        kernels::dgemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
    }
}

// Whether the sum x + branch may be written into branch's memory: branch is the only handle on its tensor and
// its storage (the caller handed it over; no view, saved tensor or other handle can see the memory), covers that
// storage contiguously, is ours (not borrowed), and is not a leaf that requires grad (a parameter's values).
bool may_take_memory(const Tensor& branch, const Tensor& x) {
    return branch.impl_ptr().use_count() == 1 && branch.storage().use_count() == 1 &&
           !branch.storage()->is_borrowed() && branch.offset() == 0 && branch.is_contiguous() &&
           static_cast<std::size_t>(branch.numel()) * element_size(branch.dtype()) == branch.storage()->nbytes() &&
           !(branch.is_leaf() && branch.requires_grad()) && branch.shape() == x.shape() &&
           branch.dtype() == x.dtype() && is_floating(x.dtype());
}

// C[m×n] = Aᵀ·B with A stored k×m (the weight gradient dyᵀ·x), and a_sums[m] = the row sums of Aᵀ (the
// bias gradient Σ_r dy_r), summed by the GEMM per k block as its tiles read dy (kernels/gemm.h).
template <class T>
void gemm_a_sums(std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda, const T* b,
                 std::int64_t ldb, T* c, std::int64_t ldc, T* a_sums) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::sgemm_a_sums(true, false, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc, a_sums);
    } else {
        kernels::dgemm_a_sums(true, false, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc, a_sums);
    }
}

}  // namespace

// x + branch. When branch's memory may be taken (above), the sum is added into it in place: one pass that
// reads x and branch and writes where branch was, which the branch's last op has just written, so it is in
// cache; a fresh output buffer's lines would first be fetched from memory only to be overwritten. Otherwise
// x + branch as it is. Either way the tape gets the node of x + branch: "add", d(x + b) = dx + db.
Tensor residual_add(const Tensor& x, Tensor branch) {
    if (!x.defined() || !branch.defined()) throw ValueError("residual_add: an operand is an undefined tensor");
    if (!may_take_memory(branch, x)) return x + branch;
    Tensor sum = branch.detach();  // a second handle on branch's storage, without its history
    {
        NoGradGuard no_grad;
        sum.add_(x);  // branch + x: addition commutes exactly, so these are the bits of x + branch
    }
    autograd::record("add", sum, {x, branch}, [](const Tensor& dout) { return autograd::Grads{dout, dout}; });
    return sum;
}

// y = x Wᵀ + b. x [..., in] @ Wᵀ [in, out] -> [..., out]; b [out] broadcasts over the leading dims.
//
// One fused node. All leading dims of x are one stack of R rows, so the whole layer is one GEMM of
// [R, in] · [in, out] with W read transposed in place (no copy). The GEMM adds the bias as it stores each
// tile of y (kernels::sgemm_bias): no separate pass over y for "+ b".
// Backward, with dy [R, out]:
//   dx = dy · W        [R, out] · [out, in]
//   dW = dyᵀ · x       [out, R] · [R, in]     one product over all R rows (Σ_r dy_rᵀ x_r)
//   db = Σ_r dy_r      column sums of dy = the row sums of dyᵀ: when dW is computed too, the GEMM of dW sums
//                      them per k block as it reads dy (kernels::sgemm_a_sums), instead of a second pass over
//                      dy; bits: each block of 512 rows of dy (256 in float64) summed left to right, then
//                      the blocks in order
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
    const bool fusable = is_floating(x.dtype()) && x.dtype() == weight.dtype() &&
                         (!bias.defined() || bias.dtype() == x.dtype()) && x.numel() > 0 && weight.numel() > 0;
    if (!fusable) {  // mixed dtypes (matmul names them), empty tensors: the composed form
        Tensor y = matmul(x, weight.t());
        return bias.defined() ? y + bias : y;
    }

    const DType dtype = x.dtype();
    const std::int64_t in = weight.size(1), out = weight.size(0), R = x.numel() / in;
    const Tensor x2 = x.detach().contiguous().view({R, in});  // (R, in)
    const Tensor w = gemm_rows(weight.detach());              // (out, in)
    Shape out_shape = x.shape();
    out_shape.back() = out;
    const Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();  // (out)
    Tensor y = empty(out_shape, dtype);                                         // (R, out) in memory
    dispatch_floating(dtype, [&](auto tag) {
        using T = decltype(tag);
        if (b.defined()) {  // y = x Wᵀ + b, the bias added as each tile of y is stored
            if constexpr (std::is_same_v<T, float>) {
                kernels::sgemm_bias(false, true, R, out, in, x2.data<T>(), in, w.data<T>(), leading_dim(w),
                                    b.data<T>(), y.data<T>(), out);
            } else {
                kernels::dgemm_bias(false, true, R, out, in, x2.data<T>(), in, w.data<T>(), leading_dim(w),
                                    b.data<T>(), y.data<T>(), out);
            }
        } else {
            gemm<T>(false, true, R, out, in, x2.data<T>(), in, w.data<T>(), leading_dim(w), T(0), y.data<T>(), out);
        }
    });

    autograd::record(
        "linear", y, {x, weight, bias},
        [sx = autograd::SavedTensor(x2), sw = autograd::SavedTensor(w), x_shape = x.shape(), R, in, out,
         need_x = x.requires_grad(), need_w = weight.requires_grad(),
         need_b = bias.defined() && bias.requires_grad()](const Tensor& dout) {
            const Tensor xs = sx.get(), ws = sw.get();
            Tensor dy = dout.detach();
            if (dy.dtype() != xs.dtype()) dy = dy.to(xs.dtype());
            dy = dy.contiguous();  // (R, out)
            autograd::Grads grads(3);
            dispatch_floating(xs.dtype(), [&](auto tag) {
                using T = decltype(tag);
                if (need_x) {
                    Tensor dx = empty(x_shape, xs.dtype());  // dx = dy · W
                    gemm<T>(false, false, R, in, out, dy.data<T>(), out, ws.data<T>(), leading_dim(ws), T(0),
                            dx.data<T>(), in);
                    grads[0] = dx;
                }
                if (need_w && need_b) {  // dW = dyᵀ · x and db = Σ_r dy_r, the row sums of dyᵀ, in one pass
                    Tensor dw = empty({out, in}, xs.dtype());
                    Tensor db = empty({out}, xs.dtype());
                    gemm_a_sums<T>(out, in, R, dy.data<T>(), out, xs.data<T>(), in, dw.data<T>(), in, db.data<T>());
                    grads[1] = dw;
                    grads[2] = db;
                } else if (need_w) {
                    Tensor dw = empty({out, in}, xs.dtype());  // dW = dyᵀ · x
                    gemm<T>(true, false, out, in, R, dy.data<T>(), out, xs.data<T>(), in, T(0), dw.data<T>(), in);
                    grads[1] = dw;
                }
            });
            if (need_b && !need_w) grads[2] = sum(dy.view({R, out}), {0});  // db = Σ_r dy_r
            return grads;
        });
    return y;
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

namespace {

// Shape and dtype checks shared by the fused op and its composed reference.
void check_layer_norm_args(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                           const Tensor& bias) {
    if (!x.defined()) throw ValueError("layer_norm: the input is an undefined tensor");
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
    for (const Tensor* p : {&weight, &bias}) {
        if (p->defined() && !is_floating(p->dtype())) {
            throw DTypeError("layer_norm: weight and bias must be floating, got " + p->describe());
        }
    }
}

// A contiguous copy of `t` in `dtype`, cut from the graph (t itself when it already is one).
Tensor contiguous_as(const Tensor& t, DType dtype) {
    Tensor d = t.detach();
    if (d.dtype() != dtype) d = d.to(dtype);
    return d.contiguous();
}

}  // namespace

// Fused (kernels/layernorm.h). x [..., normalized_shape] is seen as rows × C, C = numel(normalized_shape);
// per row r:
//   μ_r = mean_j x[r, j],   σ²_r = mean_j (x[r, j] − μ_r)²,   rstd_r = 1 / sqrt(σ²_r + eps)
//   y[r, j] = (x[r, j] − μ_r) · rstd_r · γ[j] + β[j]
// μ and rstd are saved, so the backward pass need not recompute them. With x̂ = (x − μ)·rstd and g = dy ∘ γ
// (the kernel's comment derives it):
//   dx[r, j] = rstd_r · (g[r, j] − mean_k g[r, k] − x̂[r, j] · mean_k g[r, k] x̂[r, k])
//   dγ[j] = Σ_r dy[r, j] x̂[r, j],   dβ[j] = Σ_r dy[r, j]
namespace {

// Whether layer_norm's backward may recompute x̂ from its output, x̂ = (y − β)/γ: every γ_j nonzero and
// |β_j| <= kMaxBetaOverGamma·|γ_j| (all finite). y carries y's rounding error ε·|y| <= ε·(|γ_j x̂| + |β_j|), and
// the division turns it into an error of ε·(|x̂| + |β_j/γ_j|) in x̂ (plus two roundings): at most about 16ε
// more than x̂'s own where |x̂| is small. A LayerNorm whose γ has an entry near zero, or a β much larger than
// its γ, keeps its input instead. γ = 1, β = 0 (a new LayerNorm, or none given) always qualifies.
constexpr double kMaxBetaOverGamma = 16.0;

// γ and β: contiguous vectors of one floating dtype.
bool xhat_from_output_is_accurate(const Tensor& gamma, const Tensor& beta) {
    bool accurate = true;
    dispatch_floating(gamma.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* g = gamma.data<T>();
        const T* b = beta.data<T>();
        for (std::int64_t j = 0; j < gamma.numel() && accurate; ++j) {
            const double a = std::abs(static_cast<double>(g[j]));
            accurate = a > 0.0 && std::isfinite(a) && std::abs(static_cast<double>(b[j])) <= kMaxBetaOverGamma * a;
        }
    });
    return accurate;
}

}  // namespace

// A missing weight / bias is run as γ = 1 / β = 0, and gets no gradient.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
    check_layer_norm_args(x, normalized_shape, weight, bias);
    const DType dtype = x.dtype();
    const std::int64_t C = numel(normalized_shape);
    if (x.numel() == 0) return layer_norm_reference(x, normalized_shape, weight, bias, eps);  // nothing to fuse
    const std::int64_t R = x.numel() / C;

    const Tensor xc = contiguous_as(x, dtype);  // (R, C) in memory
    const Tensor gamma = weight.defined() ? contiguous_as(weight, dtype) : ones(normalized_shape, dtype);  // (C)
    const Tensor beta = bias.defined() ? contiguous_as(bias, dtype) : zeros(normalized_shape, dtype);      // (C)
    const bool want_grad = autograd::needs_grad({x, weight, bias});
    // The backward needs x̂ = (x − μ)·rstd. It is recomputed from the output y = γ∘x̂ + β when γ allows it
    // (x̂ = (y − β)/γ, kernels/layernorm.h): y is kept anyway by what reads it next (a Linear saves its input for
    // dW), so the input x and the mean need not be kept too — the residual stream a transformer block's
    // LayerNorm reads is then freed after the forward (at the GPT's config S, 9 of its 84 MB), and the backward
    // reads rows the Linear's dW has just brought into cache instead of rows saved long before.
    const bool from_output = want_grad && xhat_from_output_is_accurate(gamma, beta);
    Tensor y = empty(x.shape(), dtype);                                  // (R, C)
    Tensor mu = want_grad && !from_output ? empty({R}, dtype) : Tensor();  // (R) saved for backward
    Tensor rstd = want_grad ? empty({R}, dtype) : Tensor();              // (R) saved for backward
    dispatch_floating(dtype, [&](auto tag) {
        using T = decltype(tag);
        kernels::layernorm_forward(xc.data<T>(), gamma.data<T>(), beta.data<T>(), y.data<T>(),
                                   mu.defined() ? mu.data<T>() : nullptr, want_grad ? rstd.data<T>() : nullptr, R, C,
                                   eps, C, C);
    });

    autograd::record_with_targets(
        "layer_norm", y, {x, weight, bias},
        [sxy = autograd::SavedTensor(from_output ? y : xc), sgamma = autograd::SavedTensor(gamma),
         sbeta = autograd::SavedTensor(from_output ? beta : Tensor()), smu = autograd::SavedTensor(mu),
         srstd = autograd::SavedTensor(rstd), from_output, R, C, normalized_shape, has_weight = weight.defined(),
         has_bias = bias.defined()](const Tensor& dout, autograd::GradientTargets& targets) {
            const Tensor xy = sxy.get(), g = sgamma.get(), rs = srstd.get();  // xy: x, or y when from_output
            const Tensor dy = contiguous_as(dout, xy.dtype());   // (R, C)
            // Where x also feeds a residual connection, the engine offers the sum of the gradients that already
            // reached x (the residual stream's): dx is added into it in the kernel's one pass, instead of being
            // written here and added by the engine in a second pass (core/gradient_targets.h).
            const Tensor into = targets.target(0);
            const bool accumulate = into.defined() && into.shape() == dout.shape() && into.dtype() == xy.dtype();
            Tensor dx = accumulate ? into : empty(dout.shape(), xy.dtype());  // (R, C)
            Tensor dgamma = empty(normalized_shape, xy.dtype());  // (C)
            Tensor dbeta = empty(normalized_shape, xy.dtype());   // (C)
            dispatch_floating(xy.dtype(), [&](auto tag) {
                using T = decltype(tag);
                if (from_output) {
                    kernels::layernorm_backward_from_output(xy.data<T>(), g.data<T>(), sbeta.get().data<T>(),
                                                            rs.data<T>(), dy.data<T>(), dx.data<T>(),
                                                            dgamma.data<T>(), dbeta.data<T>(), R, C, C, C, C,
                                                            accumulate);
                } else {
                    kernels::layernorm_backward(xy.data<T>(), g.data<T>(), smu.get().data<T>(), rs.data<T>(),
                                                dy.data<T>(), dx.data<T>(), dgamma.data<T>(), dbeta.data<T>(), R, C,
                                                C, C, C, accumulate);
                }
            });
            if (accumulate) targets.mark_added(0);
            return autograd::Grads{accumulate ? Tensor() : dx, has_weight ? dgamma : Tensor(),
                                   has_bias ? dbeta : Tensor()};
        });
    return y;
}

// Composed reference, per normalised group (the last k = normalized_shape.size() dims):
//   μ = mean(x),  σ² = mean((x − μ)²)          (biased variance, two passes for stability)
//   y = (x − μ) / sqrt(σ² + eps) · weight + bias
// Composed from mean/square/rsqrt, so the backward pass is the chain rule through those ops.
Tensor layer_norm_reference(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                            const Tensor& bias, double eps) {
    check_layer_norm_args(x, normalized_shape, weight, bias);
    const std::int64_t k = static_cast<std::int64_t>(normalized_shape.size());
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
