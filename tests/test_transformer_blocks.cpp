// The shared transformer pieces (nn/multihead_attention.h, nn/feed_forward.h, nn/transformer_block.h) and the
// checkpoints written before GPT and ViT were rebuilt from them: tests/fixtures/checkpoints/*.safetensors were
// saved by the previous model classes (GPTAttention/GPTBlock, ViTBlock over the old MultiHeadAttention) with
// the logits they produced; they must load by name and give the same logits.

#include "core/grad_mode.h"
#include "core/ops.h"
#include "core/random.h"
#include "nn/attention.h"
#include "nn/feed_forward.h"
#include "nn/functional.h"
#include "nn/models/gpt.h"
#include "nn/models/vit.h"
#include "nn/multihead_attention.h"
#include "nn/rope.h"
#include "nn/serialization.h"
#include "nn/transformer_block.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <string>

#ifndef TG_TEST_DATA_DIR
#define TG_TEST_DATA_DIR "tests/fixtures"
#endif

namespace {

using namespace tg;
namespace F = tg::nn::functional;

double max_abs_diff(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    return max(abs(a.to(kFloat64) - b.to(kFloat64))).item();
}

// The file's model tensors (all but "test.*"), its test tensors by name, and its config text.
struct Fixture {
    NamedTensors weights;
    SafetensorsFile file;
    std::string config;
};

Fixture read_fixture(const std::string& name) {
    Fixture f;
    f.file = load_safetensors(std::string(TG_TEST_DATA_DIR) + "/checkpoints/" + name + ".safetensors");
    for (const auto& [key, t] : f.file.tensors) {
        if (key.rfind("test.", 0) != 0) f.weights.push_back({key, t});
    }
    f.config = f.file.metadata.at("config");
    return f;
}

// 0.5 h (1 + erf(h / sqrt 2)) element by element with std::erf.
Tensor gelu_erf_reference(const Tensor& h) {
    std::vector<double> values = h.contiguous().to_vector<double>();
    for (double& v : values) v = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    return from_vector(values, h.shape());
}

}  // namespace

TEST_SUITE("transformer blocks") {

TEST_CASE("GPT checkpoints saved before the shared blocks load by name and give the same logits") {
    for (const char* name : {"gpt_plain", "gpt_qkln_rope_nobias"}) {
        CAPTURE(name);
        const Fixture f = read_fixture(name);
        nn::GPT model(nn::GPTConfig::from_json(f.config));
        model.load_state_dict(f.weights);  // strict: every name and shape must match
        model.eval();
        const Tensor logits = model.forward(f.file.get("test.input"));
        const Tensor before = f.file.get("test.logits");
        INFO("max |difference| " << max_abs_diff(logits, before));
        CHECK(max_abs_diff(logits, before) < 1e-5);
        // The KV-cache path agrees with the saved logits too.
        nn::GPT::KVCache cache = model.make_cache(2);
        const Tensor idx = f.file.get("test.input");
        const Tensor cached = cat({model.forward_cached(idx.narrow(1, 0, 4), cache),
                                   model.forward_cached(idx.narrow(1, 4, 1), cache),
                                   model.forward_cached(idx.narrow(1, 5, 1), cache)}, 1);
        CHECK(max_abs_diff(cached, before) < 1e-5);
    }
}

TEST_CASE("a ViT checkpoint saved before the shared blocks loads by name and gives the same logits and maps") {
    const Fixture f = read_fixture("vit");
    nn::ViT model(nn::ViTConfig::from_json(f.config));
    model.load_state_dict(f.weights);
    model.eval();
    const Tensor images = f.file.get("test.input");
    CHECK(max_abs_diff(model.forward(images), f.file.get("test.logits")) < 1e-5);
    CHECK(max_abs_diff(model.attention_maps(images)[1], f.file.get("test.attention_map_1")) < 1e-6);
}

TEST_CASE("the default attention scale is 1/sqrt(D), written once") {
    F::AttentionOptions o;
    CHECK(o.scale_for(16) == doctest::Approx(0.25));
    o.scale = 0.5;
    CHECK(o.scale_for(16) == 0.5);
    nn::MultiHeadAttentionConfig c;
    c.embed_dim = 16;
    c.num_heads = 2;
    c.qk_layernorm = true;
    c.qk_temperature = 3.0;
    CHECK(nn::MultiHeadAttention(c).attention_options().scale.value() == doctest::Approx(3.0 / 8.0));
}

TEST_CASE("MultiHeadAttention: attention probabilities times v give the module's attention output") {
    for (const bool causal : {false, true}) {
        for (const bool qk_rope : {false, true}) {
            CAPTURE(causal);
            CAPTURE(qk_rope);
            manual_seed(11);
            nn::MultiHeadAttentionConfig c;
            c.embed_dim = 16;
            c.num_heads = 2;
            c.causal = causal;
            c.qk_layernorm = qk_rope;
            c.rope = qk_rope;
            c.qk_temperature = 2.0;
            nn::MultiHeadAttention mha(c, kFloat64);
            const Tensor x = randn({2, 7, 16}, kFloat64);
            const Tensor P = mha.attention_probabilities(x);  // (B, H, T, T)
            CHECK(P.shape() == Shape{2, 2, 7, 7});
            CHECK(max_abs_diff(sum(P, {-1}), ones({2, 2, 7}, kFloat64)) < 1e-12);
            if (causal) CHECK(max(abs(triu(P, 1))).item() == 0.0);
            // v from the module's own weights; then out = proj(merge(P v)) must equal forward(x).
            const Tensor v = F::linear(x, mha.qkv->weight.narrow(0, 32, 16), mha.qkv->bias.narrow(0, 32, 16))
                                 .view({2, 7, 2, 8}).permute({0, 2, 1, 3});
            const Tensor merged = matmul(P, v).permute({0, 2, 1, 3}).reshape({2, 7, 16});
            const Tensor expected = F::linear(merged, mha.proj->weight, mha.proj->bias);
            CHECK(max_abs_diff(mha.forward(x), expected) < 1e-12);
        }
    }
}

TEST_CASE("MultiHeadAttention: the KV cache gives forward's values, causal or not") {
    for (const bool causal : {false, true}) {
        CAPTURE(causal);
        manual_seed(12);
        nn::MultiHeadAttention mha(16, 4, causal, 0.0, true, kFloat64);
        const Tensor x = randn({2, 9, 16}, kFloat64);
        NoGradGuard no_grad;
        Tensor keys = zeros({2, 4, 12, 4}, kFloat64), values = zeros({2, 4, 12, 4}, kFloat64);
        if (causal) {
            const Tensor a = mha.forward_cached(x.narrow(1, 0, 5), keys, values, 0);
            const Tensor b = mha.forward_cached(x.narrow(1, 5, 4), keys, values, 5);
            CHECK(max_abs_diff(cat({a, b}, 1), mha.forward(x)) < 1e-12);
        } else {
            // Without a mask every position sees all: the last chunk's rows equal forward's last rows.
            mha.forward_cached(x.narrow(1, 0, 5), keys, values, 0);
            const Tensor b = mha.forward_cached(x.narrow(1, 5, 4), keys, values, 5);
            CHECK(max_abs_diff(b, mha.forward(x).narrow(1, 5, 4)) < 1e-12);
        }
        testing::check_throws<ShapeError>([&] { mha.forward_cached(x, keys, values, 5); },
                                          {"MultiHeadAttention: KV cache", "positions 5..13"});
    }
}

TEST_CASE("MultiHeadAttention: rope needs an even head width") {
    nn::MultiHeadAttentionConfig c;
    c.embed_dim = 6;
    c.num_heads = 2;
    c.rope = true;
    testing::check_throws<ValueError>([&] { nn::MultiHeadAttention m(c); }, {"rope", "even", "3"});
}

TEST_CASE("FeedForward: Linear, GELU (exact or tanh), Linear") {
    for (const auto approx : {GeluApproximation::None, GeluApproximation::Tanh}) {
        manual_seed(13);
        nn::FeedForward ff(6, 10, true, 0.0, approx, kFloat64);
        const auto named = ff.named_parameters();
        REQUIRE(named.size() == 4);
        CHECK(named[0].first == "fc.weight");
        CHECK(named[3].first == "proj.bias");
        const Tensor x = randn({3, 4, 6}, kFloat64);
        const Tensor h = matmul(x, ff.fc->weight.t()) + ff.fc->bias;
        const Tensor g = approx == GeluApproximation::Tanh
                             ? 0.5 * h * (1.0 + tanh(std::sqrt(2.0 / M_PI) * (h + 0.044715 * h * h * h)))
                             : gelu_erf_reference(h);
        CHECK(max_abs_diff(ff.forward(x), matmul(g, ff.proj->weight.t()) + ff.proj->bias) < 1e-12);
    }
}

TEST_CASE("TransformerBlock: the parameter names of GPT and ViT blocks, and the pre-LN sum") {
    nn::TransformerBlockConfig c;
    c.attention.embed_dim = 8;
    c.attention.num_heads = 2;
    c.attention.bias = false;
    c.mlp_hidden = 32;
    manual_seed(14);
    nn::TransformerBlock block(c, kFloat64);
    std::vector<std::string> names;
    for (const auto& [name, p] : block.named_parameters()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"ln1.weight", "attn.qkv.weight", "attn.proj.weight", "ln2.weight",
                                            "mlp.fc.weight", "mlp.proj.weight"});
    const Tensor x = randn({2, 5, 8}, kFloat64);
    const Tensor h = x + block.attn->forward(block.ln1->forward(x));
    CHECK(max_abs_diff(block.forward(x), h + block.mlp->forward(block.ln2->forward(h))) < 1e-12);
}

}  // TEST_SUITE
