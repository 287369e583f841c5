// tg-gpt's checkpoint: the library's GPT checkpoint folder (nn/models/gpt_checkpoint.h) with TrainArgs as the
// "training" section and the loss history as [[step, train_loss, val_loss or null, val_bpb or null], ...]
// (checkpoints from before bits per byte have no val_bpb).

#include "checkpoint.h"

#include "nn/models/gpt_checkpoint.h"
#include "core/finite.h"
#include "examples/common/memory.h"
#include "nn/models/model_size.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include <limits>

namespace tg_gpt {

using ordered_json = nlohmann::ordered_json;

bool has_checkpoint(const std::string& dir) { return tg::nn::has_gpt_checkpoint(dir); }

void save_checkpoint(const std::string& dir, const tg::nn::GPT& model, const tg::optim::Optimizer& optimizer,
                     const CheckpointConfig& config, const TrainingState& state) {
    ordered_json history = ordered_json::array();
    for (const LossRecord& r : state.history) {
        const auto optional = [](const std::optional<double>& v) { return v ? ordered_json(*v) : ordered_json(nullptr); };
        history.push_back({r.step, r.train_loss, optional(r.val_loss), optional(r.val_bpb)});
    }
    const tg::nn::GPTCheckpointConfig cfg{config.model, config.tokenizer, config.training.to_json().dump()};
    const tg::nn::GPTCheckpointState st{state.step, state.global_rng, state.loader_rng, history.dump()};
    tg::nn::save_gpt_checkpoint(dir, model, optimizer, cfg, st);
}

CheckpointConfig load_checkpoint_config(const std::string& dir) {
    const tg::nn::GPTCheckpointConfig cfg = tg::nn::load_gpt_checkpoint_config(dir);
    CheckpointConfig config{cfg.model, cfg.tokenizer, {}};
    try {
        config.training = TrainArgs::from_json(nlohmann::json::parse(cfg.training));
    } catch (const tg::Error& e) {
        throw tg::IOError("checkpoint: " + dir + "/config.json: " + e.what());
    }
    return config;
}

void check_weights_fit(const std::string& dir, const tg::nn::GPTConfig& config) {
    const std::string path = dir + "/model.safetensors";
    std::error_code ec;
    const std::uintmax_t file_bytes = std::filesystem::file_size(path, ec);
    if (ec) throw tg::IOError("checkpoint: " + path + ": cannot read its size: " + ec.message());
    const auto params = static_cast<std::uint64_t>(tg::nn::gpt_parameter_count(config));
    const std::uint64_t weight_bytes = tg::cli::saturating_product({params, 4});
    // The file is an 8-byte length, a JSON header (at most 100 MB, safetensors' limit) and the float32 data.
    constexpr std::uint64_t kMaxHeader = 8 + 100'000'000;
    if (weight_bytes > file_bytes || file_bytes - weight_bytes > kMaxHeader) {
        throw tg::IOError("checkpoint: " + dir + "/config.json describes a model of " + std::to_string(params) +
                          " parameters (" + tg::cli::format_bytes(weight_bytes) + " as float32), but " + path +
                          " holds " + std::to_string(file_bytes) +
                          " bytes: the config and the weights do not belong together (was config.json edited?)");
    }
}

std::int64_t load_model_weights(const std::string& dir, tg::nn::GPT& model, bool allow_nonfinite) {
    const std::int64_t step = tg::nn::load_gpt_weights(dir, model);
    if (!allow_nonfinite) {
        for (const auto& [name, t] : model.state_dict()) {
            if (const auto bad = tg::find_non_finite(t)) {
                throw tg::IOError("checkpoint: " + dir + "/model.safetensors: tensor '" + name + "' holds " +
                                  bad->text() + ": the weights are damaged or come from a diverged run (pass "
                                  "--allow-nonfinite to load them anyway)");
            }
        }
    }
    return step;
}

TrainingState load_training_state(const std::string& dir, tg::optim::Optimizer& optimizer, std::int64_t model_step) {
    const tg::nn::GPTCheckpointState st = tg::nn::load_gpt_training_state(dir, optimizer, model_step);
    TrainingState state{st.step, st.global_rng, st.loader_rng, {}};
    const std::string state_path = dir + "/state.json";
    for (const auto& r : nlohmann::json::parse(st.history)) {
        const auto number_or_null = [](const nlohmann::json& v) { return v.is_number() || v.is_null(); };
        if (!r.is_array() || r.size() < 3 || r.size() > 4 || !r[0].is_number_integer() || !number_or_null(r[1]) ||
            !number_or_null(r[2]) || (r.size() == 4 && !number_or_null(r[3]))) {
            throw tg::IOError("checkpoint: " + state_path + ": a history entry is not [step, train_loss, val_loss, "
                              "val_bpb]: " + r.dump());
        }
        // A non-finite loss (a diverged run) is stored as null by JSON.
        LossRecord rec{r[0].get<std::int64_t>(),
                       r[1].is_null() ? std::numeric_limits<double>::quiet_NaN() : r[1].get<double>(), std::nullopt,
                       std::nullopt};
        if (r[2].is_number()) rec.val_loss = r[2].get<double>();
        if (r.size() == 4 && r[3].is_number()) rec.val_bpb = r[3].get<double>();
        state.history.push_back(rec);
    }
    return state;
}

}  // namespace tg_gpt
