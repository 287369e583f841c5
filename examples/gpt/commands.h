#pragma once
// The subcommands of tg-gpt. Each returns the process exit status and throws tg::Error (or CLI11's
// errors) for the caller to report.

#include "train_args.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tg_gpt {

// `given(flag)` tells whether a flag was on the command line (a resumed run refuses to change some of them).
int run_train(TrainArgs args, const std::function<bool(const std::string&)>& given);

struct SampleArgs {
    std::string ckpt;
    std::string from_hf;  // a Hugging Face GPT-2 folder instead of a checkpoint (hf.h)
    std::string prompt;  // empty: start from a newline
    std::int64_t tokens = 300;
    double temperature = 0.8;
    std::int64_t top_k = 0;
    std::uint64_t seed = 0;
    int threads = 0;
    bool no_cache = false;
    bool allow_nonfinite = false;  // load weights that hold NaN/Inf (refused by default)
};
int run_sample(const SampleArgs& args);

struct EvalArgs {
    std::string ckpt;
    std::string from_hf;  // a Hugging Face GPT-2 folder instead of a checkpoint (hf.h)
    std::string data;  // empty: the checkpoint's training data
    std::int64_t batch = 0, seq = 0, eval_batches = 0;  // 0: the checkpoint's
    int threads = 0;
    bool json = false;
    bool allow_nonfinite = false;
};
int run_eval(const EvalArgs& args);

// tg-gpt prepare: a corpus as token shards for `train --data DIR` (prepare.cpp).
struct PrepareArgs {
    std::string data;       // a text file or folder; empty: the fortunes
    std::string tokenizer;  // a tokenizer file, or "byte"
    std::string out;        // the folder to write
};
int run_prepare(const PrepareArgs& args);

// tg-gpt plot: the loss.csv curves of several runs on one PNG (plot.cpp).
struct PlotArgs {
    std::vector<std::string> runs;    // `tg-gpt train --out` directories
    std::vector<std::string> labels;  // one per run; empty: the directories' names
    std::string out;
    std::string metric = "val_loss";  // or "val_bpb", "train_loss"
    std::string x_label = "step";     // what the loss.csv's first column holds (a derived file may hold seconds)
    std::string y_label;              // empty: the metric's name and unit
    bool log_y = false;               // a logarithmic y axis (decades), for quantities spanning several
    int width = 800, height = 480;
};
int run_plot(const PlotArgs& args);

}  // namespace tg_gpt
