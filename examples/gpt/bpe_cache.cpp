#include "bpe_cache.h"

#include "tokenizer_file.h"

#include "nn/data/bpe_train.h"
#include "nn/data/text_corpus.h"
#include "nn/data/token_shard.h"

#include <tapegrad/tapegrad.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

namespace tg_gpt {

tg::data::Tokenizer cached_bpe_tokenizer(const std::string& data, std::int64_t vocab, const std::string& out_dir,
                                         bool quiet) {
    namespace fs = std::filesystem;
    const tg::data::BpeTrainOptions options{vocab, {"<|endoftext|>"}, 2};
    const tg::data::TextCorpus corpus =
        tg::data::load_text_corpus(data.empty() ? tg::data::kDefaultCorpusPath : data, options.special_tokens[0]);
    char name[64];
    std::snprintf(name, sizeof(name), "bpe-%lld-%016llx.json", static_cast<long long>(vocab),
                  static_cast<unsigned long long>(tg::data::fnv1a64(corpus.text)));
    const fs::path cache = fs::path(out_dir) / "tokenizer-cache" / name;
    if (fs::exists(cache)) {
        if (!quiet) std::fprintf(stderr, "tokenizer: BPE of %lld tokens from %s\n", static_cast<long long>(vocab),
                                 cache.c_str());
        return load_tokenizer_file(cache.string());
    }
    const auto start = std::chrono::steady_clock::now();
    const tg::data::Tokenizer tokenizer = tg::data::Tokenizer::bpe(tg::data::train_bpe(corpus.text, options));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::error_code ec;
    fs::create_directories(cache.parent_path(), ec);
    if (ec) throw tg::IOError("tokenizer: " + cache.parent_path().string() + ": cannot create the folder: " + ec.message());
    save_tokenizer_file(cache.string(), tokenizer);
    if (!quiet) {
        std::fprintf(stderr, "tokenizer: trained a BPE of %lld tokens on %s (%zu bytes) in %.1f s, cached in %s\n",
                     static_cast<long long>(tokenizer.vocab_size()), corpus.path.c_str(), corpus.text.size(), seconds,
                     cache.c_str());
    }
    return tokenizer;
}

}  // namespace tg_gpt
