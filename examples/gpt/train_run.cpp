#include "train_run.h"

#include "common.h"
#include "hf.h"
#include "data_source.h"
#include "loss_plot.h"

#include "examples/common/cli.h"
#include "examples/common/memory.h"
#include "nn/models/model_size.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

namespace tg_gpt {

namespace {

// The data loader's seed: derived from --seed but distinct from it, so the windows and the initial weights
// (drawn from the global generator seeded with --seed) do not come from the same random stream.
std::uint64_t loader_seed(std::uint64_t seed) { return seed ^ 0x9E3779B97F4A7C15ULL; }

// Resolves the settings of this invocation: a fresh run takes the preset's values for what was not given; a
// resumed run takes the checkpoint's and refuses changes to what defines the run.
TrainArgs resolve_args(TrainArgs args, const std::function<bool(const std::string&)>& given,
                       CheckpointConfig* checkpoint) {
    if (!args.from_hf.empty() && !given("--preset")) args.preset = "finetune";
    if (!args.from_hf.empty() && given("--tokenizer")) {
        throw tg::ValueError("tg-gpt train: --tokenizer cannot be combined with --from-hf, which brings its own");
    }
    if (args.out.empty()) args.out = "runs/" + args.preset;
    if (args.resume && args.force) {
        throw tg::ValueError("tg-gpt train: --resume and --force contradict each other (continue the checkpoint, "
                             "or train afresh over it): give one");
    }
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
    if (given("--window")) merged.window = args.window;
    if (given("--sinks")) merged.sinks = args.sinks;
    if (given("--auto-window")) merged.auto_window = args.auto_window;
    merged.out = args.out;
    merged.resume = true;
    merged.json = args.json;
    merged.stop_after = args.stop_after;
    merged.sample_tokens = args.sample_tokens;
    merged.detect_anomaly = args.detect_anomaly;
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
    if (a.stop_after < 0) throw tg::ValueError("tg-gpt train: --stop-after must be >= 1");
}

// The run's memory, estimated before the data is read and the model built (examples/common/memory.h): the
// weights with their gradient and AdamW's two moments, one step's activations, and the validation batches.
void check_memory(const TrainArgs& a, const tg::nn::GPTConfig& config) {
    using tg::cli::saturating_product;
    const auto params = static_cast<std::uint64_t>(tg::nn::gpt_parameter_count(config));
    const auto batch = static_cast<std::uint64_t>(a.batch), seq = static_cast<std::uint64_t>(a.seq);
    tg::cli::require_memory("tg-gpt train",
                            {{"weights, gradients and AdamW moments", saturating_product({params, 16})},
                             {"activations of one step", tg::nn::gpt_activation_bytes(config, a.batch, a.seq, true)},
                             {"validation batches", saturating_product({static_cast<std::uint64_t>(a.eval_batches),
                                                                        batch, seq, 16})}},
                            "use a smaller --batch, --seq, --eval-batches or preset");
}

}  // namespace

std::unique_ptr<TrainRun> start_run(TrainArgs requested, const std::function<bool(const std::string&)>& given) {
    auto run = std::make_unique<TrainRun>();
    CheckpointConfig checkpoint;
    run->args = resolve_args(std::move(requested), given, &checkpoint);
    const TrainArgs& args = run->args;
    check_args(args);
    run->parallel = std::make_unique<DataParallel>(args.batch);
    run->parallel->silence_other_ranks();  // only rank 0 prints
    run->parallel->set_threads(args.threads);
    tg::cli::check_writable_folder("tg-gpt train", args.out);  // now, not at the first checkpoint
    if (args.resume) run->parallel->check_resume(args.out);

    // A fine-tuning run starts from a Hugging Face folder: its model config and tokenizer (weights below).
    const bool from_hf = !args.resume && !args.from_hf.empty();
    const HFStart hf = from_hf ? read_hf_folder(args.from_hf) : HFStart{};

    // ---- data -----------------------------------------------------------------------------------------------------
    run->tokenizer = args.resume ? checkpoint.tokenizer
                     : from_hf   ? hf.tokenizer
                                 : fresh_tokenizer(args);
    // The model's config before the data: its sizes decide whether the run fits the machine at all.
    run->config = args.resume ? checkpoint.model : from_hf ? hf.config : model_config(args, run->tokenizer.vocab_size());
    if (from_hf) {
        run->config.dropout = args.dropout;
        if (args.seq > run->config.block_size) {
            throw tg::ValueError("tg-gpt train: --seq " + std::to_string(args.seq) + " exceeds the block size " +
                                 std::to_string(run->config.block_size) + " of " + args.from_hf);
        }
    }
    check_memory(args, run->config);
    if (args.resume) check_weights_fit(args.out, run->config);
    const RunData data = load_run_data(args.data, run->tokenizer, /*quiet=*/false);  // text, or mapped shards
    check_data_fits(data, args.seq, args.data);
    run->validation = make_validation_set(data.validation, run->tokenizer, args.batch, args.seq, args.eval_batches);
    run->loader = std::make_unique<tg::data::BatchLoader>(
        tg::data::RandomWindows(data.train, args.batch, args.seq, loader_seed(args.seed)));

    // ---- model, optimizer, schedule -------------------------------------------------------------------------
    run->config.attention = attention_options(args);  // a resumed run may switch the attention
    run->config.layer_attention.clear();
    tg::manual_seed(args.seed);  // the initial weights, then the dropout masks
    run->model = std::make_unique<tg::nn::GPT>(run->config);
    if (from_hf) tg::nn::load_gpt2_hf_weights(args.from_hf, *run->model);
    run->model->train();
    // betas (0.9, 0.95) as GPT-2/3 and nanoGPT train; weight decay 0 by default (--weight-decay).
    run->optimizer = std::make_unique<tg::optim::AdamW>(run->model->parameters(), args.lr, 0.9, 0.95, 1e-8,
                                                        args.weight_decay);
    if (args.resume) {
        const std::int64_t model_step = load_model_weights(args.out, *run->model);
        run->state = load_training_state(args.out, *run->optimizer, model_step);
        tg::default_generator().set_state(run->state.global_rng);
        run->loader->set_state(run->state.loader_rng);
    }
    run->parallel->attach(*run->model, run->optimizer->params());  // same weights everywhere, gradient buckets
    // Update number s + 1 uses lr(s + 1): the first update already moves (WarmupCosine(0) would be 0).
    const tg::optim::WarmupCosine schedule{args.lr, args.warmup, args.steps, args.min_lr};
    run->scheduler = std::make_unique<tg::optim::LRScheduler>(
        *run->optimizer, [schedule](std::int64_t s) { return schedule(s + 1); }, run->state.step);

    if (run->config.attention.mode != tg::nn::functional::AttentionMode::Exact) {
        run->monitor = std::make_shared<tg::nn::AttentionMonitor>(args.eval_every);
        run->model->set_attention_monitor(run->monitor);
    }
    return run;
}

void save_run(TrainRun& run, std::int64_t step) {
    if (!run.parallel->is_root()) return;  // the ranks hold the same state: rank 0 writes it
    run.state.step = step;
    run.state.global_rng = tg::default_generator().get_state();
    run.state.loader_rng = run.loader->state();
    save_checkpoint(run.args.out, *run.model, *run.optimizer, CheckpointConfig{run.config, run.tokenizer, run.args},
                    run.state);
    write_loss_files(run.args.out, run.state.history);
    run.parallel->save_ranks(run.args.out);
}

}  // namespace tg_gpt
