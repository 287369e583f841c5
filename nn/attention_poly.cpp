// The approximate attention nodes (docs/approximate-attention.md; kernels in kernels/attention_poly*.cpp).
// Each is ONE node on the tape, like the exact one; only the kernels behind the forward and the backward differ.
//
//   approx            forward   U = φ_Q(t Q), W = φ_K(t K), Ñ = U (Wᵀ Ṽ),  z = Ñ[:, Dv],  O = Ñ[:, :Dv] / z
//                     backward  the consistent formula: the exact gradient of that forward.
//   approx_backward   forward   the exact (fused) kernel: O = softmax(S + M) V
//                     backward  the polynomial backward given the exact O and the polynomial normaliser ẑ:
//                               consistent (gradient of the polynomial forward at P̂ = Â/ẑ) or plugin (the
//                               softmax-gradient formula with Â in place of A, the paper's Algorithm 1).
// Both save only q, k, v, O and one number per row (z or lse): O(T·D) per head, never T×T; causal approx
// also its running state every 16 chunks (about 10 bytes per row at D = 16, g = 2), for a faster backward.
//
// Monitor. When options.monitor is active for this step, the backward also runs the exact kernels on the same
// q, k, v and dO and records the relative errors of O, dQ, dK, dV under options.label (nn/attention_monitor.h).

#include "core/node.h"
#include "core/ops.h"
#include "nn/attention_detail.h"
#include "nn/attention_monitor.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace tg::nn::functional::detail {

namespace {

constexpr const char* kApproxOp = "scaled_dot_product_attention[approx]";
constexpr const char* kApproxBackwardOp = "scaled_dot_product_attention[approx_backward]";

// The one place where the module-level choice of gradient formula becomes the kernels' (the same two formulas;
// nn spells them as the options do, kernels as their own API does).
kernels::PolyGradient kernel_gradient(AttentionGradient gradient) {
    switch (gradient) {
        case AttentionGradient::Consistent: return kernels::PolyGradient::consistent;
        case AttentionGradient::Plugin: return kernels::PolyGradient::plugin;
    }
    throw ValueError("scaled_dot_product_attention: unknown gradient formula");
}

// The kernels' own checks (degree, sizes) rethrown as the framework's ValueError, naming the op and shapes.
kernels::PolyAttentionProblem checked_poly_problem(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                                                   const AttentionOptions& options) {
    if (options.causal && q.size(2) != k.size(2)) {
        throw ValueError(std::string(op) + ": causal polynomial attention needs Tq == Tk; got " + shapes_text(q, k, v));
    }
    const double scale = scale_of(q, options);
    if (!(scale > 0)) {
        throw ValueError(std::string(op) + ": the polynomial modes need a positive scale (t = sqrt(s)), got " +
                         std::to_string(scale));
    }
    kernels::PolyAttentionProblem p = poly_problem(q, k, v, options);
    try {
        kernels::check_poly_attention_problem(p);
    } catch (const std::invalid_argument& e) {
        throw ValueError(std::string(op) + ": " + e.what() + "; " + shapes_text(q, k, v));
    }
    return p;
}

// A workspace as a tensor, so that memory_stats() accounts for it.
Tensor poly_workspace(const kernels::PolyAttentionProblem& p, kernels::PolyAttentionPass pass, DType dtype) {
    return empty({std::max<std::int64_t>(1, kernels::poly_attention_workspace(p, pass))}, dtype);
}

// O (B, H, Tq, Dv) and z (B, H, Tq) of the polynomial forward; with_checkpoints (for a backward to come), also
// the checkpoints of its running state that let the causal backward read each T-long array once
// (kernels::poly_attention_checkpoints; left undefined when not causal).
Tensor poly_forward(const char* op, const kernels::PolyAttentionProblem& p, const Tensor& q, const Tensor& k,
                    const Tensor& v, Tensor& z, bool with_checkpoints, Tensor& checkpoints) {
    Tensor out = empty_heads_like(q, p.tq, p.dv, q.dtype());
    z = empty({p.batch, p.heads, p.tq}, q.dtype());
    const std::int64_t n_checkpoints = with_checkpoints ? kernels::poly_attention_checkpoints(p) : 0;
    if (n_checkpoints > 0) checkpoints = empty({n_checkpoints}, q.dtype());
    Tensor workspace = poly_workspace(p, kernels::PolyAttentionPass::forward, q.dtype());
    dispatch_floating(q.dtype(), [&](auto tag) {
        using T = decltype(tag);
        run_kernel(op, [&] {
            kernels::poly_attention_forward(p, q.data<T>(), layout_of(q), k.data<T>(), layout_of(k), v.data<T>(),
                                            layout_of(v), out.data<T>(), layout_of(out), z.data<T>(),
                                            workspace.data<T>(),
                                            checkpoints.defined() ? checkpoints.data<T>() : nullptr);
        });
    });
    return out;
}

// ẑ (B, H, Tq) alone: the approximate row sums Σ_j p(s q_i·k_j) that approx_backward divides by.
Tensor poly_normaliser(const char* op, const kernels::PolyAttentionProblem& p, const Tensor& q, const Tensor& k) {
    Tensor z = empty({p.batch, p.heads, p.tq}, q.dtype());
    Tensor workspace = poly_workspace(p, kernels::PolyAttentionPass::forward, q.dtype());
    dispatch_floating(q.dtype(), [&](auto tag) {
        using T = decltype(tag);
        run_kernel(op, [&] {
            kernels::poly_attention_normaliser(p, q.data<T>(), layout_of(q), k.data<T>(), layout_of(k), z.data<T>(),
                                               workspace.data<T>());
        });
    });
    return z;
}

// checkpoints: the forward's (mode approx), or undefined.
std::vector<Tensor> poly_backward(const char* op, const kernels::PolyAttentionProblem& p, AttentionGradient gradient,
                                  const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& z,
                                  const Tensor& dout_in, const Tensor& checkpoints = Tensor()) {
    const Tensor dout = prepare(dout_in, o.dtype());
    Tensor dq = empty_heads_like(q, p.tq, p.d, q.dtype());
    Tensor dk = empty_heads_like(k, p.tk, p.d, k.dtype());
    Tensor dv = empty_heads_like(v, p.tk, p.dv, v.dtype());
    const kernels::PolyGradient grad = kernel_gradient(gradient);
    const kernels::PolyAttentionPass pass = kernels::poly_backward_pass(grad);
    Tensor workspace = poly_workspace(p, pass, q.dtype());
    dispatch_floating(q.dtype(), [&](auto tag) {
        using T = decltype(tag);
        run_kernel(op, [&] {
            kernels::poly_attention_backward(p, grad, q.data<T>(), layout_of(q), k.data<T>(), layout_of(k),
                                             v.data<T>(), layout_of(v), o.data<T>(), layout_of(o), z.data<T>(),
                                             dout.data<T>(), layout_of(dout), dq.data<T>(), layout_of(dq),
                                             dk.data<T>(), layout_of(dk), dv.data<T>(), layout_of(dv),
                                             workspace.data<T>(),
                                             checkpoints.defined() ? checkpoints.data<T>() : nullptr);
        });
    });
    return {dq, dk, dv};
}

}  // namespace

// The monitor's measurement: the exact O and gradients on the same inputs, compared with ours.
void record_errors(const AttentionOptions& options, AttentionMode mode, const Tensor& q, const Tensor& k,
                   const Tensor& v, const Tensor& o, const std::vector<Tensor>& grads, const Tensor& dout) {
    const kernels::AttentionProblem ep = exact_problem(q, k, v, options);
    Tensor o_exact, lse;
    exact_forward(ep, q, k, v, o_exact, lse);
    const std::vector<Tensor> exact = exact_backward(ep, q, k, v, o_exact, lse, dout);
    options.monitor->record(options.label, to_string(mode),
                            attention_errors(o, grads[0], grads[1], grads[2], o_exact, exact[0], exact[1], exact[2]),
                            options.window, options.sinks);
}

bool monitoring(const AttentionOptions& options) { return options.monitor && options.monitor->active(); }

kernels::PolyAttentionProblem poly_problem(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const AttentionOptions& options) {
    kernels::PolyAttentionProblem p;
    p.batch = q.size(0);
    p.heads = q.size(1);
    p.tq = q.size(2);
    p.tk = k.size(2);
    p.d = q.size(3);
    p.dv = v.size(3);
    p.causal = options.causal;
    p.scale = scale_of(q, options);
    p.degree = options.degree;
    p.chunk = options.chunk;
    // Odd Taylor degrees (1, 3) are negative for scores below about −1 (g = 1) or −1.6 (g = 3). They are useful
    // in the small-score regime, so they are allowed; the kernels then check every normaliser and a z <= 0
    // throws (ValueError, naming the row) instead of dividing by it.
    p.allow_unsafe_polynomial = options.degree % 2 == 1;
    return p;
}

Tensor approx_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
    const kernels::PolyAttentionProblem p = checked_poly_problem(kApproxOp, q, k, v, options);
    Tensor z, checkpoints;
    Tensor out = poly_forward(kApproxOp, p, q, k, v, z, autograd::needs_grad({q, k, v}), checkpoints);

    // Backward: the consistent formula with the forward's own O and z is the exact gradient of this forward.
    autograd::record(kApproxOp, out, {q, k, v},
                     [sq = autograd::SavedTensor(q), sk = autograd::SavedTensor(k), sv = autograd::SavedTensor(v),
                      so = autograd::SavedTensor(out), sz = autograd::SavedTensor(z), checkpoints, p,
                      options](const Tensor& dout) {
                         std::vector<Tensor> grads = poly_backward(kApproxOp, p, AttentionGradient::Consistent,
                                                                   sq.get(), sk.get(), sv.get(), so.get(), sz.get(),
                                                                   dout, checkpoints);
                         if (monitoring(options)) {
                             record_errors(options, AttentionMode::Approx, sq.get(), sk.get(), sv.get(), so.get(),
                                           grads, dout);
                         }
                         return grads;
                     });
    return out;
}

Tensor approx_backward_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
    const kernels::PolyAttentionProblem p = checked_poly_problem(kApproxBackwardOp, q, k, v, options);
    // Forward: exact values, from the fused kernel (the lse is not needed by the polynomial backward).
    Tensor out, lse;
    exact_forward(exact_problem(q, k, v, options), q, k, v, out, lse);

    // Backward: ẑ from the low-rank factors (computed here, not in the forward, so that inference and
    // no-grad evaluation pay nothing for it), then the polynomial backward with the exact O.
    autograd::record(kApproxBackwardOp, out, {q, k, v},
                     [sq = autograd::SavedTensor(q), sk = autograd::SavedTensor(k), sv = autograd::SavedTensor(v),
                      so = autograd::SavedTensor(out), p, options](const Tensor& dout) {
                         const Tensor z = poly_normaliser(kApproxBackwardOp, p, sq.get(), sk.get());
                         std::vector<Tensor> grads = poly_backward(kApproxBackwardOp, p, options.gradient, sq.get(),
                                                                   sk.get(), sv.get(), so.get(), z, dout);
                         if (monitoring(options)) {
                             record_errors(options, AttentionMode::ApproxBackward, sq.get(), sk.get(), sv.get(),
                                           so.get(), grads, dout);
                         }
                         return grads;
                     });
    return out;
}

}  // namespace tg::nn::functional::detail
