#pragma once
// Internal to nn/attention*.cpp (not installed): the shape checks, operand preparation and kernel problem
// descriptions that the exact node, the polynomial nodes, the auto policy and the error monitor share.

#include "core/tensor.h"
#include "kernels/attention_exact.h"
#include "kernels/attention_poly.h"
#include "nn/attention.h"

#include <stdexcept>
#include <string>

namespace tg::nn::functional::detail {

constexpr const char* kAttentionOp = "scaled_dot_product_attention";

std::string shapes_text(const Tensor& q, const Tensor& k, const Tensor& v);

// Checks q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv]; throws ShapeError naming all three shapes.
void check_shapes(const char* op, const Tensor& q, const Tensor& k, const Tensor& v);

// The dtype everything is computed in: the promoted dtype of q, k, v; integers become float32.
DType compute_dtype(const Tensor& q, const Tensor& k, const Tensor& v);

// The kernels read any strides except along the last dim, which must be contiguous.
Tensor prepare(const Tensor& x, DType dtype);

// A new (B, H, T, E) tensor laid out in memory like `like`: when `like` is a heads view of a (B, T, H, E)
// buffer (its T stride exceeds its H stride, as for heads split from a QKV projection), the new tensor is a
// (B, T, H, E) buffer viewed as (B, H, T, E), so that merging heads afterwards (permute + reshape to (B, T, C))
// is free instead of a copy; otherwise it is contiguous. The kernels write any layout.
Tensor empty_heads_like(const Tensor& like, std::int64_t t, std::int64_t e, DType dtype);

// When q, k and v are views that tile one buffer side by side (the fused projection's [q k v] columns,
// nn/multihead_attention.cpp), makes dq, dk, dv views of one new buffer at the same places and returns true:
// the engine then finds their three gradient pieces already in place and copies nothing (core/gradient_sum.h).
// Otherwise returns false and leaves them alone.
bool gradients_side_by_side(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& dq, Tensor& dk, Tensor& dv);

inline kernels::AttentionLayout layout_of(const Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

double scale_of(const Tensor& q, const AttentionOptions& options);  // options.scale or 1/sqrt(D)

kernels::AttentionProblem exact_problem(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const AttentionOptions& options);
kernels::PolyAttentionProblem poly_problem(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const AttentionOptions& options);

// The exact kernels on prepared operands, outside autograd: O (B, H, Tq, Dv) and lse (B, H, Tq); and
// dQ, dK, dV from the saved operands and dO.
void exact_forward(const kernels::AttentionProblem& p, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                   Tensor& lse);
std::vector<Tensor> exact_backward(const kernels::AttentionProblem& p, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const Tensor& o, const Tensor& lse, const Tensor& dout);

// Runs a polynomial kernel call; the kernels report a non-positive normaliser (possible only with unsafe
// polynomials) as std::domain_error, rethrown as the framework's ValueError naming the op.
template <class Fn>
void run_kernel(const char* op, Fn&& fn) {
    try {
        fn();
    } catch (const std::domain_error& e) {
        throw ValueError(std::string(op) + ": " + e.what());
    }
}

// The polynomial nodes (nn/attention_poly.cpp): record one node on the tape like the exact one.
Tensor approx_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options);
Tensor approx_backward_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options);

// The monitor's measurement (nn/attention_poly.cpp): when options.monitor is active for this step, runs the
// exact kernels on the same inputs and records the errors of o and grads under options.label.
bool monitoring(const AttentionOptions& options);
void record_errors(const AttentionOptions& options, AttentionMode mode, const Tensor& q, const Tensor& k,
                   const Tensor& v, const Tensor& o, const std::vector<Tensor>& grads, const Tensor& dout);

// The near-exact / far-polynomial nodes (nn/attention_hybrid.cpp), used by the approximate modes when
// options.window or options.sinks is > 0.
bool uses_hybrid(const AttentionOptions& options);
Tensor hybrid_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                        AttentionMode mode);

}  // namespace tg::nn::functional::detail
