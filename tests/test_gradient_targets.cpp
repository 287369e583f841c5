// Gradient targets (core/gradient_targets.h): a backward rule may add an input's gradient straight into the sum
// the engine already holds for that input. Checked: the LayerNorm kernel's accumulating dx against writing dx
// and adding it (bit for bit, odd sizes, 1-4 threads); the engine's offer (taken when the sum is a buffer only it
// sees, not when the rule's own incoming gradient shares it, not under anomaly detection); a float64 gradcheck
// through the accumulating LayerNorm; and GPT and ViT gradients with targets on and off, bit for bit.

#include "autograd/gradcheck.h"
#include "core/anomaly.h"
#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/threading.h"
#include "kernels/layernorm.h"
#include "nn/functional.h"
#include "nn/models/gpt.h"
#include "nn/models/vit.h"
#include "test_models.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <vector>

namespace {

using namespace tg;
namespace F = tg::nn::functional;
using tg::testing::same_bits;

struct TargetsOff {
    TargetsOff() { autograd::set_gradient_targets(false); }
    ~TargetsOff() { autograd::set_gradient_targets(true); }
};

// The identity, recorded with a targeted rule: adds its gradient into the target when offered (and counts).
int g_probe_offers = 0;
Tensor probe(const Tensor& x, bool also_return = false) {
    Tensor out = x.detach().clone();
    autograd::record_with_targets("probe", out, {x}, [also_return](const Tensor& dout, autograd::GradientTargets& t) {
        Tensor into = t.target(0);
        if (!into.defined()) return autograd::Grads{dout};
        ++g_probe_offers;
        into.add_(dout);
        t.mark_added(0);
        return also_return ? autograd::Grads{dout} : autograd::Grads{Tensor()};
    });
    return out;
}

template <class T>
void check_layernorm_accumulate(std::int64_t rows, std::int64_t cols) {
    std::mt19937 rng(static_cast<unsigned>(rows * 131 + cols));
    std::uniform_real_distribution<double> u(-2.0, 2.0);
    auto fill = [&](std::size_t n) {
        std::vector<T> v(n);
        for (T& e : v) e = static_cast<T>(u(rng));
        return v;
    };
    const std::size_t n = static_cast<std::size_t>(rows * cols);
    const std::vector<T> x = fill(n), dy = fill(n), gamma = fill(static_cast<std::size_t>(cols)), r = fill(n);
    std::vector<T> mean(static_cast<std::size_t>(rows)), rstd(static_cast<std::size_t>(rows)), y(n);
    const std::vector<T> beta = fill(static_cast<std::size_t>(cols));
    kernels::layernorm_forward(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rows, cols,
                               1e-5, cols, cols);
    // Expected: dx written, then r + dx in a separate pass (what the engine did before targets).
    std::vector<T> dx(n), dgamma(static_cast<std::size_t>(cols)), dbeta(static_cast<std::size_t>(cols));
    kernels::layernorm_backward(x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(), dx.data(), dgamma.data(),
                                dbeta.data(), rows, cols, cols, cols, cols);
    std::vector<T> expected(n);
    for (std::size_t i = 0; i < n; ++i) expected[i] = r[i] + dx[i];
    // The same for the backward from the output (x̂ = (y − β)/γ).
    std::vector<T> dx_y(n), dgamma_y(static_cast<std::size_t>(cols)), dbeta_y = dgamma_y;
    kernels::layernorm_backward_from_output(y.data(), gamma.data(), beta.data(), rstd.data(), dy.data(), dx_y.data(),
                                            dgamma_y.data(), dbeta_y.data(), rows, cols, cols, cols, cols);
    std::vector<T> expected_y(n);
    for (std::size_t i = 0; i < n; ++i) expected_y[i] = r[i] + dx_y[i];
    const int threads_before = get_num_threads();
    for (int threads : {1, 2, 3, 4}) {
        set_num_threads(threads);
        std::vector<T> acc = r, dgamma2(static_cast<std::size_t>(cols)), dbeta2(static_cast<std::size_t>(cols));
        kernels::layernorm_backward(x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(), acc.data(),
                                    dgamma2.data(), dbeta2.data(), rows, cols, cols, cols, cols, true);
        CHECK_MESSAGE(tg::testing::same_bits(acc, expected), rows << "x" << cols << " on " << threads << " threads");
        CHECK(tg::testing::same_bits(dgamma2, dgamma));
        CHECK(tg::testing::same_bits(dbeta2, dbeta));
        // The backward from the output accumulates the same way: r + its own dx, bit for bit, on any thread count.
        std::vector<T> acc_y = r;
        kernels::layernorm_backward_from_output(y.data(), gamma.data(), beta.data(), rstd.data(), dy.data(),
                                                acc_y.data(), dgamma2.data(), dbeta2.data(), rows, cols, cols, cols,
                                                cols, true);
        CHECK_MESSAGE(tg::testing::same_bits(acc_y, expected_y), "from y, " << rows << "x" << cols << " on " << threads
                                                                            << " threads");
        CHECK(tg::testing::same_bits(dgamma2, dgamma_y));
        CHECK(tg::testing::same_bits(dbeta2, dbeta_y));
    }
    set_num_threads(threads_before);
}

}  // namespace

TEST_SUITE("gradient_targets") {
    TEST_CASE("layernorm_backward with accumulate_dx: r + dx bit for bit, odd sizes, 1-4 threads") {
        for (auto [rows, cols] : std::vector<std::pair<std::int64_t, std::int64_t>>{
                 {1, 1}, {5, 16}, {37, 29}, {300, 133}, {1030, 64}}) {
            check_layernorm_accumulate<float>(rows, cols);
            check_layernorm_accumulate<double>(rows, cols);
        }
    }

    TEST_CASE("the engine offers a sum only it can see, and the gradient is the same bit for bit") {
        const Tensor x0 = tg::testing::uniform_tensor({4, 6}, kFloat32, 3);
        auto loss = [](const Tensor& x) {
            const Tensor a = x * 3.0;
            return sum(square(a + exp(probe(a))));  // a's two gradients meet; exp's backward sits between
        };
        std::vector<Tensor> grads;
        for (bool on : {true, false}) {
            autograd::set_gradient_targets(on);
            g_probe_offers = 0;
            const std::uint64_t taken = autograd::gradient_targets_taken();
            const Tensor x = x0.clone().requires_grad_();
            loss(x).backward();
            CHECK(g_probe_offers == (on ? 1 : 0));
            CHECK(autograd::gradient_targets_taken() - taken == (on ? 1u : 0u));
            grads.push_back(x.grad());
        }
        autograd::set_gradient_targets(true);
        CHECK(same_bits(grads[0], grads[1]));
        // d/dx Σ (a + e^a)² = 3 · 2(a + e^a)(1 + e^a), a = 3x
        const Tensor a = x0 * 3.0;
        CHECK(tg::testing::rel_err(grads[0].to_vector<float>(), ((a + exp(a)) * (1.0 + exp(a)) * 6.0).to_vector<float>()) <
              1e-6);
    }

    TEST_CASE("no offer when the rule's own incoming gradient shares the sum, or under anomaly detection") {
        const Tensor x0 = tg::testing::uniform_tensor({3, 5}, kFloat32, 4);
        {
            g_probe_offers = 0;
            const Tensor x = x0.clone().requires_grad_();
            const Tensor a = x * 2.0;
            sum(square(probe(a) + a)).backward();  // add hands one gradient tensor to both of its inputs
            CHECK(g_probe_offers == 0);
            CHECK(tg::testing::rel_err(x.grad().to_vector<float>(), (x0 * 32.0).to_vector<float>()) < 1e-6);  // Σ 16x²
        }
        {
            autograd::DetectAnomalyGuard anomaly;
            g_probe_offers = 0;
            const Tensor x = x0.clone().requires_grad_();
            const Tensor a = x * 3.0;
            sum(square(a + exp(probe(a)))).backward();
            CHECK(g_probe_offers == 0);
        }
    }

    TEST_CASE("a rule that adds into its target and also returns the gradient is refused, naming the op") {
        const Tensor x = tg::testing::uniform_tensor({2, 3}, kFloat32, 5).requires_grad_();
        const Tensor a = x * 3.0;
        const Tensor loss = sum(square(a + exp(probe(a, /*also_return=*/true))));
        tg::testing::check_throws<Error>([&] { loss.backward(); }, {"probe", "also returned"});
    }

    TEST_CASE("LayerNorm on a residual stream: dx accumulated, same bits as off; float64 gradcheck") {
        const Tensor x0 = tg::testing::uniform_tensor({2, 5, 7}, kFloat32, 6);
        const Tensor w0 = tg::testing::uniform_tensor({7}, kFloat32, 7), b0 = tg::testing::uniform_tensor({7}, kFloat32, 8);
        auto block = [](const std::vector<Tensor>& in) {  // h = x + exp(LN(x)): LN's x also feeds the residual
            const Tensor x = in[0] * 1.5;
            return sum(square(x + exp(F::layer_norm(x, {7}, in[1], in[2]))));
        };
        std::vector<std::vector<Tensor>> grads;
        for (bool on : {true, false}) {
            autograd::set_gradient_targets(on);
            const std::uint64_t taken = autograd::gradient_targets_taken();
            std::vector<Tensor> in = {x0.clone().requires_grad_(), w0.clone().requires_grad_(),
                                      b0.clone().requires_grad_()};
            block(in).backward();
            CHECK(autograd::gradient_targets_taken() - taken == (on ? 1u : 0u));
            grads.push_back({in[0].grad(), in[1].grad(), in[2].grad()});
        }
        autograd::set_gradient_targets(true);
        for (std::size_t i = 0; i < 3; ++i) CHECK_MESSAGE(same_bits(grads[0][i], grads[1][i]), "input " << i);

        const std::uint64_t taken = autograd::gradient_targets_taken();
        const auto r = autograd::gradcheck(block, {x0.to(kFloat64).requires_grad_(), w0.to(kFloat64).requires_grad_(),
                                                   b0.to(kFloat64).requires_grad_()});
        CHECK_MESSAGE(r.ok, r.message);
        CHECK(autograd::gradient_targets_taken() > taken);  // the gradcheck's backward went through the target
    }

    TEST_CASE("GPT and ViT gradients: the same bits with targets as without, on 1 and 2 threads") {
        tg::testing::check_same_gradients_either_way(autograd::set_gradient_targets, [](bool on, const auto& backward) {
            const std::uint64_t taken = autograd::gradient_targets_taken();
            backward();
            // Each of the 2 blocks: both LayerNorms' inputs also feed a residual connection.
            CHECK(autograd::gradient_targets_taken() - taken == (on ? 4u : 0u));
        });
    }
}
