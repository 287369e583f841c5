#pragma once
// tg-gpt and Hugging Face GPT-2 folders (nn/models/gpt2_hf.h): the model and tokenizer behind
// `sample|eval|train --from-hf DIR`, and `export --ckpt DIR --to-hf OUT`.
//
// A folder gives the model (config.json + model.safetensors) and the tokenizer (tokenizer.json, or vocab.json +
// merges.txt, or GPT-2's encoder.json + vocab.bpe). Both must agree on the vocabulary size.

#include "nn/data/tokenizer.h"
#include "nn/models/gpt.h"
#include "nn/models/gpt2_hf.h"

#include <memory>
#include <string>

namespace tg_gpt {

// config.json of DIR, checked against model.safetensors' header (names and shapes, nothing read yet), and the
// tokenizer of DIR, checked against the vocabulary size. Throws IOError / ValueError naming the file.
struct HFStart {
    tg::nn::GPTConfig config;
    tg::data::Tokenizer tokenizer;
};
HFStart read_hf_folder(const std::string& dir);

// The model (weights loaded, eval mode) and tokenizer of DIR.
struct HFModel {
    std::shared_ptr<tg::nn::GPT> model;
    tg::data::Tokenizer tokenizer;
};
HFModel load_hf_model(const std::string& dir);

// tg-gpt export: a tg-gpt checkpoint written as a Hugging Face GPT-2 folder (config.json, model.safetensors,
// tokenizer.json). Refuses, before writing anything, a model that is not GPT-2's architecture (rope,
// QK-LayerNorm, no biases) or a character-level tokenizer (Hugging Face's GPT-2 tokenizer is byte-level BPE).
struct ExportArgs {
    std::string ckpt;
    std::string to_hf;
};
int run_export(const ExportArgs& args);

}  // namespace tg_gpt
