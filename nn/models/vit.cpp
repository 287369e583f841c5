// tg::nn::ViT: patch embedding, class token, position embeddings, pre-LN blocks, pooling, linear head.

#include "nn/models/vit.h"

#include "core/grad_mode.h"
#include "core/error.h"
#include "core/ops.h"
#include "nn/functional.h"
#include "nn/init.h"
#include "nn/layernorm.h"
#include "nn/json_integer.h"
#include "nn/linear.h"
#include "nn/module_list.h"
#include "nn/transformer_block.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

namespace tg::nn {

// ---- config ------------------------------------------------------------------------------------------------

void ViTConfig::validate() const {
    const auto fail = [](const std::string& what) { throw ValueError("ViTConfig: " + what); };
    if (image_size <= 0 || patch_size <= 0 || image_size % patch_size != 0) {
        fail("image_size must be a positive multiple of patch_size, got image_size=" + std::to_string(image_size) +
             ", patch_size=" + std::to_string(patch_size));
    }
    if (channels <= 0) fail("channels must be positive, got " + std::to_string(channels));
    if (num_classes < 2) fail("num_classes must be at least 2, got " + std::to_string(num_classes));
    if (n_layer <= 0) fail("n_layer must be positive, got " + std::to_string(n_layer));
    if (n_head <= 0 || n_embd <= 0 || n_embd % n_head != 0) {
        fail("n_embd must be a positive multiple of n_head, got n_embd=" + std::to_string(n_embd) +
             ", n_head=" + std::to_string(n_head));
    }
    if (mlp_hidden <= 0) fail("mlp_hidden must be positive, got " + std::to_string(mlp_hidden));
    if (!(dropout >= 0.0 && dropout < 1.0)) fail("dropout must be in [0, 1), got " + std::to_string(dropout));
    if (pool != "cls" && pool != "mean") fail("pool must be \"cls\" or \"mean\", got \"" + pool + "\"");
    if (!(input_std > 0.0) || !std::isfinite(input_mean)) fail("input_std must be positive and input_mean finite");
}

std::string ViTConfig::to_json() const {
    nlohmann::ordered_json j;
    j["image_size"] = image_size;
    j["patch_size"] = patch_size;
    j["channels"] = channels;
    j["num_classes"] = num_classes;
    j["n_layer"] = n_layer;
    j["n_head"] = n_head;
    j["n_embd"] = n_embd;
    j["mlp_hidden"] = mlp_hidden;
    j["dropout"] = dropout;
    j["pool"] = pool;
    j["input_mean"] = input_mean;
    j["input_std"] = input_std;
    j["attention"] = {{"mode", functional::to_string(attention.mode)},
                      {"degree", attention.degree},
                      {"gradient", functional::to_string(attention.gradient)}};
    return j.dump(2);
}

ViTConfig ViTConfig::from_json(const std::string& text) {
    ViTConfig c;
    const auto integer = [](const nlohmann::json& j, const char* key) {  // a whole number (nn/json_integer.h)
        const nlohmann::json& v = j.at(key);
        const std::optional<std::int64_t> n = json_integer<std::int64_t>(v);
        if (!n) {
            throw ValueError(std::string("ViTConfig::from_json: \"") + key + "\" must be an integer, got " + v.dump());
        }
        return *n;
    };
    try {
        const nlohmann::json j = nlohmann::json::parse(text);
        c.image_size = integer(j, "image_size");
        c.patch_size = integer(j, "patch_size");
        c.channels = integer(j, "channels");
        c.num_classes = integer(j, "num_classes");
        c.n_layer = integer(j, "n_layer");
        c.n_head = integer(j, "n_head");
        c.n_embd = integer(j, "n_embd");
        c.mlp_hidden = integer(j, "mlp_hidden");
        c.dropout = j.at("dropout").get<double>();
        c.pool = j.at("pool").get<std::string>();
        c.input_mean = j.at("input_mean").get<double>();
        c.input_std = j.at("input_std").get<double>();
        const auto& a = j.at("attention");
        c.attention.mode = functional::attention_mode_from_string(a.at("mode").get<std::string>());
        const std::int64_t degree = integer(a, "degree");
        if (!std::in_range<int>(degree)) {
            throw ValueError("ViTConfig::from_json: \"degree\" " + std::to_string(degree) + " is out of range");
        }
        c.attention.degree = static_cast<int>(degree);
        c.attention.gradient = functional::attention_gradient_from_string(a.at("gradient").get<std::string>());
    } catch (const nlohmann::json::exception& e) {
        throw ValueError(std::string("ViTConfig::from_json: malformed or incomplete config: ") + e.what());
    }
    c.validate();
    return c;
}

// ---- the blocks -------------------------------------------------------------------------------------------------

namespace {

// A ViT block: attention over all tokens (not causal), an MLP of width mlp_hidden with exact GELU.
TransformerBlockConfig block_config(const ViTConfig& config) {
    TransformerBlockConfig b;
    b.attention.embed_dim = config.n_embd;
    b.attention.num_heads = config.n_head;
    b.attention.causal = false;
    b.attention.dropout = config.dropout;
    b.attention.bias = true;
    b.attention.attention = config.attention;
    b.mlp_hidden = config.mlp_hidden;
    b.gelu = GeluApproximation::None;
    return b;
}

}  // namespace

// ---- the model -----------------------------------------------------------------------------------------------

ViT::ViT(const ViTConfig& cfg, DType dtype) : config(cfg) {
    config.validate();
    const std::int64_t E = config.n_embd;
    const std::int64_t patch_dim = config.channels * config.patch_size * config.patch_size;
    cls_token = register_parameter("cls_token", zeros({1, 1, E}, dtype));
    pos_embed = register_parameter("pos_embed", zeros({1, config.num_tokens(), E}, dtype));
    patch_embed = register_module("patch_embed", std::make_shared<Linear>(patch_dim, E, true, dtype));
    auto list = register_module("blocks", std::make_shared<ModuleList>());
    for (std::int64_t i = 0; i < config.n_layer; ++i) {
        blocks.push_back(list->push_back(std::make_shared<TransformerBlock>(block_config(config), dtype)));
    }
    ln_f = register_module("ln_f", std::make_shared<LayerNorm>(E, 1e-5, true, dtype));
    head = register_module("head", std::make_shared<Linear>(E, config.num_classes, true, dtype));
    set_attention(config.attention);

    // Initialisation as in timm's ViT: every Linear weight and the token/position embeddings ~ N(0, 0.02),
    // biases 0 (LayerNorms start at weight 1, bias 0).
    NoGradGuard no_grad;
    init::normal_(cls_token, 0.0, 0.02);
    init::normal_(pos_embed, 0.0, 0.02);
    for (const auto& [name, module] : named_modules()) {
        if (const auto* linear = dynamic_cast<const Linear*>(module)) {
            init::normal_(linear->weight, 0.0, 0.02);
            if (linear->bias.defined()) init::zeros_(linear->bias);
        }
    }
}

std::string ViT::extra_repr() const {
    std::ostringstream os;
    os << "image_size=" << config.image_size << ", patch_size=" << config.patch_size << ", tokens=" << config.num_tokens()
       << ", pool=" << config.pool << ", attention=" << functional::to_string(config.attention.mode);
    return os.str();
}

void ViT::set_attention(const functional::AttentionOptions& options) {
    config.attention = options;
    config.attention.causal = false;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        blocks[i]->attn->options = config.attention;
        blocks[i]->attn->options.label = "blocks." + std::to_string(i) + ".attn";
    }
}

Tensor ViT::as_batch(const Tensor& images) const {
    const std::int64_t S = config.image_size, C = config.channels;
    if (images.dim() == 3 && C == 1 && images.size(1) == S && images.size(2) == S) return images.unsqueeze(1);
    if (images.dim() == 4 && images.size(1) == C && images.size(2) == S && images.size(3) == S) return images;
    throw ShapeError("ViT: expected images [B, " + std::to_string(C) + ", " + std::to_string(S) + ", " +
                     std::to_string(S) + "]" + (C == 1 ? " or [B, " + std::to_string(S) + ", " + std::to_string(S) + "]" : "") +
                     ", got " + to_string(images.shape()));
}

Tensor ViT::patchify(const Tensor& images) const {
    const Tensor x = as_batch(images);
    const std::int64_t B = x.size(0), C = config.channels, G = config.grid(), P = config.patch_size;
    // (B, C, G·P, G·P) -> (B, C, G, P, G, P) -> (B, G, G, C, P, P) -> (B, G·G, C·P·P)
    return x.reshape({B, C, G, P, G, P}).permute({0, 2, 4, 1, 3, 5}).reshape({B, G * G, C * P * P});
}

Tensor ViT::embed(const Tensor& images) {
    const Tensor x = (as_batch(images) - config.input_mean) * (1.0 / config.input_std);  // normalised
    const Tensor tokens = patch_embed->forward(patchify(x));                                   // (B, N, E)
    const std::int64_t B = tokens.size(0), E = config.n_embd;
    return cat({cls_token.expand({B, 1, E}), tokens}, 1) + pos_embed;  // (B, N+1, E)
}

Tensor ViT::classify(const Tensor& x) {
    const Tensor h = ln_f->forward(x);                                          // (B, N+1, E)
    const Tensor pooled = config.pool == "cls" ? h.select(1, 0) : mean(h, {1});  // (B, E)
    return head->forward(pooled);                                               // (B, classes)
}

Tensor ViT::forward(const Tensor& images) {
    Tensor x = embed(images);
    for (const auto& block : blocks) x = block->forward(x);
    return classify(x);
}

Tensor ViT::loss(const Tensor& images, const Tensor& labels) {
    return functional::cross_entropy(forward(images), labels);
}

std::vector<Tensor> ViT::attention_maps(const Tensor& images) {
    NoGradGuard no_grad;
    std::vector<Tensor> maps;
    Tensor x = embed(images);
    for (const auto& block : blocks) {
        maps.push_back(block->attention_probabilities(x));
        x = block->forward(x);
    }
    return maps;
}

}  // namespace tg::nn
