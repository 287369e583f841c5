#pragma once
// GPT-2 checkpoints in Hugging Face's layout, read into tapegrad's GPT and written back.
//
// A Hugging Face GPT-2 folder (what `save_pretrained` writes, e.g. the `gpt2` model of the Hub) holds
//
//   config.json          {"n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024, "vocab_size": 50257,
//                         "layer_norm_epsilon": 1e-05, "activation_function": "gelu_new", ...}
//   model.safetensors    the weights (F32, F16 or BF16), names below, optionally prefixed "transformer."
//   tokenizer files      vocab.json + merges.txt, or tokenizer.json (read by tg::data::Tokenizer, not here)
//
// The architecture is the one of nn/models/gpt.h with learned positions, biases and exact attention: token +
// position embeddings, pre-LayerNorm blocks, GELU with the tanh approximation (Hugging Face's "gelu_new"),
// LayerNorm ε = 1e−5, and the LM head tied to the token embedding. So loading is a renaming:
//
//   Hugging Face                 tapegrad                     Hugging Face shape -> ours
//   wte.weight                   wte.weight                   (V, C)
//   wpe.weight                   wpe.weight                   (n_positions, C)
//   h.{i}.ln_1.{weight,bias}     blocks.{i}.ln1.*             (C)
//   h.{i}.attn.c_attn.weight     blocks.{i}.attn.qkv.weight   (C, 3C) -> (3C, C)   Conv1D: transposed
//   h.{i}.attn.c_attn.bias       blocks.{i}.attn.qkv.bias     (3C)
//   h.{i}.attn.c_proj.weight     blocks.{i}.attn.proj.weight  (C, C) -> (C, C)     Conv1D: transposed
//   h.{i}.attn.c_proj.bias       blocks.{i}.attn.proj.bias    (C)
//   h.{i}.ln_2.{weight,bias}     blocks.{i}.ln2.*             (C)
//   h.{i}.mlp.c_fc.weight        blocks.{i}.mlp.fc.weight     (C, 4C) -> (4C, C)   Conv1D: transposed
//   h.{i}.mlp.c_fc.bias          blocks.{i}.mlp.fc.bias       (4C)
//   h.{i}.mlp.c_proj.weight      blocks.{i}.mlp.proj.weight   (4C, C) -> (C, 4C)   Conv1D: transposed
//   h.{i}.mlp.c_proj.bias        blocks.{i}.mlp.proj.bias     (C)
//   ln_f.{weight,bias}           ln_f.*                       (C)
//
// Why the transposes: GPT-2's original TensorFlow code multiplied x (N, in) by a weight (in, out), and Hugging
// Face's `Conv1D` kept that orientation, while tapegrad's Linear (like torch.nn.Linear) stores (out, in) and
// computes x Wᵀ. Both give y = x W_hf = x W_oursᵀ with W_ours = W_hfᵀ. The q, k, v blocks of c_attn are its
// output columns 0..C, C..2C, 2C..3C: after the transpose, the row blocks that MultiHeadAttention expects.
//
// Also accepted and ignored: the causal-mask buffers h.{i}.attn.bias and h.{i}.attn.masked_bias of older files,
// and an lm_head.weight equal to wte.weight (a tied head saved twice). Anything else is an error.
//
// Every check runs on config.json and the safetensors header BEFORE the model is allocated or a weight is read:
// an error names each missing, unexpected or mis-shaped tensor (all of them, not only the first).

#include "nn/models/gpt.h"
#include "nn/safetensors_read.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tg::nn {

// One of our parameters and its Hugging Face name (without the optional "transformer." prefix).
struct GPT2WeightName {
    std::string ours;
    std::string hf;
    bool conv1d;  // stored (in, out) by Hugging Face: transposed on load and on export
};
// Every parameter of a GPT-2 with n_layer blocks, in our state_dict order.
std::vector<GPT2WeightName> gpt2_weight_names(std::int64_t n_layer);

// The model described by the text of a Hugging Face config.json: block_size = n_positions, biases on, learned
// positions, exact attention, dropout 0 (set config.dropout before building to fine-tune with dropout).
// Throws ValueError naming `origin` and the field for a missing or mistyped size, and for every setting
// tapegrad's GPT cannot reproduce exactly (another activation, ε, n_inner, untied head, ...).
GPTConfig gpt2_config_from_hf_json(const std::string& text, const std::string& origin);

// Throws ValueError when `config` is not GPT-2's architecture (rope, QK-LayerNorm or no biases), so it cannot
// be written in Hugging Face's layout. `what` starts the message.
void check_gpt2_architecture(const GPTConfig& config, const std::string& what);

// config.json text of a Hugging Face GPT-2 for `config` (checked with check_gpt2_architecture).
std::string gpt2_config_to_hf_json(const GPTConfig& config);

// Checks a model.safetensors header against `config`: every weight present with its expected shape and a
// floating dtype (F32, F16, BF16 or F64), nothing else but the ignored buffers. Returns the name prefix the
// file uses ("" or "transformer."). Throws IOError listing every problem, each naming its tensor.
std::string check_gpt2_hf_header(const SafetensorsHeader& header, const GPTConfig& config);

// The weights of a Hugging Face GPT-2 model.safetensors as our state_dict (float32, Conv1D weights transposed).
// `file` must have passed check_gpt2_hf_header (load it with widen_half_to_float32).
NamedTensors gpt2_state_dict_from_hf(const SafetensorsFile& file, const GPTConfig& config, const std::string& prefix);

// The model's weights under Hugging Face's names (no prefix), in Conv1D orientation, float32 and contiguous.
NamedTensors gpt2_state_dict_to_hf(const GPT& model);

// ---- folders ----------------------------------------------------------------------------------------------------

// dir/config.json, parsed and checked. Throws IOError when dir or the file is missing.
GPTConfig read_gpt2_hf_config(const std::string& dir);

// Checks dir/model.safetensors' header against `config` (check_gpt2_hf_header) without reading a weight; returns
// the name prefix. Throws IOError when the file is missing (with a hint for pytorch_model.bin or a sharded
// checkpoint) or does not fit.
std::string check_gpt2_hf_folder(const std::string& dir, const GPTConfig& config);

// Loads dir/model.safetensors into `model`, whose config must have the sizes of dir/config.json (dropout and
// attention mode may differ). Checks first; on an error the model is unchanged.
void load_gpt2_hf_weights(const std::string& dir, GPT& model);

// Builds the model of dir/config.json and loads dir/model.safetensors into it; the header is checked before the
// model is allocated. Throws IOError (naming the file and the tensors) or ValueError (config).
std::shared_ptr<GPT> load_gpt2_hf(const std::string& dir);

// Writes dir/config.json and dir/model.safetensors (F32), each atomically; creates dir. The model must have
// GPT-2's architecture (check_gpt2_architecture). Tokenizer files are the caller's business.
void save_gpt2_hf(const std::string& dir, const GPT& model);

}  // namespace tg::nn
