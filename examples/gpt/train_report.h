#pragma once
// What `tg-gpt train` tells the user while it runs, kept out of the training loop: the opening lines (model,
// data, schedule), a progress line per step (loss, validation loss, tokens/s, ETA), at each evaluation a kept
// line, the attention monitor's summary and, with --json, one JSON line on stdout
//   {"step":..,"train_loss":..,"val_loss":..,"val_bpb":..,"tokens_per_s":..,"lr":..[,"attn_err":{...}]}
// and the closing lines (done, interrupted, stopped), then a short sample of the trained model.

#include "train_run.h"

#include "examples/common/cli.h"

#include <chrono>
#include <cstdint>
#include <optional>

namespace tg_gpt {

class TrainReport {
public:
    explicit TrainReport(const TrainRun& run);

    // The model, the data and the schedule, on stderr.
    void announce() const;
    // The checkpoint is already at the last step.
    void nothing_to_do() const;

    // After each step: its loss, the learning rate it used and its time in seconds; `val` (nats per token and bits
    // per byte) is set when the step was an evaluation, which also prints the kept line, the monitor's summary
    // and the JSON line.
    void step_done(std::int64_t step, double train_loss, double lr, double seconds, std::optional<ValidationResult> val);

    void interrupted(std::int64_t saved_step);  // Ctrl-C: the checkpoint is saved
    void stopped(std::int64_t saved_step);      // --stop-after
    void done();                                // all steps run

    // A few lines sampled from the trained model (stdout, or stderr with --json to keep stdout JSON lines).
    void sample(tg::nn::GPT& model) const;

private:
    using Clock = std::chrono::steady_clock;
    const TrainRun& run_;
    tg::cli::ProgressLine progress_;
    std::int64_t first_step_;           // the first step of this invocation
    std::int64_t tokens_per_step_;
    double train_seconds_ = 0;          // time in training steps (not evaluation or checkpoints) this invocation
    double window_seconds_ = 0;         // ... since the last evaluation
    std::int64_t window_steps_ = 0;
    std::optional<ValidationResult> last_val_;
    Clock::time_point start_ = Clock::now();
};

}  // namespace tg_gpt
