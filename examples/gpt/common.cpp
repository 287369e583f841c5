#include "common.h"

#include "presets.h"

#include "nn/data/text_corpus.h"

#include <tapegrad/tapegrad.h>

#include <cmath>
#include <cstdio>

namespace tg_gpt {

tg::data::Tokenizer make_tokenizer(const std::string& kind, const std::string& path) {
    if (kind == "byte") return tg::data::Tokenizer::byte_level();
    if (kind == "char") {
        return tg::data::Tokenizer::character_level(
            tg::data::load_text_corpus(path.empty() ? tg::data::kDefaultCorpusPath : path).text);
    }
    throw tg::ValueError("tg-gpt: unknown --tokenizer '" + kind + "' (byte or char)");
}

tg::data::TokenSplit load_tokens(const std::string& path, const tg::data::Tokenizer& tokenizer, bool quiet) {
    const tg::data::TextCorpus corpus = tg::data::load_text_corpus(path.empty() ? tg::data::kDefaultCorpusPath : path);
    std::int64_t unknown = 0;
    const std::vector<std::int64_t> tokens = tokenizer.encode(corpus.text, &unknown);
    tg::data::TokenSplit split = tg::data::split_train_validation(tokens, 0.1);
    if (!quiet) {
        std::fprintf(stderr, "data: %s: %zu file%s, %zu bytes -> %zu %s tokens (train %zu, validation %zu)\n",
                     corpus.path.c_str(), corpus.files.size(), corpus.files.size() == 1 ? "" : "s",
                     corpus.text.size(), tokens.size(), tokenizer.kind_name().c_str(), split.train.size(),
                     split.validation.size());
    }
    if (unknown > 0) {
        std::fprintf(stderr, "data: warning: %lld characters are not in the character vocabulary and became the "
                     "unknown token\n", static_cast<long long>(unknown));
    }
    return split;
}

void check_split_fits(const tg::data::TokenSplit& split, std::int64_t seq, const std::string& path) {
    const std::string where = path.empty() ? tg::data::kDefaultCorpusPath : path;
    const auto check = [&](const std::vector<std::int64_t>& tokens, const std::string& name) {
        if (static_cast<std::int64_t>(tokens.size()) < seq + 1) {
            throw tg::ValueError("the " + name + " of " + where + ") has " + std::to_string(tokens.size()) +
                                 " tokens, fewer than seq + 1 = " + std::to_string(seq + 1) +
                                 ": use more text or a shorter --seq");
        }
    };
    check(split.train, "train split (the first 90%");
    check(split.validation, "validation split (the last 10%");
}

tg::nn::functional::AttentionOptions attention_options(const TrainArgs& args) {
    tg::nn::functional::AttentionOptions o;
    o.causal = true;
    o.mode = tg::nn::functional::attention_mode_from_string(args.attention);
    o.degree = args.degree;
    o.gradient = tg::nn::functional::attention_gradient_from_string(args.grad);
    return o;
}

tg::nn::GPTConfig model_config(const TrainArgs& args, std::int64_t vocab_size) {
    const Preset& p = find_preset(args.preset);
    tg::nn::GPTConfig c;
    c.vocab_size = vocab_size;
    c.block_size = args.seq;
    c.n_layer = p.n_layer;
    c.n_head = p.n_head;
    c.n_embd = p.n_embd;
    c.dropout = args.dropout;
    c.qk_layernorm = args.qk_layernorm;
    c.qk_temperature = args.qk_temperature;
    c.rope = args.rope;
    c.attention = attention_options(args);
    c.validate();
    return c;
}

double validation_loss(tg::nn::GPT& model, const std::vector<tg::data::TextBatch>& batches) {
    tg::NoGradGuard no_grad;
    const bool was_training = model.is_training();
    model.eval();
    double total = 0;
    for (const tg::data::TextBatch& b : batches) total += model.loss(b.x, b.y).item();
    model.train(was_training);
    return total / static_cast<double>(batches.size());
}

}  // namespace tg_gpt
