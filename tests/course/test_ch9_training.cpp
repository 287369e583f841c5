// Chapter 9, a GPT block and the training loop: AdamW, the schedule, clipping (docs/course/09-gpt-training.md).

#include "kernels/adamw.h"
#include "nn/optim.h"
#include "nn/optim/schedule.h"
#include "tests/course/course_test.h"

#include <numbers>

using namespace tg;
using tg::course::attempt;
using tg::course::check_close;
using tg::course::random_values;

TEST_SUITE("course-ch9") {

TEST_CASE("ch9.adamw") {
    attempt([] {
        // Step 1 by hand: m̂ = g and v̂ = g², so the update is lr·g/(|g| + eps) ≈ lr·sign(g), after the decay.
        const kernels::AdamWHyper h{0.1, 0.9, 0.999, 1e-8, 0.5};
        std::vector<double> p{1.0, -2.0}, g{0.3, -4.0}, m(2, 0.0), v(2, 0.0);
        kernels::adamw_step_reference(p.data(), g.data(), m.data(), v.data(), 2, h, 1);
        const double decay = 1.0 - 0.1 * 0.5;
        check_close("p after step 1", p, {1.0 * decay - 0.1 * 0.3 / (0.3 + 1e-8), -2.0 * decay + 0.1 * 4.0 / (4.0 + 1e-8)},
                    1e-12);
        check_close("m after step 1", m, {0.1 * 0.3, 0.1 * -4.0}, 1e-12);
        check_close("v after step 1", v, {0.001 * 0.09, 0.001 * 16.0}, 1e-12);
        // Five steps on random data, against the fused kernel.
        const std::int64_t n = 37;
        std::vector<double> p_ref = random_values(n, 60), p_fast = p_ref, m_ref(n, 0.0), m_fast(n, 0.0),
                            v_ref(n, 0.0), v_fast(n, 0.0);
        for (std::int64_t step = 1; step <= 5; ++step) {
            const auto grad = random_values(n, 60 + static_cast<unsigned>(step));
            kernels::adamw_step_reference(p_ref.data(), grad.data(), m_ref.data(), v_ref.data(), n, kernels::AdamWHyper{}, step);
            kernels::adamw_step(p_fast.data(), grad.data(), m_fast.data(), v_fast.data(), n, kernels::AdamWHyper{}, step);
        }
        check_close("p after 5 steps", p_ref, p_fast, 1e-12);
    });
}

TEST_CASE("ch9.warmup_cosine") {
    attempt([] {
        const optim::WarmupCosine s{1.0, 10, 110, 0.1};
        CHECK_MESSAGE(s(0) == doctest::Approx(0.0), "warm-up starts at 0");
        CHECK(s(5) == doctest::Approx(0.5));
        CHECK_MESSAGE(s(10) == doctest::Approx(1.0), "the peak at the end of warm-up");
        CHECK_MESSAGE(s(60) == doctest::Approx(0.55), "half way through the decay: min + (base − min)/2");
        CHECK(s(35) == doctest::Approx(0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * 0.25))));
        CHECK_MESSAGE(s(110) == doctest::Approx(0.1), "min_lr at the end");
        CHECK(s(500) == doctest::Approx(0.1));
    });
}

TEST_CASE("ch9.clip_grad_norm") {
    attempt([] {
        const Tensor a = zeros({2}, kFloat64).requires_grad_(), b = zeros({1}, kFloat64).requires_grad_();
        a.set_grad(from_vector(std::vector<double>{3, 0}, {2}));
        b.set_grad(from_vector(std::vector<double>{4}, {1}));
        const double total = optim::clip_grad_norm_({a, b}, 1.0);
        CHECK_MESSAGE(total == doctest::Approx(5.0), "the global norm sqrt(3² + 4²), before clipping");
        const double coef = 1.0 / (5.0 + 1e-6);
        check_close("a.grad", a.grad().to_vector<double>(), {3 * coef, 0}, 1e-12);
        check_close("b.grad", b.grad().to_vector<double>(), {4 * coef}, 1e-12);
        // Under the limit: nothing changes.
        CHECK(optim::clip_grad_norm_({a, b}, 10.0) == doctest::Approx(1.0).epsilon(1e-5));
        check_close("b.grad unchanged", b.grad().to_vector<double>(), {4 * coef}, 1e-12);
    });
}

}  // TEST_SUITE
