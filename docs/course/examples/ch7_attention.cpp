// Chapter 7 (docs/course/07-attention.md): attention = softmax(s·Q Kᵀ + M) V, and the online softmax that lets
// the fused kernel stream over keys without ever storing the T×T matrix.
//
//   build/docs/course-ch7-attention

#include <tapegrad/tapegrad.h>

#include "docs/course/examples/course_check.h"

#include <cmath>
#include <limits>

using course::expect;
namespace F = tg::nn::functional;

namespace {
double max_abs_diff(const tg::Tensor& a, const tg::Tensor& b) { return tg::max(tg::abs(a - b)).item<double>(); }
}  // namespace

int main() {
    // [online]
    // One query, scores s_j and values v_j (scalars here): o = Σ_j exp(s_j − L) v_j with L = log Σ_j exp(s_j).
    const std::vector<double> s{0.3, 2.0, -1.0, 4.0, 0.5}, v{1, 2, 3, 4, 5};
    // Two passes: first the max and the sum, then the weighted values.
    double m = -std::numeric_limits<double>::infinity(), l = 0, o = 0;
    for (double sj : s) m = std::max(m, sj);
    for (double sj : s) l += std::exp(sj - m);
    for (std::size_t j = 0; j < s.size(); ++j) o += std::exp(s[j] - m) / l * v[j];
    // One pass: keep a running max m', sum l' and unnormalised output o'; when the max grows, rescale both
    // by exp(m_old − m_new) so they are always relative to the current max.
    double m1 = -std::numeric_limits<double>::infinity(), l1 = 0, o1 = 0;
    for (std::size_t j = 0; j < s.size(); ++j) {
        const double m_new = std::max(m1, s[j]);
        const double rescale = std::exp(m1 - m_new);  // 0 on the first key (exp(−∞))
        l1 = l1 * rescale + std::exp(s[j] - m_new);
        o1 = o1 * rescale + std::exp(s[j] - m_new) * v[j];
        m1 = m_new;
    }
    o1 /= l1;
    std::cout << "two-pass o = " << o << ", one-pass o = " << o1 << "\n";
    expect(std::abs(o - o1) < 1e-14, "the online softmax gives the same output in one pass");
    // [online]

    // [fused-vs-reference]
    tg::manual_seed(0);
    const tg::Tensor q = tg::randn({1, 2, 7, 4}, tg::kFloat64).requires_grad_();  // (B, H, T, D)
    const tg::Tensor k = tg::randn({1, 2, 7, 4}, tg::kFloat64).requires_grad_();
    const tg::Tensor vv = tg::randn({1, 2, 7, 4}, tg::kFloat64).requires_grad_();
    F::AttentionOptions causal;
    causal.causal = true;
    const tg::Tensor out = F::scaled_dot_product_attention(q, k, vv, causal);           // tiled, O(T) memory
    const tg::Tensor ref = F::scaled_dot_product_attention_reference(q, k, vv, causal);  // the T×T matrix
    expect(max_abs_diff(out, ref) < 1e-12, "the fused causal attention equals softmax(QKᵀ/√D + M)·V");
    // [fused-vs-reference]

    // [gradients]
    const tg::Tensor dout = tg::randn({1, 2, 7, 4}, tg::kFloat64);
    out.backward(dout);
    const tg::Tensor dq = q.grad(), dk = k.grad(), dv = vv.grad();
    q.zero_grad(), k.zero_grad(), vv.zero_grad();
    ref.backward(dout);
    expect(max_abs_diff(dq, q.grad()) < 1e-12 && max_abs_diff(dk, k.grad()) < 1e-12 &&
               max_abs_diff(dv, vv.grad()) < 1e-12,
           "its fused backward gives the same dQ, dK, dV as autograd through the reference");
    // [gradients]
    return course::failures == 0 ? 0 : 1;
}
