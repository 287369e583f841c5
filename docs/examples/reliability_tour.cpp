// docs/reliability.md, compiled and run: the NaN/Inf guard of a training step, anomaly detection naming the
// op that produced the first non-finite value, and a model's size computed from its config before building it.
#include <tapegrad/tapegrad.h>

#include "nn/models/model_size.h"

#include <cstdio>
#include <string>
#include <vector>

int main() {
    using namespace tg;

    bool guarded = false, anomaly_named_mul = false;  // what the page says happens, checked at the end

    // [guard]
    Tensor w = from_vector(std::vector<double>{1.0, -2.0}).requires_grad_();
    optim::AdamW optimizer({w}, 1e-2);
    const Tensor x = from_vector(std::vector<double>{0.0, 3.0});
    const Tensor loss = sum(log(x) * w);  // log(0) = -inf: the loss is not finite
    loss.backward();
    const double norm = optim::clip_grad_norm_({w}, 1.0);
    try {
        optim::check_finite_step(/*step=*/1, loss.item(), norm);  // throws optim::NonFiniteError
        optimizer.step();  // never reached: the weights stay as they were
    } catch (const optim::NonFiniteError& e) {
        std::printf("guard: %s\n", e.what());
        guarded = true;
    }
    // [guard]

    // [anomaly]
    optimizer.zero_grad();
    try {
        autograd::DetectAnomalyGuard anomaly;  // every recorded op's output is checked from here on
        const Tensor y = sum(log(x) * w);  // throws AnomalyError naming 'mul' (x is a constant)
        y.backward();
    } catch (const autograd::AnomalyError& e) {
        std::printf("anomaly: %s\n", e.what());
        anomaly_named_mul = std::string(e.what()).find("'mul'") != std::string::npos;
    }
    // [anomaly]

    // [sizes]
    nn::GPTConfig config;
    config.n_layer = 1'000'000'000;  // an edited config.json
    std::printf("n_layer 1e9: %lld parameters, %.1f TB as float32: refused before anything is allocated\n",
                static_cast<long long>(nn::gpt_parameter_count(config)),
                4.0 * static_cast<double>(nn::gpt_parameter_count(config)) / 1e12);
    // [sizes]
    // What docs/reliability.md says happens: the guard stopped the step (weights unchanged), anomaly detection
    // named the op.
    const bool unchanged = w.data<double>()[0] == 1.0 && w.data<double>()[1] == -2.0;
    return guarded && unchanged && anomaly_named_mul ? 0 : 1;
}
