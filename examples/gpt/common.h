#pragma once
// What the tg-gpt commands share: the model config and attention options from the command line, and the
// validation loss (in nats per token and in bits per byte). Reading the data is data_source.h.

#include "train_args.h"

#include "nn/data/text_batches.h"
#include "nn/data/tokenizer.h"
#include "nn/models/gpt.h"

#include <cstdint>
#include <string>
#include <vector>

namespace tg_gpt {

// A tokenizer for a fresh run: byte level, or character level built from the text at `path`.
tg::data::Tokenizer make_tokenizer(const std::string& kind, const std::string& path);

// The attention options of --attention, --degree and --grad (causal always on).
tg::nn::functional::AttentionOptions attention_options(const TrainArgs& args);

// The model of a fresh run: the preset's shape, block_size = seq, the tokenizer's vocabulary, and the flags.
tg::nn::GPTConfig model_config(const TrainArgs& args, std::int64_t vocab_size);

// Mean cross-entropy over the batches (eval mode, no autograd), in nats per token.
double validation_loss(tg::nn::GPT& model, const std::vector<tg::data::TextBatch>& batches);

// The fixed validation windows of a run, and what bits per byte needs to know about them: how many target
// tokens they hold and how many bytes of text those targets decode to (nn/data/bits_per_byte.h).
struct ValidationSet {
    std::vector<tg::data::TextBatch> batches;
    std::int64_t tokens = 0, bytes = 0;
};
ValidationSet make_validation_set(const tg::data::TokenSource& validation, const tg::data::Tokenizer& tokenizer,
                                  std::int64_t batch, std::int64_t seq, std::int64_t n_batches);

struct ValidationResult {
    double loss = 0;  // nats per token
    double bpb = 0;   // bits per byte of the validation text
};
ValidationResult evaluate_validation(tg::nn::GPT& model, const ValidationSet& set);

}  // namespace tg_gpt
