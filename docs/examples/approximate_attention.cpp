// The approximate attention modes, quoted by docs/approximate-attention.md. Built and run by `meson test` (the
// test 'doc-approximate-attention'): it prints the accuracy table of the page, measured by this very code,
// and checks the page's claims with expect(); a false claim makes the program exit non-zero.
//
//   build/docs/doc-approximate-attention

#include <tapegrad/tapegrad.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>

namespace F = tg::nn::functional;

namespace {

int failures = 0;

void expect(bool holds, const std::string& claim) {
    std::cout << (holds ? "  ok: " : "  FAILED: ") << claim << '\n';
    if (!holds) ++failures;
}

void section(const std::string& title) { std::cout << "\n== " << title << " ==\n"; }

// q, k ~ N(0, σ) elementwise (σ = input_std²... see below), v and dO ~ N(0, 1): shape (B, H, T, D).
struct Batch {
    tg::Tensor q, k, v, dout;
};

// Scores s·q·k with s = 1/√D have standard deviation score_std when q and k have variance score_std.
Batch random_batch(std::int64_t T, std::int64_t D, double score_std, tg::DType dtype, std::uint64_t seed) {
    tg::Generator gen(seed);
    const tg::Shape shape{1, 2, T, D};
    const double input_std = std::sqrt(score_std);
    return {tg::randn(shape, dtype, &gen) * input_std, tg::randn(shape, dtype, &gen) * input_std,
            tg::randn(shape, dtype, &gen), tg::randn(shape, dtype, &gen)};
}

}  // namespace

int main() {
    tg::manual_seed(0);

    section("the three modes of one node");
    // [modes]
    Batch b = random_batch(512, 16, 0.05, tg::kFloat32, 1);
    F::AttentionOptions options;
    options.causal = true;
    options.mode = F::AttentionMode::ApproxBackward;  // exact forward values, polynomial gradients
    options.degree = 2;                               // p(x) = 1 + x + x²/2
    options.gradient = F::AttentionGradient::Consistent;

    tg::Tensor q = b.q.requires_grad_(), k = b.k.requires_grad_(), v = b.v.requires_grad_();
    tg::Tensor o = F::scaled_dot_product_attention(q, k, v, options);  // (B, H, T, D), one node on the tape
    o.backward(b.dout);                                                // q.grad(), k.grad(), v.grad()

    // How far is that from exact attention? Relative Frobenius errors of O, dQ, dK, dV, and the cosine.
    tg::nn::AttentionErrors err = tg::nn::attention_gradient_error(b.q, b.k, b.v, b.dout, options);
    std::printf("approx_backward: o %.1e  dq %.1e  dk %.1e  dv %.1e  cosine %.6f\n", err.o, err.dq, err.dk, err.dv,
                err.cosine);
    // [modes]
    expect(err.o == 0.0, "approx_backward keeps the exact forward values (o error 0)");
    expect(err.max_gradient_error() < 1e-2, "at score std 0.05 and g = 2 the gradient error is below 1e-2");
    options.mode = F::AttentionMode::Approx;
    const tg::nn::AttentionErrors approx = tg::nn::attention_gradient_error(b.q, b.k, b.v, b.dout, options);
    std::printf("approx:          o %.1e  dq %.1e  dk %.1e  dv %.1e\n", approx.o, approx.dq, approx.dk, approx.dv);
    expect(approx.o > 0 && approx.o < 1e-3, "approx changes the forward values too, slightly");

    section("accuracy: max(dQ, dK, dV) relative error vs score std (T = 256, D = 16, causal, float64)");
    // [accuracy]
    std::printf("%-16s", "score std");
    const double sigmas[] = {0.025, 0.05, 0.1, 0.2, 0.4, 0.8};
    for (double s : sigmas) std::printf("%9.3g", s);
    std::printf("\n");
    struct Row {
        int degree;
        F::AttentionGradient gradient;
    };
    const Row rows[] = {{2, F::AttentionGradient::Consistent}, {3, F::AttentionGradient::Consistent},
                        {4, F::AttentionGradient::Consistent}, {2, F::AttentionGradient::Plugin},
                        {3, F::AttentionGradient::Plugin}};
    double error_at[5][6];
    for (int r = 0; r < 5; ++r) {
        F::AttentionOptions opt;
        opt.causal = true;
        opt.mode = F::AttentionMode::ApproxBackward;
        opt.degree = rows[r].degree;
        opt.gradient = rows[r].gradient;
        std::printf("g=%d %-12s", rows[r].degree, F::to_string(rows[r].gradient).c_str());
        for (int c = 0; c < 6; ++c) {
            const Batch x = random_batch(256, 16, sigmas[c], tg::kFloat64, 7);
            error_at[r][c] = tg::nn::attention_gradient_error(x.q, x.k, x.v, x.dout, opt).max_gradient_error();
            std::printf("%9.1e", error_at[r][c]);
        }
        std::printf("\n");
    }
    // [accuracy]
    expect(error_at[0][2] < 1.5e-2 && error_at[0][3] > 1e-2, "consistent g = 2 crosses 1e-2 near score std 0.1");
    bool monotone = true;
    for (int r = 0; r < 5; ++r) {
        for (int c = 1; c < 6; ++c) monotone = monotone && error_at[r][c] > error_at[r][c - 1];
    }
    expect(monotone, "every row grows with the score spread");
    expect(error_at[3][3] < error_at[0][3] && error_at[2][3] < error_at[1][3],
           "plugin beats consistent at the same degree, and a higher degree beats a lower one");

    section("auto: approximate only where it pays and is accurate");
    // [auto]
    F::AttentionOptions automatic;
    automatic.causal = true;
    automatic.mode = F::AttentionMode::Auto;
    automatic.label = "demo";
    const std::int64_t crossover = F::attention_crossover_length(16, 2);
    const Batch small_scores = random_batch(crossover, 16, 0.02, tg::kFloat32, 3);
    const Batch large_scores = random_batch(crossover, 16, 1.0, tg::kFloat32, 4);
    const F::AttentionChoice c1 = F::choose_attention_mode(small_scores.q, small_scores.k, automatic);
    const F::AttentionChoice c2 = F::choose_attention_mode(large_scores.q, large_scores.k, automatic);
    std::cout << F::to_string(c1.mode) << ": " << c1.reason << '\n' << F::to_string(c2.mode) << ": " << c2.reason << '\n';
    // [auto]
    expect(c1.mode == F::AttentionMode::ApproxBackward, "small scores at the crossover length: approx_backward");
    expect(c2.mode == F::AttentionMode::Exact, "large scores: exact");

    section("the training-time monitor");
    // [monitor]
    auto monitor = std::make_shared<tg::nn::AttentionMonitor>(/*every=*/5);
    tg::nn::MultiHeadAttention attn(/*embed_dim=*/32, /*num_heads=*/2);
    attn.options.mode = F::AttentionMode::ApproxBackward;
    attn.options.monitor = monitor;
    attn.options.label = "attn";
    tg::optim::AdamW opt(attn.parameters(), 1e-3);
    for (std::int64_t step = 0; step < 10; ++step) {
        monitor->begin_step(step);  // on steps 0 and 5 the node also computes the exact gradient
        tg::Tensor x = tg::randn({4, 64, 32}) * 0.5;
        tg::Tensor loss = tg::mean(tg::square(attn.forward(x)));
        opt.zero_grad();
        loss.backward();
        opt.step();
    }
    std::cout << monitor->summary() << '\n';
    for (const auto& r : monitor->history()) {
        std::printf("step %lld %s %s: dq %.2e dk %.2e dv %.2e\n", static_cast<long long>(r.step), r.label.c_str(),
                    r.mode.c_str(), r.errors.dq, r.errors.dk, r.errors.dv);
    }
    // [monitor]
    expect(monitor->history().size() == 2, "measured on steps 0 and 5 only");

    std::cout << (failures == 0 ? "\nall claims hold\n" : "\nSOME CLAIMS FAILED\n");
    return failures == 0 ? 0 : 1;
}
