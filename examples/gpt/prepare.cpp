// tg-gpt prepare: tokenize a corpus once and store it as token shards, so that training reads ids straight
// from disk instead of re-reading and re-encoding the text every run:
//
//   tg-gpt prepare --data corpus/ --tokenizer tokenizer.json --out data/
//       data/train.bin        the first 90% of the tokens   (nn/data/token_shard.h: header + uint16/uint32 ids)
//       data/val.bin          the last 10%
//       data/tokenizer.json   the tokenizer they were encoded with
//   tg-gpt train --data data/ ...
//
// The split is the one `train --data corpus/` makes on the fly, so both give the same tokens, windows and
// losses. Every file is written atomically. The corpus is streamed: read and tokenized a piece at a time, its
// ids written out as they come, so a corpus of any size prepares in a few MB of memory.

#include "commands.h"
#include "data_source.h"
#include "tokenizer_file.h"

#include "nn/data/corpus_tokens.h"
#include "nn/data/text_batches.h"
#include "nn/data/token_shard.h"

#include <tapegrad/tapegrad.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <span>
#include <string>

namespace tg_gpt {

namespace {

namespace fs = std::filesystem;

// A file removed when this goes out of scope (the scratch shard, whether prepare succeeds or throws).
struct RemoveOnExit {
    std::string path;
    ~RemoveOnExit() {
        std::error_code ec;
        fs::remove(path, ec);
    }
};

// A text corpus, streamed: its ids go to a scratch shard as they are encoded (nn/data/corpus_tokens.h), since
// where the validation split begins (the last 10% of the tokens) is known only at the end; the two shards are
// then copied out of the memory-mapped scratch shard. Memory: a piece of text and its ids, whatever the
// corpus's size; disk: twice the shards' size while it runs.
void prepare_text(const std::string& path, const tg::data::Tokenizer& tokenizer,
                  const std::string& out_dir, std::uint64_t fingerprint,
                  const std::function<void(const tg::data::TokenSourceSplit&)>& write) {
    // "<name>.tmp.<pid>": if this process dies, the next atomic write in the folder sweeps it (core/file_io.h).
    const RemoveOnExit scratch{(fs::path(out_dir) / ("tokens.bin.tmp." + std::to_string(::getpid()))).string()};
    tg::data::TokenShardWriter all(scratch.path, tokenizer.vocab_size(), fingerprint);
    const tg::data::CorpusTokens counts = tg::data::encode_text_corpus(
        path, tokenizer, [&](std::span<const std::int64_t> ids) { all.append(ids); });
    all.commit();
    const tg::data::TokenShard shard = tg::data::open_token_shard(scratch.path);
    const tg::data::TokenSourceSplit split = tg::data::split_train_validation(shard.tokens, 0.1);
    report_text_data(path, counts, tokenizer, split, /*quiet=*/false);
    write(split);
}

}  // namespace

int run_prepare(const PrepareArgs& args) {
    const auto start = std::chrono::steady_clock::now();
    const tg::data::Tokenizer tokenizer = tokenizer_from_argument(args.tokenizer);

    std::error_code ec;
    fs::create_directories(args.out, ec);
    if (ec) throw tg::IOError("tg-gpt prepare: " + args.out + ": cannot create the folder: " + ec.message());
    const std::uint64_t fingerprint = tg::data::tokenizer_fingerprint(tokenizer);
    const auto out = [&](const char* name) { return (fs::path(args.out) / name).string(); };
    std::int64_t n_train = 0, n_validation = 0;
    const auto write = [&](const tg::data::TokenSourceSplit& split) {
        tg::data::write_token_shard(out(kTrainShard), split.train, tokenizer.vocab_size(), fingerprint);
        tg::data::write_token_shard(out(kValidationShard), split.validation, tokenizer.vocab_size(), fingerprint);
        n_train = split.train.size();
        n_validation = split.validation.size();
    };
    if (is_prepared_data(args.data)) {  // another prepared folder: its shards are memory-mapped already
        const RunData data = load_run_data(args.data, tokenizer, /*quiet=*/false);
        write({data.train, data.validation});
    } else {
        prepare_text(args.data.empty() ? tg::data::kDefaultCorpusPath : args.data, tokenizer, args.out, fingerprint,
                     write);
    }
    save_tokenizer_file(out(kTokenizerFile), tokenizer);

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "prepare: wrote %s (%lld tokens), %s (%lld tokens) as %u-byte ids, and %s, in %.1f s\n",
                 out(kTrainShard).c_str(), static_cast<long long>(n_train), out(kValidationShard).c_str(),
                 static_cast<long long>(n_validation), tg::data::shard_bytes_per_token(tokenizer.vocab_size()),
                 out(kTokenizerFile).c_str(), seconds);
    return 0;
}

}  // namespace tg_gpt
