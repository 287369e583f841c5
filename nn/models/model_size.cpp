#include "nn/models/model_size.h"

#include "core/error.h"

#include <initializer_list>
#include <string>

namespace tg::nn {

namespace {

// a · b · ..., or ValueError naming `what` if the product overflows.
std::uint64_t product(std::initializer_list<std::int64_t> factors, const char* what) {
    std::uint64_t p = 1;
    for (std::int64_t f : factors) {
        if (f < 0 || __builtin_mul_overflow(p, static_cast<std::uint64_t>(f), &p)) {
            throw ValueError(std::string(what) + ": the config's sizes overflow 64 bits (absurd values?)");
        }
    }
    return p;
}

std::uint64_t sum(std::initializer_list<std::uint64_t> terms, const char* what) {
    std::uint64_t s = 0;
    for (std::uint64_t t : terms) {
        if (__builtin_add_overflow(s, t, &s)) {
            throw ValueError(std::string(what) + ": the config's sizes overflow 64 bits (absurd values?)");
        }
    }
    return s;
}

std::int64_t as_count(std::uint64_t n, const char* what) {
    if (n > static_cast<std::uint64_t>(INT64_MAX)) {
        throw ValueError(std::string(what) + ": the config's sizes overflow 64 bits (absurd values?)");
    }
    return static_cast<std::int64_t>(n);
}

}  // namespace

std::int64_t gpt_parameter_count(const GPTConfig& c) {
    const char* what = "GPTConfig";
    const std::int64_t C = c.n_embd, b = c.bias ? 1 : 0;
    // A block (nn/models/gpt_block.h): ln1 and ln2 (weight, bias), qkv C -> 3C, proj C -> C, fc C -> 4C,
    // proj 4C -> C, each Linear with a bias when config.bias.
    const std::uint64_t layer_norm = product({C, 1 + b}, what);
    const std::uint64_t block = sum({2 * layer_norm, product({C, 3 * C}, what), product({3 * C, b}, what),
                                     product({C, C}, what), product({C, b}, what), product({C, 4 * C}, what),
                                     product({4 * C, b}, what), product({4 * C, C}, what), product({C, b}, what)},
                                    what);
    const std::uint64_t total = sum({product({c.vocab_size, C}, what),                  // wte (also the head)
                                     c.rope ? 0 : product({c.block_size, C}, what),       // wpe
                                     product({c.n_layer, static_cast<std::int64_t>(block)}, what), layer_norm},  // ln_f
                                    what);
    return as_count(total, what);
}

std::int64_t vit_parameter_count(const ViTConfig& c) {
    const char* what = "ViTConfig";
    const std::int64_t E = c.n_embd, M = c.mlp_hidden;
    const std::int64_t patch_dim = as_count(product({c.channels, c.patch_size, c.patch_size}, what), what);
    const std::int64_t tokens = c.patch_size > 0 ? (c.image_size / c.patch_size) * (c.image_size / c.patch_size) + 1 : 0;
    // A block: ln1, ln2 (weight, bias), attention qkv E -> 3E and proj E -> E with biases, MLP E -> M -> E.
    const std::uint64_t block = sum({product({4, E}, what), product({E + 1, 3 * E}, what), product({E + 1, E}, what),
                                     product({E + 1, M}, what), product({M + 1, E}, what)},
                                    what);
    const std::uint64_t total = sum({static_cast<std::uint64_t>(E),                  // cls_token
                                     product({tokens, E}, what),                    // pos_embed
                                     product({patch_dim + 1, E}, what),             // patch_embed
                                     product({c.n_layer, static_cast<std::int64_t>(block)}, what),
                                     product({2, E}, what),                          // ln_f
                                     product({E + 1, c.num_classes}, what)},          // head
                                    what);
    return as_count(total, what);
}

std::uint64_t gpt_activation_bytes(const GPTConfig& c, std::int64_t batch, std::int64_t seq, bool training) {
    const char* what = "GPT activations";
    // Forward: the residual stream and the widest intermediate (the MLP's 4C) plus the logits (B, T, V) and
    // their softmax. Backward keeps every layer's inputs: at least ~18 (B, T, C) tensors per layer (the
    // LayerNorm outputs, q/k/v, the attention output, the MLP's 4C hidden twice, the residuals).
    const std::uint64_t btc = product({batch, seq, c.n_embd}, what);
    const std::uint64_t logits = product({batch, seq, c.vocab_size, 2}, what);
    const std::uint64_t per_layer = product({static_cast<std::int64_t>(btc), training ? 18 : 6}, what);
    const std::uint64_t layers = training ? product({c.n_layer, static_cast<std::int64_t>(per_layer)}, what) : per_layer;
    return product({static_cast<std::int64_t>(sum({layers, logits}, what)), 4}, what);
}

std::uint64_t vit_activation_bytes(const ViTConfig& c, std::int64_t batch, bool training) {
    const char* what = "ViT activations";
    const std::int64_t tokens = c.patch_size > 0 ? (c.image_size / c.patch_size) * (c.image_size / c.patch_size) + 1 : 0;
    const std::uint64_t bte = product({batch, tokens, std::max(c.n_embd, c.mlp_hidden)}, what);
    const std::uint64_t per_layer = product({static_cast<std::int64_t>(bte), training ? 8 : 3}, what);
    const std::uint64_t layers = training ? product({c.n_layer, static_cast<std::int64_t>(per_layer)}, what) : per_layer;
    return product({static_cast<std::int64_t>(layers), 4}, what);
}

}  // namespace tg::nn
