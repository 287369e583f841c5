// Chapter 6, softmax, cross-entropy, layernorm and GELU backward (docs/course/06-softmax-layernorm-gelu.md).
// The kernels' plain reference loops are the exercises; each is checked against central differences of the
// matching forward reference, in double.

#include "kernels/cross_entropy.h"
#include "kernels/layernorm.h"
#include "kernels/softmax.h"
#include "tests/course/course_test.h"

using namespace tg;
using tg::course::attempt;
using tg::course::check_close;
using tg::course::dot;
using tg::course::numeric_gradient;
using tg::course::random_values;

TEST_SUITE("course-ch6") {

TEST_CASE("ch6 tour: softmax rows sum to one, even with a large shift") {
    const std::vector<double> x{1000, 1001, 1002};
    std::vector<double> y(3);
    kernels::softmax_forward_reference(x.data(), y.data(), 1, 3, 3, 3);
    CHECK(y[0] + y[1] + y[2] == doctest::Approx(1.0));
    CHECK(y[2] / y[1] == doctest::Approx(std::exp(1.0)));
}

TEST_CASE("ch6.softmax_backward") {
    attempt([] {
        const std::int64_t rows = 3, cols = 5;
        const auto x = random_values(rows * cols, 21, -2, 2), dy = random_values(rows * cols, 22);
        std::vector<double> y(x.size()), dx(x.size());
        kernels::softmax_forward_reference(x.data(), y.data(), rows, cols, cols, cols);
        kernels::softmax_backward_reference(y.data(), dy.data(), dx.data(), rows, cols, cols, cols, cols);
        // L(x) = Σ dy ∘ softmax(x): its gradient is the vector-Jacobian product dx.
        const auto want = numeric_gradient(
            [&](const std::vector<double>& xv) {
                std::vector<double> yv(xv.size());
                kernels::softmax_forward_reference(xv.data(), yv.data(), rows, cols, cols, cols);
                return dot(dy, yv);
            },
            x);
        check_close("dx", dx, want, 1e-6);
    });
}

TEST_CASE("ch6.cross_entropy") {
    attempt([] {
        const std::int64_t rows = 4, vocab = 7;
        const auto logits = random_values(rows * vocab, 23, -3, 3);
        const std::vector<std::int64_t> targets{2, 0, 6, -100};  // the last row is ignored
        std::vector<double> losses(rows), dlogits(logits.size());
        const double scale = 1.0 / 3.0;  // mean over the 3 kept rows
        const auto kept = kernels::cross_entropy_reference(logits.data(), targets.data(), losses.data(),
                                                           dlogits.data(), rows, vocab, vocab, vocab, scale);
        CHECK(kept == 3);
        // loss_r = −log softmax(x_r)[t_r], written out here the long way.
        for (std::int64_t r = 0; r < 3; ++r) {
            double z = 0;
            for (std::int64_t j = 0; j < vocab; ++j) z += std::exp(logits[r * vocab + j]);
            const double want = -std::log(std::exp(logits[r * vocab + targets[r]]) / z);
            CHECK_MESSAGE(losses[r] == doctest::Approx(want), "loss of row " << r);
        }
        CHECK_MESSAGE(losses[3] == 0.0, "an ignored row has loss 0");
        const auto want = numeric_gradient(
            [&](const std::vector<double>& xv) {
                std::vector<double> l(rows), d(xv.size());
                kernels::cross_entropy_forward_backward(xv.data(), targets.data(), l.data(), d.data(), rows, vocab,
                                                        vocab, vocab, scale);
                return (l[0] + l[1] + l[2]) * scale;
            },
            logits);
        check_close("dlogits", dlogits, want, 1e-6);
    });
}

TEST_CASE("ch6.layernorm_backward") {
    attempt([] {
        const std::int64_t rows = 3, cols = 6;
        const double eps = 1e-5;
        const auto x = random_values(rows * cols, 24, -2, 2), dy = random_values(rows * cols, 25);
        const auto gamma = random_values(cols, 26, 0.5, 1.5), beta = random_values(cols, 27);
        std::vector<double> y(x.size()), mean(rows), rstd(rows), dx(x.size()), dgamma(cols), dbeta(cols);
        kernels::layernorm_forward_reference(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(),
                                             rows, cols, eps, cols, cols);
        kernels::layernorm_backward_reference(x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(), dx.data(),
                                              dgamma.data(), dbeta.data(), rows, cols, cols, cols, cols);
        // L = Σ dy ∘ layernorm(x; γ, β), differentiated numerically in x, γ and β.
        auto loss = [&](const std::vector<double>& xv, const std::vector<double>& g, const std::vector<double>& b) {
            std::vector<double> yv(xv.size());
            kernels::layernorm_forward_reference(xv.data(), g.data(), b.data(), yv.data(), nullptr, nullptr, rows,
                                                 cols, eps, cols, cols);
            return dot(dy, yv);
        };
        check_close("dx", dx, numeric_gradient([&](const auto& v) { return loss(v, gamma, beta); }, x), 1e-5);
        check_close("dgamma", dgamma, numeric_gradient([&](const auto& v) { return loss(x, v, beta); }, gamma), 1e-5);
        check_close("dbeta", dbeta, numeric_gradient([&](const auto& v) { return loss(x, gamma, v); }, beta), 1e-5);
    });
}

}  // TEST_SUITE
