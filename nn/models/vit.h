#pragma once
// tg::nn::ViT: a small Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words"),
// written to be read next to the GPT (nn/models/gpt.h): the same pre-LN blocks, but the tokens are image
// patches and the attention is not causal.
//
//   images (B, C, H, W) in [0, 1]
//   x = (images − mean) / std                         normalised as the training set
//   patches = patchify(x)                (B, N, C·P·P)  N = (H/P)·(W/P) patches of P×P pixels, by a view +
//                                                       permute (one copy); no convolution needed
//   x = patch_embed(patches)             (B, N, E)      Linear C·P·P -> E
//   x = [cls ; x] + pos_embed            (B, N+1, E)    a learned class token in front, learned positions
//   for each block:  x = x + attn(ln1(x))               multi-head self-attention over all N+1 tokens
//                    x = x + mlp(ln2(x))                Linear E -> M, GELU, Linear M -> E
//                                                       (nn/transformer_block.h, the block GPT uses too)
//   x = ln_f(x)
//   z = x[:, 0]  (pool "cls")  or  mean over tokens  (pool "mean")          (B, E)
//   logits = head(z)                     (B, classes)
//
// For Fashion-MNIST (28×28×1, P = 7): 16 patch tokens + the class token = 17 tokens.
//
// Parameter names (state_dict): cls_token, pos_embed, patch_embed.{weight,bias},
// blocks.{i}.ln1.{weight,bias}, blocks.{i}.attn.qkv.{weight,bias}, blocks.{i}.attn.proj.{weight,bias},
// blocks.{i}.ln2.{weight,bias}, blocks.{i}.mlp.fc.{weight,bias}, blocks.{i}.mlp.proj.{weight,bias},
// ln_f.{weight,bias}, head.{weight,bias}.

#include "nn/attention.h"
#include "nn/module.h"
#include "nn/transformer_block.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tg::nn {

class LayerNorm;
class Linear;

struct ViTConfig {
    std::int64_t image_size = 28;  // H = W
    std::int64_t patch_size = 7;   // P; image_size must be a multiple of it
    std::int64_t channels = 1;     // C of the input images
    std::int64_t num_classes = 10;
    std::int64_t n_layer = 4;
    std::int64_t n_head = 4;
    std::int64_t n_embd = 64;      // E; head width E / n_head
    std::int64_t mlp_hidden = 128; // M
    double dropout = 0.0;
    std::string pool = "cls";      // "cls" or "mean"
    double input_mean = 0.2860;    // the normalisation of the inputs (Fashion-MNIST's pixel mean and std)
    double input_std = 0.3530;
    // Attention of every layer (mode, degree, gradient formula). `causal` is ignored: always off.
    functional::AttentionOptions attention;

    std::int64_t grid() const { return image_size / patch_size; }
    std::int64_t num_patches() const { return grid() * grid(); }
    std::int64_t num_tokens() const { return num_patches() + 1; }

    // Throws ValueError naming the field when a value is out of range or inconsistent.
    void validate() const;
    // The fields above as JSON text (what config.json stores under "model"), and back; from_json validates and
    // throws ValueError on a malformed or incomplete text.
    std::string to_json() const;
    static ViTConfig from_json(const std::string& text);
};

class ViT : public Module {
public:
    explicit ViT(const ViTConfig& config, DType dtype = kFloat32);

    std::string name() const override { return "ViT"; }
    std::string extra_repr() const override;

    // images (B, C, H, W) (or (B, H, W) when C = 1) with values in [0, 1] -> logits (B, num_classes).
    // Throws ShapeError naming the expected and the given shape.
    Tensor forward(const Tensor& images) override;
    // Mean cross-entropy against labels (B) int64.
    Tensor loss(const Tensor& images, const Tensor& labels);

    // The image split into patch rows: (B, C, H, W) -> (B, N, C·P·P), patch n = (row n / grid, column n % grid),
    // each row ordered (channel, y, x) like PyTorch's unfold. Differentiable (a permuted view, then one copy).
    Tensor patchify(const Tensor& images) const;
    // The attention probabilities of every layer for these images, (B, H, T, T) each, computed without autograd.
    // Token 0 is the class token, token 1 + n is patch n.
    std::vector<Tensor> attention_maps(const Tensor& images);

    // Chooses the attention of every layer (causal is forced off).
    void set_attention(const functional::AttentionOptions& options);

    ViTConfig config;
    Tensor cls_token;  // (1, 1, E)
    Tensor pos_embed;  // (1, N+1, E)
    std::shared_ptr<Linear> patch_embed;
    std::vector<std::shared_ptr<TransformerBlock>> blocks;
    std::shared_ptr<LayerNorm> ln_f;
    std::shared_ptr<Linear> head;

private:
    Tensor embed(const Tensor& images);          // -> (B, N+1, E) tokens before the blocks
    Tensor classify(const Tensor& x);            // (B, N+1, E) after the blocks -> logits
    Tensor as_batch(const Tensor& images) const;  // checks the shape; (B, H, W) -> (B, 1, H, W)
};

}  // namespace tg::nn
