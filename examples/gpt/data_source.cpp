#include "data_source.h"

#include "bpe_cache.h"
#include "common.h"
#include "tokenizer_file.h"

#include "nn/data/corpus_tokens.h"
#include "nn/data/text_batches.h"
#include "nn/data/text_corpus.h"
#include "nn/data/token_shard.h"

#include <tapegrad/tapegrad.h>

#include <cstdio>
#include <filesystem>

namespace tg_gpt {

namespace fs = std::filesystem;

namespace {

std::string in_dir(const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); }

RunData load_text(const std::string& path, const tg::data::Tokenizer& tokenizer, bool quiet) {
    // Read and encoded piece by piece, the ids kept at 2 bytes a token (4 above 65,536 ids), not int64's 8:
    // a 100 MB corpus holds 200 MB of ids and never its whole text.
    tg::data::CorpusTokens counts;
    const tg::data::TokenSource tokens = tg::data::encode_text_corpus(path, tokenizer, &counts);
    const tg::data::TokenSourceSplit split = tg::data::split_train_validation(tokens, 0.1);
    report_text_data(path, counts, tokenizer, split, quiet);
    return {split.train, split.validation};
}

RunData load_prepared(const std::string& dir, const tg::data::Tokenizer& tokenizer, bool quiet) {
    tg::data::TokenShard train = tg::data::open_token_shard(in_dir(dir, kTrainShard));
    tg::data::TokenShard val = tg::data::open_token_shard(in_dir(dir, kValidationShard));
    tg::data::check_shard_matches(train.info, tokenizer);
    tg::data::check_shard_matches(val.info, tokenizer);
    if (!quiet) {
        std::fprintf(stderr, "data: %s: prepared token shards, %s tokens of %u bytes (train %lld, validation %lld), "
                     "memory-mapped\n", dir.c_str(), tokenizer.kind_name().c_str(), train.info.bytes_per_token,
                     static_cast<long long>(train.info.count), static_cast<long long>(val.info.count));
    }
    return {train.tokens, val.tokens};
}

}  // namespace

void report_text_data(const std::string& path, const tg::data::CorpusTokens& counts,
                      const tg::data::Tokenizer& tokenizer, const tg::data::TokenSourceSplit& split, bool quiet) {
    if (!quiet) {
        std::fprintf(stderr, "data: %s: %zu file%s, %lld bytes -> %lld %s tokens (train %lld, validation %lld)\n",
                     path.c_str(), counts.files.size(), counts.files.size() == 1 ? "" : "s",
                     static_cast<long long>(counts.bytes), static_cast<long long>(counts.tokens),
                     tokenizer.kind_name().c_str(), static_cast<long long>(split.train.size()),
                     static_cast<long long>(split.validation.size()));
    }
    if (counts.unknown > 0) {
        std::fprintf(stderr, "data: warning: %lld characters are not in the character vocabulary and became the "
                     "unknown token\n", static_cast<long long>(counts.unknown));
    }
}

bool is_prepared_data(const std::string& path) {
    return !path.empty() && fs::is_directory(path) && fs::exists(in_dir(path, kTrainShard));
}

tg::data::Tokenizer load_prepared_tokenizer(const std::string& dir) {
    return load_tokenizer_file(in_dir(dir, kTokenizerFile));
}

tg::data::Tokenizer fresh_tokenizer(const TrainArgs& args) {
    if (is_prepared_data(args.data)) return load_prepared_tokenizer(args.data);
    if (args.tokenizer == "byte" || args.tokenizer == "char") return make_tokenizer(args.tokenizer, args.data);
    if (args.tokenizer == "bpe") return cached_bpe_tokenizer(args.data, args.vocab, args.out, /*quiet=*/false);
    return load_tokenizer_file(args.tokenizer);  // a tokenizer.json, or a folder with GPT-2's files
}

RunData load_run_data(const std::string& path, const tg::data::Tokenizer& tokenizer, bool quiet) {
    if (is_prepared_data(path)) return load_prepared(path, tokenizer, quiet);
    return load_text(path.empty() ? tg::data::kDefaultCorpusPath : path, tokenizer, quiet);
}

void check_data_fits(const RunData& data, std::int64_t seq, const std::string& path) {
    const std::string where = path.empty() ? tg::data::kDefaultCorpusPath : path;
    const bool prepared = is_prepared_data(path);
    // "the train split (the first 90% of corpus.txt)", "the validation split (val.bin of data/)"
    const auto check = [&](const tg::data::TokenSource& tokens, const std::string& split, const std::string& part) {
        if (tokens.size() < seq + 1) {
            throw tg::ValueError("the " + split + " split (" + part + " of " + where + ") has " +
                                 std::to_string(tokens.size()) + " tokens, fewer than seq + 1 = " +
                                 std::to_string(seq + 1) + ": use more text or a shorter --seq");
        }
    };
    check(data.train, "train", prepared ? kTrainShard : "the first 90%");
    check(data.validation, "validation", prepared ? kValidationShard : "the last 10%");
}

}  // namespace tg_gpt
