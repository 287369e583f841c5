// tg-gpt sample: continue a prompt with a trained model, printing each token as soon as it is drawn.
// The model runs through its key/value cache (nn/models/gpt_sample.h), so each new token costs O(T).

#include "checkpoint.h"
#include "commands.h"
#include "hf.h"

#include "nn/models/gpt_sample.h"

#include "examples/common/cli.h"

#include "examples/common/memory.h"
#include "nn/models/model_size.h"

#include <tapegrad/tapegrad.h>

#include <cstdio>

namespace tg_gpt {

int run_sample(const SampleArgs& args) {
    tg::cli::apply_threads(args.threads);
    // The model and its tokenizer: from a checkpoint, or from a Hugging Face GPT-2 folder.
    HFModel loaded;
    if (!args.from_hf.empty()) {
        loaded = load_hf_model(args.from_hf);
    } else {
        const CheckpointConfig config = load_checkpoint_config(args.ckpt);
        check_weights_fit(args.ckpt, config.model);  // sizes first: an edited config.json allocates nothing
        loaded = {std::make_shared<tg::nn::GPT>(config.model), config.tokenizer};
        load_model_weights(args.ckpt, *loaded.model, args.allow_nonfinite);
    }
    tg::nn::GPT& model = *loaded.model;
    const tg::data::Tokenizer& tokenizer = loaded.tokenizer;
    const std::int64_t block_size = model.config.block_size;
    // The key/value cache (2 tensors of block_size × n_embd per layer) and the tokens kept (the context and the
    // generated ids) must fit the machine before generating (examples/common/memory.h).
    using tg::cli::saturating_product;
    tg::cli::require_memory(
        "tg-gpt sample",
        {{"key/value cache", saturating_product({2, static_cast<std::uint64_t>(model.config.n_layer),
                                                 static_cast<std::uint64_t>(block_size),
                                                 static_cast<std::uint64_t>(model.config.n_embd), 4})},
         {"generated tokens", saturating_product({static_cast<std::uint64_t>(args.tokens), 16})}},
        "ask for fewer --tokens");
    model.eval();

    // The prompt: strict encoding, so a character the vocabulary lacks is an error, not a silent <unk>.
    std::vector<std::int64_t> prompt = tokenizer.encode_strict(args.prompt.empty() ? "\n" : args.prompt);
    if (static_cast<std::int64_t>(prompt.size()) > block_size) {
        std::fprintf(stderr, "note: the prompt has %zu tokens; only the last %lld (the model's block size) are used\n",
                     prompt.size(), static_cast<long long>(block_size));
        prompt.erase(prompt.begin(), prompt.end() - block_size);
    }

    tg::nn::SamplingOptions options;
    options.temperature = args.temperature;
    options.top_k = args.top_k;
    options.seed = args.seed;
    options.use_cache = !args.no_cache;

    std::fputs(args.prompt.c_str(), stdout);  // the prompt, then its continuation as it is generated
    std::fflush(stdout);
    tg::data::TokenStreamDecoder stream(tokenizer);
    tg::nn::generate(model, prompt, args.tokens, options, [&](std::int64_t id) {
        const std::string text = stream.push(id);  // whole UTF-8 characters only
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
    });
    const std::string rest = stream.finish();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fputc('\n', stdout);
    return 0;
}

}  // namespace tg_gpt
