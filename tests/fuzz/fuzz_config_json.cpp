// libFuzzer target: the JSON a checkpoint's config.json holds, through the parsers tg-gpt and tg-vit use on
// it: GPTConfig and ViTConfig (sizes included: a config that parses must have a countable size), the
// tokenizer, and tg-gpt's training settings and state.json history are covered by fuzz_checkpoint_dir.
#include "core/error.h"
#include "nn/data/tokenizer.h"
#include "nn/models/gpt.h"
#include "nn/models/model_size.h"
#include "nn/models/vit.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        (void)tg::nn::gpt_parameter_count(tg::nn::GPTConfig::from_json(text));
    } catch (const tg::Error&) {
    }
    try {
        (void)tg::nn::vit_parameter_count(tg::nn::ViTConfig::from_json(text));
    } catch (const tg::Error&) {
    }
    try {
        (void)tg::data::Tokenizer::from_json(text).vocab_size();
    } catch (const tg::Error&) {
    }
    return 0;
}
