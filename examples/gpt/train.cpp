// tg-gpt train: the training loop of a GPT on a text corpus.
//
//   for step = 1 .. steps:
//       x, y   = loader.next()                         (B, T) windows of the train split, y = x shifted by one
//       loss   = model.loss(x, y)                       mean cross-entropy of the next-token predictions
//       loss.backward()
//       clip_grad_norm_(params, 1.0)                    rescale the gradient if its norm exceeds 1
//       check_finite_step(step, loss, norm)             NaN/Inf loss or gradient: stop before the update
//       optimizer.step(); optimizer.zero_grad()         AdamW
//       scheduler.step()                                linear warm-up, then cosine decay of the learning rate
//       every eval_every steps: validation loss, a JSON log line, checkpoint, loss.png / loss.csv
//
// Ctrl-C sets a flag that the loop checks between steps: the run saves a checkpoint and exits with status 0,
// and `--resume` continues it exactly. A loss or gradient that is not finite stops the run before the update
// (nn/optim/guard.h): the weights and the last checkpoint stay finite, the exit status is 1, and the message
// names the step (and, with --detect-anomaly, the first op whose output went non-finite). Setting up and saving a run live in train_run.cpp, what it prints in
// train_report.cpp.

#include "commands.h"
#include "common.h"
#include "train_report.h"
#include "train_run.h"

#include "nn/data/bits_per_byte.h"

#include <tapegrad/tapegrad.h>

#include "examples/common/cli.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <csignal>
#include <optional>

namespace tg_gpt {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;

// Ctrl-C (SIGINT) and SIGTERM ask for a clean stop: finish the step, save, exit 0. SIGTERM matters under
// mpirun, which answers Ctrl-C by sending SIGTERM to every rank (and SIGKILL after
// `odls_base_sigkill_timeout` seconds; docs/distributed.md). A second signal ends the program at once.
extern "C" void on_stop_signal(int signal_number) {
    g_interrupted = 1;
    std::signal(signal_number, SIG_DFL);
}

void handle_stop_signals(bool on) {
    for (int signal_number : {SIGINT, SIGTERM}) std::signal(signal_number, on ? on_stop_signal : SIG_DFL);
}

struct StepResult {
    double loss;  // the batch's mean cross-entropy before the update
    double lr;    // the learning rate the update used
};

// One optimisation step: the body of the loop above.
StepResult train_step(TrainRun& run, std::int64_t step) {
    const tg::data::TextBatch batch = run.parallel->local_part(run.loader->next());  // this rank's windows
    const tg::Tensor loss = run.model->loss(batch.x, batch.y);
    loss.backward();
    run.parallel->average_gradients();  // the mean over ranks (data_parallel.h)
    const double norm = tg::optim::clip_grad_norm_(run.optimizer->params(), run.args.grad_clip);
    tg::optim::check_finite_step(step, loss.item(), norm);
    const double lr = run.optimizer->lr();
    run.optimizer->step();
    run.optimizer->zero_grad();
    run.scheduler->step();
    return {run.parallel->average(loss.item()), lr};
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int train_loop(TrainRun& run);

int train(TrainArgs requested, const std::function<bool(const std::string&)>& given) {
    const std::unique_ptr<TrainRun> run = start_run(std::move(requested), given);
    try {
        return train_loop(*run);
    } catch (const tg::optim::NonFiniteError& e) {
        handle_stop_signals(false);
        std::fflush(stdout);
        const std::int64_t saved = run->state.step;  // the last checkpoint written (0: none yet)
        std::fprintf(stderr, "\ntg-gpt train: error: %s\n%s\n", e.what(),
                     saved > 0 ? ("the last good checkpoint (step " + std::to_string(saved) + ") is kept in " +
                                  run->args.out).c_str()
                               : "no checkpoint had been saved yet");
        return tg::cli::kExitFailure;
    }
}

int train_loop(TrainRun& run_ref) {
    TrainRun* run = &run_ref;
    tg::autograd::DetectAnomalyGuard anomaly(run->args.detect_anomaly);
    const TrainArgs& args = run->args;
    TrainReport report(*run);
    report.announce();
    if (run->state.step >= args.steps) {
        report.nothing_to_do();
        return 0;
    }

    g_interrupted = 0;
    handle_stop_signals(true);
    const std::int64_t first = run->state.step + 1;
    for (std::int64_t step = first; step <= args.steps; ++step) {
        if (run->parallel->any(g_interrupted)) {  // every rank stops at the same step
            save_run(*run, step - 1);
            report.interrupted(step - 1);
            return 0;
        }
        const auto start = std::chrono::steady_clock::now();
        if (run->monitor) run->monitor->begin_step(step);
        StepResult result{};
        try {
            result = train_step(*run, step);
        } catch (const tg::autograd::AnomalyError& e) {  // --detect-anomaly found the op: say which step too
            throw tg::optim::NonFiniteError("step " + std::to_string(step) + ": " + e.what(), step);
        }
        const double seconds = seconds_since(start);
        run->state.history.push_back({step, result.loss, std::nullopt, std::nullopt});

        const bool evaluate = step % args.eval_every == 0 || step == args.steps;
        std::optional<ValidationResult> val;
        if (evaluate) {
            val = ValidationResult{};  // nats per token (each rank evaluating its share) and bits per byte
            val->loss = run->parallel->validation_loss(*run->model, run->validation.batches);
            val->bpb = tg::data::bits_per_byte(val->loss, run->validation.tokens, run->validation.bytes);
            run->state.history.back().val_loss = val->loss;
            run->state.history.back().val_bpb = val->bpb;
            if (!std::isfinite(val->loss)) {  // finite weights, non-finite predictions: do not save them either
                throw tg::optim::NonFiniteError("step " + std::to_string(step) + ": the validation loss is " +
                                                std::to_string(val->loss) + "; the checkpoint of this step was not saved",
                                                step);
            }
        }
        report.step_done(step, result.loss, result.lr, seconds, val);
        if (evaluate) save_run(*run, step);

        if (args.stop_after > 0 && step - first + 1 == args.stop_after && step < args.steps) {
            if (!evaluate) save_run(*run, step);
            report.stopped(step);
            return 0;
        }
    }
    handle_stop_signals(false);
    report.done();
    if (args.sample_tokens > 0 && run->parallel->is_root()) report.sample(*run->model);
    return 0;
}

}  // namespace

int run_train(TrainArgs requested, const std::function<bool(const std::string&)>& given) {
    return end_job_on_error([&] { return train(std::move(requested), given); });
}

}  // namespace tg_gpt
