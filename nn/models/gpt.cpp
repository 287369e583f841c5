// tg::nn::GPT: the config (checks and JSON), the model's construction with GPT-2's initialisation, the forward
// pass and the loss, and incremental decoding with a KV cache.

#include "nn/models/gpt.h"

#include "core/grad_mode.h"
#include "core/ops.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/functional.h"
#include "nn/init.h"
#include "nn/layernorm.h"
#include "nn/transformer_block.h"
#include "nn/module_list.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>
#include <string>

namespace tg::nn {

using functional::AttentionGradient;
using functional::AttentionMode;
using functional::AttentionOptions;

// ---- GPTConfig ------------------------------------------------------------------------------------------------

namespace {

std::string num(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}

// `field` names the options in errors, e.g. "GPTConfig: attention" or "GPT::set_attention: options".
void check_attention(const AttentionOptions& a, const std::string& field) {
    if (a.degree < 1 || a.degree > 4 || a.degree % 2 != 0) {
        throw ValueError(field + ".degree must be 2 or 4 (an even degree in 1..4), got " +
                         std::to_string(a.degree));
    }
    if (a.chunk < 1) throw ValueError(field + ".chunk must be >= 1, got " + std::to_string(a.chunk));
    if (a.window < 0 || a.sinks < 0) {
        throw ValueError(field + ".window and .sinks must be >= 0, got " + std::to_string(a.window) + " and " +
                         std::to_string(a.sinks));
    }
    if (!(a.auto_tolerance > 0.0) || !std::isfinite(a.auto_tolerance)) {
        throw ValueError(field + ".auto_tolerance must be a finite number > 0, got " +
                         num(a.auto_tolerance));
    }
    if (a.scale && (!(*a.scale > 0.0) || !std::isfinite(*a.scale))) {
        throw ValueError(field + ".scale must be a finite number > 0, got " + num(*a.scale));
    }
}

}  // namespace

void GPTConfig::validate() const {
    auto positive = [](const char* field, std::int64_t v) {
        if (v < 1) throw ValueError(std::string("GPTConfig: ") + field + " must be >= 1, got " + std::to_string(v));
    };
    positive("vocab_size", vocab_size);
    positive("block_size", block_size);
    positive("n_layer", n_layer);
    positive("n_head", n_head);
    positive("n_embd", n_embd);
    if (n_embd % n_head != 0) {
        throw ValueError("GPTConfig: n_embd must be a multiple of n_head, got n_embd=" + std::to_string(n_embd) +
                         ", n_head=" + std::to_string(n_head));
    }
    const std::int64_t D = n_embd / n_head;
    if (D > 256) {
        throw ValueError("GPTConfig: the head width n_embd / n_head must be <= 256 (the attention kernel's limit), "
                         "got " + std::to_string(D));
    }
    if (!(dropout >= 0.0 && dropout < 1.0)) throw ValueError("GPTConfig: dropout must be in [0, 1), got " + num(dropout));
    if (!(qk_temperature > 0.0) || !std::isfinite(qk_temperature)) {
        throw ValueError("GPTConfig: qk_temperature must be a finite number > 0, got " + num(qk_temperature));
    }
    if (rope && D % 2 != 0) {
        throw ValueError("GPTConfig: rope needs an even head width n_embd / n_head, got " + std::to_string(D));
    }
    if (!(rope_base > 1.0) || !std::isfinite(rope_base)) {
        throw ValueError("GPTConfig: rope_base must be a finite number > 1, got " + num(rope_base));
    }
    check_attention(attention, "GPTConfig: attention");
    if (!layer_attention.empty() && static_cast<std::int64_t>(layer_attention.size()) != n_layer) {
        throw ValueError("GPTConfig: layer_attention must be empty or have n_layer = " + std::to_string(n_layer) +
                         " entries, got " + std::to_string(layer_attention.size()));
    }
    for (std::size_t i = 0; i < layer_attention.size(); ++i) {
        check_attention(layer_attention[i], "GPTConfig: layer_attention[" + std::to_string(i) + "]");
    }
}

namespace {

using json = nlohmann::ordered_json;

// Attention modes and gradient formulas by name (nn/attention.h), with the config named in errors.
AttentionMode mode_from_name(const std::string& name) {
    try {
        return functional::attention_mode_from_string(name);
    } catch (const ValueError& e) {
        throw ValueError(std::string("GPTConfig::from_json: ") + e.what());
    }
}
AttentionGradient gradient_from_name(const std::string& name) {
    try {
        return functional::attention_gradient_from_string(name);
    } catch (const ValueError& e) {
        throw ValueError(std::string("GPTConfig::from_json: ") + e.what());
    }
}

// What config.json stores of an attention: everything but causal (always on), the monitor and its label.
json attention_to_json(const AttentionOptions& a) {
    json j;
    j["mode"] = functional::to_string(a.mode);
    j["degree"] = a.degree;
    j["gradient"] = functional::to_string(a.gradient);
    j["chunk"] = a.chunk;
    j["window"] = a.window;
    j["sinks"] = a.sinks;
    if (a.auto_window) j["auto_window"] = true;  // absent when false, so older readers keep reading the file
    j["auto_tolerance"] = a.auto_tolerance;
    j["scale"] = a.scale ? json(*a.scale) : json(nullptr);
    return j;
}

// Typed field readers: a missing required field, a wrong type or an unknown key is a ValueError naming it.
void check_keys(const json& j, const std::string& where, const std::set<std::string>& known) {
    if (!j.is_object()) throw ValueError("GPTConfig::from_json: " + where + " must be a JSON object");
    for (const auto& item : j.items()) {
        if (!known.count(item.key())) {
            throw ValueError("GPTConfig::from_json: unknown field '" + item.key() + "' in " + where);
        }
    }
}
std::int64_t get_int(const json& j, const char* key, std::int64_t fallback, bool required) {
    if (!j.contains(key)) {
        if (required) throw ValueError(std::string("GPTConfig::from_json: missing field '") + key + "'");
        return fallback;
    }
    if (!j[key].is_number_integer()) throw ValueError(std::string("GPTConfig::from_json: '") + key + "' must be an integer");
    return j[key].get<std::int64_t>();
}
double get_double(const json& j, const char* key, double fallback) {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_number()) throw ValueError(std::string("GPTConfig::from_json: '") + key + "' must be a number");
    return j[key].get<double>();
}
bool get_bool(const json& j, const char* key, bool fallback) {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_boolean()) throw ValueError(std::string("GPTConfig::from_json: '") + key + "' must be true or false");
    return j[key].get<bool>();
}
std::string get_string(const json& j, const char* key, const std::string& fallback) {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_string()) throw ValueError(std::string("GPTConfig::from_json: '") + key + "' must be a string");
    return j[key].get<std::string>();
}

AttentionOptions attention_from_json(const json& j, const std::string& where) {
    check_keys(j, where, {"mode", "degree", "gradient", "chunk", "window", "sinks", "auto_window", "auto_tolerance", "scale"});
    AttentionOptions a;
    a.causal = true;
    a.mode = mode_from_name(get_string(j, "mode", "exact"));
    a.degree = static_cast<int>(get_int(j, "degree", a.degree, false));
    a.gradient = gradient_from_name(get_string(j, "gradient", functional::to_string(a.gradient)));
    a.chunk = get_int(j, "chunk", a.chunk, false);
    a.window = get_int(j, "window", 0, false);  // absent in configs from before the near-exact window
    a.sinks = get_int(j, "sinks", 0, false);
    a.auto_window = get_bool(j, "auto_window", false);
    a.auto_tolerance = get_double(j, "auto_tolerance", a.auto_tolerance);
    if (j.contains("scale") && !j["scale"].is_null()) a.scale = get_double(j, "scale", 0.0);
    return a;
}

}  // namespace

std::string GPTConfig::to_json() const {
    json j;
    j["vocab_size"] = vocab_size;
    j["block_size"] = block_size;
    j["n_layer"] = n_layer;
    j["n_head"] = n_head;
    j["n_embd"] = n_embd;
    j["dropout"] = dropout;
    j["bias"] = bias;
    j["qk_layernorm"] = qk_layernorm;
    j["qk_temperature"] = qk_temperature;
    j["rope"] = rope;
    j["rope_base"] = rope_base;
    j["attention"] = attention_to_json(attention);
    j["layer_attention"] = json::array();
    for (const auto& a : layer_attention) j["layer_attention"].push_back(attention_to_json(a));
    return j.dump(2);
}

// The five architecture sizes are required; every other field falls back to its default when absent.
GPTConfig GPTConfig::from_json(const std::string& text) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw ValueError(std::string("GPTConfig::from_json: not valid JSON: ") + e.what());
    }
    check_keys(j, "the model config",
               {"vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", "qk_layernorm",
                "qk_temperature", "rope", "rope_base", "attention", "layer_attention"});
    GPTConfig c;
    c.vocab_size = get_int(j, "vocab_size", 0, true);
    c.block_size = get_int(j, "block_size", 0, true);
    c.n_layer = get_int(j, "n_layer", 0, true);
    c.n_head = get_int(j, "n_head", 0, true);
    c.n_embd = get_int(j, "n_embd", 0, true);
    c.dropout = get_double(j, "dropout", c.dropout);
    c.bias = get_bool(j, "bias", c.bias);
    c.qk_layernorm = get_bool(j, "qk_layernorm", c.qk_layernorm);
    c.qk_temperature = get_double(j, "qk_temperature", c.qk_temperature);
    c.rope = get_bool(j, "rope", c.rope);
    c.rope_base = get_double(j, "rope_base", c.rope_base);
    if (j.contains("attention")) c.attention = attention_from_json(j["attention"], "attention");
    c.attention.causal = true;
    if (j.contains("layer_attention")) {
        if (!j["layer_attention"].is_array()) {
            throw ValueError("GPTConfig::from_json: 'layer_attention' must be an array");
        }
        for (std::size_t i = 0; i < j["layer_attention"].size(); ++i) {
            c.layer_attention.push_back(
                attention_from_json(j["layer_attention"][i], "layer_attention[" + std::to_string(i) + "]"));
        }
    }
    c.validate();
    return c;
}

// ---- GPT -------------------------------------------------------------------------------------------------------

namespace {

// A GPT-2 block: causal attention with the config's QK-LayerNorm and RoPE, an MLP of width 4C with GELU(tanh).
TransformerBlockConfig block_config(const GPTConfig& config) {
    TransformerBlockConfig b;
    b.attention.embed_dim = config.n_embd;
    b.attention.num_heads = config.n_head;
    b.attention.causal = true;
    b.attention.dropout = config.dropout;
    b.attention.bias = config.bias;
    b.attention.qk_layernorm = config.qk_layernorm;
    b.attention.qk_temperature = config.qk_temperature;
    b.attention.rope = config.rope;
    b.attention.rope_base = config.rope_base;
    b.attention.attention = config.attention;
    b.mlp_hidden = 4 * config.n_embd;
    b.gelu = GeluApproximation::Tanh;
    return b;
}

}  // namespace

GPT::GPT(const GPTConfig& config_in, DType dtype) : config(config_in) {
    config.validate();
    config.attention.causal = true;
    const std::int64_t V = config.vocab_size, C = config.n_embd;
    wte = register_module("wte", std::make_shared<Embedding>(V, C, dtype));
    if (!config.rope) wpe = register_module("wpe", std::make_shared<Embedding>(config.block_size, C, dtype));
    drop = register_module("drop", std::make_shared<Dropout>(config.dropout));
    auto list = register_module("blocks", std::make_shared<ModuleList>());
    for (std::int64_t i = 0; i < config.n_layer; ++i) {
        blocks.push_back(list->push_back(std::make_shared<TransformerBlock>(block_config(config), dtype)));
    }
    ln_f = register_module("ln_f", make_layer_norm(C, config.bias, dtype));
    if (!config.layer_attention.empty()) {
        for (std::int64_t i = 0; i < config.n_layer; ++i) set_attention(config.layer_attention[static_cast<std::size_t>(i)], i);
    } else {
        set_attention(config.attention);
    }

    // GPT-2's initialisation (Radford et al. 2019, as nanoGPT writes it): every Linear and Embedding weight
    // ~ N(0, 0.02), biases 0, LayerNorms 1 and 0. The residual projections (attn.proj, mlp.proj) get
    // std 0.02/sqrt(2·n_layer): each block adds two of them to the residual stream, so with n_layer blocks the
    // variance of the stream grows with 2·n_layer sums, and this scale keeps its total in check.
    const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config.n_layer));
    for (const auto& block : blocks) {
        for (const auto& linear : {block->attn->qkv, block->attn->proj, block->mlp->fc, block->mlp->proj}) {
            const bool residual = linear == block->attn->proj || linear == block->mlp->proj;
            init::normal_(linear->weight, 0.0, residual ? residual_std : 0.02);
            if (linear->bias.defined()) init::zeros_(linear->bias);
        }
    }
    init::normal_(wte->weight, 0.0, 0.02);
    if (wpe) init::normal_(wpe->weight, 0.0, 0.02);
}

std::string GPT::extra_repr() const {
    std::ostringstream os;
    os << "vocab_size=" << config.vocab_size << ", block_size=" << config.block_size << ", n_layer=" << config.n_layer
       << ", n_head=" << config.n_head << ", n_embd=" << config.n_embd;
    if (config.dropout > 0) os << ", dropout=" << config.dropout;
    if (!config.bias) os << ", bias=false";
    if (config.rope) os << ", rope=true";
    if (config.qk_layernorm) os << ", qk_layernorm=true";
    return os.str();
}

namespace {

// idx must be (B, T) integer ids in [0, V) with 1 <= T <= max_T; `what` names the call in errors.
void check_idx(const Tensor& idx, std::int64_t V, std::int64_t max_T, const std::string& what) {
    if (!idx.defined() || idx.dim() != 2) {
        throw ShapeError(what + ": expected idx [B, T] of token ids, got " +
                         (idx.defined() ? to_string(idx.shape()) : std::string("an undefined tensor")));
    }
    if (idx.dtype() != kInt64 && idx.dtype() != kInt32) {
        throw DTypeError(what + ": token ids must be int64 (or int32), got " + idx.describe());
    }
    const std::int64_t T = idx.size(1);
    if (T < 1 || T > max_T) {
        throw ShapeError(what + ": sequence length T = " + std::to_string(T) + " of idx " + to_string(idx.shape()) +
                         " must be in [1, " + std::to_string(max_T) + "]");
    }
    const std::vector<std::int64_t> ids = idx.to_vector<std::int64_t>();
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= V) {
            const auto n = static_cast<std::int64_t>(i);
            throw IndexError(what + ": token id " + std::to_string(ids[i]) + " at [" + std::to_string(n / T) + ", " +
                             std::to_string(n % T) + "] of idx " + to_string(idx.shape()) +
                             " is outside the vocabulary [0, " + std::to_string(V) + ")");
        }
    }
}

}  // namespace

Tensor GPT::forward(const Tensor& idx) {
    check_idx(idx, config.vocab_size, config.block_size, "GPT");
    const std::int64_t T = idx.size(1);
    Tensor x = wte->forward(idx);  // (B, T, C) token embeddings
    // Learned positions 0..T−1: the first T rows of wpe, a view that broadcasts over the batch.
    if (wpe) x = x + wpe->weight.narrow(0, 0, T);  // (B, T, C) + (T, C)
    x = drop->forward(x);
    for (const auto& block : blocks) x = block->forward(x);  // (B, T, C)
    x = ln_f->forward(x);
    // LM head tied to the token embedding: logits = x · wteᵀ, as a bias-free linear layer with weight wte, so
    // its backward writes dW in wte's own (V, C) layout (a matmul with wte.t() would give a transposed view).
    // wte.weight feeds two nodes (embedding and this one); the engine adds both gradients into wte.weight.grad.
    return functional::linear(x, wte->weight);  // (B, T, V)
}

Tensor GPT::loss(const Tensor& idx, const Tensor& targets) {
    if (!targets.defined() || !idx.defined() || targets.shape() != idx.shape()) {
        throw ShapeError("GPT::loss: targets " +
                         (targets.defined() ? to_string(targets.shape()) : std::string("(undefined)")) +
                         " must have the shape of idx " +
                         (idx.defined() ? to_string(idx.shape()) : std::string("(undefined)")));
    }
    const Tensor logits = forward(idx);  // (B, T, V)
    // One fused node over all B·T positions: mean of −log softmax(logits)[target].
    return functional::cross_entropy(logits.view({-1, config.vocab_size}), targets.reshape({-1}));
}

void GPT::set_attention(const AttentionOptions& options, std::int64_t layer) {
    if (layer < -1 || layer >= config.n_layer) {
        throw IndexError("GPT::set_attention: layer " + std::to_string(layer) + " is out of range for " +
                         std::to_string(config.n_layer) + " layers (or -1 for all)");
    }
    check_attention(options, "GPT::set_attention: options");
    for (std::int64_t i = 0; i < config.n_layer; ++i) {
        if (layer != -1 && i != layer) continue;
        AttentionOptions& current = blocks[static_cast<std::size_t>(i)]->attn->options;
        // Keep the attached monitor and the layer's label unless the new options bring their own.
        AttentionOptions next = options;
        next.causal = true;
        if (!next.monitor) next.monitor = current.monitor;
        next.label = options.label.empty() ? "blocks." + std::to_string(i) + ".attn" : options.label;
        current = next;
    }
}

void GPT::set_attention_monitor(std::shared_ptr<AttentionMonitor> monitor) {
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        AttentionOptions& o = blocks[i]->attn->options;
        o.monitor = monitor;
        o.label = "blocks." + std::to_string(i) + ".attn";
    }
}

// ---- KV cache ----------------------------------------------------------------------------------------------------

GPT::KVCache GPT::make_cache(std::int64_t batch) const {
    if (batch < 1) throw ValueError("GPT::make_cache: batch must be >= 1, got " + std::to_string(batch));
    const std::int64_t H = config.n_head, D = config.n_embd / config.n_head;
    KVCache cache;
    for (std::int64_t i = 0; i < config.n_layer; ++i) {
        // Uninitialised: only positions < length are ever read.
        cache.keys.push_back(empty({batch, H, config.block_size, D}, wte->weight.dtype()));
        cache.values.push_back(empty({batch, H, config.block_size, D}, wte->weight.dtype()));
    }
    return cache;
}

Tensor GPT::forward_cached(const Tensor& idx, KVCache& cache) {
    const std::int64_t L = cache.length;
    if (static_cast<std::int64_t>(cache.keys.size()) != config.n_layer || cache.values.size() != cache.keys.size() ||
        L < 0) {
        throw ValueError("GPT::forward_cached: the cache has " + std::to_string(cache.keys.size()) +
                         " layers and length " + std::to_string(L) + "; make it with make_cache() for " +
                         std::to_string(config.n_layer) + " layers");
    }
    const std::int64_t capacity = std::min(config.block_size, cache.keys.front().size(2));
    if (L >= capacity) {
        throw ShapeError("GPT::forward_cached: the cache is full (" + std::to_string(L) + " of " +
                         std::to_string(capacity) + " positions); start a new one from a shorter window");
    }
    check_idx(idx, config.vocab_size, capacity - L, "GPT::forward_cached (cache length " + std::to_string(L) + ")");
    if (idx.size(0) != cache.keys.front().size(0)) {
        throw ShapeError("GPT::forward_cached: idx " + to_string(idx.shape()) + " has batch " +
                         std::to_string(idx.size(0)) + " but the cache was made for batch " +
                         std::to_string(cache.keys.front().size(0)));
    }
    NoGradGuard no_grad;
    const std::int64_t Tnew = idx.size(1);
    Tensor x = wte->forward(idx);                        // (B, Tnew, C)
    if (wpe) x = x + wpe->weight.narrow(0, L, Tnew);     // positions L .. L+Tnew−1
    x = drop->forward(x);
    for (std::size_t i = 0; i < blocks.size(); ++i) x = blocks[i]->forward_cached(x, cache.keys[i], cache.values[i], L);
    x = ln_f->forward(x);
    cache.length = L + Tnew;
    return functional::linear(x, wte->weight);  // (B, Tnew, V), the tied LM head as in forward()
}

}  // namespace tg::nn
