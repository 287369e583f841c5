// libFuzzer target: token shards (nn/data/token_shard.h) as `tg-gpt train --data DIR` reads them. The input is
// written to a scratch file and opened (memory-mapped, header validated); an accepted shard is checked against
// a byte-level tokenizer and read whole, window by window, as training does (each id checked against the
// vocabulary on the way).
#include "nn/data/token_shard.h"

#include "core/error.h"

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

std::string scratch_file() {
    const auto path = std::filesystem::temp_directory_path() / ("tg-fuzz-shard-" + std::to_string(::getpid()) + ".bin");
    return path.string();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = scratch_file();
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    try {
        const tg::data::TokenShard shard = tg::data::open_token_shard(path);
        try {
            tg::data::check_shard_matches(shard.info, tg::data::Tokenizer::byte_level());
        } catch (const tg::Error&) {
        }
        std::vector<std::int64_t> window(64);
        for (std::int64_t start = 0; start < shard.tokens.size(); start += 64) {
            const std::int64_t n = std::min<std::int64_t>(64, shard.tokens.size() - start);
            shard.tokens.read(start, n, window.data());
            for (std::int64_t i = 0; i < n; ++i) {
                if (window[static_cast<std::size_t>(i)] < 0 || window[static_cast<std::size_t>(i)] >= shard.info.vocab_size) {
                    __builtin_trap();  // read() must have refused an id outside the vocabulary
                }
            }
        }
        (void)shard.tokens.slice(0, shard.tokens.size() / 2).to_vector();
    } catch (const tg::Error&) {
    }
    return 0;
}
