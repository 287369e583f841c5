#pragma once
// What the three tg-gpt commands share: reading a corpus into train/validation tokens, the model config and
// attention options from the command line, and the validation loss.

#include "train_args.h"

#include "nn/data/text_batches.h"
#include "nn/data/tokenizer.h"
#include "nn/models/gpt.h"

#include <cstdint>
#include <string>
#include <vector>

namespace tg_gpt {

// The corpus at `path` (kDefaultCorpusPath when empty) encoded and split (the last 10% is validation).
// Reports the corpus size on stderr unless quiet. Character-level unknowns (a corpus other than the one the
// vocabulary was built from) are counted and reported.
tg::data::TokenSplit load_tokens(const std::string& path, const tg::data::Tokenizer& tokenizer, bool quiet);

// Throws ValueError naming the split, its size and the data path when a split cannot hold one window of
// seq + 1 tokens.
void check_split_fits(const tg::data::TokenSplit& split, std::int64_t seq, const std::string& path);

// A tokenizer for a fresh run: byte level, or character level built from the text at `path`.
tg::data::Tokenizer make_tokenizer(const std::string& kind, const std::string& path);

// The attention options of --attention, --degree and --grad (causal always on).
tg::nn::functional::AttentionOptions attention_options(const TrainArgs& args);

// The model of a fresh run: the preset's shape, block_size = seq, the tokenizer's vocabulary, and the flags.
tg::nn::GPTConfig model_config(const TrainArgs& args, std::int64_t vocab_size);

// Mean cross-entropy over the batches (eval mode, no autograd), in nats per token.
double validation_loss(tg::nn::GPT& model, const std::vector<tg::data::TextBatch>& batches);

}  // namespace tg_gpt
