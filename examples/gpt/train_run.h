#pragma once
// Everything one `tg-gpt train` run holds, and how it is set up and saved: the settings (a fresh run's from the
// command line and the preset, a resumed run's from the checkpoint), the data, the model, the optimizer and
// its schedule, and the state a checkpoint records. train.cpp runs the loop over it.

#include "checkpoint.h"
#include "data_parallel.h"
#include "common.h"
#include "train_args.h"

#include "nn/attention_monitor.h"
#include "nn/data/text_batches.h"
#include "nn/data/tokenizer.h"
#include "nn/models/gpt.h"

#include <tapegrad/tapegrad.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tg_gpt {

struct TrainRun {
    TrainArgs args;                                  // the settings in force (resolved and checked)
    tg::data::Tokenizer tokenizer;
    ValidationSet validation;                        // the same validation windows at every evaluation
    std::unique_ptr<tg::data::BatchLoader> loader;   // random training windows, prepared on a thread
    tg::nn::GPTConfig config;
    std::unique_ptr<tg::nn::GPT> model;
    std::unique_ptr<tg::optim::AdamW> optimizer;
    std::unique_ptr<tg::optim::LRScheduler> scheduler;  // warm-up then cosine decay
    std::shared_ptr<tg::nn::AttentionMonitor> monitor;   // approximate attention only: its gradient error
    TrainingState state;                                 // step, generators, loss history
    std::unique_ptr<DataParallel> parallel;              // the ranks of mpirun (one without it)
};

// Sets up a run: resolves the settings (`given(flag)`: was the flag on the command line), checks them, caps the
// threads, loads the data, builds the model and optimizer, and on --resume restores the checkpoint in
// args.out. Throws tg::Error on bad settings, data or checkpoints.
std::unique_ptr<TrainRun> start_run(TrainArgs requested, const std::function<bool(const std::string&)>& given);

// Writes the checkpoint of `step` and loss.png / loss.csv into args.out.
void save_run(TrainRun& run, std::int64_t step);

}  // namespace tg_gpt
