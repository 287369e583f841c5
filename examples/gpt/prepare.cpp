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
// losses. Every file is written atomically.

#include "commands.h"
#include "data_source.h"
#include "tokenizer_file.h"

#include "nn/data/token_shard.h"

#include <tapegrad/tapegrad.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

namespace tg_gpt {

int run_prepare(const PrepareArgs& args) {
    namespace fs = std::filesystem;
    const auto start = std::chrono::steady_clock::now();
    const tg::data::Tokenizer tokenizer = tokenizer_from_argument(args.tokenizer);
    const RunData data = load_run_data(args.data, tokenizer, /*quiet=*/false);

    std::error_code ec;
    fs::create_directories(args.out, ec);
    if (ec) throw tg::IOError("tg-gpt prepare: " + args.out + ": cannot create the folder: " + ec.message());
    const std::uint64_t fingerprint = tg::data::tokenizer_fingerprint(tokenizer);
    const auto out = [&](const char* name) { return (fs::path(args.out) / name).string(); };
    tg::data::write_token_shard(out(kTrainShard), data.train, tokenizer.vocab_size(), fingerprint);
    tg::data::write_token_shard(out(kValidationShard), data.validation, tokenizer.vocab_size(), fingerprint);
    save_tokenizer_file(out(kTokenizerFile), tokenizer);

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "prepare: wrote %s (%lld tokens), %s (%lld tokens) as %u-byte ids, and %s, in %.1f s\n",
                 out(kTrainShard).c_str(), static_cast<long long>(data.train.size()), out(kValidationShard).c_str(),
                 static_cast<long long>(data.validation.size()), tg::data::shard_bytes_per_token(tokenizer.vocab_size()),
                 out(kTokenizerFile).c_str(), seconds);
    return 0;
}

}  // namespace tg_gpt
