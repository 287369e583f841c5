#pragma once
// The settings of one training run: what `tg-gpt train` parses, what config.json stores under "training",
// and what --resume reads back.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace tg_gpt {

struct TrainArgs {
    // data and tokenizer
    std::string data;                // a text file or a folder; default: the fortunes corpus
    std::string tokenizer;           // byte | char | bpe | a tokenizer file; empty: the preset's
    std::int64_t vocab = 0;          // bpe: vocabulary size; 0: the preset's
    std::string from_hf;             // fine-tune this Hugging Face GPT-2 folder (its model and tokenizer)
    // model
    std::string preset = "small";
    double dropout = 0.0;
    bool qk_layernorm = false;
    double qk_temperature = 1.0;
    bool rope = false;
    std::string attention = "exact";  // exact | approx_backward | approx | auto
    int degree = 2;
    std::string grad = "consistent";  // approx_backward's gradient formula: consistent | plugin
    std::int64_t window = 0, sinks = 0;  // near-exact window and sinks of the approximate modes
    bool auto_window = false;            // --attention auto chooses the window (AttentionOptions::auto_window)
    // optimisation (the preset's values unless given)
    std::int64_t steps = 0, batch = 0, seq = 0, warmup = -1, eval_every = 0, eval_batches = 0;
    double lr = 0, min_lr = -1, weight_decay = 0.0, grad_clip = 1.0;
    std::uint64_t seed = 0;
    int threads = 0;  // 0: all cores
    // this invocation only (not part of the run's identity)
    std::string out;
    bool resume = false, force = false, json = false;
    std::int64_t stop_after = 0;      // stop (with a checkpoint) after this many steps of this invocation
    std::int64_t sample_tokens = 300;  // sampled at the end
    bool detect_anomaly = false;       // tg::autograd::DetectAnomalyGuard around every step

    // Fills every 0 / -1 field from the preset (find_preset throws for an unknown name).
    void apply_preset();
    nlohmann::ordered_json to_json() const;
    // Throws tg::ValueError naming a missing or mistyped field.
    static TrainArgs from_json(const nlohmann::json& j);
};

// The settings a resumed run cannot change (they define the data, the model or the optimisation), as
// (command-line flag, config.json key) pairs. --steps, --eval-every, --threads, --attention/--degree/--grad/--window/--sinks,
// --json, --stop-after and --sample-tokens may change on resume.
const std::vector<std::pair<std::string, std::string>>& fixed_on_resume();

}  // namespace tg_gpt
