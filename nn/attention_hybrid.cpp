// The near-exact / far-polynomial attention nodes (docs/approximate-attention.md, "Near-exact / far-polynomial
// attention"; kernels in kernels/attention_hybrid*.cpp). The approximate modes use them when
// AttentionOptions::window or ::sinks is > 0. ONE node on the tape each, like the other modes:
//
//   approx            forward   the hybrid: w_ij = exp(s_ij) for the last W keys and the first S, p(s_ij) for
//                               the others, O_i = Σ_j w_ij v_j / Σ_j w_ij                         (H1, H2)
//                     backward  its exact gradient (H3)–(H6)
//   approx_backward   forward   the exact (fused) kernel: O = softmax(S + M) V
//                     backward  the same exact gradient of the hybrid, with the hybrid's z_i, A_ij and D_i
//                               recomputed here (so the gradient is the gradient of one function, the hybrid)
// Both save q, k, v, O and one number per row (lse): O(T·D) per head, never T×T.

#include "core/node.h"
#include "core/ops.h"
#include "kernels/attention_hybrid.h"
#include "nn/attention_detail.h"
#include "nn/attention_monitor.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace tg::nn::functional::detail {

namespace {

constexpr const char* kHybridApproxOp = "scaled_dot_product_attention[approx, window]";
constexpr const char* kHybridApproxBackwardOp = "scaled_dot_product_attention[approx_backward, window]";

std::string window_text(const AttentionOptions& options) {
    return "window=" + std::to_string(options.window) + ", sinks=" + std::to_string(options.sinks);
}

// Rejects what the hybrid does not define, naming the op, the window, sinks and shapes.
kernels::HybridAttentionProblem checked_problem(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                                                const AttentionOptions& options, AttentionMode mode) {
    const std::string where = std::string(op) + ": ";
    if (options.window < 0 || options.sinks < 0) {
        throw ValueError(where + "window and sinks must be >= 0, got " + window_text(options));
    }
    if (!options.causal) {
        throw ValueError(where + "the near-exact window and sinks are defined for causal attention only (" +
                         window_text(options) + "); set causal or use window = sinks = 0");
    }
    if (q.size(2) != k.size(2)) {
        throw ValueError(where + "causal attention with a window needs Tq == Tk; got " + shapes_text(q, k, v));
    }
    if (mode == AttentionMode::ApproxBackward && options.gradient == AttentionGradient::Plugin) {
        throw ValueError(where + "with a window or sinks (" + window_text(options) +
                         ") the gradient is the exact gradient of the hybrid (consistent); the plugin formula "
                         "is not defined for it");
    }
    const double scale = scale_of(q, options);
    if (!(scale > 0)) {
        throw ValueError(where + "the polynomial far part needs a positive scale, got " + std::to_string(scale));
    }
    kernels::HybridAttentionProblem p;
    p.poly = poly_problem(q, k, v, options);
    p.window = options.window;
    p.sinks = options.sinks;
    try {
        kernels::check_hybrid_attention_problem(p);
    } catch (const std::invalid_argument& e) {
        throw ValueError(where + e.what() + "; " + shapes_text(q, k, v));
    }
    return p;
}

Tensor hybrid_workspace(const kernels::HybridAttentionProblem& p, kernels::HybridAttentionPass pass, DType dtype) {
    return empty({std::max<std::int64_t>(1, kernels::hybrid_attention_workspace(p, pass))}, dtype);
}

// O (B, H, T, Dv) and lse = log z (B, H, T) of the hybrid forward.
void hybrid_forward(const char* op, const kernels::HybridAttentionProblem& p, const Tensor& q, const Tensor& k,
                    const Tensor& v, Tensor& out, Tensor& lse) {
    out = empty_heads_like(q, p.poly.tq, p.poly.dv, q.dtype());
    lse = empty({p.poly.batch, p.poly.heads, p.poly.tq}, q.dtype());
    Tensor workspace = hybrid_workspace(p, kernels::HybridAttentionPass::forward, q.dtype());
    dispatch_floating(q.dtype(), [&](auto tag) {
        using T = decltype(tag);
        run_kernel(op, [&] {
            kernels::hybrid_attention_forward(p, q.data<T>(), layout_of(q), k.data<T>(), layout_of(k), v.data<T>(),
                                              layout_of(v), out.data<T>(), layout_of(out), lse.data<T>(),
                                              workspace.data<T>());
        });
    });
}

// dQ, dK, dV of the hybrid (H3)–(H6) from its own O and lse.
std::vector<Tensor> hybrid_backward(const char* op, const kernels::HybridAttentionProblem& p, const Tensor& q,
                                    const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                                    const Tensor& dout_in) {
    const Tensor dout = prepare(dout_in, o.dtype());
    Tensor dq = empty_heads_like(q, p.poly.tq, p.poly.d, q.dtype());
    Tensor dk = empty_heads_like(k, p.poly.tk, p.poly.d, k.dtype());
    Tensor dv = empty_heads_like(v, p.poly.tk, p.poly.dv, v.dtype());
    Tensor workspace = hybrid_workspace(p, kernels::HybridAttentionPass::backward, q.dtype());
    dispatch_floating(q.dtype(), [&](auto tag) {
        using T = decltype(tag);
        run_kernel(op, [&] {
            kernels::hybrid_attention_backward(p, q.data<T>(), layout_of(q), k.data<T>(), layout_of(k), v.data<T>(),
                                               layout_of(v), o.data<T>(), layout_of(o), lse.data<T>(),
                                               dout.data<T>(), layout_of(dout), dq.data<T>(), layout_of(dq),
                                               dk.data<T>(), layout_of(dk), dv.data<T>(), layout_of(dv),
                                               workspace.data<T>());
        });
    });
    return {dq, dk, dv};
}

}  // namespace

// != 0 rather than > 0: negative values reach checked_problem and its error instead of being ignored.
bool uses_hybrid(const AttentionOptions& options) { return options.window != 0 || options.sinks != 0; }

Tensor hybrid_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options,
                        AttentionMode mode) {
    const bool approx = mode == AttentionMode::Approx;
    const char* op = approx ? kHybridApproxOp : kHybridApproxBackwardOp;
    const kernels::HybridAttentionProblem p = checked_problem(op, q, k, v, options, mode);
    Tensor out, lse;
    if (approx) {
        hybrid_forward(op, p, q, k, v, out, lse);  // O of the hybrid (H2)
    } else {
        exact_forward(exact_problem(q, k, v, options), q, k, v, out, lse);  // exact values
    }
    autograd::record(op, out, {q, k, v},
                     [sq = autograd::SavedTensor(q), sk = autograd::SavedTensor(k), sv = autograd::SavedTensor(v),
                      so = autograd::SavedTensor(out), sl = autograd::SavedTensor(lse), p, options, mode, approx,
                      op](const Tensor& dout) {
                         const Tensor q = sq.get(), k = sk.get(), v = sv.get();
                         std::vector<Tensor> grads;
                         if (approx) {
                             grads = hybrid_backward(op, p, q, k, v, so.get(), sl.get(), dout);
                         } else {
                             // approx_backward: the hybrid's O and z (hence A_ij, D_i), then its gradient.
                             Tensor hybrid_o, hybrid_lse;
                             hybrid_forward(op, p, q, k, v, hybrid_o, hybrid_lse);
                             grads = hybrid_backward(op, p, q, k, v, hybrid_o, hybrid_lse, dout);
                         }
                         if (monitoring(options)) record_errors(options, mode, q, k, v, so.get(), grads, dout);
                         return grads;
                     });
    return out;
}

}  // namespace tg::nn::functional::detail

namespace tg::nn::functional {

Tensor attention_decode_row(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
    const char* op = "attention_decode_row";
    detail::check_shapes(op, q, k, v);
    if (q.size(2) != 1) throw ShapeError(std::string(op) + ": expected one query row; got " + detail::shapes_text(q, k, v));
    AttentionOptions o = options;
    o.causal = false;  // the one query sees every key given
    if (!detail::uses_hybrid(o)) return scaled_dot_product_attention(q, k, v, o);
    if (o.mode != AttentionMode::Approx) {  // approx_backward, auto: exact forward values
        o.mode = AttentionMode::Exact;
        return scaled_dot_product_attention(q, k, v, o);
    }
    if (o.window < 0 || o.sinks < 0) throw ValueError(std::string(op) + ": window and sinks must be >= 0");
    // The hybrid row (H1, H2) of the query at position i = Tk − 1, in float64 one (batch, head) at a time:
    // near keys j > i − W or j < S with weight e^{s_ij − M}, far keys with p(s_ij)·e^{−M}, M = max(near scores,
    // log z^far), so nothing overflows.
    const std::int64_t B = q.size(0), H = q.size(1), n = k.size(2), D = q.size(3), Dv = v.size(3), i = n - 1;
    const double scale = detail::scale_of(q, o);
    const Tensor qd = q.detach().to(kFloat64).contiguous(), kd = k.detach().to(kFloat64).contiguous();
    const Tensor vd = v.detach().to(kFloat64).contiguous();
    const double *pq = qd.data<double>(), *pk = kd.data<double>(), *pv = vd.data<double>();
    std::vector<double> out(static_cast<std::size_t>(B * H * Dv), 0.0), s(static_cast<std::size_t>(n));
    auto p = [&](double x) {  // the Taylor polynomial of exp of degree g
        double y = 0, term = 1;
        for (int m = 0; m <= o.degree; ++m) {
            y += term;
            term *= x / (m + 1);
        }
        return y;
    };
    for (std::int64_t bh = 0; bh < B * H; ++bh) {
        double near_max = -INFINITY, far_z = 0;
        for (std::int64_t j = 0; j < n; ++j) {
            double dot = 0;
            for (std::int64_t e = 0; e < D; ++e) dot += pq[bh * D + e] * pk[(bh * n + j) * D + e];
            s[static_cast<std::size_t>(j)] = scale * dot;
            if (j > i - o.window || j < o.sinks)
                near_max = std::max(near_max, s[static_cast<std::size_t>(j)]);
            else
                far_z += p(s[static_cast<std::size_t>(j)]);
        }
        const double shift = std::max(near_max, far_z > 0 ? std::log(far_z) : -INFINITY);
        double z = 0;
        double* row = &out[static_cast<std::size_t>(bh * Dv)];
        for (std::int64_t j = 0; j < n; ++j) {
            const double sj = s[static_cast<std::size_t>(j)];
            const double w = (j > i - o.window || j < o.sinks) ? std::exp(sj - shift) : p(sj) * std::exp(-shift);
            z += w;
            for (std::int64_t e = 0; e < Dv; ++e) row[e] += w * pv[(bh * n + j) * Dv + e];
        }
        for (std::int64_t e = 0; e < Dv; ++e) row[e] /= z;
    }
    return from_vector(out, {B, H, 1, Dv}).to(q.dtype());
}

void check_attention_window(const std::string& who, const AttentionOptions& options, std::int64_t seq_len) {
    const std::string values = (who.empty() ? "" : who + ": ") + "--window " + std::to_string(options.window) +
                               " --sinks " + std::to_string(options.sinks);
    if (options.window < 0 || options.sinks < 0) throw ValueError(values + ": both must be >= 0");
    if (options.window > seq_len || options.sinks > seq_len) {
        throw ValueError(values + ": both must be at most the sequence length " +
                         std::to_string(seq_len) + " (W = T or S = T is already exact attention)");
    }
    if (options.window == 0 && options.sinks == 0) return;
    if (options.mode == AttentionMode::Exact) {
        throw ValueError(values + " apply to the approximate modes (approx_backward, approx, auto); "
                               "exact attention is exact for every key");
    }
    if (!options.causal) throw ValueError(values + " need causal attention");
    if (options.gradient == AttentionGradient::Plugin) {
        throw ValueError(values + " use the consistent gradient (the exact gradient of the hybrid), "
                               "not plugin");
    }
}

}  // namespace tg::nn::functional
