#pragma once
// tg-gpt's view of the checkpoint directory. The format and the files (model.safetensors, config.json,
// optimizer.safetensors, state.json, all written atomically) are the library's: nn/models/gpt_checkpoint.h.
// What tg-gpt adds is its own part of them: the run's settings (TrainArgs) as config.json's "training" section
// and the loss history in state.json.
//
// What makes a resume exact: the weights, AdamW's moments and step counts, the learning-rate schedule's step
// (= the step), the global generator (dropout masks) and the data loader's generator (which windows come
// next). With these, the same seed and thread count give bit-identical losses to a run that never stopped.

#include "loss_plot.h"
#include "train_args.h"

#include "nn/data/tokenizer.h"
#include "nn/models/gpt.h"

#include <tapegrad/tapegrad.h>

#include <string>
#include <vector>

namespace tg_gpt {

struct CheckpointConfig {
    tg::nn::GPTConfig model;
    tg::data::Tokenizer tokenizer;
    TrainArgs training;
};

struct TrainingState {
    std::int64_t step = 0;          // optimizer updates done
    tg::GeneratorState global_rng;  // tg::default_generator(): dropout masks
    tg::GeneratorState loader_rng;  // the BatchLoader's generator: the next training windows
    std::vector<LossRecord> history;
};

bool has_checkpoint(const std::string& dir);  // config.json or state.json exists

void save_checkpoint(const std::string& dir, const tg::nn::GPT& model, const tg::optim::Optimizer& optimizer,
                     const CheckpointConfig& config, const TrainingState& state);

// Reads and validates config.json. Throws tg::IOError (missing/unreadable, naming the path) or
// tg::ValueError (malformed, naming the field).
CheckpointConfig load_checkpoint_config(const std::string& dir);

// Before the model of `config` is built: checks that model.safetensors can hold its weights (the parameter
// count from the config alone, times 4 bytes, against the file's size), so an edited config.json
// ("n_layer": 1000000000) is refused without allocating anything. Throws tg::IOError naming both sizes.
void check_weights_fit(const std::string& dir, const tg::nn::GPTConfig& config);

// Loads model.safetensors into `model` (strict: every name and shape must match); returns its step. Weights
// holding NaN or Inf (a diverged run saved by an older version, or a damaged file) are refused with an IOError
// naming the tensor, unless allow_nonfinite.
std::int64_t load_model_weights(const std::string& dir, tg::nn::GPT& model, bool allow_nonfinite = false);

// Loads optimizer.safetensors and state.json for a resume; checks their steps against model_step, and the
// optimizer state like the weights: every parameter's moments present, of the right shape, finite, with
// step counts equal to the step (Optimizer::load_state_dict with require_every_param).
TrainingState load_training_state(const std::string& dir, tg::optim::Optimizer& optimizer, std::int64_t model_step);

}  // namespace tg_gpt
