// scaled_dot_product_attention: shape checks, the choice of mode, the exact node (the fused forward kernel and
// the tape node whose backward is the fused backward kernel, side by side); then the composed reference.
// The approximate nodes are in nn/attention_poly.cpp, the auto policy in nn/attention_auto.cpp.
//
//   forward    S = s·Q Kᵀ + M,   L_i = log Σ_j exp(S_ij),   O = exp(S − L) V
//   backward   D_i = dO_i·O_i,   P = exp(S − L) (recomputed),   dV = Pᵀ dO,   dS = P∘(dO Vᵀ − D),
//              dQ = s·dS K,   dK = s·dSᵀ Q
// (derivation in docs/attention.md; the kernels in kernels/attention_exact.cpp).

#include "nn/attention.h"

#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "nn/attention_detail.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace tg::nn::functional {

double AttentionOptions::scale_for(std::int64_t head_dim) const {
    return scale ? *scale : 1.0 / std::sqrt(static_cast<double>(head_dim));
}

std::string to_string(AttentionMode mode) {
    switch (mode) {
        case AttentionMode::Exact: return "exact";
        case AttentionMode::ApproxBackward: return "approx_backward";
        case AttentionMode::Approx: return "approx";
        case AttentionMode::Auto: return "auto";
    }
    return "unknown";
}

std::string to_string(AttentionGradient gradient) {
    return gradient == AttentionGradient::Plugin ? "plugin" : "consistent";
}

AttentionMode attention_mode_from_string(const std::string& name) {
    for (AttentionMode m : {AttentionMode::Exact, AttentionMode::ApproxBackward, AttentionMode::Approx,
                            AttentionMode::Auto}) {
        if (to_string(m) == name) return m;
    }
    throw ValueError("attention mode: expected exact, approx_backward, approx or auto, got '" + name + "'");
}

AttentionGradient attention_gradient_from_string(const std::string& name) {
    if (name == "consistent") return AttentionGradient::Consistent;
    if (name == "plugin") return AttentionGradient::Plugin;
    throw ValueError("attention gradient: expected consistent or plugin, got '" + name + "'");
}

namespace detail {

std::string shapes_text(const Tensor& q, const Tensor& k, const Tensor& v) {
    return "q " + tg::to_string(q.shape()) + ", k " + tg::to_string(k.shape()) + ", v " + tg::to_string(v.shape());
}

void check_shapes(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
    // The message's two halves, built only for a failing check (this runs at every attention call).
    const auto expected = [&] {
        return std::string(op) + ": expected q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv]";
    };
    const auto got = [&] { return "; got " + shapes_text(q, k, v); };
    if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) throw ShapeError(expected() + " (4-D tensors)" + got());
    if (q.size(0) != k.size(0) || q.size(0) != v.size(0) || q.size(1) != k.size(1) || q.size(1) != v.size(1)) {
        throw ShapeError(expected() + ": batch and head sizes B, H differ" + got());
    }
    if (k.size(2) != v.size(2)) throw ShapeError(expected() + ": k and v have different lengths Tk" + got());
    if (q.size(3) != k.size(3)) throw ShapeError(expected() + ": q and k have different widths D" + got());
    for (const Tensor* t : {&q, &v}) {
        const std::int64_t width = t->size(3);
        if (width < 1 || width > 256) {
            throw ShapeError(expected() + ": head widths D and Dv must be in [1, 256]" + got());
        }
    }
}

DType compute_dtype(const Tensor& q, const Tensor& k, const Tensor& v) {
    const DType t = promote_types(promote_types(q.dtype(), k.dtype()), v.dtype());
    return is_floating(t) ? t : kFloat32;
}

Tensor prepare(const Tensor& x, DType dtype) {
    Tensor y = x.dtype() == dtype ? x : x.to(dtype);
    if (y.size(-1) > 1 && y.stride(-1) != 1) y = y.contiguous();
    return y;
}

Tensor empty_heads_like(const Tensor& like, std::int64_t t, std::int64_t e, DType dtype) {
    const std::int64_t B = like.size(0), H = like.size(1);
    if (H > 1 && t > 1 && like.stride(2) > like.stride(1)) {
        return empty({B, t, H, e}, dtype).permute({0, 2, 1, 3});  // (B, T, H, E) memory, (B, H, T, E) view
    }
    return empty({B, H, t, e}, dtype);
}

// A view's memory as `rows` runs of `run` contiguous elements, `row_stride` apart (dims of size 1 ignored, the
// others merged where one nests inside the next); false when it is not of that form or its runs overlap.
bool as_runs(const Tensor& t, std::int64_t& rows, std::int64_t& run, std::int64_t& row_stride) {
    std::vector<std::pair<std::int64_t, std::int64_t>> dims;  // (stride, size) of the dims longer than 1
    for (std::int64_t d = 0; d < t.dim(); ++d)
        if (t.size(d) > 1) dims.emplace_back(t.stride(d), t.size(d));
    std::sort(dims.begin(), dims.end());  // innermost first
    std::vector<std::pair<std::int64_t, std::int64_t>> merged;
    for (const auto& [stride, size] : dims) {
        if (!merged.empty() && stride == merged.back().first * merged.back().second) merged.back().second *= size;
        else merged.emplace_back(stride, size);
    }
    if (merged.empty() || merged.size() > 2 || merged[0].first != 1) return false;
    run = merged[0].second;
    rows = merged.size() == 2 ? merged[1].second : 1;
    row_stride = merged.size() == 2 ? merged[1].first : run;
    return row_stride >= run;
}

bool gradients_side_by_side(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& dq, Tensor& dk, Tensor& dv) {
    if (q.storage() != k.storage() || q.storage() != v.storage() || q.dtype() != k.dtype() ||
        q.dtype() != v.dtype()) {
        return false;
    }
    std::array<std::int64_t, 3> rows{}, run{}, stride{};
    const std::array<const Tensor*, 3> views = {&q, &k, &v};
    for (std::size_t i = 0; i < 3; ++i)
        if (!as_runs(*views[i], rows[i], run[i], stride[i])) return false;
    if (rows[1] != rows[0] || rows[2] != rows[0] || run[1] != run[0] || run[2] != run[0] || stride[1] != stride[0] ||
        stride[2] != stride[0]) {
        return false;
    }
    std::array<std::int64_t, 3> start = {q.offset(), k.offset(), v.offset()};
    std::sort(start.begin(), start.end());
    // Side by side: the three runs of each row follow one another, and the rows follow one another.
    if (start[1] - start[0] != run[0] || start[2] - start[1] != run[0] || (rows[0] > 1 && stride[0] != 3 * run[0])) {
        return false;
    }
    const Tensor buffer = empty({3 * rows[0] * run[0]}, q.dtype());
    auto like = [&](const Tensor& x) {
        return make_tensor(buffer.storage(), x.shape(), x.strides(), x.offset() - start[0], x.dtype());
    };
    dq = like(q);
    dk = like(k);
    dv = like(v);
    return true;
}

double scale_of(const Tensor& q, const AttentionOptions& options) { return options.scale_for(q.size(3)); }

kernels::AttentionProblem exact_problem(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const AttentionOptions& options) {
    kernels::AttentionProblem p;
    p.batch = q.size(0);
    p.heads = q.size(1);
    p.tq = q.size(2);
    p.tk = k.size(2);
    p.d = q.size(3);
    p.dv = v.size(3);
    p.causal = options.causal;
    p.scale = scale_of(q, options);
    return p;
}

void exact_forward(const kernels::AttentionProblem& p, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                   Tensor& lse) {
    out = empty_heads_like(q, p.tq, p.dv, q.dtype());
    lse = empty({p.batch, p.heads, p.tq}, q.dtype());
    dispatch_floating(q.dtype(), [&](auto tag) {
        using T = decltype(tag);
        kernels::attention_forward(p, q.data<T>(), layout_of(q), k.data<T>(), layout_of(k), v.data<T>(),
                                   layout_of(v), out.data<T>(), layout_of(out), lse.data<T>());
    });
}

std::vector<Tensor> exact_backward(const kernels::AttentionProblem& p, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const Tensor& o, const Tensor& lse, const Tensor& dout_in) {
    const Tensor dout = prepare(dout_in, o.dtype());
    Tensor dq, dk, dv;
    if (!gradients_side_by_side(q, k, v, dq, dk, dv)) {
        dq = empty_heads_like(q, p.tq, p.d, q.dtype());
        dk = empty_heads_like(k, p.tk, p.d, k.dtype());
        dv = empty_heads_like(v, p.tk, p.dv, v.dtype());
    }
    // Row sums D_i and partial dQ buffers, O(B·H·Tq·D): a tensor, so the framework's allocator (memory_stats)
    // accounts for them.
    Tensor workspace = empty({kernels::attention_backward_workspace(p, element_size(q.dtype()))}, q.dtype());
    dispatch_floating(q.dtype(), [&](auto tag) {
        using T = decltype(tag);
        kernels::attention_backward(p, q.data<T>(), layout_of(q), k.data<T>(), layout_of(k), v.data<T>(), layout_of(v),
                                    o.data<T>(), layout_of(o), lse.data<T>(), dout.data<T>(), layout_of(dout),
                                    dq.data<T>(), layout_of(dq), dk.data<T>(), layout_of(dk), dv.data<T>(),
                                    layout_of(dv), workspace.data<T>());
    });
    return {dq, dk, dv};
}

}  // namespace detail

namespace {

// The exact node: the fused forward kernel, and the fused backward kernel as its backward rule.
Tensor exact_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
    const kernels::AttentionProblem p = detail::exact_problem(q, k, v, options);
    // Forward: O (B, H, Tq, Dv) and the log-sum-exp L (B, H, Tq), which is all the backward needs to
    // rebuild P = exp(S − L) tile by tile.
    Tensor out, lse;
    detail::exact_forward(p, q, k, v, out, lse);

    // Backward: the fused kernel gives dQ, dK, dV at once from the saved q, k, v, O, L and the incoming dO.
    autograd::record(detail::kAttentionOp, out, {q, k, v},
                     [sq = autograd::SavedTensor(q), sk = autograd::SavedTensor(k), sv = autograd::SavedTensor(v),
                      so = autograd::SavedTensor(out), sl = autograd::SavedTensor(lse), p](const Tensor& dout) {
                         return detail::exact_backward(p, sq.get(), sk.get(), sv.get(), so.get(), sl.get(), dout);
                     });
    return out;
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                    const AttentionOptions& options) {
    using namespace detail;
    check_shapes(kAttentionOp, q_in, k_in, v_in);
    if (options.scale && !std::isfinite(*options.scale)) {
        throw ValueError(std::string(kAttentionOp) + ": scale must be finite, got " +
                         std::to_string(*options.scale));
    }
    // Conversions and copies (when needed) are ordinary differentiable ops, recorded before our node.
    const DType dtype = compute_dtype(q_in, k_in, v_in);
    const Tensor q = prepare(q_in, dtype), k = prepare(k_in, dtype), v = prepare(v_in, dtype);

    if (options.mode == AttentionMode::Auto) {  // the chosen mode (and, with auto_window, window)
        const AttentionOptions chosen = apply_attention_choice(options, choose_attention_mode(q, k, options));
        if (chosen.mode != AttentionMode::Auto) return scaled_dot_product_attention(q, k, v, chosen);
    }
    const AttentionMode mode = options.mode;
    if (mode != AttentionMode::Exact && uses_hybrid(options)) return hybrid_attention(q, k, v, options, mode);
    switch (mode) {
        case AttentionMode::ApproxBackward: return approx_backward_attention(q, k, v, options);
        case AttentionMode::Approx: return approx_attention(q, k, v, options);
        default: return exact_attention(q, k, v, options);
    }
}

Tensor scaled_dot_product_attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                              const AttentionOptions& options) {
    const char* op = "scaled_dot_product_attention_reference";
    detail::check_shapes(op, q, k, v);
    const double scale = options.scale_for(q.size(3));
    Tensor scores = matmul(q, k.transpose(-2, -1)) * scale;  // S = s·Q Kᵀ        (B, H, Tq, Tk)
    if (options.causal) {
        // M: −∞ strictly above the diagonal (key j > query i), top-left aligned like PyTorch's is_causal.
        const Tensor above = triu(ones({q.size(2), k.size(2)}, scores.dtype()), 1);
        scores = masked_fill(scores, above, -std::numeric_limits<double>::infinity());
    }
    return matmul(softmax(scores, -1), v);  // O = softmax(S + M) V
}

}  // namespace tg::nn::functional
