// The GPT checkpoint folder (nn/models/gpt_checkpoint.h): writing it atomically, reading and validating it.

#include "nn/models/gpt_checkpoint.h"

#include "core/file_io.h"
#include "nn/serialization.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace tg::nn {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

namespace {

constexpr const char* kFormat = "tg-gpt checkpoint";
constexpr int kVersion = 1;
constexpr const char* kTokenizerFile = "tokenizer.json";

std::string path_in(const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); }

void write_text(const std::string& path, const std::string& text, const char* what) {
    write_file_atomically(path, text.data(), text.size(), what);
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IOError("checkpoint: " + path + ": cannot open the file (is this a tg-gpt checkpoint directory?)");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

nlohmann::json parse_json(const std::string& path) {
    try {
        return nlohmann::json::parse(read_text(path));
    } catch (const nlohmann::json::exception& e) {
        throw IOError("checkpoint: " + path + ": not valid JSON: " + e.what());
    }
}

// A caller's JSON text that must hold one value of the given kind (`what` names it in errors).
ordered_json parse_section(const std::string& text, bool want_object, const char* what) {
    ordered_json j;
    try {
        j = ordered_json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw ValueError(std::string("save_gpt_checkpoint: ") + what + " is not valid JSON: " + e.what());
    }
    if (want_object ? !j.is_object() : !j.is_array()) {
        throw ValueError(std::string("save_gpt_checkpoint: ") + what + " must be a JSON " +
                         (want_object ? "object" : "array") + ", got " + j.dump());
    }
    return j;
}

ordered_json rng_to_json(const GeneratorState& s) { return {{"seed", s.seed}, {"offset", s.offset}}; }

GeneratorState rng_from_json(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object() || !j.contains("seed") || !j.contains("offset") || !j["seed"].is_number_unsigned() ||
        !j["offset"].is_number_unsigned()) {
        throw IOError("checkpoint: " + where + " must be {\"seed\": n, \"offset\": n}, got " + j.dump());
    }
    return {j["seed"].get<std::uint64_t>(), j["offset"].get<std::uint64_t>()};
}

std::int64_t metadata_step(const SafetensorsFile& file) {
    const auto it = file.metadata.find("step");
    if (it == file.metadata.end()) throw IOError("checkpoint: " + file.origin + ": no \"step\" in its metadata");
    try {
        return std::stoll(it->second);
    } catch (const std::exception&) {
        throw IOError("checkpoint: " + file.origin + ": metadata step \"" + it->second + "\" is not a number");
    }
}

// The tokenizer of config.json: a file name ("tokenizer.json": Hugging Face's tokenizer.json in the checkpoint
// folder, what checkpoints with a BPE vocabulary hold), or inline ({"kind": ...}: byte and character level, and
// BPE checkpoints written before the vocabulary got its own file).
data::Tokenizer read_tokenizer(const std::string& dir, const std::string& config_path, const nlohmann::json& entry) {
    if (!entry.is_string()) return data::Tokenizer::from_json(entry.dump());
    const std::string name = entry.get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
        throw IOError("checkpoint: " + config_path + ": \"tokenizer\" must name a file in the checkpoint folder, got \"" +
                      name + "\"");
    }
    const std::string path = path_in(dir, name.c_str());
    if (!fs::is_regular_file(path)) {
        throw IOError("checkpoint: " + config_path + " names the tokenizer file " + path + ", which does not exist "
                      "(copy the whole checkpoint folder)");
    }
    return data::Tokenizer::load(path);  // errors name the file
}

}  // namespace

bool has_gpt_checkpoint(const std::string& dir) {
    return fs::exists(path_in(dir, "config.json")) || fs::exists(path_in(dir, "state.json"));
}

void save_gpt_checkpoint(const std::string& dir, const GPT& model, const optim::Optimizer& optimizer,
                         const GPTCheckpointConfig& config, const GPTCheckpointState& state) {
    // The caller's sections are checked before any file is touched.
    ordered_json training = parse_section(config.training, /*want_object=*/true, "the training section");
    ordered_json history = parse_section(state.history, /*want_object=*/false, "the history");

    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw IOError("checkpoint: " + dir + ": cannot create the directory: " + ec.message());
    const std::map<std::string, std::string> metadata = {{"format", kFormat}, {"step", std::to_string(state.step)}};

    save_safetensors(path_in(dir, "model.safetensors"), model.state_dict(), metadata);
    save_safetensors(path_in(dir, "optimizer.safetensors"), optimizer.state_dict(), metadata);

    ordered_json cfg;
    cfg["format"] = kFormat;
    cfg["version"] = kVersion;
    cfg["model"] = ordered_json::parse(config.model.to_json());
    // A BPE vocabulary goes to its own file, Hugging Face's tokenizer.json (Python's `tokenizers` loads it as it
    // is), written before config.json, which names it; byte and character tokenizers are a line of JSON, inline.
    if (config.tokenizer.kind() == data::Tokenizer::Kind::Bpe) {
        config.tokenizer.save(path_in(dir, kTokenizerFile));
        cfg["tokenizer"] = kTokenizerFile;
    } else {
        cfg["tokenizer"] = ordered_json::parse(config.tokenizer.to_json());
    }
    cfg["training"] = std::move(training);
    write_text(path_in(dir, "config.json"), cfg.dump(2) + "\n", "checkpoint config");

    ordered_json st;
    st["step"] = state.step;
    st["rng"] = {{"global", rng_to_json(state.global_rng)}, {"loader", rng_to_json(state.loader_rng)}};
    st["history"] = std::move(history);
    write_text(path_in(dir, "state.json"), st.dump() + "\n", "checkpoint state");  // last: it commits the step
}

GPTCheckpointConfig load_gpt_checkpoint_config(const std::string& dir) {
    if (!fs::is_directory(dir)) throw IOError("checkpoint: " + dir + ": no such directory");
    const std::string path = path_in(dir, "config.json");
    const nlohmann::json j = parse_json(path);
    // Types are checked before values are read: nlohmann's value() throws its own type_error for a "format" that
    // is a number, which is not a tg::Error and would escape every caller's handler.
    if (!j.is_object() || !j.contains("format") || j["format"] != kFormat) {
        throw IOError("checkpoint: " + path + ": not a tg-gpt checkpoint config (\"format\" is not \"" + kFormat +
                      "\")");
    }
    if (!j.contains("version") || j["version"] != kVersion) {
        throw IOError("checkpoint: " + path + ": version " + (j.contains("version") ? j["version"].dump() : "(none)") +
                      " is not the supported version " + std::to_string(kVersion));
    }
    for (const char* key : {"model", "tokenizer", "training"}) {
        if (!j.contains(key)) throw IOError("checkpoint: " + path + ": no \"" + key + "\" section");
    }
    if (!j["training"].is_object()) throw IOError("checkpoint: " + path + ": \"training\" must be an object");
    GPTCheckpointConfig config;
    try {
        config.model = GPTConfig::from_json(j["model"].dump());
        config.tokenizer = read_tokenizer(dir, path, j["tokenizer"]);
    } catch (const Error& e) {
        throw IOError("checkpoint: " + path + ": " + e.what());
    }
    config.training = j["training"].dump();
    if (config.model.vocab_size != config.tokenizer.vocab_size()) {
        throw IOError("checkpoint: " + path + ": the model's vocab_size " + std::to_string(config.model.vocab_size) +
                      " differs from the tokenizer's " + std::to_string(config.tokenizer.vocab_size()));
    }
    return config;
}

std::int64_t load_gpt_weights(const std::string& dir, GPT& model) {
    const SafetensorsFile file = load_safetensors(path_in(dir, "model.safetensors"));
    try {
        model.load_state_dict(file.tensors, /*strict=*/true);
    } catch (const Error& e) {
        throw IOError("checkpoint: " + file.origin + ": the weights do not fit the model of config.json: " + e.what());
    }
    return metadata_step(file);
}

GPTCheckpointState load_gpt_training_state(const std::string& dir, optim::Optimizer& optimizer,
                                           std::int64_t model_step) {
    const SafetensorsFile opt_file = load_safetensors(path_in(dir, "optimizer.safetensors"));
    const std::string state_path = path_in(dir, "state.json");
    const nlohmann::json j = parse_json(state_path);

    GPTCheckpointState state;
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer() || !j.contains("rng") ||
        !j["rng"].is_object() || !j.contains("history") || !j["history"].is_array()) {
        throw IOError("checkpoint: " + state_path + ": expected {\"step\", \"rng\", \"history\"}");
    }
    state.step = j["step"].get<std::int64_t>();
    const std::int64_t opt_step = metadata_step(opt_file);
    if (model_step != state.step || opt_step != state.step) {
        throw IOError("checkpoint: " + dir + ": its files are from different steps (model " +
                      std::to_string(model_step) + ", optimizer " + std::to_string(opt_step) + ", state.json " +
                      std::to_string(state.step) + "): it was probably interrupted while being written; "
                      "train afresh or restore a complete copy");
    }
    try {
        optimizer.load_state_dict(opt_file.tensors, /*require_every_param=*/true);  // every moment present
    } catch (const Error& e) {
        throw IOError("checkpoint: " + opt_file.origin + ": does not fit the model's parameters: " + e.what());
    }
    state.global_rng = rng_from_json(j["rng"].value("global", nlohmann::json()), state_path + " rng.global");
    state.loader_rng = rng_from_json(j["rng"].value("loader", nlohmann::json()), state_path + " rng.loader");
    state.history = j["history"].dump();
    return state;
}

}  // namespace tg::nn
