#pragma once
// The loss curves of a training run: a CSV (loss.csv) and a PNG picture (loss.png) with the train loss of
// every step and the validation loss of every evaluation, against the step, on labelled axes.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tg_gpt {

struct LossRecord {
    std::int64_t step = 0;
    double train_loss = 0;
    std::optional<double> val_loss;  // only on evaluation steps: nats per token
    std::optional<double> val_bpb;   // and bits per byte of the validation text
};

// "step,train_loss,val_loss,val_bpb" and one line per record (the last two empty when not evaluated).
std::string loss_csv(const std::vector<LossRecord>& history);

// An RGB picture of width × height pixels, 3 bytes per pixel, row by row.
struct Image {
    int width = 0, height = 0;
    std::vector<std::uint8_t> rgb;
};
Image render_loss_plot(const std::vector<LossRecord>& history, int width = 800, int height = 480);
// Several named curves on one pair of axes (`tg-gpt plot`): each curve's points are joined by lines, in
// matplotlib's colour order, with a legend in the top right corner.
struct Curve {
    std::string label;
    std::vector<std::pair<double, double>> points;  // (x, value), in increasing x: usually the step
};
struct Axes {
    std::string x_label = "step";
    std::string y_label;
    bool log_y = false;  // decades on the y axis (ticks 1e-3, 1e-2, ...); the values must then be positive
};
Image render_curves_plot(const std::vector<Curve>& curves, const Axes& axes, int width = 800, int height = 480);

// The picture encoded as PNG (stb_image_write).
std::vector<std::uint8_t> encode_png(const Image& image);

// Writes dir/loss.csv and dir/loss.png, each atomically (tg::write_file_atomically).
void write_loss_files(const std::string& dir, const std::vector<LossRecord>& history);

}  // namespace tg_gpt
