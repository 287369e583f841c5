// The `vit` suite: one ViT training step (forward, backward, AdamW update) on random images, the model
// tg-vit trains by default (nn/models/vit.h: 28×28 images, 7×7 patches, 16 patches + a class token,
// 4 layers, 4 heads, E = 64, MLP 128, 10 classes) at tg-vit's default batch of 128.
//
//   tg-bench vit [--batch B] [--dim E] [--layers L] [--heads H] [--mlp M] [--steps K] [--profile]
//                [--peak] [--rounds R]
//
// Output: {"suite":"vit","threads":2,"batch":128,"step_ms":..,"images_per_s":..,"cpu_ms":..,"gflop":..,
// "gflops":..,"gflops_cpu":..,"peak_rss_bytes":..,"loss":..}, timed like the gpt suite (two warm-up steps,
// then the median of K). --profile adds the per-kind breakdown (bench/step_profile.h).
//
// FLOP count (multiply-adds count 2), N = B·T tokens (T = patches + 1), per step, forward ×3 for forward and
// backward: patch embedding 2·B·patches·(P²·channels)·E, per layer 2·N·(4E² + 2·E·M) for the projections and
// the MLP and 4·T²·D per head for QKᵀ and PV (non-causal: all T² pairs; the backward counts 10·T²·D, as
// the gpt suite's attention does), the head 2·B·E·classes.

#include "bench/bench.h"
#include "bench/step_profile.h"
#include "bench/step_rounds.h"

#include "core/ops.h"
#include "core/random.h"
#include "core/tensor.h"
#include "nn/models/vit.h"
#include "nn/optim.h"

#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace tg::bench {

namespace {

StepWork vit_step_flops(const nn::ViTConfig& c, std::int64_t batch) {
    const double B = static_cast<double>(batch), T = static_cast<double>(c.num_tokens());
    const double patches = static_cast<double>(c.num_patches()), E = static_cast<double>(c.n_embd);
    const double M = static_cast<double>(c.mlp_hidden), L = static_cast<double>(c.n_layer);
    const double H = static_cast<double>(c.n_head), D = E / H;
    const double patch_in = static_cast<double>(c.patch_size * c.patch_size * c.channels);
    const double linear = 3.0 * 2.0 * (B * patches * patch_in * E + B * T * L * (4.0 * E * E + 2.0 * E * M) +
                                       B * E * static_cast<double>(c.num_classes));
    const double attention = 14.0 * T * T * D * B * H * L;
    return {linear, attention};
}

}  // namespace

int run_vit(const Args& args, bool json, int threads) {
    nn::ViTConfig config;
    const std::int64_t batch = args.get_int("batch", 128);
    config.n_embd = args.get_int("dim", config.n_embd);
    config.n_layer = args.get_int("layers", config.n_layer);
    config.n_head = args.get_int("heads", config.n_head);
    config.mlp_hidden = args.get_int("mlp", config.mlp_hidden);
    const std::int64_t steps = args.get_int("steps", 10);
    const bool profile = args.flag("profile");
    const bool with_peak = args.flag("peak");
    const std::int64_t rounds = args.get_int("rounds", 1);
    if (report_unused(args, "vit")) return 2;
    if (batch < 1 || steps < 1 || rounds < 1) {
        std::cerr << "tg-bench vit: --batch, --steps and --rounds must be at least 1\n";
        return 2;
    }
    try {
        config.validate();
    } catch (const tg::Error& e) {
        std::cerr << "tg-bench vit: " << e.what() << "\n";
        return 2;
    }

    manual_seed(1234);
    nn::ViT model(config);
    optim::AdamW opt(model.parameters(), 2e-3, 0.9, 0.999, 1e-8, 0.0);
    // The inputs of a few steps, drawn before any step is timed (bench/step_rounds.h, kInputBatches).
    Generator gen(42);
    std::vector<std::pair<Tensor, Tensor>> inputs;  // (images, labels) of each batch
    for (int i = 0; i < kInputBatches; ++i) {
        inputs.emplace_back(rand({batch, config.channels, config.image_size, config.image_size}, kFloat32, &gen),
                            randint(0, config.num_classes, {batch}, kInt64, &gen));
    }
    std::size_t next_input = 0;
    double last_loss = 0.0;
    auto step = [&] {
        const auto& [images, labels] = inputs[next_input++ % inputs.size()];
        last_loss = training_step(opt, [&] { return model.loss(images, labels); });
    };
    const StepWork work = vit_step_flops(config, batch);
    const double flops = work.total();
    const auto report = [&](const StepRound& round, int index) {
        const Timing& timing = round.timing;
        Record r;
        r.set("suite", "vit");
        r.set("threads", threads);
        r.set("batch", batch);
        r.set("tokens", config.num_tokens());
        r.set("dim", config.n_embd);
        r.set("layers", config.n_layer);
        r.set("parameters", model.num_parameters());
        r.set("step_ms", timing.ms);
        r.set("images_per_s", static_cast<double>(batch) / (timing.ms * 1e-3));
        set_step_fields(r, round, index, steps, flops * 1e-9, last_loss);
        emit(r, json);
    };
    const std::vector<StepRound> measured =
        time_step_rounds(step, threads, static_cast<int>(steps), static_cast<int>(rounds), with_peak, report);
    if (rounds > 1) emit_rounds_summary(measured, "vit", "default", threads, flops * 1e-9, json);
    if (profile) {
        KindWork kinds;
        kinds.gflop["gemm"] = work.linear * 1e-9;
        kinds.gflop["attention"] = work.attention * 1e-9;
        kinds.peak_gflops = measured.back().peak();  // 0 without --peak
        profile_steps(step, steps, "vit", "default", threads, json, kinds);
    }
    return 0;
}

}  // namespace tg::bench
