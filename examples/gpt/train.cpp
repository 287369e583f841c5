// tg-gpt train: the training loop of a GPT on a text corpus.
//
//   for step = 1 .. steps:
//       x, y   = loader.next()                         (B, T) windows of the train split, y = x shifted by one
//       loss   = model.loss(x, y)                       mean cross-entropy of the next-token predictions
//       loss.backward()
//       clip_grad_norm_(params, 1.0)                    rescale the gradient if its norm exceeds 1
//       optimizer.step(); optimizer.zero_grad()         AdamW
//       scheduler.step()                                linear warm-up, then cosine decay of the learning rate
//       every eval_every steps: validation loss, a JSON log line, checkpoint, loss.png / loss.csv
//
// Ctrl-C sets a flag that the loop checks between steps: the run saves a checkpoint and exits with status 0,
// and `--resume` continues it exactly.

#include "checkpoint.h"
#include "commands.h"
#include "common.h"
#include "loss_plot.h"
#include "presets.h"

#include "nn/attention_monitor.h"
#include "nn/data/text_batches.h"
#include "nn/models/gpt_sample.h"

#include <tapegrad/tapegrad.h>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <memory>

namespace tg_gpt {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void on_sigint(int) {
    g_interrupted = 1;
    std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the program at once
}

// The data loader's seed: derived from --seed but distinct from it, so the windows and the initial weights
// (drawn from the global generator seeded with --seed) do not come from the same random stream.
std::uint64_t loader_seed(std::uint64_t seed) { return seed ^ 0x9E3779B97F4A7C15ULL; }

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Resolves the settings of this invocation: a fresh run takes the preset's values for what was not given; a
// resumed run takes the checkpoint's and refuses changes to what defines the run.
TrainArgs resolve_args(TrainArgs args, const std::function<bool(const std::string&)>& given,
                       CheckpointConfig* checkpoint) {
    if (args.out.empty()) args.out = "runs/" + args.preset;
    if (!args.resume) {
        if (has_checkpoint(args.out) && !args.force) {
            throw tg::ValueError("tg-gpt train: " + args.out + " already holds a checkpoint: pass --resume to "
                                 "continue it, --force to train afresh over it, or another --out");
        }
        args.apply_preset();
        return args;
    }
    if (!has_checkpoint(args.out)) {
        throw tg::IOError("tg-gpt train --resume: " + args.out + " holds no checkpoint (no config.json)");
    }
    *checkpoint = load_checkpoint_config(args.out);
    const nlohmann::ordered_json now = args.to_json(), then = checkpoint->training.to_json();
    for (const auto& [flag, key] : fixed_on_resume()) {
        if (given(flag) && now[key] != then[key]) {
            throw tg::ValueError("tg-gpt train --resume: " + flag + " " + now[key].dump() + " differs from the "
                                 "checkpoint's " + then[key].dump() + "; a resumed run keeps the data, model and "
                                 "optimisation settings of the run it continues");
        }
    }
    TrainArgs merged = checkpoint->training;
    if (given("--steps")) merged.steps = args.steps;
    if (given("--eval-every")) merged.eval_every = args.eval_every;
    if (given("--threads")) merged.threads = args.threads;
    if (given("--attention")) merged.attention = args.attention;
    if (given("--degree")) merged.degree = args.degree;
    if (given("--grad")) merged.grad = args.grad;
    merged.out = args.out;
    merged.resume = true;
    merged.json = args.json;
    merged.stop_after = args.stop_after;
    merged.sample_tokens = args.sample_tokens;
    if (merged.steps != checkpoint->training.steps) {
        std::fprintf(stderr, "note: --steps %lld differs from the checkpoint's %lld: the learning-rate schedule "
                     "changes from here on, so the run is not the one that was planned\n",
                     static_cast<long long>(merged.steps), static_cast<long long>(checkpoint->training.steps));
    }
    if (merged.threads != checkpoint->training.threads) {
        std::fprintf(stderr, "note: --threads %d differs from the checkpoint's %d: losses stay close but are no "
                     "longer bit-identical to an uninterrupted run\n", merged.threads, checkpoint->training.threads);
    }
    return merged;
}

void check_args(const TrainArgs& a) {
    const auto positive = [](const char* flag, double v) {
        if (!(v > 0)) throw tg::ValueError(std::string("tg-gpt train: ") + flag + " must be > 0, got " + std::to_string(v));
    };
    positive("--steps", static_cast<double>(a.steps));
    positive("--batch", static_cast<double>(a.batch));
    positive("--seq", static_cast<double>(a.seq));
    positive("--eval-every", static_cast<double>(a.eval_every));
    positive("--eval-batches", static_cast<double>(a.eval_batches));
    positive("--lr", a.lr);
    positive("--grad-clip", a.grad_clip);
    if (a.warmup > a.steps) {
        throw tg::ValueError("tg-gpt train: --warmup " + std::to_string(a.warmup) + " exceeds --steps " +
                             std::to_string(a.steps));
    }
    if (a.min_lr > a.lr) throw tg::ValueError("tg-gpt train: --min-lr must not exceed --lr");
    if (a.stop_after < 0) throw tg::ValueError("tg-gpt train: --stop-after must be >= 0");
}

// {"blocks.0.attn": max relative gradient error, ...} from the monitor's latest records.
nlohmann::ordered_json attention_errors_json(const tg::nn::AttentionMonitor& monitor) {
    // Layer order (the backward pass records the last layer first): shorter labels first, so blocks.2 < blocks.10.
    auto records = monitor.latest();
    std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
        return a.label.size() != b.label.size() ? a.label.size() < b.label.size() : a.label < b.label;
    });
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& record : records) j[record.label] = record.errors.max_gradient_error();
    return j;
}

}  // namespace

int run_train(TrainArgs requested, const std::function<bool(const std::string&)>& given) {
    CheckpointConfig checkpoint;
    const TrainArgs args = resolve_args(std::move(requested), given, &checkpoint);
    check_args(args);
    if (args.threads > 0) tg::set_num_threads(args.threads);

    // ---- data -----------------------------------------------------------------------------------------------------
    const tg::data::Tokenizer tokenizer = args.resume ? checkpoint.tokenizer : make_tokenizer(args.tokenizer, args.data);
    tg::data::TokenSplit split = load_tokens(args.data, tokenizer, /*quiet=*/false);
    check_split_fits(split, args.seq, args.data);
    const std::vector<tg::data::TextBatch> val_batches =
        tg::data::evenly_spaced_batches(split.validation, args.batch, args.seq, args.eval_batches);
    auto train_tokens = std::make_shared<const std::vector<std::int64_t>>(std::move(split.train));
    tg::data::BatchLoader loader(tg::data::RandomWindows(train_tokens, args.batch, args.seq, loader_seed(args.seed)));

    // ---- model, optimizer, schedule -------------------------------------------------------------------------
    tg::nn::GPTConfig config = args.resume ? checkpoint.model : model_config(args, tokenizer.vocab_size());
    config.attention = attention_options(args);  // a resumed run may switch the attention
    config.layer_attention.clear();
    tg::manual_seed(args.seed);  // the initial weights, then the dropout masks
    tg::nn::GPT model(config);
    model.train();
    // betas (0.9, 0.95) as GPT-2/3 and nanoGPT train; weight decay 0 by default (--weight-decay).
    tg::optim::AdamW optimizer(model.parameters(), args.lr, 0.9, 0.95, 1e-8, args.weight_decay);

    TrainingState state;
    if (args.resume) {
        const std::int64_t model_step = load_model_weights(args.out, model);
        state = load_training_state(args.out, optimizer, model_step);
        tg::default_generator().set_state(state.global_rng);
        loader.set_state(state.loader_rng);
    }
    // Update number s + 1 uses lr(s + 1): the first update already moves (WarmupCosine(0) would be 0).
    const tg::optim::WarmupCosine schedule{args.lr, args.warmup, args.steps, args.min_lr};
    tg::optim::LRScheduler scheduler(optimizer, [schedule](std::int64_t s) { return schedule(s + 1); }, state.step);

    std::shared_ptr<tg::nn::AttentionMonitor> monitor;
    if (config.attention.mode != tg::nn::functional::AttentionMode::Exact) {
        monitor = std::make_shared<tg::nn::AttentionMonitor>(args.eval_every);
        model.set_attention_monitor(monitor);
    }

    const CheckpointConfig to_save{config, tokenizer, args};
    std::fprintf(stderr, "model: %s, %lld parameters; attention %s%s\n", model.extra_repr().c_str(),
                 static_cast<long long>(model.num_parameters()), args.attention.c_str(),
                 config.attention.mode == tg::nn::functional::AttentionMode::Exact
                     ? ""
                     : (" (degree " + std::to_string(args.degree) + ", " + args.grad + " gradient)").c_str());
    std::fprintf(stderr, "train: %lld steps of %lld x %lld tokens, lr %g (warm-up %lld, cosine to %g), seed %llu%s -> %s\n",
                 static_cast<long long>(args.steps), static_cast<long long>(args.batch), static_cast<long long>(args.seq),
                 args.lr, static_cast<long long>(args.warmup), args.min_lr, static_cast<unsigned long long>(args.seed),
                 args.resume ? (", resuming at step " + std::to_string(state.step)).c_str() : "", args.out.c_str());
    if (state.step >= args.steps) {
        std::fprintf(stderr, "train: the checkpoint is already at step %lld of %lld; nothing to do (give a larger "
                     "--steps to train further)\n", static_cast<long long>(state.step), static_cast<long long>(args.steps));
        return 0;
    }

    const auto save = [&](std::int64_t step) {
        state.step = step;
        state.global_rng = tg::default_generator().get_state();
        state.loader_rng = loader.state();
        save_checkpoint(args.out, model, optimizer, to_save, state);
        write_loss_files(args.out, state.history);
    };

    // ---- the loop ---------------------------------------------------------------------------------------------------
    const bool tty = ::isatty(STDERR_FILENO);
    const std::int64_t tokens_per_step = args.batch * args.seq;
    g_interrupted = 0;
    std::signal(SIGINT, on_sigint);
    const std::int64_t first = state.step + 1;
    double train_seconds = 0;           // time in training steps (not evaluation or checkpoints) this invocation
    double window_seconds = 0;          // ... since the last evaluation
    std::int64_t window_steps = 0;
    std::optional<double> last_val;
    const auto run_start = Clock::now();

    for (std::int64_t step = first; step <= args.steps; ++step) {
        if (g_interrupted) {
            save(step - 1);
            if (tty) std::fputc('\n', stderr);
            std::fprintf(stderr, "interrupted: checkpoint of step %lld saved in %s; continue with: tg-gpt train --out %s "
                         "--resume\n", static_cast<long long>(step - 1), args.out.c_str(), args.out.c_str());
            return 0;
        }
        const auto t0 = Clock::now();
        if (monitor) monitor->begin_step(step);
        const tg::data::TextBatch batch = loader.next();
        const tg::Tensor loss = model.loss(batch.x, batch.y);
        loss.backward();
        tg::optim::clip_grad_norm_(optimizer.params(), args.grad_clip);
        const double lr = optimizer.lr();  // this update's learning rate
        optimizer.step();
        optimizer.zero_grad();
        scheduler.step();
        const double train_loss = loss.item();
        const double dt = seconds_since(t0);
        train_seconds += dt;
        window_seconds += dt;
        ++window_steps;
        state.history.push_back({step, train_loss, std::nullopt});

        const bool evaluate = step % args.eval_every == 0 || step == args.steps;
        if (evaluate) {
            last_val = validation_loss(model, val_batches);
            state.history.back().val_loss = last_val;
        }
        const double tokens_per_s = static_cast<double>(window_steps * tokens_per_step) / window_seconds;
        const double eta = train_seconds / static_cast<double>(step - first + 1) * static_cast<double>(args.steps - step);
        char line[256];
        std::snprintf(line, sizeof(line), "step %lld/%lld | loss %.4f | val %s | %.0f tok/s | ETA %s",
                      static_cast<long long>(step), static_cast<long long>(args.steps), train_loss,
                      last_val ? std::to_string(*last_val).substr(0, 6).c_str() : "-", tokens_per_s,
                      format_duration(eta).c_str());
        if (tty) std::fprintf(stderr, "\r%s   ", line);
        if (evaluate) {
            if (!tty) std::fprintf(stderr, "%s\n", line);
            if (monitor) std::fprintf(stderr, "%s%s\n", tty ? "\n" : "", monitor->summary().c_str());
            if (args.json) {
                nlohmann::ordered_json j;
                j["step"] = step;
                j["train_loss"] = train_loss;
                j["val_loss"] = *last_val;
                j["tokens_per_s"] = std::round(tokens_per_s * 10) / 10;
                j["lr"] = lr;
                if (monitor) j["attn_err"] = attention_errors_json(*monitor);
                std::printf("%s\n", j.dump().c_str());
                std::fflush(stdout);
            }
            window_seconds = 0;
            window_steps = 0;
            save(step);
        }
        if (args.stop_after > 0 && step - first + 1 == args.stop_after && step < args.steps) {
            if (!evaluate) save(step);
            if (tty) std::fputc('\n', stderr);
            std::fprintf(stderr, "stopped after %lld steps (--stop-after): checkpoint of step %lld in %s\n",
                         static_cast<long long>(args.stop_after), static_cast<long long>(step), args.out.c_str());
            return 0;
        }
    }
    std::signal(SIGINT, SIG_DFL);
    if (tty) std::fputc('\n', stderr);
    std::fprintf(stderr, "done: %lld steps in %s (%.0f tokens/s in training steps); final val loss %.4f; "
                 "checkpoint and loss.png/loss.csv in %s\n", static_cast<long long>(args.steps - first + 1),
                 format_duration(seconds_since(run_start)).c_str(),
                 static_cast<double>((args.steps - first + 1) * tokens_per_step) / train_seconds,
                 last_val.value_or(NAN), args.out.c_str());

    // ---- a few sampled lines ------------------------------------------------------------------------------------
    if (args.sample_tokens > 0) {
        FILE* out = args.json ? stderr : stdout;  // keep stdout pure JSON lines with --json
        std::fprintf(out, "---- sample (temperature 0.8, seed %llu) ----\n", static_cast<unsigned long long>(args.seed));
        tg::data::TokenStreamDecoder stream(tokenizer);
        tg::nn::SamplingOptions options;
        options.temperature = 0.8;
        options.seed = args.seed;
        tg::nn::generate(model, tokenizer.encode("\n"), args.sample_tokens, options, [&](std::int64_t id) {
            std::fputs(stream.push(id).c_str(), out);
            std::fflush(out);
        });
        std::fprintf(out, "%s\n", stream.finish().c_str());
    }
    return 0;
}

}  // namespace tg_gpt
