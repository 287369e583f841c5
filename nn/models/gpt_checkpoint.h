#pragma once
// The checkpoint folder of a GPT (the format of tg-gpt, fixed in the design's interfaces.md), readable and
// writable by any program: tg-gpt (examples/gpt/checkpoint.h adds its own training settings and loss history)
// and the C API (capi/) both use these functions.
//
//   model.safetensors      the weights, F32, under their state_dict names (blocks.0.attn.qkv.weight, ...)
//   config.json            {"format": "tg-gpt checkpoint", "version": 1,
//                           "model": GPTConfig, "tokenizer": Tokenizer, "training": {trainer's settings}}
//   tokenizer.json         a BPE vocabulary in Hugging Face's format; config.json then says "tokenizer":
//                           "tokenizer.json". Byte and character tokenizers are inline in config.json
//                           ({"kind": "byte", ...}), and so is the BPE of checkpoints written before this file
//                           existed: both forms load.
//   optimizer.safetensors  the optimizer's state_dict (step counts, exp_avg, exp_avg_sq)
//   state.json             {"step": N, "rng": {"global": {seed, offset}, "loader": {seed, offset}},
//                           "history": [trainer's loss records]}
//
// Every file is written atomically (write to a temporary file, fsync, rename), state.json last. The two
// safetensors files carry the step in their metadata too; loading for a resume checks that all three agree,
// so a checkpoint torn by a crash between two files is refused with a clear message instead of resuming
// from a mix of two steps.
//
// The "training" section and the "history" array belong to the program that trains; they are kept here as
// JSON text, stored and read back unchanged (this layer checks only that they are an object and an array).

#include "core/random.h"
#include "nn/data/tokenizer.h"
#include "nn/models/gpt.h"
#include "nn/optim.h"

#include <cstdint>
#include <string>

namespace tg::nn {

struct GPTCheckpointConfig {
    GPTConfig model;
    data::Tokenizer tokenizer;
    std::string training = "{}";  // JSON object text
};

struct GPTCheckpointState {
    std::int64_t step = 0;     // optimizer updates done
    GeneratorState global_rng;  // the default generator: dropout masks
    GeneratorState loader_rng;  // the data loader's generator: the next training windows
    std::string history = "[]";  // JSON array text
};

bool has_gpt_checkpoint(const std::string& dir);  // config.json or state.json exists

// Writes all the files (creating `dir`). Throws IOError when a file cannot be written, ValueError when
// config.training is not a JSON object or state.history not a JSON array.
void save_gpt_checkpoint(const std::string& dir, const GPT& model, const optim::Optimizer& optimizer,
                         const GPTCheckpointConfig& config, const GPTCheckpointState& state);

// Reads and validates config.json. Throws IOError (missing/unreadable/malformed, naming the path and field).
GPTCheckpointConfig load_gpt_checkpoint_config(const std::string& dir);

// Loads model.safetensors into `model` (strict: every name and shape must match); returns its step.
std::int64_t load_gpt_weights(const std::string& dir, GPT& model);

// Loads optimizer.safetensors and state.json for a resume; checks their steps against model_step.
GPTCheckpointState load_gpt_training_state(const std::string& dir, optim::Optimizer& optimizer,
                                           std::int64_t model_step);

}  // namespace tg::nn
