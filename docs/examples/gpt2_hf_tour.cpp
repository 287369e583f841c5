// The library side of docs/gpt.md §9 ("Fine-tune GPT-2 on your text"): a GPT with GPT-2's architecture written
// as a Hugging Face folder, read back, and the same logits out. Built and run by `meson test` (doc-gpt2-hf-tour).

#include <tapegrad/tapegrad.h>

#include "nn/models/gpt.h"
#include "nn/models/gpt2_hf.h"

#include <cstdio>
#include <filesystem>

int main() {
    // A small GPT-2: learned positions, biases, exact attention (the GPTConfig defaults).
    tg::nn::GPTConfig config;
    config.vocab_size = 300;
    config.block_size = 32;
    config.n_layer = 2;
    config.n_head = 2;
    config.n_embd = 32;
    tg::manual_seed(0);
    tg::nn::GPT model(config);
    model.eval();

    // Hugging Face's layout: config.json + model.safetensors with h.{i}.attn.c_attn.weight stored (in, out).
    const std::string dir = (std::filesystem::temp_directory_path() / "tg-gpt2-hf-tour").string();
    tg::nn::save_gpt2_hf(dir, model);
    for (const auto& [name, t] : tg::nn::gpt2_state_dict_to_hf(model)) {
        if (name.rfind("h.0.attn.", 0) == 0) std::printf("%-22s %s\n", name.c_str(), tg::to_string(t.shape()).c_str());
    }

    // Read it back (checked before allocating: names, shapes, dtypes, config fields) and compare the logits.
    const std::shared_ptr<tg::nn::GPT> loaded = tg::nn::load_gpt2_hf(dir);
    loaded->eval();
    const tg::Tensor idx = tg::randint(0, config.vocab_size, {2, 16});
    tg::NoGradGuard no_grad;
    const double diff = tg::max(tg::abs(model.forward(idx) - loaded->forward(idx))).item();
    std::printf("max |logits - logits after the round trip| = %g\n", diff);
    std::filesystem::remove_all(dir);
    return diff == 0.0 ? 0 : 1;
}
