// tg-vit show: the pictures a course would show.
//
//   OUT-grid.png       test images with the predicted label (green when right, red when wrong) and the true one
//   OUT-attention.png  for a few test images: the image, then for each head of one block (the last by default)
//                      the attention of the class token to the 16 patches, as a heat map over the image,
//                      and the mean over heads
//
// The attention probabilities P = softmax(s·q kᵀ) are recomputed from the block's qkv projection
// (MultiHeadAttention::attention_probabilities): the fused attention node never stores them. Row 0 of P is the class
// token's query; its entries 1..16 are the weights it gives the 4×4 patches. They are rescaled so the largest is 1
// (the class token also attends to itself, entry 0, shown in the corner as a percentage).

#include "examples/common/canvas.h"
#include "commands.h"
#include "common.h"

#include <algorithm>
#include <cstdio>

namespace vit {

using tg::examples::Canvas;
using tg::examples::Rgb;

namespace {

constexpr Rgb kBackground{24, 24, 28}, kText{230, 230, 230}, kDim{150, 150, 160}, kRight{90, 220, 110},
    kWrong{250, 90, 80};

void write_grid(const std::string& path, const tg::Tensor& images, const std::vector<std::int64_t>& predicted,
                const std::vector<std::int64_t>& truth) {
    const auto& names = class_names();
    const int n = static_cast<int>(predicted.size()), cols = std::min(n, 8), rows = (n + cols - 1) / cols;
    const int S = static_cast<int>(images.size(1)), scale = 3, cell_w = S * scale + 12, cell_h = S * scale + 34;
    int correct = 0;
    for (int i = 0; i < n; ++i) correct += predicted[i] == truth[i];
    Canvas canvas(cols * cell_w + 8, rows * cell_h + 30, kBackground);
    char title[128];
    std::snprintf(title, sizeof title, "tg-vit: %d of %d test images right (green: predicted = true)", correct, n);
    canvas.draw_text(8, 8, title, kText);
    for (int i = 0; i < n; ++i) {
        const int x = 8 + (i % cols) * cell_w, y = 26 + (i / cols) * cell_h;
        canvas.draw_gray(x, y, images.data<float>() + static_cast<std::int64_t>(i) * S * S, S, S, scale);
        canvas.draw_text(x, y + S * scale + 4, names.at(predicted[i]), predicted[i] == truth[i] ? kRight : kWrong);
        canvas.draw_text(x, y + S * scale + 16, "true: " + names.at(truth[i]), kDim);
    }
    canvas.save_png(path);
}

void write_attention(const std::string& path, tg::nn::ViT& model, const tg::Tensor& images,
                     const std::vector<std::int64_t>& predicted, const std::vector<std::int64_t>& truth,
                     std::int64_t layer) {
    const auto& names = class_names();
    const std::vector<tg::Tensor> maps = model.attention_maps(images);  // per layer (B, H, T, T)
    const tg::Tensor P = maps.at(static_cast<std::size_t>(layer)).contiguous();
    const int B = static_cast<int>(P.size(0)), H = static_cast<int>(P.size(1)), T = static_cast<int>(P.size(2));
    const int S = static_cast<int>(images.size(1)), G = static_cast<int>(model.config.grid()), scale = 4;
    const int tile = S * scale, gap = 8, label_w = 96, cols = H + 2;  // image, heads, mean
    Canvas canvas(label_w + cols * (tile + gap) + gap, 44 + B * (tile + gap), kBackground);
    char title[160];
    std::snprintf(title, sizeof title, "class-token attention of block %lld (of %lld) over the %dx%d patches",
                  static_cast<long long>(layer), static_cast<long long>(model.config.n_layer), G, G);
    canvas.draw_text(8, 8, title, kText);
    for (int c = 0; c < cols; ++c) {
        const std::string head = c == 0 ? "image" : c <= H ? "head " + std::to_string(c - 1) : "mean of heads";
        canvas.draw_text(label_w + c * (tile + gap), 26, head, kDim);
    }
    std::vector<float> heat(static_cast<std::size_t>(G * G));
    for (int b = 0; b < B; ++b) {
        const int y = 40 + b * (tile + gap);
        canvas.draw_text(8, y + 4, "true:", kDim);
        canvas.draw_text(8, y + 16, names.at(truth[b]), kText);
        canvas.draw_text(8, y + 34, "predicted:", kDim);
        canvas.draw_text(8, y + 46, names.at(predicted[b]), predicted[b] == truth[b] ? kRight : kWrong);
        const float* image = images.data<float>() + static_cast<std::int64_t>(b) * S * S;
        canvas.draw_gray(label_w, y, image, S, S, scale);
        for (int h = 0; h <= H; ++h) {  // h == H: the mean over heads
            const int x = label_w + (h + 1) * (tile + gap);
            float self = 0;
            for (int k = 0; k < G * G; ++k) {
                float a = 0;
                for (int hh = (h == H ? 0 : h); hh < (h == H ? H : h + 1); ++hh) {
                    a += P.data<float>()[((static_cast<std::int64_t>(b) * H + hh) * T + 0) * T + 1 + k];
                    if (k == 0) self += P.data<float>()[((static_cast<std::int64_t>(b) * H + hh) * T + 0) * T + 0];
                }
                heat[k] = a;
            }
            if (h == H) self /= static_cast<float>(H);
            const float top = *std::max_element(heat.begin(), heat.end());
            for (float& a : heat) a = top > 0 ? a / top : 0.0f;
            // The 4×4 map upsampled smoothly to the tile (bilinear, pixel centres aligned with the patches).
            const tg::Tensor small = tg::from_vector(heat, {G, G});
            const tg::Tensor big = tg::data::resize(small, tile, tile, /*antialias=*/false).contiguous();
            canvas.draw_gray(x, y, image, S, S, scale);
            canvas.overlay_heat(x, y, big.data<float>(), tile, tile, 0.6f);
            char corner[32];
            std::snprintf(corner, sizeof corner, "cls %.0f%%", 100.0 * self);
            canvas.draw_text(x + 2, y + 2, corner, kText);
        }
    }
    canvas.save_png(path);
}

}  // namespace

int run_show(const ShowOptions& o) {
    auto model = load_checkpoint(o.ckpt);
    const tg::data::ImageDataset test = tg::data::load_mnist(o.data, "t10k");
    const std::int64_t available = test.images.size(0);
    if (o.first >= available) {
        throw tg::IndexError("show: --first " + std::to_string(o.first) + " is past the " +
                             std::to_string(available) + " test images");
    }
    const std::int64_t layer = o.layer < 0 ? model->config.n_layer + o.layer : o.layer;
    if (layer < 0 || layer >= model->config.n_layer) {
        throw tg::IndexError("show: --layer " + std::to_string(o.layer) + " is not a block of this model (" +
                             std::to_string(model->config.n_layer) + " blocks)");
    }
    const std::int64_t count = std::min(o.count, available - o.first);
    const tg::Tensor images = test.images.narrow(0, o.first, count).contiguous();  // (n, 28, 28)
    const std::vector<std::int64_t> truth = test.labels.narrow(0, o.first, count).contiguous().to_vector<std::int64_t>();
    const std::vector<std::int64_t> predicted = predict(*model, images).to_vector<std::int64_t>();

    const std::string grid_path = o.out + "-grid.png", attention_path = o.out + "-attention.png";
    write_grid(grid_path, images, predicted, truth);
    const std::int64_t rows = std::min(o.attention_rows, count);
    write_attention(attention_path, *model, images.narrow(0, 0, rows).contiguous(),
                    std::vector<std::int64_t>(predicted.begin(), predicted.begin() + rows),
                    std::vector<std::int64_t>(truth.begin(), truth.begin() + rows), layer);
    std::printf("wrote %s (%lld test images) and %s (attention of block %lld, %lld images)\n", grid_path.c_str(),
                static_cast<long long>(count), attention_path.c_str(), static_cast<long long>(layer),
                static_cast<long long>(rows));
    return 0;
}

}  // namespace vit
