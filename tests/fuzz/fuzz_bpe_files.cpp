// libFuzzer target: the BPE tokenizer files (nn/data/bpe_files.h). An input with a NUL byte is split there into
// encoder.json and vocab.bpe (GPT-2's pair of files); every input is also read as a Hugging Face tokenizer.json.
// A vocabulary that is accepted must encode and decode a short text losslessly.
#include "nn/data/bpe_files.h"

#include "core/error.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

void exercise(const tg::data::BpeModel& model) {
    const std::string text = "Hello, world! It's 2024 \xE2\x80\x94 caf\xC3\xA9.";
    const std::vector<std::int64_t> ids = model.encode(text);
    std::string back;
    for (std::int64_t id : ids) back += model.token(id);
    if (back != text) std::abort();  // encode must be lossless for any accepted vocabulary
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    const std::size_t nul = input.find('\0');
    if (nul != std::string::npos) {
        try {
            exercise(tg::data::parse_gpt2_bpe(input.substr(0, nul), input.substr(nul + 1), "fuzz"));
        } catch (const tg::Error&) {
        }
    }
    try {
        exercise(tg::data::parse_hf_tokenizer_json(input, "fuzz"));
    } catch (const tg::Error&) {
    }
    return 0;
}
