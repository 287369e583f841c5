#pragma once
// The three commands of tg-vit and their options (parsed in main.cpp).

#include <tapegrad/tapegrad.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vit {

struct TrainOptions {
    std::string data = tg::data::kFashionMnistDir;
    std::string out = "vit-checkpoint";
    tg::nn::ViTConfig model;
    std::int64_t epochs = 15, batch = 128, warmup = 200, max_steps = 0;
    std::int64_t train_limit = 0, test_limit = 0;  // 0: all
    std::int64_t shift = 1;                        // augmentation: random shifts of up to this many pixels
    double lr = 2e-3, weight_decay = 0.05, clip = 1.0;
    bool augment = true, flip = false, json = false;  // flips off: see docs/vit.md
    std::uint64_t seed = 0;
};
int run_train(const TrainOptions& options);

struct ClassifyOptions {
    std::string ckpt = "vit-checkpoint";
    std::vector<std::string> images;
    bool json = false;
    bool no_invert = false;
    std::int64_t max_pixels = tg::data::kMaxImagePixels;  // larger images are refused before decoding
};
int run_classify(const ClassifyOptions& options);

struct ShowOptions {
    std::string ckpt = "vit-checkpoint";
    std::string data = tg::data::kFashionMnistDir;
    std::string out = "vit-show";  // writes <out>-grid.png and <out>-attention.png
    std::int64_t count = 32, attention_rows = 6, layer = -1, first = 0;
};
int run_show(const ShowOptions& options);

}  // namespace vit
