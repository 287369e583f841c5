#pragma once
// tg::nn::GPT: a GPT-2 style language model, written to be read (compare nanoGPT's model.py).
//
//   idx (B, T) token ids
//   x = wte(idx) + wpe(0..T−1)                       (B, T, C)   token + learned position embeddings
//                                                                (no wpe with rope: positions rotate q and k)
//   x = dropout(x)
//   for each block:  x = x + attn(ln1(x))             causal multi-head self-attention (nn/multihead_attention.h)
//                    x = x + mlp(ln2(x))              Linear C->4C, GELU(tanh), Linear 4C->C (nn/feed_forward.h)
//                                                     (the pre-LN block shared with ViT: nn/transformer_block.h)
//   x = ln_f(x)
//   logits = x · wteᵀ                                 (B, T, V)   LM head tied to the token embedding
//
// Initialisation as GPT-2: every Linear and Embedding weight ~ N(0, 0.02), biases 0, and the residual
// projections (attn.proj, mlp.proj) ~ N(0, 0.02/sqrt(2·n_layer)).
//
// Parameter names (state_dict): wte.weight, wpe.weight, blocks.{i}.ln1.{weight,bias},
// blocks.{i}.attn.qkv.{weight,bias}, blocks.{i}.attn.proj.{weight,bias}, blocks.{i}.ln2.{weight,bias},
// blocks.{i}.mlp.fc.{weight,bias}, blocks.{i}.mlp.proj.{weight,bias}, ln_f.{weight,bias}. With rope there is
// no wpe.weight; with bias = false no *.bias (LayerNorms keep their weight). Buffers: none.
//
// Files: gpt.cpp (config, init, forward, loss, KV cache), gpt_sample.h (generate); the blocks are
// nn/transformer_block.h, nn/multihead_attention.h, nn/feed_forward.h, nn/rope.h.

#include "nn/attention.h"
#include "nn/module.h"
#include "nn/transformer_block.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tg::nn {

class AttentionMonitor;
class Embedding;
class Dropout;
class LayerNorm;

struct GPTConfig {
    std::int64_t vocab_size = 256;  // V
    std::int64_t block_size = 256;  // the longest sequence T the model accepts
    std::int64_t n_layer = 4;
    std::int64_t n_head = 4;        // H; head width D = n_embd / n_head
    std::int64_t n_embd = 128;      // C
    double dropout = 0.0;
    bool bias = true;               // biases in Linear and LayerNorm
    // QK-LayerNorm: q and k of each head are layer-normalised (no affine) over D before the scores, and the
    // scale becomes qk_temperature / D, so every score lies in [−qk_temperature, qk_temperature]: bounded
    // scores keep the approximate attention modes in their accurate regime.
    bool qk_layernorm = false;
    double qk_temperature = 1.0;
    // Rotary position embeddings on q and k instead of the learned wpe.
    bool rope = false;
    double rope_base = 10000.0;
    // Attention of every layer (mode, degree, gradient formula; causal is always on). layer_attention, when not
    // empty, has n_layer entries and overrides `attention` layer by layer.
    functional::AttentionOptions attention;
    std::vector<functional::AttentionOptions> layer_attention;

    // Throws ValueError naming the field when a value is out of range or inconsistent.
    void validate() const;
    // JSON text of every field above (what config.json stores under "model"), and back; from_json checks
    // with validate() and throws ValueError on a malformed or incomplete text.
    std::string to_json() const;
    static GPTConfig from_json(const std::string& text);
};

class GPT : public Module {
public:
    // Checks the config (validate()) and builds the model with GPT-2's initialisation, drawn from the global
    // generator (seed it with tg::manual_seed first). dtype kFloat64 is for tests (gradcheck, references).
    explicit GPT(const GPTConfig& config, DType dtype = kFloat32);

    std::string name() const override { return "GPT"; }
    std::string extra_repr() const override;

    // idx (B, T) int64 with 1 <= T <= block_size, values in [0, V) -> logits (B, T, V). Throws ShapeError /
    // IndexError naming the shape or the offending id.
    Tensor forward(const Tensor& idx) override;
    // Mean cross-entropy of the next-token predictions: targets (B, T) int64 (ignore_index −100 skipped).
    // One fused cross_entropy node over logits.view({B·T, V}).
    Tensor loss(const Tensor& idx, const Tensor& targets);

    // Chooses the attention of one layer (or of all layers with layer = -1) at run time.
    void set_attention(const functional::AttentionOptions& options, std::int64_t layer = -1);
    // Attaches one error monitor to every layer's attention (labels "blocks.{i}.attn"); nullptr detaches.
    void set_attention_monitor(std::shared_ptr<AttentionMonitor> monitor);

    // ---- incremental decoding with a key/value cache ---------------------------------------------------------
    // Keys and values of every layer for the positions seen so far, so that each new token costs O(T), not O(T²).
    struct KVCache {
        std::int64_t length = 0;  // positions cached
        std::vector<Tensor> keys, values;  // per layer (B, H, capacity, D)
    };
    KVCache make_cache(std::int64_t batch) const;  // capacity block_size, length 0
    // idx (B, Tnew) continuing the cached positions (length + Tnew <= block_size) -> logits (B, Tnew, V);
    // appends to the cache. Runs without recording autograd. Equals forward() on the whole sequence (in eval
    // mode; with dropout in training mode both are random). A fresh cache (length 0) takes any prompt at once;
    // later calls usually feed one token, but chunks work too. Throws ShapeError when the cache is full or idx
    // does not fit it (batch, length), like forward() for bad ids.
    Tensor forward_cached(const Tensor& idx, KVCache& cache);

    GPTConfig config;
    std::shared_ptr<Embedding> wte;  // (V, C), also the LM head
    std::shared_ptr<Embedding> wpe;  // (block_size, C); nullptr with rope
    std::shared_ptr<Dropout> drop;
    std::vector<std::shared_ptr<TransformerBlock>> blocks;
    std::shared_ptr<LayerNorm> ln_f;
};

}  // namespace tg::nn
