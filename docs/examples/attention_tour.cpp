// Exact attention, quoted by docs/attention.md. Built and run by `meson test` (the test 'doc-attention-tour'):
// the page's snippets come from here, and each claim the page makes about them is checked with expect(); a
// false claim makes the program exit non-zero.
//
//   build/docs/doc-attention-tour

#include <tapegrad/tapegrad.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

namespace {

int failures = 0;

void expect(bool holds, const std::string& claim) {
    std::cout << (holds ? "  ok: " : "  FAILED: ") << claim << '\n';
    if (!holds) ++failures;
}

void section(const std::string& title) { std::cout << "\n== " << title << " ==\n"; }

double max_abs_difference(const tg::Tensor& a, const tg::Tensor& b) {
    const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
    double worst = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
    return worst;
}

}  // namespace

int main() {
    tg::manual_seed(0);
    const tg::Shape shape{2, 4, 100, 16};  // (B, H, T, D)

    section("one fused node, forward and backward");
    tg::Tensor q = tg::randn(shape, tg::kFloat64).requires_grad_();
    tg::Tensor k = tg::randn(shape, tg::kFloat64).requires_grad_();
    tg::Tensor v = tg::randn(shape, tg::kFloat64).requires_grad_();
    // [call]
    namespace F = tg::nn::functional;

    F::AttentionOptions options;
    options.causal = true;                                   // query i sees keys j <= i
    tg::Tensor o = F::scaled_dot_product_attention(q, k, v, options);   // q [B, H, T, D] ... -> [B, H, T, D]
    tg::sum(o * o).backward();                               // one tape node; its backward is one fused kernel
    // [call]
    expect(o.shape() == shape, "the output has the queries' shape [B, H, T, D]");
    expect(q.grad().defined() && k.grad().defined() && v.grad().defined(), "backward fills q, k and v's .grad");

    section("the same function, composed from primitive ops");
    const tg::Tensor dq = q.grad(), dk = k.grad(), dv = v.grad();
    q.zero_grad();
    k.zero_grad();
    v.zero_grad();
    tg::Tensor reference = F::scaled_dot_product_attention_reference(q, k, v, options);  // stores S and P
    tg::sum(reference * reference).backward();
    const double d_o = max_abs_difference(o, reference), d_q = max_abs_difference(dq, q.grad());
    const double d_k = max_abs_difference(dk, k.grad()), d_v = max_abs_difference(dv, v.grad());
    std::cout << "max |fused - composed|: O " << d_o << ", dQ " << d_q << ", dK " << d_k << ", dV " << d_v << '\n';
    expect(d_o < 1e-12 && d_q < 1e-12 && d_k < 1e-12 && d_v < 1e-12,
           "the fused node and the composed reference agree in float64 (output and gradients, 1e-12)");

    section("a causal row sees only the past");
    // Changing the last key and value changes only the last query's output.
    tg::Tensor k2 = k.detach().clone(), v2 = v.detach().clone();
    k2.narrow(2, 99, 1).copy_(tg::randn({2, 4, 1, 16}, tg::kFloat64));
    v2.narrow(2, 99, 1).copy_(tg::randn({2, 4, 1, 16}, tg::kFloat64));
    tg::Tensor o2 = F::scaled_dot_product_attention(q.detach(), k2, v2, options);
    expect(max_abs_difference(o.detach().narrow(2, 0, 99), o2.narrow(2, 0, 99)) == 0.0,
           "rows 0..98 do not change when key 99 changes (M hides it from them)");
    expect(max_abs_difference(o.detach().narrow(2, 99, 1), o2.narrow(2, 99, 1)) > 0.0, "row 99 does");

    section("MultiHeadAttention wraps the node");
    // [module]
    tg::nn::MultiHeadAttention attention(/*embed_dim=*/64, /*num_heads=*/4, /*causal=*/true);
    tg::Tensor x = tg::randn({2, 10, 64});   // (B, T, C)
    tg::Tensor y = attention.forward(x);     // (B, T, C): qkv projection, 4 heads of 16, attention, proj
    // [module]
    expect(y.shape() == tg::Shape({2, 10, 64}), "MultiHeadAttention maps (B, T, C) to (B, T, C)");

    std::cout << '\n' << (failures == 0 ? "all claims hold" : "some claims FAILED") << '\n';
    return failures == 0 ? 0 : 1;
}
