#include "train_args.h"

#include "presets.h"

#include <tapegrad/tapegrad.h>

#include "nn/json_integer.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace tg_gpt {

void TrainArgs::apply_preset() {
    const Preset& p = find_preset(preset);
    if (tokenizer.empty()) tokenizer = p.tokenizer;
    if (vocab == 0) vocab = p.vocab;
    if (steps == 0) steps = p.steps;
    if (batch == 0) batch = p.batch;
    if (seq == 0) seq = p.seq;
    if (warmup < 0) warmup = std::min(p.warmup, steps);
    if (eval_every == 0) eval_every = std::min(p.eval_every, steps);
    if (eval_batches == 0) eval_batches = p.eval_batches;
    if (lr == 0) lr = p.lr;
    if (min_lr < 0) min_lr = std::min(p.min_lr, lr);
}

nlohmann::ordered_json TrainArgs::to_json() const {
    nlohmann::ordered_json j;
    j["data"] = data;
    j["tokenizer"] = tokenizer;
    j["from_hf"] = from_hf;
    j["vocab"] = vocab;
    j["preset"] = preset;
    j["dropout"] = dropout;
    j["qk_layernorm"] = qk_layernorm;
    j["qk_temperature"] = qk_temperature;
    j["rope"] = rope;
    j["attention"] = attention;
    j["degree"] = degree;
    j["grad"] = grad;
    j["window"] = window;
    j["sinks"] = sinks;
    j["auto_window"] = auto_window;
    j["steps"] = steps;
    j["batch"] = batch;
    j["seq"] = seq;
    j["warmup"] = warmup;
    j["eval_every"] = eval_every;
    j["eval_batches"] = eval_batches;
    j["lr"] = lr;
    j["min_lr"] = min_lr;
    j["weight_decay"] = weight_decay;
    j["grad_clip"] = grad_clip;
    j["seed"] = seed;
    j["threads"] = threads;
    return j;
}

namespace {

template <typename T>
T field(const nlohmann::json& j, const char* key) {
    if (!j.contains(key)) throw tg::ValueError(std::string("config.json: \"training\" lacks the field \"") + key + "\"");
    const nlohmann::json& v = j.at(key);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        if (const std::optional<T> n = tg::nn::json_integer<T>(v)) return *n;  // a whole number that fits in T
        throw tg::ValueError(std::string("config.json: \"training\" field \"") + key + "\" must be an integer from " +
                             std::to_string(std::numeric_limits<T>::min()) + " to " +
                             std::to_string(std::numeric_limits<T>::max()) + ", got " + v.dump());
    } else {
        try {
            return v.get<T>();
        } catch (const nlohmann::json::exception&) {
            throw tg::ValueError(std::string("config.json: \"training\" field \"") + key +
                                 "\" has the wrong type: " + v.dump());
        }
    }
}

}  // namespace

TrainArgs TrainArgs::from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw tg::ValueError("config.json: \"training\" must be an object");
    TrainArgs a;
    a.data = field<std::string>(j, "data");
    a.tokenizer = field<std::string>(j, "tokenizer");
    a.from_hf = j.contains("from_hf") ? field<std::string>(j, "from_hf") : std::string();  // absent before GPT-2 support
    a.vocab = j.contains("vocab") ? field<std::int64_t>(j, "vocab") : 0;  // checkpoints from before BPE lack it
    a.preset = field<std::string>(j, "preset");
    a.dropout = field<double>(j, "dropout");
    a.qk_layernorm = field<bool>(j, "qk_layernorm");
    a.qk_temperature = field<double>(j, "qk_temperature");
    a.rope = field<bool>(j, "rope");
    a.attention = field<std::string>(j, "attention");
    a.degree = field<int>(j, "degree");
    a.grad = field<std::string>(j, "grad");
    a.window = j.contains("window") ? field<std::int64_t>(j, "window") : 0;  // absent before the near-exact window
    a.sinks = j.contains("sinks") ? field<std::int64_t>(j, "sinks") : 0;
    a.auto_window = j.contains("auto_window") ? field<bool>(j, "auto_window") : false;
    a.steps = field<std::int64_t>(j, "steps");
    a.batch = field<std::int64_t>(j, "batch");
    a.seq = field<std::int64_t>(j, "seq");
    a.warmup = field<std::int64_t>(j, "warmup");
    a.eval_every = field<std::int64_t>(j, "eval_every");
    a.eval_batches = field<std::int64_t>(j, "eval_batches");
    a.lr = field<double>(j, "lr");
    a.min_lr = field<double>(j, "min_lr");
    a.weight_decay = field<double>(j, "weight_decay");
    a.grad_clip = field<double>(j, "grad_clip");
    a.seed = field<std::uint64_t>(j, "seed");
    a.threads = field<int>(j, "threads");
    return a;
}

const std::vector<std::pair<std::string, std::string>>& fixed_on_resume() {
    static const std::vector<std::pair<std::string, std::string>> fixed = {
        {"--data", "data"},         {"--tokenizer", "tokenizer"},
        {"--from-hf", "from_hf"},
        {"--vocab", "vocab"},
        {"--preset", "preset"},     {"--dropout", "dropout"},
        {"--qk-layernorm", "qk_layernorm"}, {"--qk-temperature", "qk_temperature"},
        {"--rope", "rope"},         {"--batch", "batch"},
        {"--seq", "seq"},           {"--warmup", "warmup"},
        {"--eval-batches", "eval_batches"}, {"--lr", "lr"},
        {"--min-lr", "min_lr"},     {"--weight-decay", "weight_decay"},
        {"--grad-clip", "grad_clip"}, {"--seed", "seed"},
    };
    return fixed;
}

}  // namespace tg_gpt
