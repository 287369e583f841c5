#include "hf.h"

#include "checkpoint.h"

#include "nn/models/gpt2_hf.h"

#include <tapegrad/tapegrad.h>

#include <cstdio>
#include <filesystem>

namespace tg_gpt {

namespace fs = std::filesystem;

HFStart read_hf_folder(const std::string& dir) {
    HFStart start{tg::nn::read_gpt2_hf_config(dir), tg::data::Tokenizer::byte_level()};
    tg::nn::check_gpt2_hf_folder(dir, start.config);  // the weights' names and shapes, before anything is allocated
    start.tokenizer = tg::data::Tokenizer::load(dir);
    if (start.tokenizer.vocab_size() != start.config.vocab_size) {
        throw tg::ValueError("gpt2: " + dir + ": the tokenizer has " + std::to_string(start.tokenizer.vocab_size()) +
                             " tokens but config.json's vocab_size is " + std::to_string(start.config.vocab_size));
    }
    return start;
}

HFModel load_hf_model(const std::string& dir) {
    HFStart start = read_hf_folder(dir);
    auto model = std::make_shared<tg::nn::GPT>(start.config);
    tg::nn::load_gpt2_hf_weights(dir, *model);
    model->eval();
    return {model, start.tokenizer};
}

int run_export(const ExportArgs& args) {
    const CheckpointConfig config = load_checkpoint_config(args.ckpt);
    // Everything that could refuse is checked before a file is written.
    tg::nn::check_gpt2_architecture(config.model, "tg-gpt export: " + args.ckpt);
    if (config.tokenizer.kind() == tg::data::Tokenizer::Kind::Char) {
        throw tg::ValueError("tg-gpt export: " + args.ckpt + " uses a character-level tokenizer, which has no Hugging "
                             "Face GPT-2 form (train with --tokenizer byte or a BPE tokenizer to export)");
    }
    tg::nn::GPT model(config.model);
    const std::int64_t step = load_model_weights(args.ckpt, model);
    tg::nn::save_gpt2_hf(args.to_hf, model);
    config.tokenizer.save((fs::path(args.to_hf) / "tokenizer.json").string());
    std::fprintf(stderr, "exported %s (step %lld, %lld parameters, %s tokenizer) to %s: config.json, model.safetensors, "
                 "tokenizer.json\n", args.ckpt.c_str(), static_cast<long long>(step),
                 static_cast<long long>(model.num_parameters()), config.tokenizer.kind_name().c_str(),
                 args.to_hf.c_str());
    return 0;
}

}  // namespace tg_gpt
