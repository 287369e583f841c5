#pragma once
// The checkpoint directory of tg-gpt (format fixed in the design's interfaces.md):
//
//   model.safetensors      the weights, F32, under their state_dict names (blocks.0.attn.qkv.weight, ...)
//   config.json            {"format": "tg-gpt checkpoint", "version": 1,
//                           "model": GPTConfig, "tokenizer": Tokenizer, "training": TrainArgs}
//   optimizer.safetensors  AdamW's state_dict (step counts, exp_avg, exp_avg_sq)
//   state.json             {"step": N, "rng": {"global": {seed, offset}, "loader": {seed, offset}},
//                           "history": [[step, train_loss, val_loss or null], ...]}
//
// Every file is written atomically (write to a temporary file, fsync, rename), state.json last. The two
// safetensors files carry the step in their metadata too; loading for a resume checks that all three agree,
// so a checkpoint torn by a crash between two files is refused with a clear message instead of resuming
// from a mix of two steps.
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

// Loads model.safetensors into `model` (strict: every name and shape must match); returns its step.
std::int64_t load_model_weights(const std::string& dir, tg::nn::GPT& model);

// Loads optimizer.safetensors and state.json for a resume; checks their steps against model_step.
TrainingState load_training_state(const std::string& dir, tg::optim::Optimizer& optimizer, std::int64_t model_step);

}  // namespace tg_gpt
