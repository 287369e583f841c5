// nn::ViT: patchify, shapes and errors, config JSON, forward and backward against the same model composed
// from reference ops (layer_norm_reference, scaled_dot_product_attention_reference, cross_entropy_reference),
// attention maps, and a few training steps on a tiny synthetic image set.

#include "core/grad_mode.h"
#include "core/ops.h"
#include "core/random.h"
#include "nn/functional.h"
#include "nn/layernorm.h"
#include "nn/linear.h"
#include "nn/models/vit.h"
#include "nn/multihead_attention.h"
#include "nn/optim.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace {

using tg::Tensor;
namespace F = tg::nn::functional;

tg::nn::ViTConfig tiny_config(const std::string& pool = "cls") {
    tg::nn::ViTConfig c;
    c.image_size = 8;
    c.patch_size = 4;
    c.channels = 1;
    c.num_classes = 3;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 8;
    c.mlp_hidden = 12;
    c.pool = pool;
    return c;
}

Tensor ref_linear(const Tensor& x, const tg::nn::Linear& l) { return tg::matmul(x, l.weight.t()) + l.bias; }
Tensor ref_ln(const Tensor& x, const tg::nn::LayerNorm& ln) {
    return F::layer_norm_reference(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps);
}

// The ViT of nn/models/vit.h written out again from reference ops and the model's own parameters.
Tensor reference_logits(const tg::nn::ViT& m, const Tensor& images) {  // images (B, 1, S, S)
    const auto& c = m.config;
    const std::int64_t B = images.size(0), G = c.grid(), P = c.patch_size, E = c.n_embd, T = c.num_tokens();
    const std::int64_t H = c.n_head, D = E / H;
    const Tensor x0 = (images - c.input_mean) / c.input_std;
    // Patches gathered pixel by pixel with index_select, independent of the view/permute in the model.
    std::vector<std::int64_t> index;
    for (std::int64_t gy = 0; gy < G; ++gy)
        for (std::int64_t gx = 0; gx < G; ++gx)
            for (std::int64_t y = 0; y < P; ++y)
                for (std::int64_t x = 0; x < P; ++x) index.push_back((gy * P + y) * c.image_size + gx * P + x);
    const Tensor patches = tg::index_select(x0.reshape({B, c.image_size * c.image_size}), 1, tg::from_vector(index))
                               .reshape({B, G * G, P * P});
    Tensor x = tg::cat({m.cls_token.expand({B, 1, E}), ref_linear(patches, *m.patch_embed)}, 1) + m.pos_embed;
    for (const auto& block : m.blocks) {
        const Tensor qkv = ref_linear(ref_ln(x, *block->ln1), *block->attn->qkv);  // (B, T, 3E)
        const auto heads = [&](std::int64_t part) {
            return qkv.narrow(2, part * E, E).reshape({B, T, H, D}).permute({0, 2, 1, 3});
        };
        const Tensor y = F::scaled_dot_product_attention_reference(heads(0), heads(1), heads(2), {});
        x = x + ref_linear(y.permute({0, 2, 1, 3}).reshape({B, T, E}), *block->attn->proj);
        const Tensor h = tg::gelu(ref_linear(ref_ln(x, *block->ln2), *block->mlp->fc));
        x = x + ref_linear(h, *block->mlp->proj);
    }
    const Tensor h = ref_ln(x, *m.ln_f);
    const Tensor pooled = c.pool == "cls" ? h.select(1, 0) : tg::mean(h, {1});
    return ref_linear(pooled, *m.head);
}

double max_abs_diff(const Tensor& a, const Tensor& b) { return tg::max(tg::abs(a - b)).item(); }

// Two classes of 8×8 images: a bright horizontal bar (class 0) or a vertical bar (class 1) at a random place,
// plus noise.
void bars(std::int64_t n, std::uint64_t seed, Tensor& images, Tensor& labels) {
    tg::Generator gen(seed);
    images = tg::rand({n, 1, 8, 8}, tg::kFloat32, &gen) * 0.2;
    labels = tg::randint(0, 2, {n}, tg::kInt64, &gen);
    const auto where = tg::randint(1, 7, {n}, tg::kInt64, &gen).to_vector<std::int64_t>();
    const auto cls = labels.to_vector<std::int64_t>();
    float* p = images.data<float>();
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t k = 0; k < 8; ++k) p[i * 64 + (cls[i] == 0 ? where[i] * 8 + k : k * 8 + where[i])] = 1.0f;
}

}  // namespace

TEST_SUITE("vit") {

TEST_CASE("ViT: parameter names, output shape, patchify order") {
    tg::manual_seed(1);
    tg::nn::ViT model(tiny_config());
    std::map<std::string, tg::Shape> shapes;
    for (const auto& [name, p] : model.named_parameters()) shapes[name] = p.shape();
    CHECK(shapes.at("cls_token") == tg::Shape{1, 1, 8});
    CHECK(shapes.at("pos_embed") == tg::Shape{1, 5, 8});
    CHECK(shapes.at("patch_embed.weight") == tg::Shape{8, 16});
    CHECK(shapes.at("blocks.1.attn.qkv.weight") == tg::Shape{24, 8});
    CHECK(shapes.at("blocks.0.mlp.fc.weight") == tg::Shape{12, 8});
    CHECK(shapes.at("head.weight") == tg::Shape{3, 8});

    const Tensor images = tg::arange(2.0 * 64.0).reshape({2, 1, 8, 8});
    CHECK(model.forward(images).shape() == tg::Shape{2, 3});
    CHECK(model.forward(images.reshape({2, 8, 8})).shape() == tg::Shape{2, 3});  // (B, H, W) for one channel
    const Tensor patches = model.patchify(images);  // (2, 4, 16)
    CHECK(patches.shape() == tg::Shape{2, 4, 16});
    // Patch 3 = grid row 1, column 1 of image 1: its first pixel is (4, 4), its last (7, 7).
    CHECK(patches.select(0, 1).select(0, 3).select(0, 0).item() == 64 + 4 * 8 + 4);
    CHECK(patches.select(0, 1).select(0, 3).select(0, 15).item() == 64 + 7 * 8 + 7);

    tg::testing::check_throws<tg::ShapeError>([&] { model.forward(tg::zeros({2, 1, 9, 9})); },
                                              {"ViT", "[B, 1, 8, 8]", "[2, 1, 9, 9]"});
}

TEST_CASE("ViTConfig: validation and JSON round trip") {
    tg::nn::ViTConfig c = tiny_config("mean");
    c.attention.mode = F::AttentionMode::ApproxBackward;
    c.attention.degree = 4;
    const tg::nn::ViTConfig back = tg::nn::ViTConfig::from_json(c.to_json());
    CHECK(back.to_json() == c.to_json());
    CHECK(back.pool == "mean");
    CHECK(back.attention.mode == F::AttentionMode::ApproxBackward);

    c.patch_size = 3;
    tg::testing::check_throws<tg::ValueError>([&] { c.validate(); }, {"ViTConfig", "patch_size=3", "image_size=8"});
    c = tiny_config("max");
    tg::testing::check_throws<tg::ValueError>([&] { c.validate(); }, {"pool", "max"});
    tg::testing::check_throws<tg::ValueError>([&] { tg::nn::ViTConfig::from_json("{\"image_size\": 8}"); },
                                              {"ViTConfig::from_json"});
    // Sizes must be whole numbers: a float is refused, not cast (1e40 into an int64 is undefined behaviour).
    const std::string good = tiny_config("cls").to_json();
    for (const std::string bad : {"1e40", "2.5", "18446744073709551615"}) {
        CAPTURE(bad);
        std::string text = good;
        const std::size_t at = text.find("\"n_layer\": ");
        REQUIRE(at != std::string::npos);
        const std::size_t value = at + std::string("\"n_layer\": ").size();
        text.replace(value, text.find_first_of(",\n}", value) - value, bad);
        tg::testing::check_throws<tg::ValueError>([&] { tg::nn::ViTConfig::from_json(text); },
                                                  {"ViTConfig::from_json", "\"n_layer\" must be an integer, got"});
    }
}

TEST_CASE("ViT forward and backward match the model composed from reference ops (float64)") {
    for (const std::string pool : {"cls", "mean"}) {
        CAPTURE(pool);
        tg::manual_seed(7);
        tg::nn::ViT model(tiny_config(pool), tg::kFloat64);
        // Larger weights than the 0.02 initialisation, so that every part of the model matters in the output.
        {
            tg::NoGradGuard no_grad;
            for (auto& p : model.parameters()) p.copy_(tg::randn(p.shape(), tg::kFloat64) * 0.5);
        }
        const Tensor images = tg::testing::uniform_tensor({3, 1, 8, 8}, tg::kFloat64, 3, 0.0, 1.0);
        const Tensor labels = tg::from_vector(std::vector<std::int64_t>{0, 2, 1});

        const Tensor loss = model.loss(images, labels);
        loss.backward();
        std::vector<std::pair<std::string, Tensor>> grads;
        for (const auto& [name, p] : model.named_parameters()) {
            REQUIRE_MESSAGE(p.grad().defined(), name);
            grads.emplace_back(name, p.grad().clone());
        }
        model.zero_grad();

        const Tensor logits_ref = reference_logits(model, images);
        const Tensor loss_ref = F::cross_entropy_reference(logits_ref, labels);
        loss_ref.backward();
        CHECK(max_abs_diff(model.forward(images), logits_ref) < 1e-10);
        CHECK(loss.item() == doctest::Approx(loss_ref.item()).epsilon(1e-12));
        std::map<std::string, Tensor> ref_grads;
        for (const auto& [name, p] : model.named_parameters()) ref_grads[name] = p.grad();
        for (const auto& [name, g] : grads) {
            CAPTURE(name);
            const Tensor& g_ref = ref_grads.at(name);
            REQUIRE(g_ref.defined());
            const double scale = std::max(1.0, tg::max(tg::abs(g_ref)).item());
            CHECK(max_abs_diff(g, g_ref) / scale < 1e-9);
        }
    }
}

TEST_CASE("ViT in float32 (the fused kernels' float path) matches the float64 reference at Fashion-MNIST size") {
    tg::manual_seed(9);
    tg::nn::ViTConfig c;  // the default: 28×28, patch 7, 17 tokens
    c.n_layer = 2;
    tg::nn::ViT model(c);
    {
        tg::NoGradGuard no_grad;
        for (auto& p : model.parameters()) p.copy_(tg::randn(p.shape()) * 0.2);
    }
    const Tensor images = tg::testing::uniform_tensor({5, 1, 28, 28}, tg::kFloat32, 4, 0.0, 1.0);
    const Tensor labels = tg::from_vector(std::vector<std::int64_t>{0, 2, 1, 9, 4});
    model.loss(images, labels).backward();
    std::map<std::string, Tensor> grads;
    for (const auto& [name, p] : model.named_parameters()) grads[name] = p.grad().to(tg::kFloat64);

    tg::nn::ViT model64(c, tg::kFloat64);
    model64.load_state_dict([&] {
        tg::NamedTensors s;
        for (const auto& [name, t] : model.state_dict()) s.emplace_back(name, t.to(tg::kFloat64));
        return s;
    }());
    F::cross_entropy_reference(reference_logits(model64, images.to(tg::kFloat64)), labels).backward();
    for (const auto& [name, p] : model64.named_parameters()) {
        CAPTURE(name);
        const double norm = tg::max(tg::abs(p.grad())).item();
        CHECK(max_abs_diff(grads.at(name), p.grad()) <= 1e-4 * std::max(norm, 1e-3));
    }
}

TEST_CASE("ViT attention maps: probabilities over the tokens, one (B, H, T, T) per block") {
    tg::manual_seed(3);
    tg::nn::ViT model(tiny_config());
    const Tensor images = tg::testing::uniform_tensor({2, 1, 8, 8}, tg::kFloat32, 5, 0.0, 1.0);
    const std::vector<Tensor> maps = model.attention_maps(images);
    REQUIRE(maps.size() == 2);
    for (const Tensor& p : maps) {
        CHECK(p.shape() == tg::Shape{2, 2, 5, 5});
        CHECK(!p.requires_grad());
        CHECK(max_abs_diff(tg::sum(p, {-1}), tg::ones({2, 2, 5})) < 1e-5);
        CHECK(tg::min(p).item() >= 0.0);
    }
}

TEST_CASE("ViT: a few AdamW steps on a tiny synthetic image set lower the loss") {
    tg::manual_seed(11);
    Tensor images, labels;
    bars(64, 5, images, labels);
    tg::nn::ViTConfig c = tiny_config();
    c.num_classes = 2;
    c.input_mean = 0.2;
    c.input_std = 0.3;
    tg::nn::ViT model(c);
    tg::optim::AdamW opt(model.parameters(), 1e-2, 0.9, 0.999, 1e-8, 0.0);
    double first = 0, last = 0;
    for (int step = 0; step < 60; ++step) {
        const Tensor loss = model.loss(images, labels);
        loss.backward();
        opt.step();
        opt.zero_grad();
        if (step == 0) first = loss.item();
        last = loss.item();
    }
    INFO("loss " << first << " -> " << last);
    CHECK(first > 0.6);
    CHECK(last < 0.5 * first);
}

}  // TEST_SUITE
