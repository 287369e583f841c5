#include "train_report.h"

#include "nn/models/gpt_sample.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace tg_gpt {

namespace {

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

TrainReport::TrainReport(const TrainRun& run)
    : run_(run), first_step_(run.state.step + 1), tokens_per_step_(run.args.batch * run.args.seq) {}

void TrainReport::announce() const {
    const TrainArgs& args = run_.args;
    const bool exact = run_.config.attention.mode == tg::nn::functional::AttentionMode::Exact;
    const std::string attention_detail =
        exact ? "" : " (degree " + std::to_string(args.degree) + ", " + args.grad + " gradient" +
                         (args.auto_window ? ", window chosen by auto" : "") +
                         (args.window || args.sinks ? ", window " + std::to_string(args.window) + ", sinks " +
                                                          std::to_string(args.sinks)
                                                    : std::string()) +
                         ")";
    std::fprintf(stderr, "model: %s, %lld parameters; attention %s%s\n", run_.model->extra_repr().c_str(),
                 static_cast<long long>(run_.model->num_parameters()), args.attention.c_str(),
                 attention_detail.c_str());
    const std::string resuming = args.resume ? ", resuming at step " + std::to_string(run_.state.step) : "";
    std::fprintf(stderr, "train: %lld steps of %lld x %lld tokens, lr %g (warm-up %lld, cosine to %g), seed %llu%s -> %s\n",
                 static_cast<long long>(args.steps), static_cast<long long>(args.batch), static_cast<long long>(args.seq),
                 args.lr, static_cast<long long>(args.warmup), args.min_lr, static_cast<unsigned long long>(args.seed),
                 resuming.c_str(), args.out.c_str());
}

void TrainReport::nothing_to_do() const {
    std::fprintf(stderr, "train: the checkpoint is already at step %lld of %lld; nothing to do (give a larger "
                 "--steps to train further)\n", static_cast<long long>(run_.state.step),
                 static_cast<long long>(run_.args.steps));
}

void TrainReport::step_done(std::int64_t step, double train_loss, double lr, double seconds,
                            std::optional<ValidationResult> val) {
    train_seconds_ += seconds;
    window_seconds_ += seconds;
    ++window_steps_;
    if (val) last_val_ = val;

    const double tokens_per_s = static_cast<double>(window_steps_ * tokens_per_step_) / window_seconds_;
    const double eta = train_seconds_ / static_cast<double>(step - first_step_ + 1) *
                       static_cast<double>(run_.args.steps - step);
    char val_text[64] = "-";
    if (last_val_) std::snprintf(val_text, sizeof(val_text), "%.4f (%.3f bpb)", last_val_->loss, last_val_->bpb);
    char line[256];
    std::snprintf(line, sizeof(line), "step %lld/%lld | loss %.4f | val %s | %.0f tok/s | ETA %s",
                  static_cast<long long>(step), static_cast<long long>(run_.args.steps), train_loss, val_text,
                  tokens_per_s, tg::cli::format_duration(eta).c_str());
    if (!val) {
        progress_.show(line);
        return;
    }
    progress_.keep(line);
    if (run_.monitor) std::fprintf(stderr, "%s\n", run_.monitor->summary().c_str());
    const DataParallel::CommunicationStats comm = run_.parallel->take_communication_stats();
    if (run_.parallel->active()) {
        std::fprintf(stderr, "comm: %.1f ms/step in allreduce, %.1f ms of it not hidden by backward (%.1f%% of "
                     "the step)\n", comm.allreduce_ms, comm.exposed_ms,
                     100 * comm.exposed_ms * 1e-3 * static_cast<double>(window_steps_) / window_seconds_);
    }
    if (run_.args.json) {
        nlohmann::ordered_json j;
        j["step"] = step;
        j["train_loss"] = train_loss;
        j["val_loss"] = val->loss;
        j["val_bpb"] = val->bpb;
        j["tokens_per_s"] = std::round(tokens_per_s * 10) / 10;
        j["lr"] = lr;
        if (run_.monitor) j["attn_err"] = attention_errors_json(*run_.monitor);
        if (run_.parallel->active()) {
            j["comm_ms"] = comm.allreduce_ms;          // per step, in allreduce
            j["comm_exposed_ms"] = comm.exposed_ms;    // per step, not hidden by backward
        }
        std::printf("%s\n", j.dump().c_str());
        std::fflush(stdout);
    }
    window_seconds_ = 0;
    window_steps_ = 0;
}

void TrainReport::interrupted(std::int64_t saved_step) {
    progress_.break_line();
    std::fprintf(stderr, "interrupted: checkpoint of step %lld saved in %s; continue with: tg-gpt train --out %s "
                 "--resume\n", static_cast<long long>(saved_step), run_.args.out.c_str(), run_.args.out.c_str());
}

void TrainReport::stopped(std::int64_t saved_step) {
    progress_.break_line();
    std::fprintf(stderr, "stopped after %lld steps (--stop-after): checkpoint of step %lld in %s\n",
                 static_cast<long long>(run_.args.stop_after), static_cast<long long>(saved_step),
                 run_.args.out.c_str());
}

void TrainReport::done() {
    progress_.break_line();
    const std::int64_t steps_run = run_.args.steps - first_step_ + 1;
    std::fprintf(stderr, "done: %lld steps in %s (%.0f tokens/s in training steps); final val loss %.4f (%.4f bits "
                 "per byte); checkpoint and loss.png/loss.csv in %s\n", static_cast<long long>(steps_run),
                 tg::cli::format_duration(std::chrono::duration<double>(Clock::now() - start_).count()).c_str(),
                 static_cast<double>(steps_run * tokens_per_step_) / train_seconds_,
                 last_val_ ? last_val_->loss : NAN, last_val_ ? last_val_->bpb : NAN, run_.args.out.c_str());
}

void TrainReport::sample(tg::nn::GPT& model) const {
    FILE* out = run_.args.json ? stderr : stdout;  // keep stdout pure JSON lines with --json
    std::fprintf(out, "---- sample (temperature 0.8, seed %llu) ----\n", static_cast<unsigned long long>(run_.args.seed));
    tg::data::TokenStreamDecoder stream(run_.tokenizer);
    tg::nn::SamplingOptions options;
    options.temperature = 0.8;
    options.seed = run_.args.seed;
    tg::nn::generate(model, run_.tokenizer.encode("\n"), run_.args.sample_tokens, options, [&](std::int64_t id) {
        std::fputs(stream.push(id).c_str(), out);
        std::fflush(out);
    });
    std::fprintf(out, "%s\n", stream.finish().c_str());
}

}  // namespace tg_gpt
