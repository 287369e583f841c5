#include "checkpoint.h"

#include "core/file_io.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace tg_gpt {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

namespace {

constexpr const char* kFormat = "tg-gpt checkpoint";
constexpr int kVersion = 1;

std::string path_in(const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); }

void write_text(const std::string& path, const std::string& text, const char* what) {
    tg::write_file_atomically(path, text.data(), text.size(), what);
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw tg::IOError("checkpoint: " + path + ": cannot open the file (is this a tg-gpt checkpoint directory?)");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

nlohmann::json parse_json(const std::string& path) {
    try {
        return nlohmann::json::parse(read_text(path));
    } catch (const nlohmann::json::exception& e) {
        throw tg::IOError("checkpoint: " + path + ": not valid JSON: " + e.what());
    }
}

ordered_json rng_to_json(const tg::GeneratorState& s) { return {{"seed", s.seed}, {"offset", s.offset}}; }

tg::GeneratorState rng_from_json(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object() || !j.contains("seed") || !j.contains("offset") || !j["seed"].is_number_unsigned() ||
        !j["offset"].is_number_unsigned()) {
        throw tg::IOError("checkpoint: " + where + " must be {\"seed\": n, \"offset\": n}, got " + j.dump());
    }
    return {j["seed"].get<std::uint64_t>(), j["offset"].get<std::uint64_t>()};
}

std::int64_t metadata_step(const tg::SafetensorsFile& file) {
    const auto it = file.metadata.find("step");
    if (it == file.metadata.end()) throw tg::IOError("checkpoint: " + file.origin + ": no \"step\" in its metadata");
    try {
        return std::stoll(it->second);
    } catch (const std::exception&) {
        throw tg::IOError("checkpoint: " + file.origin + ": metadata step \"" + it->second + "\" is not a number");
    }
}

}  // namespace

bool has_checkpoint(const std::string& dir) {
    return fs::exists(path_in(dir, "config.json")) || fs::exists(path_in(dir, "state.json"));
}

void save_checkpoint(const std::string& dir, const tg::nn::GPT& model, const tg::optim::Optimizer& optimizer,
                     const CheckpointConfig& config, const TrainingState& state) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw tg::IOError("checkpoint: " + dir + ": cannot create the directory: " + ec.message());
    const std::map<std::string, std::string> metadata = {{"format", kFormat}, {"step", std::to_string(state.step)}};

    tg::save_safetensors(path_in(dir, "model.safetensors"), model.state_dict(), metadata);
    tg::save_safetensors(path_in(dir, "optimizer.safetensors"), optimizer.state_dict(), metadata);

    ordered_json cfg;
    cfg["format"] = kFormat;
    cfg["version"] = kVersion;
    cfg["model"] = ordered_json::parse(config.model.to_json());
    cfg["tokenizer"] = ordered_json::parse(config.tokenizer.to_json());
    cfg["training"] = config.training.to_json();
    write_text(path_in(dir, "config.json"), cfg.dump(2) + "\n", "checkpoint config");

    ordered_json st;
    st["step"] = state.step;
    st["rng"] = {{"global", rng_to_json(state.global_rng)}, {"loader", rng_to_json(state.loader_rng)}};
    ordered_json history = ordered_json::array();
    for (const LossRecord& r : state.history) {
        history.push_back({r.step, r.train_loss, r.val_loss ? ordered_json(*r.val_loss) : ordered_json(nullptr)});
    }
    st["history"] = std::move(history);
    write_text(path_in(dir, "state.json"), st.dump() + "\n", "checkpoint state");  // last: it commits the step
}

CheckpointConfig load_checkpoint_config(const std::string& dir) {
    if (!fs::is_directory(dir)) throw tg::IOError("checkpoint: " + dir + ": no such directory");
    const std::string path = path_in(dir, "config.json");
    const nlohmann::json j = parse_json(path);
    if (!j.is_object() || j.value("format", std::string()) != kFormat) {
        throw tg::IOError("checkpoint: " + path + ": not a tg-gpt checkpoint config (\"format\" is not \"" +
                          kFormat + "\")");
    }
    if (j.value("version", 0) != kVersion) {
        throw tg::IOError("checkpoint: " + path + ": version " + j.value("version", nlohmann::json()).dump() +
                          " is not the supported version " + std::to_string(kVersion));
    }
    for (const char* key : {"model", "tokenizer", "training"}) {
        if (!j.contains(key)) throw tg::IOError("checkpoint: " + path + ": no \"" + key + "\" section");
    }
    CheckpointConfig config;
    try {
        config.model = tg::nn::GPTConfig::from_json(j["model"].dump());
        config.tokenizer = tg::data::Tokenizer::from_json(j["tokenizer"].dump());
        config.training = TrainArgs::from_json(j["training"]);
    } catch (const tg::Error& e) {
        throw tg::IOError("checkpoint: " + path + ": " + e.what());
    }
    if (config.model.vocab_size != config.tokenizer.vocab_size()) {
        throw tg::IOError("checkpoint: " + path + ": the model's vocab_size " + std::to_string(config.model.vocab_size) +
                          " differs from the tokenizer's " + std::to_string(config.tokenizer.vocab_size()));
    }
    return config;
}

std::int64_t load_model_weights(const std::string& dir, tg::nn::GPT& model) {
    const tg::SafetensorsFile file = tg::load_safetensors(path_in(dir, "model.safetensors"));
    try {
        model.load_state_dict(file.tensors, /*strict=*/true);
    } catch (const tg::Error& e) {
        throw tg::IOError("checkpoint: " + file.origin + ": the weights do not fit the model of config.json: " + e.what());
    }
    return metadata_step(file);
}

TrainingState load_training_state(const std::string& dir, tg::optim::Optimizer& optimizer, std::int64_t model_step) {
    const tg::SafetensorsFile opt_file = tg::load_safetensors(path_in(dir, "optimizer.safetensors"));
    const std::string state_path = path_in(dir, "state.json");
    const nlohmann::json j = parse_json(state_path);

    TrainingState state;
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer() || !j.contains("rng") ||
        !j.contains("history") || !j["history"].is_array()) {
        throw tg::IOError("checkpoint: " + state_path + ": expected {\"step\", \"rng\", \"history\"}");
    }
    state.step = j["step"].get<std::int64_t>();
    const std::int64_t opt_step = metadata_step(opt_file);
    if (model_step != state.step || opt_step != state.step) {
        throw tg::IOError("checkpoint: " + dir + ": its files are from different steps (model " +
                          std::to_string(model_step) + ", optimizer " + std::to_string(opt_step) + ", state.json " +
                          std::to_string(state.step) + "): it was probably interrupted while being written; "
                          "train afresh or restore a complete copy");
    }
    try {
        optimizer.load_state_dict(opt_file.tensors);
    } catch (const tg::Error& e) {
        throw tg::IOError("checkpoint: " + opt_file.origin + ": does not fit the model's parameters: " + e.what());
    }
    state.global_rng = rng_from_json(j["rng"].value("global", nlohmann::json()), state_path + " rng.global");
    state.loader_rng = rng_from_json(j["rng"].value("loader", nlohmann::json()), state_path + " rng.loader");
    for (const auto& r : j["history"]) {
        if (!r.is_array() || r.size() != 3 || !r[0].is_number_integer() || !(r[1].is_number() || r[1].is_null()) ||
            !(r[2].is_number() || r[2].is_null())) {
            throw tg::IOError("checkpoint: " + state_path + ": a history entry is not [step, train_loss, val_loss]: " +
                              r.dump());
        }
        // A non-finite loss (a diverged run) is stored as null by JSON.
        LossRecord rec{r[0].get<std::int64_t>(),
                       r[1].is_null() ? std::numeric_limits<double>::quiet_NaN() : r[1].get<double>(), std::nullopt};
        if (r[2].is_number()) rec.val_loss = r[2].get<double>();
        state.history.push_back(rec);
    }
    return state;
}

}  // namespace tg_gpt
