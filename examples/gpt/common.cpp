#include "common.h"

#include "presets.h"

#include "nn/data/bits_per_byte.h"
#include "nn/data/text_corpus.h"

#include <tapegrad/tapegrad.h>

#include <cmath>
#include <cstdint>
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

tg::nn::functional::AttentionOptions attention_options(const TrainArgs& args) {
    tg::nn::functional::AttentionOptions o;
    o.causal = true;
    o.mode = tg::nn::functional::attention_mode_from_string(args.attention);
    o.degree = args.degree;
    o.gradient = tg::nn::functional::attention_gradient_from_string(args.grad);
    o.window = args.window;
    o.sinks = args.sinks;
    o.auto_window = args.auto_window;
    if (o.auto_window && o.mode != tg::nn::functional::AttentionMode::Auto) {
        throw tg::ValueError("tg-gpt: --auto-window lets --attention auto choose the window; it needs --attention auto, "
                             "got --attention " + args.attention);
    }
    tg::nn::functional::check_attention_window("", o, args.seq > 0 ? args.seq : INT64_MAX);
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

ValidationSet make_validation_set(const tg::data::TokenSource& validation, const tg::data::Tokenizer& tokenizer,
                                  std::int64_t batch, std::int64_t seq, std::int64_t n_batches) {
    ValidationSet set;
    set.batches = tg::data::evenly_spaced_batches(validation, batch, seq, n_batches);
    set.tokens = n_batches * batch * seq;
    set.bytes = tg::data::target_bytes(set.batches, tg::data::token_byte_lengths(tokenizer));
    return set;
}

ValidationResult evaluate_validation(tg::nn::GPT& model, const ValidationSet& set) {
    ValidationResult r;
    r.loss = validation_loss(model, set.batches);
    r.bpb = tg::data::bits_per_byte(r.loss, set.tokens, set.bytes);
    return r;
}

}  // namespace tg_gpt
