// The `gpt` suite: one GPT training step (forward, backward, AdamW update) on random tokens.
//
//   tg-bench gpt --config S|M|L|gpt2 [--attention exact|approx_backward|approx] [--degree G] [--steps K] [--threads P]
//                [--grad consistent|plugin] [--window W --sinks S] [--batch B] [--seq T] [--vocab V] [--profile]
//                [--peak] [--rounds R]
//
//   config S:    vocab 256, T = 256, 4 layers, 4 heads, C = 128, batch 8
//   config M:    vocab 256, T = 512, 6 layers, 6 heads, C = 384, batch 4
//   config L:    vocab 256, T = 4096, 4 layers, 4 heads, C = 64 (head dim 16), batch 4: tg-gpt's `long` preset;
//                --seq up to 65536 (the position table grows to it)
//   config gpt2: GPT-2 small (124M parameters): vocab 50257, 12 layers, 12 heads, C = 768, position table 1024;
//                batch 4 and T = 64 by default (llm.c's train_gpt2.c CPU setting), --batch/--seq to change them;
//                --vocab 50304 times the vocabulary padded to a multiple of 64, as llm.c pads it
//
// The model is nn::GPT (nn/models/gpt.h) without dropout; AdamW(lr 3e-4, betas 0.9/0.999, eps 1e-8, no weight
// decay). Each step takes the next of kInputBatches batches of random ids and targets drawn before timing
// (bench/step_rounds.h), then zero_grad, loss, backward, step. Two warm-up steps
// (they also fill the allocator's cache and the optimizer state), then K timed steps; step_ms is the median.
//
// Output (interfaces.md): {"suite":"gpt","config":"S","attention":"exact","threads":2,"step_ms":..,
// "tokens_per_s":..,"peak_rss_bytes":..} and extra fields:
//   cpu_ms            median process CPU time per step / threads (on a busy machine: what the step costs while
//                     it runs; equals step_ms on an idle one when both threads are busy)
//   gflop             floating-point work of one step, counted as below; gflops / gflops_cpu its rate per
//                     wall-clock / CPU time
//   framework_peak_bytes  the most bytes live tensors held at once (memory_stats), for comparison with RSS
//   loss              the loss of the last step (a sanity check: about ln 256 = 5.55 on random tokens)
// peak_rss_bytes is getrusage's ru_maxrss: the process maximum, so run one config per process.
// --profile: after the timed steps, K more steps with the op profiler on (core/profiler.h), printed per op
// kind and per op (bench/step_profile.h); the timed steps above are not affected.
// --peak: the FMA peak on `threads` threads is measured right before and right after the timed steps, and the
// line gets "round", "peak_gflops" (the larger), "peak_gflops_before", "peak_gflops_after" and
// "peak_fraction" = gflops / peak_gflops (bench/step_rounds.h says why in the same process). --rounds R: R such
// measurements in one process, one line each, then a "gpt_rounds" line with the median, min and max.
//
// FLOP count (multiply-adds count 2), N = B·T tokens, per step:
//   linear layers + LM head: 2·N·(L·12·C² + C·V) forward, twice that backward (dX and dW)
//   attention, per layer and head: causal pairs P = T(T+1)/2, forward QKᵀ and PV = 4·P·D, backward 10·P·D
//   (recomputed scores, dV, dP, dQ, dK) — the same 14·P·D as the `attention` suite
// LayerNorm, GELU, softmax, cross-entropy and AdamW are left out (a few percent of the GEMM work). The count
// is exact attention's whatever --attention says, so gflops compares the modes by time for the same model.
// Config S is 12.0 GFLOP, M 148.6 and L 141.2 GFLOP per step (L: 85% of it exact attention): at this machine's
// measured 231 GFLOP/s FMA peak (tg-bench peak, 2 threads) no step can take less than 52 ms (S), 643 ms (M) or
// 611 ms (L).

#include "bench/bench.h"
#include "bench/step_profile.h"
#include "bench/step_rounds.h"

#include "core/ops.h"
#include "core/random.h"
#include "core/tensor.h"
#include "nn/models/gpt.h"
#include "nn/optim.h"

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

namespace tg::bench {

namespace {

struct GptBenchConfig {
    std::int64_t vocab, T, layers, heads, C, batch;
};

StepWork step_flops(const GptBenchConfig& c) {
    const double N = static_cast<double>(c.batch * c.T), C = static_cast<double>(c.C);
    const double linear = 3.0 * 2.0 * N * (static_cast<double>(c.layers) * 12.0 * C * C + C * static_cast<double>(c.vocab));
    const double pairs = 0.5 * static_cast<double>(c.T) * static_cast<double>(c.T + 1);
    const double D = C / static_cast<double>(c.heads);
    const double attention = 14.0 * pairs * D * static_cast<double>(c.batch * c.heads * c.layers);
    return {linear, attention};
}

}  // namespace

int run_gpt(const Args& args, bool json, int threads) {
    namespace F = tg::nn::functional;
    const std::string config_name = args.get("config", "S");
    const std::string attention = args.get("attention", "exact");
    const std::int64_t degree = args.get_int("degree", 2);
    const std::int64_t steps = args.get_int("steps", config_name == "gpt2" ? 3 : 10);
    const std::int64_t batch = args.get_int("batch", 0), seq = args.get_int("seq", 0);  // 0: the config's
    const std::int64_t vocab = args.get_int("vocab", 0);
    const std::string grad = args.get("grad", "consistent");
    const std::int64_t window = args.get_int("window", 0), sinks = args.get_int("sinks", 0);
    const bool profile = args.flag("profile");
    const bool with_peak = args.flag("peak");
    const std::int64_t rounds = args.get_int("rounds", 1);
    if (report_unused(args, "gpt")) return 2;

    GptBenchConfig c{};
    if (config_name == "S") {
        c = {256, 256, 4, 4, 128, 8};
    } else if (config_name == "M") {
        c = {256, 512, 6, 6, 384, 4};
    } else if (config_name == "L") {
        c = {256, 4096, 4, 4, 64, 4};
    } else if (config_name == "gpt2") {
        c = {50257, 64, 12, 12, 768, 4};
    } else {
        std::cerr << "tg-bench gpt: --config must be S, M, L or gpt2, got '" << config_name << "'\n";
        return 2;
    }
    // The position table: GPT-2's 1024 rows; S and M train at their T; L's table grows with --seq (up to 65536)
    // so its step can be timed at longer contexts (docs/approximate-attention.md's step-time table).
    const std::int64_t table_T = config_name == "gpt2" ? 1024 : c.T;
    const std::int64_t max_T = config_name == "L" ? 65536 : table_T;
    if (batch < 0 || seq < 0 || seq > max_T) {
        std::cerr << "tg-bench gpt: --batch must be >= 1 and --seq in [1, " << max_T << "]\n";
        return 2;
    }
    if (vocab < 0) {
        std::cerr << "tg-bench gpt: --vocab must be >= 1\n";
        return 2;
    }
    if (vocab > 0) c.vocab = vocab;
    if (batch > 0) c.batch = batch;
    if (seq > 0) c.T = seq;
    if (steps < 1) {
        std::cerr << "tg-bench gpt: --steps must be at least 1, got " << steps << "\n";
        return 2;
    }
    if (rounds < 1) {
        std::cerr << "tg-bench gpt: --rounds must be at least 1, got " << rounds << "\n";
        return 2;
    }
    F::AttentionOptions options;
    options.causal = true;
    options.degree = static_cast<int>(degree);
    options.window = window;
    options.sinks = sinks;
    try {
        options.mode = F::attention_mode_from_string(attention);
        options.gradient = F::attention_gradient_from_string(grad);
    } catch (const tg::Error& e) {
        std::cerr << "tg-bench gpt: " << e.what() << "\n";
        return 2;
    }
    try {
        F::check_attention_window("tg-bench gpt", options, c.T);
    } catch (const tg::Error& e) {
        std::cerr << e.what() << "\n";
        return 2;
    }
    if (options.mode == F::AttentionMode::Auto) {
        std::cerr << "tg-bench gpt: --attention must be exact, approx_backward or approx\n";
        return 2;
    }

    nn::GPTConfig config;
    config.vocab_size = c.vocab;
    config.block_size = std::max(c.T, table_T);
    config.n_layer = c.layers;
    config.n_head = c.heads;
    config.n_embd = c.C;
    config.dropout = 0.0;
    config.attention = options;
    manual_seed(1234);
    nn::GPT model(config);
    optim::AdamW opt(model.parameters(), 3e-4, 0.9, 0.999, 1e-8, 0.0);

    // The inputs of a few steps, drawn before any step is timed: a step measures the model, not the random
    // number generator (bench/step_rounds.h, kInputBatches).
    Generator gen(42);
    std::vector<std::pair<Tensor, Tensor>> inputs;  // (tokens, targets) of each batch
    for (int i = 0; i < kInputBatches; ++i) {
        inputs.emplace_back(randint(0, c.vocab, {c.batch, c.T}, kInt64, &gen),
                            randint(0, c.vocab, {c.batch, c.T}, kInt64, &gen));
    }
    std::size_t next_input = 0;
    double last_loss = 0.0;
    auto step = [&] {
        const auto& [idx, targets] = inputs[next_input++ % inputs.size()];
        last_loss = training_step(opt, [&] { return model.loss(idx, targets); });
    };

    // Per round: two warm-up steps, then exactly `steps` timed ones (between two peaks with --peak).
    const StepWork work = step_flops(c);
    const double flops = work.total();
    const auto report = [&](const StepRound& round, int index) {
        const double step_ms = round.timing.ms;
        Record r;
        r.set("suite", "gpt");
        r.set("config", config_name);
        r.set("attention", attention);
        if (options.mode != F::AttentionMode::Exact) {
            r.set("degree", degree);
            r.set("grad", grad);
            r.set("window", window);
            r.set("sinks", sinks);
        }
        r.set("threads", threads);
        r.set("vocab", c.vocab);
        r.set("batch", c.batch);
        r.set("seq", c.T);
        r.set("parameters", model.num_parameters());
        r.set("step_ms", step_ms);
        r.set("tokens_per_s", static_cast<double>(c.batch * c.T) / (step_ms * 1e-3));
        set_step_fields(r, round, index, steps, flops * 1e-9, last_loss);
        emit(r, json);
    };
    const std::vector<StepRound> measured =
        time_step_rounds(step, threads, static_cast<int>(steps), static_cast<int>(rounds), with_peak, report);
    if (rounds > 1) emit_rounds_summary(measured, "gpt", config_name, threads, flops * 1e-9, json);
    if (profile) {
        KindWork kinds;
        kinds.gflop["gemm"] = work.linear * 1e-9;
        if (options.mode == F::AttentionMode::Exact) kinds.gflop["attention"] = work.attention * 1e-9;
        kinds.peak_gflops = measured.back().peak();  // 0 without --peak
        profile_steps(step, steps, "gpt", config_name, threads, json, kinds);
    }
    return 0;
}

}  // namespace tg::bench
