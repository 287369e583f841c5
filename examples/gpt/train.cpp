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
// and `--resume` continues it exactly. Setting up and saving a run live in train_run.cpp, what it prints in
// train_report.cpp.

#include "commands.h"
#include "common.h"
#include "train_report.h"
#include "train_run.h"

#include <tapegrad/tapegrad.h>

#include <chrono>
#include <csignal>
#include <optional>

namespace tg_gpt {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void on_sigint(int) {
    g_interrupted = 1;
    std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the program at once
}

struct StepResult {
    double loss;  // the batch's mean cross-entropy before the update
    double lr;    // the learning rate the update used
};

// One optimisation step: the body of the loop above.
StepResult train_step(TrainRun& run) {
    const tg::data::TextBatch batch = run.loader->next();
    const tg::Tensor loss = run.model->loss(batch.x, batch.y);
    loss.backward();
    tg::optim::clip_grad_norm_(run.optimizer->params(), run.args.grad_clip);
    const double lr = run.optimizer->lr();
    run.optimizer->step();
    run.optimizer->zero_grad();
    run.scheduler->step();
    return {loss.item(), lr};
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int run_train(TrainArgs requested, const std::function<bool(const std::string&)>& given) {
    const std::unique_ptr<TrainRun> run = start_run(std::move(requested), given);
    const TrainArgs& args = run->args;
    TrainReport report(*run);
    report.announce();
    if (run->state.step >= args.steps) {
        report.nothing_to_do();
        return 0;
    }

    g_interrupted = 0;
    std::signal(SIGINT, on_sigint);
    const std::int64_t first = run->state.step + 1;
    for (std::int64_t step = first; step <= args.steps; ++step) {
        if (g_interrupted) {
            save_run(*run, step - 1);
            report.interrupted(step - 1);
            return 0;
        }
        const auto start = std::chrono::steady_clock::now();
        if (run->monitor) run->monitor->begin_step(step);
        const StepResult result = train_step(*run);
        const double seconds = seconds_since(start);
        run->state.history.push_back({step, result.loss, std::nullopt, std::nullopt});

        const bool evaluate = step % args.eval_every == 0 || step == args.steps;
        std::optional<ValidationResult> val;
        if (evaluate) {
            val = evaluate_validation(*run->model, run->validation);  // nats per token and bits per byte
            run->state.history.back().val_loss = val->loss;
            run->state.history.back().val_bpb = val->bpb;
        }
        report.step_done(step, result.loss, result.lr, seconds, val);
        if (evaluate) save_run(*run, step);

        if (args.stop_after > 0 && step - first + 1 == args.stop_after && step < args.steps) {
            if (!evaluate) save_run(*run, step);
            report.stopped(step);
            return 0;
        }
    }
    std::signal(SIGINT, SIG_DFL);
    report.done();
    if (args.sample_tokens > 0) report.sample(*run->model);
    return 0;
}

}  // namespace tg_gpt
