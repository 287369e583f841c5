// Hugging Face GPT-2 folders <-> tapegrad's GPT: config.json, the weight names and the Conv1D transposes
// (the mapping is drawn in nn/models/gpt2_hf.h).

#include "nn/models/gpt2_hf.h"

#include "core/file_io.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace tg::nn {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

constexpr double kLayerNormEps = 1e-5;  // make_layer_norm (nn/transformer_block.cpp)

std::string path_in(const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); }

}  // namespace

std::vector<GPT2WeightName> gpt2_weight_names(std::int64_t n_layer) {
    std::vector<GPT2WeightName> names = {{"wte.weight", "wte.weight", false}, {"wpe.weight", "wpe.weight", false}};
    for (std::int64_t i = 0; i < n_layer; ++i) {
        const std::string ours = "blocks." + std::to_string(i) + ".", hf = "h." + std::to_string(i) + ".";
        const std::vector<GPT2WeightName> block = {
            {"ln1.weight", "ln_1.weight", false},           {"ln1.bias", "ln_1.bias", false},
            {"attn.qkv.weight", "attn.c_attn.weight", true}, {"attn.qkv.bias", "attn.c_attn.bias", false},
            {"attn.proj.weight", "attn.c_proj.weight", true}, {"attn.proj.bias", "attn.c_proj.bias", false},
            {"ln2.weight", "ln_2.weight", false},           {"ln2.bias", "ln_2.bias", false},
            {"mlp.fc.weight", "mlp.c_fc.weight", true},     {"mlp.fc.bias", "mlp.c_fc.bias", false},
            {"mlp.proj.weight", "mlp.c_proj.weight", true}, {"mlp.proj.bias", "mlp.c_proj.bias", false},
        };
        for (const auto& w : block) names.push_back({ours + w.ours, hf + w.hf, w.conv1d});
    }
    names.push_back({"ln_f.weight", "ln_f.weight", false});
    names.push_back({"ln_f.bias", "ln_f.bias", false});
    return names;
}

// ---- config.json ------------------------------------------------------------------------------------------------

GPTConfig gpt2_config_from_hf_json(const std::string& text, const std::string& origin) {
    const std::string where = "gpt2: " + origin + ": ";
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw ValueError(where + "not valid JSON: " + e.what());
    }
    if (!j.is_object()) throw ValueError(where + "config.json must be a JSON object");

    auto size = [&](const char* key) -> std::int64_t {
        if (!j.contains(key)) throw ValueError(where + "missing field \"" + key + "\"");
        if (!j[key].is_number_integer()) throw ValueError(where + "\"" + key + "\" must be an integer, got " + j[key].dump());
        return j[key].get<std::int64_t>();
    };
    // A setting tapegrad reproduces only at one value: absent is fine (Hugging Face's default is that value).
    auto require = [&](const char* key, const json& expected, const std::string& why) {
        if (j.contains(key) && !j[key].is_null() && j[key] != expected) {
            throw ValueError(where + "\"" + key + "\" is " + j[key].dump() + "; tapegrad's GPT supports only " +
                             expected.dump() + " (" + why + ")");
        }
    };

    if (j.contains("model_type") && j["model_type"] != "gpt2") {
        throw ValueError(where + "\"model_type\" is " + j["model_type"].dump() + ", not \"gpt2\": only GPT-2 is read");
    }
    GPTConfig c;
    c.vocab_size = size("vocab_size");
    c.n_embd = size("n_embd");
    c.n_head = size("n_head");
    c.n_layer = size("n_layer");
    c.block_size = j.contains("n_positions") ? size("n_positions") : size("n_ctx");  // n_ctx: very old files
    c.bias = true;
    c.rope = false;
    c.qk_layernorm = false;
    c.dropout = 0.0;

    const std::string activation = j.contains("activation_function") && j["activation_function"].is_string()
                                       ? j["activation_function"].get<std::string>()
                                       : std::string("gelu_new");
    if (j.contains("activation_function") && !j["activation_function"].is_string()) {
        throw ValueError(where + "\"activation_function\" must be a string, got " + j["activation_function"].dump());
    }
    // gelu_new and gelu_pytorch_tanh are both 0.5 x (1 + tanh(sqrt(2/π)(x + 0.044715 x³))), our GELU.
    if (activation != "gelu_new" && activation != "gelu_pytorch_tanh") {
        throw ValueError(where + "\"activation_function\" is \"" + activation + "\"; tapegrad's GPT uses GELU with "
                         "the tanh approximation, i.e. \"gelu_new\" or \"gelu_pytorch_tanh\"");
    }
    if (j.contains("layer_norm_epsilon")) {
        if (!j["layer_norm_epsilon"].is_number()) {
            throw ValueError(where + "\"layer_norm_epsilon\" must be a number, got " + j["layer_norm_epsilon"].dump());
        }
        const double eps = j["layer_norm_epsilon"].get<double>();
        if (std::abs(eps - kLayerNormEps) > 1e-9 * kLayerNormEps) {
            throw ValueError(where + "\"layer_norm_epsilon\" is " + j["layer_norm_epsilon"].dump() +
                             "; tapegrad's GPT uses 1e-05 (GPT-2's value)");
        }
    }
    if (j.contains("n_inner") && !j["n_inner"].is_null()) {
        require("n_inner", 4 * c.n_embd, "the MLP is C -> 4C -> C");
    }
    require("scale_attn_weights", true, "scores scaled by 1/sqrt(D)");
    require("scale_attn_by_inverse_layer_idx", false, "no per-layer score scaling");
    require("add_cross_attention", false, "a decoder-only model");
    require("tie_word_embeddings", true, "the LM head is the token embedding");
    try {
        c.validate();
    } catch (const ValueError& e) {
        throw ValueError(where + e.what());
    }
    return c;
}

void check_gpt2_architecture(const GPTConfig& config, const std::string& what) {
    std::string differences;
    if (config.rope) differences += " rotary positions (rope) instead of learned ones;";
    if (config.qk_layernorm) differences += " QK-LayerNorm;";
    if (!config.bias) differences += " no biases;";
    if (!differences.empty()) {
        differences.pop_back();
        throw ValueError(what + ": the model is not GPT-2's architecture, which Hugging Face's layout describes:" +
                         differences);
    }
}

std::string gpt2_config_to_hf_json(const GPTConfig& config) {
    check_gpt2_architecture(config, "gpt2 config.json");
    json j;
    j["architectures"] = {"GPT2LMHeadModel"};
    j["model_type"] = "gpt2";
    j["vocab_size"] = config.vocab_size;
    j["n_positions"] = config.block_size;
    j["n_ctx"] = config.block_size;
    j["n_embd"] = config.n_embd;
    j["n_layer"] = config.n_layer;
    j["n_head"] = config.n_head;
    j["n_inner"] = nullptr;  // 4 · n_embd
    j["activation_function"] = "gelu_new";
    j["layer_norm_epsilon"] = kLayerNormEps;
    j["resid_pdrop"] = config.dropout;
    j["embd_pdrop"] = config.dropout;
    j["attn_pdrop"] = config.dropout;
    j["initializer_range"] = 0.02;
    j["scale_attn_weights"] = true;
    j["tie_word_embeddings"] = true;
    j["use_cache"] = true;
    if (config.vocab_size == 50257) {  // GPT-2's tokenizer: <|endoftext|> is the last id
        j["bos_token_id"] = 50256;
        j["eos_token_id"] = 50256;
    }
    j["torch_dtype"] = "float32";
    return j.dump(2) + "\n";
}

// ---- model.safetensors ------------------------------------------------------------------------------------------

namespace {

// "h.{i}.attn.bias" or "h.{i}.attn.masked_bias" with i < n_layer: the causal-mask buffers of older files.
bool is_ignored_buffer(const std::string& name, std::int64_t n_layer) {
    if (name.rfind("h.", 0) != 0) return false;
    std::size_t pos = 2, digits = 0;
    std::int64_t layer = 0;
    while (pos < name.size() && std::isdigit(static_cast<unsigned char>(name[pos])) && digits < 9) {
        layer = layer * 10 + (name[pos++] - '0');
        ++digits;
    }
    if (digits == 0 || layer >= n_layer) return false;
    const std::string rest = name.substr(pos);
    return rest == ".attn.bias" || rest == ".attn.masked_bias";
}

bool is_float_code(const std::string& code) {
    return code == "F32" || code == "F16" || code == "BF16" || code == "F64";
}

// The Hugging Face shape of each weight (Conv1D weights as (in, out)).
std::map<std::string, Shape> expected_shapes(const GPTConfig& c) {
    const std::int64_t C = c.n_embd;
    std::map<std::string, Shape> shapes;
    shapes["wte.weight"] = {c.vocab_size, C};
    shapes["wpe.weight"] = {c.block_size, C};
    shapes["ln_f.weight"] = {C};
    shapes["ln_f.bias"] = {C};
    for (std::int64_t i = 0; i < c.n_layer; ++i) {
        const std::string h = "h." + std::to_string(i) + ".";
        for (const char* ln : {"ln_1", "ln_2"}) {
            shapes[h + ln + ".weight"] = {C};
            shapes[h + ln + ".bias"] = {C};
        }
        shapes[h + "attn.c_attn.weight"] = {C, 3 * C};
        shapes[h + "attn.c_attn.bias"] = {3 * C};
        shapes[h + "attn.c_proj.weight"] = {C, C};
        shapes[h + "attn.c_proj.bias"] = {C};
        shapes[h + "mlp.c_fc.weight"] = {C, 4 * C};
        shapes[h + "mlp.c_fc.bias"] = {4 * C};
        shapes[h + "mlp.c_proj.weight"] = {4 * C, C};
        shapes[h + "mlp.c_proj.bias"] = {C};
    }
    return shapes;
}

std::string sizes_of(const GPTConfig& c) {
    return "n_layer=" + std::to_string(c.n_layer) + ", n_embd=" + std::to_string(c.n_embd) +
           ", vocab_size=" + std::to_string(c.vocab_size) + ", n_positions=" + std::to_string(c.block_size);
}

}  // namespace

std::string check_gpt2_hf_header(const SafetensorsHeader& header, const GPTConfig& config) {
    const std::map<std::string, Shape> shapes = expected_shapes(config);
    bool prefixed = false;
    for (const auto& t : header.tensors) prefixed = prefixed || t.name == "transformer.wte.weight";
    const std::string prefix = prefixed ? "transformer." : "";

    std::vector<std::string> problems;
    std::map<std::string, bool> seen;
    for (const auto& t : header.tensors) {
        std::string name = t.name;
        if (!prefix.empty() && name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
        else if (!prefix.empty() && name != "lm_head.weight") name = "\x01";  // unprefixed among prefixed: unexpected
        if (is_ignored_buffer(name, config.n_layer)) continue;
        const bool lm_head = t.name == "lm_head.weight";
        const auto it = shapes.find(name);
        if (!lm_head && it == shapes.end()) {
            problems.push_back("unexpected tensor '" + t.name + "' " + to_string(t.shape));
            continue;
        }
        const Shape expected = lm_head ? Shape{config.vocab_size, config.n_embd} : it->second;
        if (t.shape != expected) {
            problems.push_back("'" + t.name + "' has shape " + to_string(t.shape) + ", config.json implies " +
                               to_string(expected));
        }
        if (!is_float_code(t.dtype)) {
            problems.push_back("'" + t.name + "' has dtype " + t.dtype + " (F32, F16, BF16 or F64 expected)");
        }
        if (!lm_head) seen[name] = true;
    }
    for (const auto& [name, shape] : shapes) {
        if (!seen.count(name)) problems.push_back("missing '" + prefix + name + "' " + to_string(shape));
    }
    if (!problems.empty()) {
        std::string message = "gpt2: " + header.origin + ": the weights do not fit config.json (" + sizes_of(config) +
                              "): ";
        const std::size_t shown = std::min<std::size_t>(problems.size(), 12);
        for (std::size_t i = 0; i < shown; ++i) message += (i ? "; " : "") + problems[i];
        if (problems.size() > shown) message += "; ... and " + std::to_string(problems.size() - shown) + " more";
        throw IOError(message);
    }
    return prefix;
}

NamedTensors gpt2_state_dict_from_hf(const SafetensorsFile& file, const GPTConfig& config, const std::string& prefix) {
    NamedTensors state;
    for (const GPT2WeightName& w : gpt2_weight_names(config.n_layer)) {
        Tensor t = file.get(prefix + w.hf);
        if (t.dtype() != kFloat32) t = t.to(kFloat32);
        if (w.conv1d) t = t.t().contiguous();  // (in, out) -> (out, in)
        state.emplace_back(w.ours, t);
    }
    if (file.contains("lm_head.weight")) {
        // Accepted only as a second copy of the tied head: an untied head would change the model.
        Tensor head = file.get("lm_head.weight");
        if (head.dtype() != kFloat32) head = head.to(kFloat32);
        const std::vector<float> a = head.to_vector<float>(), b = state.front().second.to_vector<float>();
        if (a != b) {
            throw IOError("gpt2: " + file.origin + ": lm_head.weight differs from wte.weight; tapegrad's GPT ties "
                          "the LM head to the token embedding, so an untied head cannot be loaded");
        }
    }
    return state;
}

NamedTensors gpt2_state_dict_to_hf(const GPT& model) {
    check_gpt2_architecture(model.config, "gpt2 export");
    NamedTensors ours = model.state_dict();
    std::map<std::string, Tensor> by_name(ours.begin(), ours.end());
    NamedTensors hf;
    for (const GPT2WeightName& w : gpt2_weight_names(model.config.n_layer)) {
        const auto it = by_name.find(w.ours);
        if (it == by_name.end()) throw ValueError("gpt2 export: the model has no parameter '" + w.ours + "'");
        Tensor t = it->second.detach().to(kFloat32);
        if (w.conv1d) t = t.t();  // (out, in) -> (in, out)
        hf.emplace_back(w.hf, t.contiguous());
    }
    return hf;
}

// ---- folders ----------------------------------------------------------------------------------------------------

GPTConfig read_gpt2_hf_config(const std::string& dir) {
    if (!fs::is_directory(dir)) throw IOError("gpt2: " + dir + ": no such directory (a Hugging Face GPT-2 folder)");
    const std::string path = path_in(dir, "config.json");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IOError("gpt2: " + path + ": cannot open (a Hugging Face model folder has a config.json)");
    std::ostringstream text;
    text << in.rdbuf();
    return gpt2_config_from_hf_json(text.str(), path);
}

namespace {

std::string weights_path(const std::string& dir) {
    const std::string path = path_in(dir, "model.safetensors");
    if (!fs::exists(path)) {
        std::string hint;
        if (fs::exists(path_in(dir, "model.safetensors.index.json"))) hint = " (sharded checkpoints are not supported)";
        else if (fs::exists(path_in(dir, "pytorch_model.bin")))
            hint = " (pytorch_model.bin is a Python pickle, which tapegrad does not read; save the model with "
                   "safe_serialization=True)";
        throw IOError("gpt2: " + path + ": no such file" + hint);
    }
    return path;
}

constexpr SafetensorsReadOptions kWidenHalf{.widen_half_to_float32 = true};

}  // namespace

std::string check_gpt2_hf_folder(const std::string& dir, const GPTConfig& config) {
    return check_gpt2_hf_header(read_safetensors_header(weights_path(dir), kWidenHalf), config);
}

void load_gpt2_hf_weights(const std::string& dir, GPT& model) {
    check_gpt2_architecture(model.config, "gpt2: " + dir);
    const std::string prefix = check_gpt2_hf_folder(dir, model.config);
    const SafetensorsFile file = load_safetensors(weights_path(dir), kWidenHalf);
    model.load_state_dict(gpt2_state_dict_from_hf(file, model.config, prefix), /*strict=*/true);
}

std::shared_ptr<GPT> load_gpt2_hf(const std::string& dir) {
    const GPTConfig config = read_gpt2_hf_config(dir);
    check_gpt2_hf_folder(dir, config);  // before the model is allocated
    auto model = std::make_shared<GPT>(config);
    load_gpt2_hf_weights(dir, *model);
    return model;
}

void save_gpt2_hf(const std::string& dir, const GPT& model) {
    check_gpt2_architecture(model.config, "gpt2 export to " + dir);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw IOError("gpt2: " + dir + ": cannot create the directory: " + ec.message());
    // {"format": "pt"}: the metadata Hugging Face's save_pretrained writes, which its loader checks.
    save_safetensors(path_in(dir, "model.safetensors"), gpt2_state_dict_to_hf(model), {{"format", "pt"}});
    const std::string config = gpt2_config_to_hf_json(model.config);
    write_file_atomically(path_in(dir, "config.json"), config.data(), config.size(), "gpt2 config.json");
}

}  // namespace tg::nn
