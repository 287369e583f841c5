// tg-example-moons: the first program a learner reads.
//
// A two-moons data set (two interleaving half circles, one per class) is generated from a seed; a
// 2-16-16-1 MLP learns to separate them with autograd + AdamW. Every training step is the same four lines
// as in PyTorch:
//
//   logits = model(x)                      forward: the ops record themselves on the tape
//   loss   = bce_with_logits(logits, y)
//   loss.backward()                        the tape is walked backwards: every parameter gets .grad()
//   optimizer.step(); optimizer.zero_grad()
//
// docs/autograd.md walks through it, with the equation of each backward rule that runs.

#include <tapegrad/tapegrad.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <numbers>

namespace {

struct Moons {
    tg::Tensor points;  // (N, 2) float32
    tg::Tensor labels;  // (N, 1) float32, 0 = upper moon, 1 = lower moon
};

// N points on two half circles with Gaussian noise:
//   class 0: (cos t, sin t),             t in [0, pi]
//   class 1: (1 - cos t, 1/2 - sin t)
Moons make_moons(std::int64_t n, double noise, std::uint64_t seed) {
    tg::Generator gen(seed);
    const tg::Tensor t = tg::rand({n}, tg::kFloat32, &gen) * std::numbers::pi;
    const tg::Tensor label = tg::bernoulli({n}, 0.5, tg::kFloat32, &gen);  // which moon each point is on
    const tg::Tensor x0 = tg::cos(t), y0 = tg::sin(t);
    const tg::Tensor x1 = 1.0 - tg::cos(t), y1 = 0.5 - tg::sin(t);
    const tg::Tensor px = tg::where(label, x1, x0);
    const tg::Tensor py = tg::where(label, y1, y0);
    const tg::Tensor points = tg::stack({px, py}, 1) + tg::randn({n, 2}, tg::kFloat32, &gen) * noise;
    return {points, label.unsqueeze(1)};
}

// Binary cross-entropy from logits z and 0/1 targets y, composed from primitives:
//   loss = mean( log(1 + e^z) - y z )  with  log(1 + e^z) = max(z, 0) + log(1 + e^-|z|)
// (the rewrite never exponentiates a large positive number, so it cannot overflow).
tg::Tensor bce_with_logits(const tg::Tensor& z, const tg::Tensor& y) {
    const tg::Tensor softplus = tg::relu(z) + tg::log(1.0 + tg::exp(-tg::abs(z)));
    return tg::mean(softplus - y * z);
}

double accuracy(const tg::Tensor& logits, const tg::Tensor& labels) {
    const tg::Tensor predicted = tg::gt(logits, tg::scalar_tensor(0.0));  // logit > 0  <=>  p > 1/2
    return tg::mean(tg::eq(predicted, labels)).item();
}

// Renders the DOT file to SVG next to it with Graphviz's `dot`, when it is installed (Debian: graphviz).
void render_graph(const std::string& dot_path) {
    const std::string svg_path = dot_path + ".svg";
    if (std::system("command -v dot > /dev/null 2>&1") != 0) {
        std::printf("wrote the graph of step 1 to %s (install graphviz to render it: dot -Tsvg %s -o %s)\n",
                    dot_path.c_str(), dot_path.c_str(), svg_path.c_str());
        return;
    }
    const std::string command = "dot -Tsvg '" + dot_path + "' -o '" + svg_path + "'";
    if (std::system(command.c_str()) == 0) {
        std::printf("wrote the graph of step 1 to %s and rendered it to %s\n", dot_path.c_str(), svg_path.c_str());
    } else {
        std::printf("wrote the graph of step 1 to %s (dot failed to render it)\n", dot_path.c_str());
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Train a 2-16-16-1 MLP on the two-moons data set with tapegrad's autograd and AdamW"};
    std::int64_t steps = 600, points = 512;
    double lr = 0.02, noise = 0.1;
    std::uint64_t seed = 0;
    int threads = 0;
    bool json = false;
    std::string dot_path;
    app.add_option("--steps", steps, "training steps (full batch)")->check(CLI::PositiveNumber);
    app.add_option("--points", points, "training points (the test set has as many)")->check(CLI::PositiveNumber);
    app.add_option("--lr", lr, "AdamW learning rate")->check(CLI::PositiveNumber);
    app.add_option("--noise", noise, "standard deviation of the noise added to the points")->check(CLI::NonNegativeNumber);
    app.add_option("--seed", seed, "seed for data, initial weights and everything else");
    app.add_option("--threads", threads, "worker threads (default: all cores)");
    app.add_option("--dot", dot_path, "write the autograd graph of one training step as Graphviz DOT");
    app.add_flag("--json", json, "print one JSON line at the end instead of the progress");
    CLI11_PARSE(app, argc, argv);

    try {
        if (threads > 0) tg::set_num_threads(threads);
        tg::manual_seed(seed);
        const Moons train = make_moons(points, noise, seed + 1);
        const Moons test = make_moons(points, noise, seed + 2);

        auto model = std::make_shared<tg::nn::MLP>(std::vector<std::int64_t>{2, 16, 16, 1},
                                                   [] { return std::make_shared<tg::nn::Tanh>(); });
        for (auto [name, param] : model->named_parameters()) param.set_name(name);  // labels in the graph picture
        tg::optim::AdamW optimizer(model->parameters(), lr, 0.9, 0.999, 1e-8, /*weight_decay=*/0.0);

        const auto start = std::chrono::steady_clock::now();
        double loss_value = 0;
        for (std::int64_t step = 1; step <= steps; ++step) {
            const tg::Tensor logits = (*model)(train.points);  // (N, 1)
            const tg::Tensor loss = bce_with_logits(logits, train.labels);
            if (step == 1 && !dot_path.empty()) {
                tg::autograd::set_track_grad_norms(true);  // so the picture can show gradient norms
                loss.backward(tg::Tensor(), /*retain_graph=*/true);
                tg::autograd::write_dot(loss, dot_path, {.show_grad_norms = true});
                tg::autograd::set_track_grad_norms(false);
            } else {
                loss.backward();
            }
            optimizer.step();
            optimizer.zero_grad();
            loss_value = loss.item();
            if (!json && (step % 100 == 0 || step == 1)) {
                std::printf("step %4lld  loss %.4f  train accuracy %.3f\n", static_cast<long long>(step), loss_value,
                            accuracy(logits.detach(), train.labels));
            }
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        tg::NoGradGuard no_grad;
        model->eval();
        const double test_accuracy = accuracy((*model)(test.points), test.labels);
        if (json) {
            std::printf("{\"accuracy\": %.4f, \"loss\": %.5f, \"seconds\": %.3f}\n", test_accuracy, loss_value, seconds);
        } else {
            std::printf("test accuracy %.3f after %lld steps in %.2f s\n", test_accuracy, static_cast<long long>(steps),
                        seconds);
            if (!dot_path.empty()) render_graph(dot_path);
        }
        return 0;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "tg-example-moons: %s\n", e.what());
        return 2;
    }
}
