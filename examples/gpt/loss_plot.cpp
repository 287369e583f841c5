// The loss picture, drawn pixel by pixel: axes with "nice" ticks (1, 2 or 5 times a power of ten), grid
// lines, the two curves, a legend, and text in a 5×7 bitmap font embedded below (no font library needed).
// stb_image_write turns the pixels into a PNG.

#include "loss_plot.h"

#include "core/file_io.h"
#include <tapegrad/tapegrad.h>

// stb's implementation lives in this one file, with internal linkage (STATIC), so it cannot clash with any
// other user of stb_image_write in the same program.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <limits>
#include <map>
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

// ---- a 5×7 bitmap font: each glyph is 7 rows of 5 columns, '#' = ink -------------------------------------------
using Glyph = std::array<const char*, 7>;

const std::map<char, Glyph>& font() {
    static const std::map<char, Glyph> glyphs = {
        {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
        {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
        {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
        {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
        {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
        {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
        {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
        {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
        {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
        {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
        {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
        {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
        {' ', {".....", ".....", ".....", ".....", ".....", ".....", "....."}},
        {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
        {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
        {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
        {',', {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."}},
        {'/', {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}},
        {'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
        {'_', {".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
        {'a', {".....", ".....", ".###.", "....#", ".####", "#...#", ".####"}},
        {'b', {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####."}},
        {'c', {".....", ".....", ".###.", "#....", "#....", "#...#", ".###."}},
        {'d', {"....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####"}},
        {'e', {".....", ".....", ".###.", "#...#", "#####", "#....", ".###."}},
        {'f', {"..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."}},
        {'g', {".....", ".####", "#...#", "#...#", ".####", "....#", ".###."}},
        {'h', {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#"}},
        {'i', {"..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."}},
        {'j', {"...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##.."}},
        {'k', {"#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."}},
        {'l', {".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
        {'m', {".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#"}},
        {'n', {".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"}},
        {'o', {".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."}},
        {'p', {".....", ".....", "####.", "#...#", "####.", "#....", "#...."}},
        {'q', {".....", ".....", ".##.#", "#..##", ".####", "....#", "....#"}},
        {'r', {".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."}},
        {'s', {".....", ".....", ".###.", "#....", ".###.", "....#", "####."}},
        {'t', {".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."}},
        {'u', {".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"}},
        {'v', {".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
        {'w', {".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."}},
        {'x', {".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"}},
        {'y', {".....", ".....", "#...#", "#...#", ".####", "....#", ".###."}},
        {'z', {".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"}},
    };
    return glyphs;
}

struct Color {
    std::uint8_t r, g, b;
};
constexpr Color kWhite{255, 255, 255}, kBlack{0, 0, 0}, kGrid{225, 225, 225}, kText{40, 40, 40};
constexpr Color kTrain{31, 119, 180}, kValidation{255, 127, 14};  // matplotlib's first two colours

class Canvas {
public:
    Canvas(int width, int height) : image_{width, height, std::vector<std::uint8_t>(3u * width * height, 255)} {}

    void pixel(int x, int y, Color c) {
        if (x < 0 || y < 0 || x >= image_.width || y >= image_.height) return;
        const std::size_t i = 3 * (static_cast<std::size_t>(y) * static_cast<std::size_t>(image_.width) +
                                   static_cast<std::size_t>(x));
        if (i + 2 >= image_.rgb.size()) return;
        image_.rgb[i] = c.r;
        image_.rgb[i + 1] = c.g;
        image_.rgb[i + 2] = c.b;
    }
    void rect(int x0, int y0, int x1, int y1, Color c) {  // filled, corners included
        for (int y = y0; y <= y1; ++y)
            for (int x = x0; x <= x1; ++x) pixel(x, y, c);
    }
    // Bresenham's line, with a square brush of `thick` pixels.
    void line(int x0, int y0, int x1, int y1, Color c, int thick = 1) {
        const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
        const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
        int err = dx + dy;
        while (true) {
            rect(x0, y0, x0 + thick - 1, y0 + thick - 1, c);
            if (x0 == x1 && y0 == y1) break;
            const int e2 = 2 * err;
            if (e2 >= dy) err += dy, x0 += sx;
            if (e2 <= dx) err += dx, y0 += sy;
        }
    }
    // Text with its top-left corner at (x, y); each font pixel becomes scale × scale pixels.
    void text(int x, int y, const std::string& s, Color c, int scale = 2) {
        for (char ch : s) {
            const auto it = font().find(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
            for (int row = 0; row < 7; ++row) {
                for (int col = 0; col < 5; ++col) {
                    const bool ink = it == font().end() ? (row == 0 || row == 6 || col == 0 || col == 4)  // a box
                                                        : it->second[row][col] == '#';
                    if (ink) rect(x + col * scale, y + row * scale, x + col * scale + scale - 1, y + row * scale + scale - 1, c);
                }
            }
            x += 6 * scale;
        }
    }
    static int text_width(const std::string& s, int scale = 2) { return static_cast<int>(s.size()) * 6 * scale - scale; }

    Image image_;
};

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
    Canvas canvas(width, height);
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
        canvas.text(x - Canvas::text_width(label) / 2, bottom + 10, label, kText);
    }
    for (double t : yt) {
        const int y = py(t);
        canvas.line(left, y, right, y, kGrid);
        canvas.line(left - 5, y, left, y, kBlack);
        const std::string label = tick_label(t, ys);
        canvas.text(left - 10 - Canvas::text_width(label), y - 7, label, kText);
    }
    canvas.line(left, top, left, bottom, kBlack);
    canvas.line(left, bottom, right, bottom, kBlack);
    canvas.text((left + right - Canvas::text_width("step")) / 2, bottom + 36, "step", kText);
    canvas.text(8, 14, "loss (nats/token)", kText);
    // The last evaluation also in bits per byte, the unit that compares runs with different tokenizers.
    for (auto r = history.rbegin(); r != history.rend(); ++r) {
        if (!r->val_loss || !r->val_bpb) continue;
        char buf[96];
        std::snprintf(buf, sizeof(buf), "last val %.3f = %.3f bits/byte", *r->val_loss, *r->val_bpb);
        canvas.text(8, 30, buf, kValidation);
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
            canvas.rect(x - 2, y - 2, x + 2, y + 2, kValidation);
            prev_val = &r;
        }
    } else {
        canvas.text((left + right - Canvas::text_width("no data yet")) / 2, (top + bottom) / 2, "no data yet", kText);
    }

    // Legend, top right.
    const int lx = right - 190, ly = 12;
    canvas.line(lx, ly + 7, lx + 24, ly + 7, kTrain, 2);
    canvas.text(lx + 32, ly, "train", kText);
    canvas.line(lx, ly + 25, lx + 24, ly + 25, kValidation, 2);
    canvas.rect(lx + 10, ly + 23, lx + 14, ly + 27, kValidation);
    canvas.text(lx + 32, ly + 18, "validation", kText);
    return canvas.image_;
}

Image render_curves_plot(const std::vector<Curve>& curves, const std::string& y_label, int width, int height) {
    // matplotlib's "tab10" colours, in its order; curves beyond ten reuse them.
    static constexpr Color kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                         {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                         {188, 189, 34}, {23, 190, 207}};
    Canvas canvas(width, height);
    const int left = 80, right = width - 24, top = 40, bottom = height - 64;

    // The ranges of all curves together: steps from 0, values padded by 5% (at least 0.05) on each side.
    double step_max = 1, lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const Curve& c : curves) {
        for (const auto& [x, y] : c.points) {
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            step_max = std::max(step_max, x);
            lo = std::min(lo, y);
            hi = std::max(hi, y);
        }
    }
    const bool any = std::isfinite(lo);
    if (!any) lo = 0, hi = 1;
    const double pad = std::max(0.05 * (hi - lo), 0.05);
    lo = std::max(0.0, lo - pad);
    hi += pad;
    const auto px = [&](double step) { return left + static_cast<int>(std::lround((right - left) * step / step_max)); };
    const auto py = [&](double v) { return bottom - static_cast<int>(std::lround((bottom - top) * (v - lo) / (hi - lo))); };

    // Grid and tick labels, as in render_loss_plot.
    const std::vector<double> xt = nice_ticks(0, step_max, 8), yt = nice_ticks(lo, hi, 6);
    const double xs = xt.size() > 1 ? xt[1] - xt[0] : 1, ys = yt.size() > 1 ? yt[1] - yt[0] : 1;
    for (double t : xt) {
        const int x = px(t);
        canvas.line(x, top, x, bottom, kGrid);
        canvas.line(x, bottom, x, bottom + 5, kBlack);
        const std::string label = tick_label(t, xs);
        canvas.text(x - Canvas::text_width(label) / 2, bottom + 10, label, kText);
    }
    for (double t : yt) {
        const int y = py(t);
        canvas.line(left, y, right, y, kGrid);
        canvas.line(left - 5, y, left, y, kBlack);
        const std::string label = tick_label(t, ys);
        canvas.text(left - 10 - Canvas::text_width(label), y - 7, label, kText);
    }
    canvas.line(left, top, left, bottom, kBlack);
    canvas.line(left, bottom, right, bottom, kBlack);
    canvas.text((left + right - Canvas::text_width("step")) / 2, bottom + 36, "step", kText);
    canvas.text(8, 14, y_label, kText);

    // The curves, 2 pixels wide, a dot on every point (evaluations are sparse, so the dots show where they are).
    for (std::size_t i = 0; i < curves.size(); ++i) {
        const Color color = kPalette[i % std::size(kPalette)];
        const std::pair<double, double>* previous = nullptr;
        for (const auto& point : curves[i].points) {
            if (!std::isfinite(point.first) || !std::isfinite(point.second)) continue;
            const int x = px(point.first), y = py(point.second);
            if (previous) canvas.line(px(previous->first), py(previous->second), x, y, color, 2);
            if (curves[i].points.size() <= 200) canvas.rect(x - 2, y - 2, x + 3, y + 3, color);
            previous = &point;
        }
    }
    if (!any) canvas.text((left + right - Canvas::text_width("no data")) / 2, (top + bottom) / 2, "no data", kText);

    // Legend inside the plot's top right corner (loss curves fall, so that corner is usually empty), on white.
    int text_w = 0;
    for (const Curve& c : curves) text_w = std::max(text_w, Canvas::text_width(c.label));
    const int row = 20, box_w = 24 + 8 + text_w + 16, box_h = row * static_cast<int>(curves.size()) + 10;
    const int bx = right - 8 - box_w, by = top + 8;
    canvas.rect(bx, by, bx + box_w, by + box_h, kWhite);
    canvas.line(bx, by, bx + box_w, by, kGrid);
    canvas.line(bx, by + box_h, bx + box_w, by + box_h, kGrid);
    canvas.line(bx, by, bx, by + box_h, kGrid);
    canvas.line(bx + box_w, by, bx + box_w, by + box_h, kGrid);
    for (std::size_t i = 0; i < curves.size(); ++i) {
        const Color color = kPalette[i % std::size(kPalette)];
        const int y = by + 8 + row * static_cast<int>(i);
        canvas.line(bx + 8, y + 7, bx + 32, y + 7, color, 2);
        canvas.text(bx + 40, y, curves[i].label, kText);
    }
    return canvas.image_;
}

std::vector<std::uint8_t> encode_png(const Image& image) {
    std::vector<std::uint8_t> png;
    const auto append = [](void* context, void* data, int size) {
        auto* out = static_cast<std::vector<std::uint8_t>*>(context);
        const auto* bytes = static_cast<const std::uint8_t*>(data);
        out->insert(out->end(), bytes, bytes + size);
    };
    if (!stbi_write_png_to_func(append, &png, image.width, image.height, 3, image.rgb.data(), 3 * image.width)) {
        throw tg::IOError("loss plot: stb_image_write could not encode the PNG");
    }
    return png;
}

void write_loss_files(const std::string& dir, const std::vector<LossRecord>& history) {
    const std::string csv = loss_csv(history);
    tg::write_file_atomically((std::filesystem::path(dir) / "loss.csv").string(), csv.data(), csv.size(), "loss csv");
    const std::vector<std::uint8_t> png = encode_png(render_loss_plot(history));
    tg::write_file_atomically((std::filesystem::path(dir) / "loss.png").string(), png.data(), png.size(), "loss plot");
}

}  // namespace tg_gpt
