#pragma once
// The C API's GPT and optimizer handles (shared by capi/gpt.cpp and capi/gpt_train.cpp).

#include "nn/data/tokenizer.h"
#include "nn/models/gpt.h"
#include "nn/models/gpt_checkpoint.h"
#include "nn/optim.h"

#include <memory>
#include <string>

struct tg_gpt {
    std::unique_ptr<tg::nn::GPT> model;
    tg::data::Tokenizer tokenizer;
    // What a checkpoint keeps besides the weights: the trainer's settings (config.json "training"), and the
    // step, generator states and loss history (state.json). Loaded with the model, written back by tg_gpt_save.
    std::string training;
    tg::nn::GPTCheckpointState state;
    // The folder the model was loaded from ("" for a new model): tg_adamw_create resumes its optimizer state.
    std::string dir;
};

struct tg_optimizer {
    std::unique_ptr<tg::optim::AdamW> adamw;
    const tg_gpt* model = nullptr;  // the model whose parameters it updates
    double grad_clip = 0.0;
};
