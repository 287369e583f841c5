// tg-vit classify: any PNG/JPEG/BMP -> the top-3 Fashion-MNIST classes.
//
// The picture is made to look like the training data: grayscale, shrunk to 28×28 (antialiased), and
// inverted when its background is light (Fashion-MNIST has light clothes on a black background).

#include "commands.h"
#include "common.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace vit {

namespace {

// The mean of the border pixels: the background of a product photo.
double border_mean(const tg::Tensor& gray) {  // (1, H, W)
    const std::int64_t H = gray.size(1), W = gray.size(2);
    const float* p = gray.data<float>();
    double sum = 0;
    std::int64_t n = 0;
    for (std::int64_t y = 0; y < H; ++y) {
        for (std::int64_t x = 0; x < W; ++x) {
            if (y == 0 || x == 0 || y == H - 1 || x == W - 1) sum += p[y * W + x], ++n;
        }
    }
    return sum / static_cast<double>(n);
}

}  // namespace

// Grayscale 28×28 in [0, 1], light object on a dark background.
tg::Tensor prepare_image(const std::string& path, std::int64_t size, bool allow_invert, bool* inverted,
                         std::int64_t max_pixels) {
    tg::Tensor gray = tg::data::to_grayscale(tg::data::load_image(path, 3, max_pixels));  // (1, H, W)
    *inverted = allow_invert && border_mean(gray) > 0.5;
    if (*inverted) gray = 1.0 - gray;
    return tg::data::resize(gray, size, size).contiguous();  // (1, 28, 28)
}

int run_classify(const ClassifyOptions& o) {
    std::vector<std::string> names;  // the checkpoint's own class names (config.json "classes")
    auto model = load_checkpoint(o.ckpt, &names);
    for (const std::string& path : o.images) {
        bool inverted = false;
        const tg::Tensor x = prepare_image(path, model->config.image_size, !o.no_invert, &inverted, o.max_pixels);
        const std::vector<float> p = predict_proba(*model, x.unsqueeze(0)).to_vector<float>();  // (10)
        std::vector<std::size_t> order(p.size());
        std::iota(order.begin(), order.end(), 0);
        const std::size_t top_k = std::min<std::size_t>(3, order.size());
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top_k), order.end(), [&](auto a, auto b) { return p[a] > p[b]; });
        if (o.json) {
            nlohmann::ordered_json top = nlohmann::ordered_json::array();
            for (std::size_t k = 0; k < top_k; ++k) top.push_back({{"class", names.at(order[k])}, {"label", order[k]}, {"p", p[order[k]]}});
            std::printf("%s\n", nlohmann::ordered_json{{"image", path}, {"inverted", inverted}, {"top3", top}}.dump().c_str());
        } else {
            std::printf("%s%s\n", path.c_str(), inverted ? "  (light background: inverted)" : "");
            for (std::size_t k = 0; k < top_k; ++k) std::printf("  %-12s %6.2f%%\n", names.at(order[k]).c_str(), 100.0 * p[order[k]]);
        }
    }
    return 0;
}

}  // namespace vit
