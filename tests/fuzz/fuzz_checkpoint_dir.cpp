// libFuzzer target: tg-gpt's checkpoint files as --resume and eval read them (examples/gpt/checkpoint.h). The
// input is split at its first NUL byte into config.json and state.json, written into a scratch folder next to a
// valid model.safetensors and optimizer.safetensors of a tiny model (made once), and read back as a resume does:
// config, size check, weights, optimizer state, state.json.
#include "examples/gpt/checkpoint.h"

#include "core/error.h"

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

std::string scratch_folder() {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("tg-fuzz-checkpoint-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    // A real checkpoint of a tiny model, so the fuzzed JSON is read next to files that load.
    tg::nn::GPTConfig c;
    c.vocab_size = 256;
    c.block_size = 4;
    c.n_layer = 1;
    c.n_head = 1;
    c.n_embd = 4;
    tg::nn::GPT model(c);
    tg::optim::AdamW optimizer(model.parameters(), 1e-3);
    tg_gpt::TrainArgs args;
    args.apply_preset();
    tg_gpt::TrainingState state;
    tg_gpt::save_checkpoint(dir.string(), model, optimizer, {c, tg::data::Tokenizer::byte_level(), args}, state);
    return dir.string();
}

void write(const std::string& path, const char* data, std::size_t size) {
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(data, static_cast<std::streamsize>(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string dir = scratch_folder();
    const char* text = reinterpret_cast<const char*>(data);
    std::size_t split = 0;
    while (split < size && text[split] != '\0') ++split;
    write(dir + "/config.json", text, split);
    write(dir + "/state.json", text + std::min(split + 1, size), size - std::min(split + 1, size));
    try {
        const tg_gpt::CheckpointConfig config = tg_gpt::load_checkpoint_config(dir);
        tg_gpt::check_weights_fit(dir, config.model);
        tg::nn::GPT model(config.model);
        tg::optim::AdamW optimizer(model.parameters(), 1e-3);
        const std::int64_t step = tg_gpt::load_model_weights(dir, model);
        (void)tg_gpt::load_training_state(dir, optimizer, step);
    } catch (const tg::Error&) {
    }
    return 0;
}
