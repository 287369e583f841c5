// The C API's GPT models: create or load, the tokenizer, generation with a streaming callback, logits and the
// log-likelihood of a text. Training and saving are in capi/gpt_train.cpp.

#include "capi/boundary.h"
#include "capi/gpt_handle.h"

#include "core/grad_mode.h"
#include "core/ops.h"
#include "nn/models/gpt_sample.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace tg::capi {

namespace {

using nn::functional::AttentionMode;

AttentionMode attention_mode_from_c(int32_t mode) {
    switch (mode) {
        case TG_ATTENTION_EXACT: return AttentionMode::Exact;
        case TG_ATTENTION_APPROX_BACKWARD: return AttentionMode::ApproxBackward;
        case TG_ATTENTION_APPROX: return AttentionMode::Approx;
        case TG_ATTENTION_AUTO: return AttentionMode::Auto;
        default:
            throw InvalidArgument("attention mode " + std::to_string(mode) +
                                  " is not TG_ATTENTION_EXACT, _APPROX_BACKWARD, _APPROX or _AUTO");
    }
}

int32_t attention_mode_to_c(AttentionMode mode) {
    switch (mode) {
        case AttentionMode::Exact: return TG_ATTENTION_EXACT;
        case AttentionMode::ApproxBackward: return TG_ATTENTION_APPROX_BACKWARD;
        case AttentionMode::Approx: return TG_ATTENTION_APPROX;
        case AttentionMode::Auto: return TG_ATTENTION_AUTO;
    }
    throw Error("an attention mode the C API does not know");
}

// A "training" section tg-gpt accepts (examples/gpt/train_args.cpp reads every field) for a model made here.
std::string training_section(const nn::GPTConfig& c, const data::Tokenizer& tok) {
    nlohmann::ordered_json j;
    j["data"] = "";
    j["tokenizer"] = tok.kind_name();
    j["preset"] = "capi";  // not one of tg-gpt's presets: the shape is in "model"
    j["dropout"] = c.dropout;
    j["qk_layernorm"] = c.qk_layernorm;
    j["qk_temperature"] = c.qk_temperature;
    j["rope"] = c.rope;
    j["attention"] = nn::functional::to_string(c.attention.mode);
    j["degree"] = c.attention.degree;
    j["grad"] = nn::functional::to_string(c.attention.gradient);
    for (const char* key : {"steps", "batch", "warmup", "eval_every"}) j[key] = 0;
    j["seq"] = c.block_size;
    j["batch"] = 8;
    j["eval_batches"] = 8;
    j["lr"] = 3e-4;
    j["min_lr"] = 3e-5;
    j["weight_decay"] = 0.0;
    j["grad_clip"] = 1.0;
    j["seed"] = 0;
    j["threads"] = 0;
    return j.dump();
}

const tg_gpt& model_of(const tg_gpt* model) {
    require(model, "model");
    return *model;
}

Tensor ids_tensor(const int64_t* ids, int64_t B, int64_t T, const char* name) {
    require(ids, name);
    return from_data(ids, Shape{B, T});
}

// Thrown from inside nn::generate's per-token callback when the host's callback asks to stop.
struct StopGeneration {};

}  // namespace

}  // namespace tg::capi

using namespace tg::capi;
using tg::ShapeError;

extern "C" {

tg_status tg_gpt_config_init(tg_gpt_config* config) {
    return init_options(config, "tg_gpt_config_init", [](tg_gpt_config& o) {
        o.block_size = 64;
        o.n_layer = 2;
        o.n_head = 2;
        o.n_embd = 64;
        o.dropout = 0.0;
        o.attention = TG_ATTENTION_EXACT;
        o.degree = 2;
        o.qk_layernorm = 0;
        o.rope = 0;
        o.tokenizer_json = nullptr;
    });
}

tg_status tg_gpt_create(tg_context* ctx, const tg_gpt_config* config, tg_gpt** out) {
    return call(ctx, "tg_gpt_create", [&] {
        require(out, "out");
        require(config, "config");
        const tg_gpt_config c = read_options(config, tg_gpt_config_init, "config");
        auto handle = std::make_unique<tg_gpt>();
        handle->tokenizer = c.tokenizer_json != nullptr ? tg::data::Tokenizer::from_json(c.tokenizer_json)
                                                        : tg::data::Tokenizer::byte_level();
        tg::nn::GPTConfig g;
        g.vocab_size = handle->tokenizer.vocab_size();
        g.block_size = c.block_size;
        g.n_layer = c.n_layer;
        g.n_head = c.n_head;
        g.n_embd = c.n_embd;
        g.dropout = c.dropout;
        g.qk_layernorm = c.qk_layernorm != 0;
        g.rope = c.rope != 0;
        g.attention.causal = true;
        g.attention.mode = attention_mode_from_c(c.attention);
        g.attention.degree = c.degree;
        g.validate();
        handle->model = std::make_unique<tg::nn::GPT>(g);  // initialised from the context's generator
        handle->training = training_section(g, handle->tokenizer);
        *out = handle.release();
    });
}

tg_status tg_gpt_load(tg_context* ctx, const char* dir, tg_gpt** out) {
    return call(ctx, "tg_gpt_load", [&] {
        require(out, "out");
        require(dir, "dir");
        const tg::nn::GPTCheckpointConfig config = tg::nn::load_gpt_checkpoint_config(dir);
        auto handle = std::make_unique<tg_gpt>();
        {
            // The initial weights are overwritten by the checkpoint's: draw them from a scratch generator, so
            // loading a model does not advance the context's stream.
            tg::Generator scratch;
            tg::GeneratorScope scope(scratch);
            handle->model = std::make_unique<tg::nn::GPT>(config.model);
        }
        handle->state.step = tg::nn::load_gpt_weights(dir, *handle->model);
        handle->tokenizer = config.tokenizer;
        handle->training = config.training;
        handle->dir = dir;
        log(ctx, TG_LOG_INFO, std::string("loaded ") + dir + ": " + handle->model->extra_repr() + ", " +
                                  handle->tokenizer.kind_name() + " tokenizer, step " +
                                  std::to_string(handle->state.step));
        *out = handle.release();
    });
}

tg_status tg_gpt_free(tg_gpt* model) {
    delete model;
    return TG_OK;
}

tg_status tg_gpt_get_config(tg_context* ctx, const tg_gpt* model, tg_gpt_config* out) {
    return call(ctx, "tg_gpt_get_config", [&] {
        const tg::nn::GPTConfig& g = model_of(model).model->config;
        require(out, "out");
        tg_gpt_config c;
        tg_gpt_config_init(&c);
        c.block_size = g.block_size;
        c.n_layer = g.n_layer;
        c.n_head = g.n_head;
        c.n_embd = g.n_embd;
        c.dropout = g.dropout;
        c.attention = attention_mode_to_c(g.attention.mode);
        c.degree = g.attention.degree;
        c.qk_layernorm = g.qk_layernorm ? 1 : 0;
        c.rope = g.rope ? 1 : 0;
        *out = c;
    });
}

tg_status tg_gpt_vocab_size(tg_context* ctx, const tg_gpt* model, int64_t* out) {
    return call(ctx, "tg_gpt_vocab_size", [&] {
        const tg_gpt& m = model_of(model);
        require(out, "out");
        *out = m.model->config.vocab_size;
    });
}

tg_status tg_gpt_step(tg_context* ctx, const tg_gpt* model, int64_t* out) {
    return call(ctx, "tg_gpt_step", [&] {
        const tg_gpt& m = model_of(model);
        require(out, "out");
        *out = m.state.step;
    });
}

tg_status tg_gpt_tokenize(tg_context* ctx, const tg_gpt* model, const char* text, size_t length, int64_t* ids,
                          size_t capacity, size_t* count) {
    return call(ctx, "tg_gpt_tokenize", [&] {
        const tg_gpt& m = model_of(model);
        require(count, "count");
        if (length > 0) require(text, "text");
        // Strict: a character the vocabulary lacks is an error naming it, not a silent unknown token.
        const std::vector<std::int64_t> tokens = m.tokenizer.encode_strict(std::string(text == nullptr ? "" : text, length));
        if (ids != nullptr && capacity < tokens.size()) {
            *count = tokens.size();
            throw BufferTooSmall("the text has " + std::to_string(tokens.size()) + " tokens, ids holds only " +
                                 std::to_string(capacity));
        }
        if (ids != nullptr && !tokens.empty()) std::memcpy(ids, tokens.data(), tokens.size() * sizeof(int64_t));
        *count = tokens.size();
    });
}

tg_status tg_gpt_detokenize(tg_context* ctx, const tg_gpt* model, const int64_t* ids, size_t count, char* text,
                            size_t capacity, size_t* length) {
    return call(ctx, "tg_gpt_detokenize", [&] {
        const tg_gpt& m = model_of(model);
        require(length, "length");
        if (count > 0) require(ids, "ids");
        const std::string s = m.tokenizer.decode(std::vector<std::int64_t>(ids, ids + count));
        if (text == nullptr || capacity < s.size() + 1) {
            *length = s.size();
            if (text == nullptr) return;  // only asking for the length
            throw BufferTooSmall("the text needs " + std::to_string(s.size() + 1) + " bytes with its NUL, text holds " +
                                 std::to_string(capacity));
        }
        std::memcpy(text, s.data(), s.size());
        text[s.size()] = '\0';
        *length = s.size();
    });
}

tg_status tg_sampling_options_init(tg_sampling_options* options) {
    return init_options(options, "tg_sampling_options_init", [](tg_sampling_options& o) {
        o.temperature = 1.0;
        o.top_k = 0;
        o.use_seed = 0;
        o.seed = 0;
    });
}

tg_status tg_gpt_generate(tg_context* ctx, tg_gpt* model, const int64_t* prompt, size_t prompt_count,
                          int64_t max_new_tokens, const tg_sampling_options* options, tg_token_fn on_token,
                          void* user, int64_t* out, size_t out_capacity, size_t* out_count) {
    return call(ctx, "tg_gpt_generate", [&] {
        tg_gpt& m = const_cast<tg_gpt&>(model_of(model));
        const tg_sampling_options o = read_options(options, tg_sampling_options_init, "options");
        if (prompt_count < 1) throw InvalidArgument("the prompt must have at least one token, got 0");
        require(prompt, "prompt");
        if (max_new_tokens < 0) {
            throw InvalidArgument("max_new_tokens must be >= 0, got " + std::to_string(max_new_tokens));
        }
        tg::nn::SamplingOptions sampling;
        sampling.temperature = o.temperature;
        sampling.top_k = o.top_k;
        // Without a seed of its own, the draw's seed comes from the context's generator, so successive calls
        // differ and tg_context_set_seed makes the whole sequence reproducible.
        if (o.use_seed != 0) {
            sampling.seed = o.seed;
        } else {
            const tg::GeneratorState at = ctx->generator.reserve(1);
            const tg::PhiloxCounter words = tg::philox_block(at.seed, at.offset);
            sampling.seed = (static_cast<std::uint64_t>(words[0]) << 32) | words[1];
        }

        std::vector<std::int64_t> generated;
        tg::data::TokenStreamDecoder stream(m.tokenizer);
        const auto deliver = [&](std::int64_t token, const std::string& text) {
            if (on_token != nullptr && on_token(user, token, text.c_str(), text.size()) != 0) throw StopGeneration{};
        };
        try {
            tg::nn::generate(*m.model, std::vector<std::int64_t>(prompt, prompt + prompt_count), max_new_tokens,
                             sampling, [&](std::int64_t token) {
                                 generated.push_back(token);
                                 deliver(token, stream.push(token));
                             });
            // A character still unfinished at the end: its bytes, once, with token -1.
            const std::string rest = stream.finish();
            if (!rest.empty()) deliver(-1, rest);
        } catch (const StopGeneration&) {
            // The host asked to stop: not an error; the tokens so far are the result.
        }
        if (out != nullptr) {
            const std::size_t n = std::min(out_capacity, generated.size());
            std::copy_n(generated.begin(), n, out);
        }
        if (out_count != nullptr) *out_count = generated.size();
    });
}

tg_status tg_gpt_logits(tg_context* ctx, tg_gpt* model, const int64_t* tokens, int64_t B, int64_t T, float* logits,
                        size_t capacity) {
    return call(ctx, "tg_gpt_logits", [&] {
        tg_gpt& m = const_cast<tg_gpt&>(model_of(model));
        if (B < 1 || T < 1) {
            throw ShapeError("B and T must be >= 1, got B = " + std::to_string(B) + ", T = " + std::to_string(T));
        }
        const std::int64_t V = m.model->config.vocab_size;
        const auto needed = static_cast<std::size_t>(B * T * V);
        require(logits, "logits");
        if (capacity < needed) {
            throw BufferTooSmall("logits holds " + std::to_string(capacity) + " floats, [B, T, V] = [" +
                                 std::to_string(B) + ", " + std::to_string(T) + ", " + std::to_string(V) +
                                 "] needs " + std::to_string(needed));
        }
        const tg::Tensor idx = ids_tensor(tokens, B, T, "tokens");
        tg::NoGradGuard no_grad;
        const bool was_training = m.model->is_training();
        m.model->eval();
        tg::Tensor out;
        try {
            out = m.model->forward(idx).contiguous();
        } catch (...) {
            m.model->train(was_training);
            throw;
        }
        m.model->train(was_training);
        std::memcpy(logits, out.data<float>(), needed * sizeof(float));
    });
}

tg_status tg_gpt_score(tg_context* ctx, tg_gpt* model, const char* text, size_t length, double* log_likelihood,
                       int64_t* predicted) {
    return call(ctx, "tg_gpt_score", [&] {
        tg_gpt& m = const_cast<tg_gpt&>(model_of(model));
        require(log_likelihood, "log_likelihood");
        if (length > 0) require(text, "text");
        const std::vector<std::int64_t> ids = m.tokenizer.encode_strict(std::string(text == nullptr ? "" : text, length));
        const auto n = static_cast<std::int64_t>(ids.size());
        if (n < 2) {
            throw InvalidArgument("the text has " + std::to_string(n) + " token(s); scoring needs at least 2");
        }
        tg::NoGradGuard no_grad;
        const bool was_training = m.model->is_training();
        m.model->eval();
        double total = 0.0;
        try {
            // Windows of at most block_size predictions: window [s, s + len) predicts tokens s+1 .. s+len.
            const std::int64_t window = m.model->config.block_size;
            for (std::int64_t s = 0; s < n - 1; s += window) {
                const std::int64_t len = std::min(window, n - 1 - s);
                const tg::Tensor x = tg::from_data(ids.data() + s, tg::Shape{1, len});
                const tg::Tensor logp = tg::log_softmax(m.model->forward(x), -1);  // (1, len, V)
                const std::vector<double> lp = logp.to_vector<double>();
                const std::int64_t V = m.model->config.vocab_size;
                for (std::int64_t t = 0; t < len; ++t) total += lp[static_cast<std::size_t>(t * V + ids[s + t + 1])];
            }
        } catch (...) {
            m.model->train(was_training);
            throw;
        }
        m.model->train(was_training);
        *log_likelihood = total;
        if (predicted != nullptr) *predicted = n - 1;
    });
}

}  // extern "C"
