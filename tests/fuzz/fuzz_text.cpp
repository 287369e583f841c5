// libFuzzer target: the text corpus reader (nn/data/text_corpus.h) streaming arbitrary bytes, and the byte and
// character tokenizers on what it accepts.
#include "core/error.h"
#include "nn/data/byte_source.h"
#include "nn/data/text_corpus.h"
#include "nn/data/tokenizer.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        tg::data::MemorySource source(data, size);
        std::string text;
        tg::data::append_text(source, "fuzz", text);
        const tg::data::Tokenizer chars = tg::data::Tokenizer::character_level(text);
        const auto ids = chars.encode(text);
        (void)chars.decode(ids);
        (void)tg::data::Tokenizer::byte_level().encode(text);
    } catch (const tg::Error&) {
    }
    return 0;
}
