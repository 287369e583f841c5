// Tests for nn/optim: SGD and AdamW against PyTorch's update equations for three steps (the expected numbers
// were computed from those equations in double precision and are written out below), gradient clipping,
// learning-rate schedules, state_dict round trips and bit-exact resumption from a safetensors checkpoint.

#include "core/grad_mode.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/threading.h"
#include "nn/activation.h"
#include "nn/functional.h"
#include "nn/optim.h"
#include "nn/sequential.h"
#include "nn/serialization.h"

#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include <unistd.h>

using namespace tg;
using namespace tg::testing;

namespace {


void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
        CHECK(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])));
    }
}

// The fixed problem of the hand-computed tests: p0 and the gradient given at each of three steps.
const std::vector<double> kP0 = {1.0, -2.0, 0.5};
const std::vector<std::vector<double>> kGrads = {{0.1, -0.2, 0.3}, {0.4, 0.0, -0.1}, {-0.3, 0.5, 0.2}};

// Runs three steps of `opt` on p (float64 or float32), setting kGrads[s] as the gradient before step s,
// and returns p after each step.
std::vector<std::vector<double>> run_three_steps(optim::Optimizer& opt, const Tensor& p) {
    std::vector<std::vector<double>> out;
    for (const auto& g : kGrads) {
        p.set_grad(from_vector<double>(g).to(p.dtype()));
        opt.step();
        out.push_back(p.to_vector<double>());
    }
    return out;
}

Tensor param64() { return from_vector<double>(kP0).requires_grad_(); }

}  // namespace

TEST_SUITE("optim") {

// ---- SGD -------------------------------------------------------------------------------------------------------
// The expected values follow torch.optim.SGD (_single_tensor_sgd):
//   g ← g + λ p;  b ← g (first step) or μ b + (1 − τ) g;  g ← g + μ b (nesterov) or b;  p ← p − η g

TEST_CASE("SGD with weight decay, no momentum") {
    // η = 0.1, λ = 0.1: step 1: p = 1 − 0.1 (0.1 + 0.1·1) = 0.98, ...
    Tensor p = param64();
    optim::SGD opt({p}, 0.1, 0.0, 0.0, /*weight_decay=*/0.1);
    const auto got = run_three_steps(opt, p);
    const std::vector<std::vector<double>> want = {
        {0.98, -1.96, 0.465}, {0.9302, -1.9404, 0.47035000000000005}, {0.950898, -1.970996, 0.44564650000000006}};
    for (int s = 0; s < 3; ++s) check_close(got[s], want[s], 1e-15);
    CHECK(opt.step_count() == 3);
}

TEST_CASE("SGD with momentum and dampening: the buffer starts at g, undampened") {
    // η = 0.1, μ = 0.9, τ = 0.1: step 1 b = g; step 2 b = 0.9 b + 0.9 g.
    Tensor p = param64();
    optim::SGD opt({p}, 0.1, /*momentum=*/0.9, /*dampening=*/0.1);
    const auto got = run_three_steps(opt, p);
    const std::vector<std::vector<double>> want = {
        {0.99, -1.98, 0.47}, {0.945, -1.962, 0.45199999999999996}, {0.9315, -1.9908, 0.41779999999999995}};
    for (int s = 0; s < 3; ++s) check_close(got[s], want[s], 1e-15);
}

TEST_CASE("SGD with Nesterov momentum and weight decay") {
    // η = 0.1, μ = 0.9, λ = 0.01, nesterov: g ← g + λ p; b ← ...; p ← p − η (g + μ b).
    Tensor p = param64();
    optim::SGD opt({p}, 0.1, 0.9, 0.0, 0.01, /*nesterov=*/true);
    const auto got = run_three_steps(opt, p);
    const std::vector<std::vector<double>> want = {{0.9791, -1.9582, 0.44205},
                                                   {0.8923297099999999, -1.93665942, 0.435505105},
                                                   {0.906422212551, -2.010355625102, 0.3821850848005}};
    for (int s = 0; s < 3; ++s) check_close(got[s], want[s], 1e-15);
}

TEST_CASE("SGD: float32 parameters follow the float64 result; a strided parameter is updated in place") {
    Tensor p = from_vector<double>(kP0).to(kFloat32).requires_grad_();
    optim::SGD opt({p}, 0.1, 0.9, 0.0, 0.01, true);
    const auto got = run_three_steps(opt, p);
    check_close(got[2], {0.906422212551, -2.010355625102, 0.3821850848005}, 1e-6);

    Tensor base = zeros({2, 3});
    Tensor q = base.t();  // [3, 2] view, non-contiguous, a leaf
    q.requires_grad_();
    optim::SGD opt2({q}, 0.5);
    q.set_grad(ones({3, 2}));
    opt2.step();
    CHECK(q.to_vector<float>() == std::vector<float>(6, -0.5f));
    CHECK(base.to_vector<float>() == std::vector<float>(6, -0.5f));  // the update landed in the shared storage
}

// ---- AdamW -----------------------------------------------------------------------------------------------------
// The expected values follow torch.optim.AdamW (_single_tensor_adam with decoupled weight decay):
//   p ← p (1 − η λ);  m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²;
//   p ← p − η/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + ε)

TEST_CASE("AdamW with weight decay and bias correction, three steps") {
    // η = 0.01, β = (0.9, 0.999), ε = 1e-8, λ = 0.1. Step 1: p = 1·(1 − 0.001) − 0.01 · 0.1/(|0.1| + 1e-8 ...)
    const std::vector<std::vector<double>> want = {
        {0.9890000009999999, -1.9880000005, 0.4895000003333333},
        {0.9791672363965117, -1.979311418432056, 0.48500831479247475},
        {0.9764209861415688, -1.9813421748682623, 0.4784924418424881}};
    Tensor p = param64();
    optim::AdamW opt({p}, 0.01, 0.9, 0.999, 1e-8, 0.1);
    const auto got = run_three_steps(opt, p);
    for (int s = 0; s < 3; ++s) check_close(got[s], want[s], 1e-14);

    Tensor p32 = from_vector<double>(kP0).to(kFloat32).requires_grad_();
    optim::AdamW opt32({p32}, 0.01, 0.9, 0.999, 1e-8, 0.1);
    const auto got32 = run_three_steps(opt32, p32);
    for (int s = 0; s < 3; ++s) check_close(got32[s], want[s], 1e-6);

    // The state after three steps.
    const NamedTensors sd = opt.state_dict();
    REQUIRE(sd.size() == 5);
    CHECK(sd[0].first == "step");
    CHECK(sd[0].second.item<std::int64_t>() == 3);
    CHECK(sd[1].first == "lr");
    CHECK(sd[1].second.item() == 0.01);
    CHECK(sd[2].first == "state.0.step");
    CHECK(sd[3].first == "state.0.exp_avg");
    CHECK(sd[4].first == "state.0.exp_avg_sq");
    // m = Σ_s (1 − β1) β1^(3−s) g_s for the first element: 0.1·(0.81·0.1 + 0.9·0.4 − 0.3)
    CHECK(sd[3].second.to_vector<double>()[0] == doctest::Approx(0.1 * (0.81 * 0.1 + 0.9 * 0.4 - 0.3)).epsilon(1e-14));
}

TEST_CASE("A parameter without a gradient is skipped and its own step count does not advance") {
    Tensor p = param64(), q = param64();
    optim::AdamW opt({p, q}, 0.01, 0.9, 0.999, 1e-8, 0.1);
    Tensor q_alone = param64();
    optim::AdamW ref({q_alone}, 0.01, 0.9, 0.999, 1e-8, 0.1);
    for (int s = 0; s < 3; ++s) {
        p.set_grad(from_vector<double>(kGrads[s]));
        if (s != 1) q.set_grad(from_vector<double>(kGrads[s]));
        const auto q_before = q.to_vector<double>();
        opt.step();
        if (s == 1) CHECK(q.to_vector<double>() == q_before);  // no gradient: no weight decay either
        if (s != 1) {
            q_alone.set_grad(from_vector<double>(kGrads[s]));
            ref.step();
        }
        opt.zero_grad();
        CHECK_FALSE(q.grad().defined());
    }
    // q saw two updates (t = 1, 2): the same as an optimizer that only ever saw those two gradients.
    CHECK(q.to_vector<double>() == q_alone.to_vector<double>());
    for (const auto& [name, t] : opt.state_dict()) {
        if (name == "state.0.step") CHECK(t.item<std::int64_t>() == 3);
        if (name == "state.1.step") CHECK(t.item<std::int64_t>() == 2);
    }
}

TEST_CASE("AdamW updates every parameter in one pass with the bits of one optimizer per parameter") {
    // float and double parameters, a transposed (non-contiguous) one, and one without a gradient at a step.
    Generator gen(7);
    std::vector<Tensor> params{randn({300, 20}, kFloat32, &gen), randn({5}, kFloat64, &gen),
                               randn({20, 30}, kFloat32, &gen).t(), randn({4097}, kFloat32, &gen)};
    for (Tensor& p : params) p = p.detach().requires_grad_(true);
    std::vector<Tensor> alone;
    for (const Tensor& p : params) alone.push_back(p.detach().clone().requires_grad_(true));
    CHECK_FALSE(params[2].is_contiguous());
    optim::AdamW together(params, 0.01, 0.9, 0.999, 1e-8, 0.1);
    std::vector<std::unique_ptr<optim::AdamW>> one_each;
    for (const Tensor& p : alone) {
        one_each.push_back(std::make_unique<optim::AdamW>(std::vector<Tensor>{p}, 0.01, 0.9, 0.999, 1e-8, 0.1));
    }
    for (int s = 0; s < 3; ++s) {
        for (std::size_t i = 0; i < params.size(); ++i) {
            if (s == 1 && i == 1) continue;  // no gradient for this one at this step
            const Tensor g = randn(params[i].shape(), params[i].dtype(), &gen);
            params[i].set_grad(g);
            alone[i].set_grad(g.clone());
            one_each[i]->step();
        }
        together.step();
        together.zero_grad();
        for (auto& o : one_each) o->zero_grad();
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
        CAPTURE(i);
        CHECK(params[i].contiguous().to_vector<double>() == alone[i].contiguous().to_vector<double>());
    }
}

TEST_CASE("an optimizer step invalidates graphs that saved the old parameter") {
    Tensor p = param64();
    optim::SGD opt({p}, 0.1);
    Tensor y = sum(p * p);  // mul saves p for its backward
    p.set_grad(ones({3}, kFloat64));
    opt.step();
    check_throws<Error>([&] { y.backward(); }, {"modified by an in-place operation"});
}

TEST_CASE("optimizer argument errors") {
    Tensor p = param64();
    check_throws<ValueError>([&] { optim::SGD({}, 0.1); }, {"empty parameter list"});
    check_throws<ValueError>([&] { optim::SGD({p}, -0.1); }, {"learning rate", "-0.1"});
    check_throws<ValueError>([&] { optim::SGD({p}, 0.1, -0.5); }, {"SGD", "momentum"});
    check_throws<ValueError>([&] { optim::SGD({p}, 0.1, 0.0, 0.0, -1.0); }, {"SGD", "weight_decay"});
    check_throws<ValueError>([&] { optim::SGD({p}, 0.1, 0.0, 0.0, 0.0, true); }, {"Nesterov", "momentum"});
    check_throws<ValueError>([&] { optim::SGD({p}, 0.1, 0.9, 0.1, 0.0, true); }, {"Nesterov", "dampening"});
    check_throws<ValueError>([&] { optim::AdamW({p}, 0.1, 1.0); }, {"AdamW", "beta1"});
    check_throws<ValueError>([&] { optim::AdamW({p}, 0.1, 0.9, -0.1); }, {"AdamW", "beta2"});
    check_throws<ValueError>([&] { optim::AdamW({p}, 0.1, 0.9, 0.99, -1e-8); }, {"AdamW", "eps"});
    check_throws<ValueError>([&] { optim::AdamW({p}, 0.1, 0.9, 0.99, 1e-8, -0.1); }, {"AdamW", "weight_decay"});
    check_throws<ValueError>([&] { optim::SGD({p, p}, 0.1); }, {"parameter 1", "more than once"});
    check_throws<ValueError>([&] { optim::SGD({p * 2.0}, 0.1); }, {"parameter 0", "not a leaf"});
    check_throws<ValueError>([&] { optim::SGD({zeros({2}, kInt64)}, 0.1); }, {"parameter 0", "floating"});
    optim::SGD opt({p}, 0.1);
    check_throws<ValueError>([&] { opt.set_lr(std::nan("")); }, {"learning rate"});
    opt.set_lr(0.5);
    CHECK(opt.lr() == 0.5);
}

// ---- state_dict / load_state_dict ---------------------------------------------------------------------------

TEST_CASE("optimizer load_state_dict: errors name the key and shapes, and change nothing") {
    Tensor p = param64();
    Tensor q = zeros({2, 2}, kFloat64).requires_grad_();
    optim::AdamW opt({p, q}, 0.01);
    p.set_grad(ones({3}, kFloat64));
    q.set_grad(ones({2, 2}, kFloat64));
    opt.step();
    const NamedTensors good = opt.state_dict();
    auto with = [&](const std::string& key, const Tensor& t) {
        NamedTensors sd = good;
        sd.emplace_back(key, t);
        return sd;
    };
    check_throws<ValueError>([&] { opt.load_state_dict(with("momentum", zeros({1}))); }, {"AdamW.load_state_dict", "unexpected key 'momentum'"});
    check_throws<ValueError>([&] { opt.load_state_dict(with("state.2.exp_avg", zeros({3}, kFloat64))); },
                             {"'state.2.exp_avg'", "parameter 2", "2 parameters"});
    check_throws<ValueError>([&] { opt.load_state_dict(with("state.0.momentum_buffer", zeros({3}, kFloat64))); },
                             {"'state.0.momentum_buffer'", "no buffer"});
    NamedTensors bad_shape = good;
    for (auto& [name, t] : bad_shape)
        if (name == "state.1.exp_avg") t = zeros({4}, kFloat64);
    check_throws<ShapeError>([&] { opt.load_state_dict(bad_shape); }, {"'state.1.exp_avg'", "[4]", "[2, 2]"});
    NamedTensors bad_dtype = good;
    for (auto& [name, t] : bad_dtype)
        if (name == "state.0.exp_avg_sq") t = zeros({3}, kFloat32);
    check_throws<DTypeError>([&] { opt.load_state_dict(bad_dtype); }, {"'state.0.exp_avg_sq'", "float32", "float64"});
    NamedTensors no_step(good.begin() + 1, good.end());
    check_throws<ValueError>([&] { opt.load_state_dict(no_step); }, {"no 'step'"});
    CHECK(opt.step_count() == 1);  // unchanged by the failed loads
}

TEST_CASE("resuming from a safetensors checkpoint is bit-for-bit identical to an uninterrupted run") {
    // A small classifier trained with AdamW, gradient clipping and a warm-up cosine schedule.
    Generator data_gen(100);
    const Tensor x = randn({16, 4}, kFloat32, &data_gen);
    const Tensor y = randint(0, 3, {16}, kInt64, &data_gen);
    auto make_model = [](std::uint64_t seed) {
        manual_seed(seed);
        return std::make_shared<nn::MLP>(std::vector<std::int64_t>{4, 8, 3},
                                         [] { return std::make_shared<nn::GELU>(); });
    };
    const optim::WarmupCosine schedule{1e-2, 2, 6, 1e-3};
    auto train_step = [&](nn::Module& model, optim::Optimizer& opt, optim::LRScheduler& sched) {
        opt.zero_grad();
        Tensor loss = nn::functional::cross_entropy(model(x), y);
        loss.backward();
        optim::clip_grad_norm_(model.parameters(), 0.5);
        opt.step();
        sched.step();
    };

    // Uninterrupted: six steps.
    auto model_a = make_model(1);
    optim::AdamW opt_a(model_a->parameters(), 1e-2, 0.9, 0.999, 1e-8, 0.1);
    optim::LRScheduler sched_a(opt_a, schedule);
    for (int s = 0; s < 6; ++s) train_step(*model_a, opt_a, sched_a);

    // Interrupted: three steps, checkpoint, a fresh process (other init), load, three more steps.
    const std::string path =
        (std::filesystem::temp_directory_path() / ("tg_test_optim_resume_" + std::to_string(::getpid()) + ".safetensors")).string();
    {
        auto model_b = make_model(1);
        optim::AdamW opt_b(model_b->parameters(), 1e-2, 0.9, 0.999, 1e-8, 0.1);
        optim::LRScheduler sched_b(opt_b, schedule);
        for (int s = 0; s < 3; ++s) train_step(*model_b, opt_b, sched_b);
        NamedTensors checkpoint;
        for (const auto& [name, t] : model_b->state_dict()) checkpoint.emplace_back("model." + name, t);
        for (const auto& [name, t] : opt_b.state_dict()) checkpoint.emplace_back("optim." + name, t);
        save_safetensors(path, checkpoint, {{"scheduler_step", std::to_string(sched_b.last_step())}});
    }
    auto model_c = make_model(2);
    optim::AdamW opt_c(model_c->parameters(), 1e-2, 0.9, 0.999, 1e-8, 0.1);
    const SafetensorsFile file = load_safetensors(path);
    std::filesystem::remove(path);
    NamedTensors model_state, optim_state;
    for (const auto& [name, t] : file.tensors) {
        if (name.rfind("model.", 0) == 0) model_state.emplace_back(name.substr(6), t);
        if (name.rfind("optim.", 0) == 0) optim_state.emplace_back(name.substr(6), t);
    }
    model_c->load_state_dict(model_state);
    opt_c.load_state_dict(optim_state);
    CHECK(opt_c.step_count() == 3);
    optim::LRScheduler sched_c(opt_c, schedule, std::stoll(file.metadata.at("scheduler_step")));
    CHECK(opt_c.lr() == schedule(3));
    for (int s = 0; s < 3; ++s) train_step(*model_c, opt_c, sched_c);

    const auto pa = model_a->parameters(), pc = model_c->parameters();
    REQUIRE(pa.size() == pc.size());
    for (std::size_t i = 0; i < pa.size(); ++i) {
        INFO("parameter " << i);
        CHECK(pa[i].to_vector<float>() == pc[i].to_vector<float>());  // bitwise: float == on every element
    }
    CHECK(opt_c.step_count() == 6);
    CHECK(opt_c.lr() == opt_a.lr());
}

TEST_CASE("SGD momentum state round-trips through state_dict") {
    Tensor p = param64();
    optim::SGD opt({p}, 0.1, 0.9);
    p.set_grad(from_vector<double>(kGrads[0]));
    opt.step();
    Tensor p2 = p.detach().clone().requires_grad_();
    optim::SGD opt2({p2}, 0.1, 0.9);
    NamedTensors sd = opt.state_dict();
    for (auto& [name, t] : sd) t = t.clone();  // a snapshot
    opt2.load_state_dict(sd);
    for (const auto& g : {kGrads[1], kGrads[2]}) {
        p.set_grad(from_vector<double>(g));
        p2.set_grad(from_vector<double>(g));
        opt.step();
        opt2.step();
    }
    CHECK(p.to_vector<double>() == p2.to_vector<double>());
    // torch.optim.SGD(lr=0.1, momentum=0.9) after the three gradients, from its equations in double:
    check_close(p.to_vector<double>(), {0.9269, -1.9958, 0.41769999999999996}, 1e-15);
}

// ---- clip_grad_norm_ ---------------------------------------------------------------------------------------------

TEST_CASE("clip_grad_norm_: total norm, scaling above max_norm, untouched below") {
    Tensor a = zeros({2}).requires_grad_();
    Tensor b = zeros({1}, kFloat64).requires_grad_();
    Tensor unused = zeros({3}).requires_grad_();  // no gradient: skipped
    auto set = [&] {
        a.set_grad(from_vector<float>({3.0f, 4.0f}));
        b.set_grad(from_vector<double>({12.0}));
    };
    set();
    CHECK(optim::clip_grad_norm_({a, b, unused}, 20.0) == 13.0);  // sqrt(9 + 16 + 144)
    CHECK(a.grad().to_vector<float>() == std::vector<float>{3.0f, 4.0f});
    CHECK(b.grad().to_vector<double>() == std::vector<double>{12.0});

    const double coef = 6.5 / (13.0 + 1e-6);
    CHECK(optim::clip_grad_norm_({a, b, unused}, 6.5) == 13.0);
    CHECK(a.grad().to_vector<float>() ==
          std::vector<float>{3.0f * static_cast<float>(coef), 4.0f * static_cast<float>(coef)});
    CHECK(b.grad().to_vector<double>()[0] == doctest::Approx(12.0 * coef).epsilon(1e-15));
    CHECK(optim::clip_grad_norm_({a, b}, 6.5) == doctest::Approx(6.5).epsilon(1e-6));

    // A big gradient: the float64 accumulation is exact for these integers.
    Tensor big = zeros({100000}).requires_grad_();
    big.set_grad(full({100000}, 3.0f));
    CHECK(optim::clip_grad_norm_({big}, 1e9) == doctest::Approx(3.0 * std::sqrt(100000.0)).epsilon(1e-15));

    // Non-finite norms.
    a.set_grad(from_vector<float>({std::numeric_limits<float>::quiet_NaN(), 1.0f}));
    check_throws<ValueError>([&] { optim::clip_grad_norm_({a}, 1.0, true); }, {"clip_grad_norm_", "nan"});
    CHECK(std::isnan(optim::clip_grad_norm_({a}, 1.0)));
    CHECK(std::isnan(a.grad().to_vector<float>()[1]));  // as in PyTorch, the NaN spreads
    check_throws<ValueError>([&] { optim::clip_grad_norm_({a}, -1.0); }, {"max_norm"});
}

TEST_CASE("clip_grad_norm_: the float64 norm of many gradients, the same bits at 1 to 4 threads") {
    // Sizes around the 16-lane and 32768-element blocks of the sum of squares, float32 and float64.
    std::vector<Tensor> params;
    long double want = 0;
    std::int64_t seed = 0;
    for (const std::int64_t n : {1, 15, 17, 32768 + 5, 100003}) {
        for (const DType dtype : {kFloat32, kFloat64}) {
            Tensor p = zeros({n}, dtype).requires_grad_();
            manual_seed(static_cast<std::uint64_t>(++seed));
            p.set_grad(randn({n}).to(dtype));
            for (const double g : p.grad().to_vector<double>()) want += static_cast<long double>(g) * g;
            params.push_back(p);
        }
    }
    const int threads_before = get_num_threads();
    std::vector<double> norms;
    for (const int threads : {1, 2, 3, 4}) {
        set_num_threads(threads);
        norms.push_back(optim::clip_grad_norm_(params, 1e9));  // above the norm: nothing is scaled
    }
    set_num_threads(threads_before);
    CHECK(norms[0] == doctest::Approx(static_cast<double>(std::sqrt(want))).epsilon(1e-13));
    for (const double norm : norms) CHECK(same_bits(std::vector<double>{norm}, std::vector<double>{norms[0]}));
}

// ---- schedules -------------------------------------------------------------------------------------------------

TEST_CASE("WarmupCosine and ConstantLR at key steps; LRScheduler drives the optimizer") {
    const optim::WarmupCosine wc{1.0, 10, 110, 0.1};
    CHECK(wc(0) == 0.0);
    CHECK(wc(5) == doctest::Approx(0.5).epsilon(1e-15));
    CHECK(wc(10) == doctest::Approx(1.0).epsilon(1e-15));                   // peak: cos(0)
    CHECK(wc(35) == doctest::Approx(0.1 + 0.45 * (1.0 + std::cos(std::numbers::pi / 4))).epsilon(1e-15));
    CHECK(wc(60) == doctest::Approx(0.55).epsilon(1e-15));                  // halfway: cos(π/2) = 0
    CHECK(wc(109) == doctest::Approx(0.1 + 0.45 * (1.0 + std::cos(std::numbers::pi * 99.0 / 100.0))).epsilon(1e-15));
    CHECK(wc(110) == 0.1);
    CHECK(wc(1000) == 0.1);
    CHECK(optim::WarmupCosine{2.0, 0, 4, 0.0}(0) == 2.0);  // no warm-up starts at the peak
    CHECK(optim::WarmupCosine{2.0, 0, 4, 0.0}(2) == doctest::Approx(1.0).epsilon(1e-15));
    check_throws<ValueError>([] { optim::WarmupCosine{1.0, 10, 5, 0.0}(0); }, {"WarmupCosine", "warmup_steps 10", "total_steps 5"});
    check_throws<ValueError>([] { optim::WarmupCosine{1.0, 1, 5, 2.0}(0); }, {"WarmupCosine", "min_lr"});

    const optim::ConstantLR c{0.5, 0.1, 3};
    CHECK(c(0) == 0.5 * 0.1);
    CHECK(c(2) == 0.5 * 0.1);
    CHECK(c(3) == 0.5);
    CHECK(optim::ConstantLR{0.3}(1000) == 0.3);

    Tensor p = param64();
    optim::SGD opt({p}, 123.0);
    optim::LRScheduler sched(opt, wc);
    CHECK(opt.lr() == 0.0);  // set to schedule(0) on construction
    sched.step();
    CHECK(sched.last_step() == 1);
    CHECK(opt.lr() == doctest::Approx(0.1).epsilon(1e-15));
    CHECK(sched.last_lr() == opt.lr());
    sched.set_step(60);
    CHECK(opt.lr() == doctest::Approx(0.55).epsilon(1e-15));
}

}  // TEST_SUITE
