// The loss picture, drawn pixel by pixel on the programs' shared canvas (examples/common/canvas.h): axes with
// "nice" ticks (1, 2 or 5 times a power of ten), grid lines, the two curves, a legend, and text; the library's
// PNG encoder (nn/data/image.h) turns the pixels into a PNG.

#include "loss_plot.h"

#include "core/file_io.h"
#include "examples/common/canvas.h"
#include <tapegrad/tapegrad.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <limits>
#include <sstream>

namespace tg_gpt {

std::string loss_csv(const std::vector<LossRecord>& history) {
    std::ostringstream out;
    out << "step,train_loss,val_loss,val_bpb\n";
    char buf[64];
    const auto optional = [&](const std::optional<double>& v) {
        if (!v) return std::string();
        std::snprintf(buf, sizeof(buf), "%.6f", *v);
        return std::string(buf);
    };
    for (const LossRecord& r : history) {
        std::snprintf(buf, sizeof(buf), "%.6f", r.train_loss);
        out << r.step << ',' << buf << ',';
        out << optional(r.val_loss) << ',' << optional(r.val_bpb) << '\n';
    }
    return out.str();
}

namespace {

using tg::examples::Canvas;
using tg::examples::Rgb;

constexpr Rgb kWhite{255, 255, 255}, kBlack{0, 0, 0}, kGrid{225, 225, 225}, kText{40, 40, 40};
constexpr Rgb kTrain{31, 119, 180}, kValidation{255, 127, 14};  // matplotlib's first two colours
constexpr int kTextScale = 2;  // stb_easy_font at twice its size: about 12 px per character

// A filled rectangle with both corners included.
void rect(Canvas& canvas, int x0, int y0, int x1, int y1, Rgb color) {
    canvas.fill_rect(x0, y0, x1 - x0 + 1, y1 - y0 + 1, color);
}
void text(Canvas& canvas, int x, int y, const std::string& s, Rgb color) {
    canvas.draw_text(x, y, s, color, kTextScale);
}
int text_width(const std::string& s) { return Canvas::text_width(s, kTextScale); }

// Ticks at multiples of 1, 2 or 5 × 10^k covering [lo, hi], about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target) {
    const double raw = (hi - lo) / target;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double norm = raw / magnitude;
    const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
    std::vector<double> ticks;
    for (double t = std::ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) ticks.push_back(t);
    return ticks;
}

std::string tick_label(double value, double spacing) {
    const int decimals = spacing >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(spacing) - 1e-9));
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.*f", decimals, std::abs(value) < 1e-12 ? 0.0 : value);
    return buf;
}

}  // namespace

Image render_loss_plot(const std::vector<LossRecord>& history, int width, int height) {
    Canvas canvas(width, height, kWhite);
    // The plot area: room on the left for the y labels, below for the x labels and title, above for the legend.
    const int left = 80, right = width - 24, top = 48, bottom = height - 64;

    double step_max = 1, loss_lo = 0, loss_hi = 1;
    bool any = !history.empty();
    if (any) {
        step_max = std::max<double>(1.0, static_cast<double>(history.back().step));
        loss_lo = std::numeric_limits<double>::infinity();
        loss_hi = -loss_lo;
        for (const LossRecord& r : history) {
            for (double v : {r.train_loss, r.val_loss.value_or(r.train_loss)}) {
                if (!std::isfinite(v)) continue;
                loss_lo = std::min(loss_lo, v);
                loss_hi = std::max(loss_hi, v);
            }
        }
        if (!std::isfinite(loss_lo)) loss_lo = 0, loss_hi = 1, any = false;
        const double pad = std::max(0.05 * (loss_hi - loss_lo), 0.05);
        loss_lo = std::max(0.0, loss_lo - pad);
        loss_hi += pad;
    }
    const auto px = [&](double step) { return left + static_cast<int>(std::lround((right - left) * step / step_max)); };
    const auto py = [&](double loss) {
        return bottom - static_cast<int>(std::lround((bottom - top) * (loss - loss_lo) / (loss_hi - loss_lo)));
    };

    // Grid and tick labels.
    const std::vector<double> xt = nice_ticks(0, step_max, 8), yt = nice_ticks(loss_lo, loss_hi, 6);
    const double xs = xt.size() > 1 ? xt[1] - xt[0] : 1, ys = yt.size() > 1 ? yt[1] - yt[0] : 1;
    for (double t : xt) {
        const int x = px(t);
        canvas.line(x, top, x, bottom, kGrid);
        canvas.line(x, bottom, x, bottom + 5, kBlack);
        const std::string label = tick_label(t, xs);
        text(canvas, x - text_width(label) / 2, bottom + 10, label, kText);
    }
    for (double t : yt) {
        const int y = py(t);
        canvas.line(left, y, right, y, kGrid);
        canvas.line(left - 5, y, left, y, kBlack);
        const std::string label = tick_label(t, ys);
        text(canvas, left - 10 - text_width(label), y - 7, label, kText);
    }
    canvas.line(left, top, left, bottom, kBlack);
    canvas.line(left, bottom, right, bottom, kBlack);
    text(canvas, (left + right - text_width("step")) / 2, bottom + 36, "step", kText);
    text(canvas, 8, 14, "loss (nats/token)", kText);
    // The last evaluation also in bits per byte, the unit that compares runs with different tokenizers.
    for (auto r = history.rbegin(); r != history.rend(); ++r) {
        if (!r->val_loss || !r->val_bpb) continue;
        char buf[96];
        std::snprintf(buf, sizeof(buf), "last val %.3f = %.3f bits/byte", *r->val_loss, *r->val_bpb);
        text(canvas, 8, 30, buf, kValidation);
        break;
    }

    // The curves: train at every step, validation at each evaluation (with a dot).
    if (any) {
        const LossRecord* previous = nullptr;
        for (const LossRecord& r : history) {
            if (std::isfinite(r.train_loss)) {
                if (previous) canvas.line(px(previous->step), py(previous->train_loss), px(r.step), py(r.train_loss), kTrain);
                previous = &r;
            }
        }
        const LossRecord* prev_val = nullptr;
        for (const LossRecord& r : history) {
            if (!r.val_loss || !std::isfinite(*r.val_loss)) continue;
            const int x = px(r.step), y = py(*r.val_loss);
            if (prev_val) canvas.line(px(prev_val->step), py(*prev_val->val_loss), x, y, kValidation, 2);
            rect(canvas, x - 2, y - 2, x + 2, y + 2, kValidation);
            prev_val = &r;
        }
    } else {
        text(canvas, (left + right - text_width("no data yet")) / 2, (top + bottom) / 2, "no data yet", kText);
    }

    // Legend, top right.
    const int lx = right - 190, ly = 12;
    canvas.line(lx, ly + 7, lx + 24, ly + 7, kTrain, 2);
    text(canvas, lx + 32, ly, "train", kText);
    canvas.line(lx, ly + 25, lx + 24, ly + 25, kValidation, 2);
    rect(canvas, lx + 10, ly + 23, lx + 14, ly + 27, kValidation);
    text(canvas, lx + 32, ly + 18, "validation", kText);
    return Image{canvas.width(), canvas.height(), canvas.pixels()};
}

Image render_curves_plot(const std::vector<Curve>& curves, const Axes& axes, int width, int height) {
    // matplotlib's "tab10" colours, in its order; curves beyond ten reuse them.
    static constexpr Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                         {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                         {188, 189, 34}, {23, 190, 207}};
    Canvas canvas(width, height, kWhite);
    const int left = 80, right = width - 24, top = 40, bottom = height - 64;

    // On a logarithmic axis every value is drawn at its log10 (non-positive ones are skipped) and the ticks are
    // whole decades.
    const auto y_of = [&](double v) { return axes.log_y ? (v > 0 ? std::log10(v) : std::nan("")) : v; };
    // The ranges of all curves together: x from 0, values padded by 5% (at least 0.05) on each side; a linear
    // axis of non-negative values (losses) starts at 0 at the lowest.
    double step_max = 1, lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const Curve& c : curves) {
        for (const auto& [x, v] : c.points) {
            const double y = y_of(v);
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            step_max = std::max(step_max, x);
            lo = std::min(lo, y);
            hi = std::max(hi, y);
        }
    }
    const bool any = std::isfinite(lo);
    if (!any) lo = 0, hi = 1;
    if (axes.log_y) {
        lo = std::floor(lo), hi = std::max(std::ceil(hi), lo + 1);  // whole decades
    } else {
        const double pad = std::max(0.05 * (hi - lo), 0.05);
        lo = lo >= 0 ? std::max(0.0, lo - pad) : lo - pad;
        hi += pad;
    }
    const auto px = [&](double step) { return left + static_cast<int>(std::lround((right - left) * step / step_max)); };
    const auto py = [&](double y) { return bottom - static_cast<int>(std::lround((bottom - top) * (y - lo) / (hi - lo))); };

    // Grid and tick labels, as in render_loss_plot ("1e-2" for the decades of a logarithmic axis).
    std::vector<double> yt = nice_ticks(lo, hi, 6);
    if (axes.log_y) {
        yt.clear();
        for (double d = lo; d <= hi + 1e-9; d += 1) yt.push_back(d);
    }
    const std::vector<double> xt = nice_ticks(0, step_max, 8);
    const double xs = xt.size() > 1 ? xt[1] - xt[0] : 1, ys = yt.size() > 1 ? yt[1] - yt[0] : 1;
    for (double t : xt) {
        const int x = px(t);
        canvas.line(x, top, x, bottom, kGrid);
        canvas.line(x, bottom, x, bottom + 5, kBlack);
        const std::string label = tick_label(t, xs);
        text(canvas, x - text_width(label) / 2, bottom + 10, label, kText);
    }
    for (double t : yt) {
        const int y = py(t);
        canvas.line(left, y, right, y, kGrid);
        canvas.line(left - 5, y, left, y, kBlack);
        const std::string label = axes.log_y ? "1e" + std::to_string(static_cast<int>(std::lround(t))) : tick_label(t, ys);
        text(canvas, left - 10 - text_width(label), y - 7, label, kText);
    }
    canvas.line(left, top, left, bottom, kBlack);
    canvas.line(left, bottom, right, bottom, kBlack);
    text(canvas, (left + right - text_width(axes.x_label)) / 2, bottom + 36, axes.x_label, kText);
    text(canvas, 8, 14, axes.y_label, kText);

    // The curves, 2 pixels wide, a dot on every point (evaluations are sparse, so the dots show where they are).
    for (std::size_t i = 0; i < curves.size(); ++i) {
        const Rgb color = kPalette[i % std::size(kPalette)];
        const std::pair<double, double>* previous = nullptr;
        for (const auto& point : curves[i].points) {
            if (!std::isfinite(point.first) || !std::isfinite(y_of(point.second))) continue;
            const int x = px(point.first), y = py(y_of(point.second));
            if (previous) canvas.line(px(previous->first), py(y_of(previous->second)), x, y, color, 2);
            if (curves[i].points.size() <= 200) rect(canvas, x - 2, y - 2, x + 3, y + 3, color);
            previous = &point;
        }
    }
    if (!any) text(canvas, (left + right - text_width("no data")) / 2, (top + bottom) / 2, "no data", kText);

    // Legend inside the plot's top right corner (loss curves fall, so that corner is usually empty), on white.
    int text_w = 0;
    for (const Curve& c : curves) text_w = std::max(text_w, text_width(c.label));
    const int row = 20, box_w = 24 + 8 + text_w + 16, box_h = row * static_cast<int>(curves.size()) + 10;
    const int bx = right - 8 - box_w, by = top + 8;
    rect(canvas, bx, by, bx + box_w, by + box_h, kWhite);
    canvas.line(bx, by, bx + box_w, by, kGrid);
    canvas.line(bx, by + box_h, bx + box_w, by + box_h, kGrid);
    canvas.line(bx, by, bx, by + box_h, kGrid);
    canvas.line(bx + box_w, by, bx + box_w, by + box_h, kGrid);
    for (std::size_t i = 0; i < curves.size(); ++i) {
        const Rgb color = kPalette[i % std::size(kPalette)];
        const int y = by + 8 + row * static_cast<int>(i);
        canvas.line(bx + 8, y + 7, bx + 32, y + 7, color, 2);
        text(canvas, bx + 40, y, curves[i].label, kText);
    }
    return Image{canvas.width(), canvas.height(), canvas.pixels()};
}

std::vector<std::uint8_t> encode_png(const Image& image) {
    return tg::data::encode_png(image.rgb.data(), image.width, image.height, 3);
}

void write_loss_files(const std::string& dir, const std::vector<LossRecord>& history) {
    const std::string csv = loss_csv(history);
    tg::write_file_atomically((std::filesystem::path(dir) / "loss.csv").string(), csv.data(), csv.size(), "loss csv");
    const std::vector<std::uint8_t> png = encode_png(render_loss_plot(history));
    tg::write_file_atomically((std::filesystem::path(dir) / "loss.png").string(), png.data(), png.size(), "loss plot");
}

}  // namespace tg_gpt
