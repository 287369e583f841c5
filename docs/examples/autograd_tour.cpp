// Autograd, quoted by docs/autograd.md. Built and run by `meson test` (the test 'doc-autograd-tour'): the
// page's snippets come from here (or from the library files it names), and each claim the page makes is
// checked with expect(); a false claim makes the program exit non-zero.
//
//   build/docs/doc-autograd-tour

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

// The moons example's loss (examples/moons/moons.cpp): binary cross-entropy from logits z, composed.
tg::Tensor bce_with_logits(const tg::Tensor& z, const tg::Tensor& y) {
    const tg::Tensor softplus = tg::relu(z) + tg::log(1.0 + tg::exp(-tg::abs(z)));
    return tg::mean(softplus - y * z);
}

}  // namespace

int main() {
    tg::manual_seed(0);

    section("the forward pass records a tape");
    // [tape]
    tg::Tensor w = tg::randn({3}, tg::kFloat64).requires_grad_();  // a parameter: a leaf that wants .grad
    tg::Tensor x = tg::randn({3}, tg::kFloat64);                   // data: no gradient
    tg::Tensor z = tg::sum(w * x);                                 // records mul, then sum
    std::cout << "z = " << z.item() << ", made by " << z.grad_fn()->name() << '\n';
    z.backward();                                                  // dz/dw = x
    // [tape]
    expect(z.grad_fn() != nullptr && w.is_leaf() && !z.is_leaf(), "z has a node on the tape, w is a leaf");
    expect(max_abs_difference(w.grad(), x) == 0.0, "after z.backward(), w.grad() = x (d(w·x)/dw)");
    {
        tg::NoGradGuard no_grad;
        expect(!tg::sum(w * x).requires_grad(), "under NoGradGuard nothing is recorded");
    }

    section("a tensor used twice receives the sum of both gradients");
    // [twice]
    tg::Tensor a = tg::full({2}, 3.0, tg::kFloat64).requires_grad_();
    tg::Tensor b = a * a;          // a feeds mul twice
    tg::sum(b).backward();         // d(a²)/da = a + a
    // [twice]
    expect(a.grad().to_vector<double>() == std::vector<double>{6.0, 6.0}, "d(a·a)/da = 2a = 6");

    section("the rules of the moons loss give (sigmoid(z) - y) / n");
    // [bce]
    tg::Tensor logits = tg::randn({8, 1}, tg::kFloat64).requires_grad_();  // z
    tg::Tensor labels = tg::gt(tg::randn({8, 1}, tg::kFloat64), tg::scalar_tensor(0.0)).to(tg::kFloat64);
    bce_with_logits(logits, labels).backward();
    tg::Tensor expected = (tg::sigmoid(logits.detach()) - labels) / 8.0;    // (σ(z) − y) / n
    // [bce]
    const double bce_error = max_abs_difference(logits.grad(), expected);
    std::cout << "max |autograd - (sigmoid(z) - y)/n| = " << bce_error << '\n';
    expect(bce_error < 1e-15, "the chain of mean, sub, mul, log, exp, abs, neg, relu rules gives (σ(z) − y)/n");
    // [gradcheck]
    tg::autograd::GradcheckResult check = tg::autograd::gradcheck(
        [&](const std::vector<tg::Tensor>& in) { return bce_with_logits(in[0], labels); }, {logits});
    std::cout << check.message << '\n';
    // [gradcheck]
    expect(check.ok, "gradcheck agrees with central differences over the full Jacobian");

    section("broadcasting is undone in one place");
    // [broadcast]
    tg::Tensor bias = tg::zeros({16}, tg::kFloat64).requires_grad_();
    tg::Tensor y = tg::randn({5, 16}, tg::kFloat64) + bias;   // bias broadcast over 5 rows
    tg::sum(y).backward();                                    // add's rule returns a [5, 16] gradient ...
    // [broadcast]
    expect(bias.grad().shape() == tg::Shape({16}) &&
               bias.grad().to_vector<double>() == std::vector<double>(16, 5.0),
           "... which the engine sums back to bias's shape [16]: every entry is 5");

    section("gradients that cover part of an input");
    // [pieces]
    tg::Tensor w_qkv = tg::randn({6, 4}, tg::kFloat64).requires_grad_();  // three row blocks of one weight
    tg::Tensor input = tg::randn({3, 4}, tg::kFloat64);
    tg::Tensor q = tg::matmul(input, w_qkv.narrow(0, 0, 2).t());
    tg::Tensor k = tg::matmul(input, w_qkv.narrow(0, 2, 2).t());
    tg::Tensor v = tg::matmul(input, w_qkv.narrow(0, 4, 2).t());
    tg::sum(q * k + v).backward();  // three pieces that tile w_qkv: copied in side by side, no zeros written
    // [pieces]
    {
        // The three blocks by their formulas: ∂Wq = kᵀ·input, ∂Wk = qᵀ·input, ∂Wv = 1ᵀ·input.
        tg::NoGradGuard no_grad;
        const tg::Tensor ones = tg::ones({3, 2}, tg::kFloat64);
        const tg::Tensor want = tg::cat({tg::matmul(k.detach().t(), input), tg::matmul(q.detach().t(), input),
                                         tg::matmul(ones.t(), input)}, 0);
        expect(max_abs_difference(w_qkv.grad(), want) < 1e-12,
               "the three row blocks of w_qkv.grad() are kᵀ·input, qᵀ·input and 1ᵀ·input");
    }

    section("safety rails");
    tg::Tensor p = tg::randn({4}, tg::kFloat64).requires_grad_();
    // [version]
    tg::Tensor data = tg::randn({4}, tg::kFloat64);
    tg::Tensor loss = tg::sum(p * data);  // mul saves data for dp = dloss · data
    data.fill_(1.0);                      // ... which is then changed in place
    // [version]
    std::string message;
    try {
        loss.backward();
    } catch (const tg::Error& error) {
        message = error.what();
    }
    std::cout << "in-place change of a saved tensor: " << message << '\n';
    expect(message.find("modified by an in-place operation") != std::string::npos,
           "backward() throws when a saved tensor was modified in place");
    tg::Tensor twice = tg::sum(tg::exp(p));
    twice.backward();
    message.clear();
    try {
        twice.backward();
    } catch (const tg::Error& error) {
        message = error.what();
    }
    std::cout << "second backward: " << message << '\n';
    expect(!message.empty(), "walking a graph a second time without retain_graph throws");

    section("pictures of the graph");
    // [dot]
    const std::string dot = tg::autograd::to_dot(bce_with_logits(logits, labels));
    // [dot]
    expect(dot.find("digraph") != std::string::npos && dot.find("exp") != std::string::npos,
           "to_dot writes a Graphviz digraph with one node per op (exp among them)");

    std::cout << '\n' << (failures == 0 ? "all claims hold" : "some claims FAILED") << '\n';
    return failures == 0 ? 0 : 1;
}
