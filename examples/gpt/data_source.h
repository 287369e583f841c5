#pragma once
// Where a tg-gpt run's tokens come from. `--data PATH` is either
//
//   text      a text file or a folder of text files (the fortunes by default): read, tokenized on the fly,
//             the last 10% of the tokens kept for validation;
//   prepared  a folder written by `tg-gpt prepare` (train.bin, val.bin, tokenizer.json): the two token shards
//             are memory-mapped (nn/data/token_shard.h) and read one window at a time, so a corpus of any size
//             trains with a few MB of resident data.
//
// Both give a RunData: the train and validation ids as TokenSources the batch sampler reads windows from.
// A prepared folder is checked against the run's tokenizer (vocabulary size and fingerprint), so a shard
// encoded with another tokenizer is refused instead of training on the wrong ids.

#include "train_args.h"

#include "nn/data/corpus_tokens.h"
#include "nn/data/text_batches.h"
#include "nn/data/token_source.h"
#include "nn/data/tokenizer.h"

#include <cstdint>
#include <string>

namespace tg_gpt {

inline constexpr const char* kTrainShard = "train.bin";
inline constexpr const char* kValidationShard = "val.bin";
inline constexpr const char* kTokenizerFile = "tokenizer.json";

struct RunData {
    tg::data::TokenSource train, validation;
};

// A folder holding train.bin (what `tg-gpt prepare` writes).
bool is_prepared_data(const std::string& path);

// The tokenizer a prepared folder was encoded with (its tokenizer.json).
tg::data::Tokenizer load_prepared_tokenizer(const std::string& dir);

// The tokenizer of a fresh run: a prepared folder's own (its tokenizer.json), else the one --tokenizer names:
// byte, char (built from the corpus), bpe (trained on the corpus or taken from the cache in args.out,
// bpe_cache.h), or a tokenizer file.
tg::data::Tokenizer fresh_tokenizer(const TrainArgs& args);

// The run's tokens from `path` (kDefaultCorpusPath when empty), checked against `tokenizer`. Reports the data
// on stderr unless quiet.
RunData load_run_data(const std::string& path, const tg::data::Tokenizer& tokenizer, bool quiet);

// The "data: ..." line of a text corpus (unless quiet), and the warning about characters a character
// vocabulary lacks (always).
void report_text_data(const std::string& path, const tg::data::CorpusTokens& counts,
                      const tg::data::Tokenizer& tokenizer, const tg::data::TokenSourceSplit& split, bool quiet);

// Throws ValueError naming the split, its size and the data path when a split cannot hold one window of
// seq + 1 tokens.
void check_data_fits(const RunData& data, std::int64_t seq, const std::string& path);

}  // namespace tg_gpt
