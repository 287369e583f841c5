#include "examples/common/canvas.h"

#include <tapegrad/tapegrad.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wconversion"
#include <stb/stb_easy_font.h>  // only static functions: no clash with other users of stb
#pragma GCC diagnostic pop

namespace tg::examples {

Canvas::Canvas(int width, int height, Rgb background)
    : width_(width), height_(height), pixels_(static_cast<std::size_t>(width) * height * 3) {
    fill_rect(0, 0, width, height, background);
}

void Canvas::set(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
    std::uint8_t* p = &pixels_[(static_cast<std::size_t>(y) * width_ + x) * 3];
    p[0] = c[0], p[1] = c[1], p[2] = c[2];
}

void Canvas::fill_rect(int x, int y, int w, int h, Rgb color) {
    for (int j = y; j < y + h; ++j)
        for (int i = x; i < x + w; ++i) set(i, j, color);
}

void Canvas::line(int x0, int y0, int x1, int y1, Rgb color, int thick) {
    const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    while (true) {
        fill_rect(x0, y0, thick, thick, color);
        if (x0 == x1 && y0 == y1) break;
        const int e2 = 2 * err;
        if (e2 >= dy) err += dy, x0 += sx;
        if (e2 <= dx) err += dx, y0 += sy;
    }
}

void Canvas::draw_gray(int x, int y, const float* pixels, int w, int h, int scale) {
    for (int j = 0; j < h * scale; ++j) {
        for (int i = 0; i < w * scale; ++i) {
            const float v = std::clamp(pixels[(j / scale) * w + i / scale], 0.0f, 1.0f);
            const auto g = static_cast<std::uint8_t>(std::lround(v * 255.0f));
            set(x + i, y + j, {g, g, g});
        }
    }
}

void Canvas::overlay_heat(int x, int y, const float* heat, int w, int h, float alpha) {
    for (int j = 0; j < h; ++j) {
        for (int i = 0; i < w; ++i) {
            const int px = x + i, py = y + j;
            if (px < 0 || py < 0 || px >= width_ || py >= height_) continue;
            std::uint8_t* p = &pixels_[(static_cast<std::size_t>(py) * width_ + px) * 3];
            const Rgb c = inferno(heat[j * w + i]);
            for (int k = 0; k < 3; ++k) p[k] = static_cast<std::uint8_t>(std::lround((1 - alpha) * p[k] + alpha * c[k]));
        }
    }
}

void Canvas::draw_text(int x, int y, const std::string& text, Rgb color, int scale) {
    // stb_easy_font emits axis-aligned quads (4 vertices of 16 bytes: x, y, z floats + RGBA) in pixel units.
    std::vector<char> buffer(text.size() * 270 + 1000);
    std::string copy = text;
    unsigned char rgba[4] = {color[0], color[1], color[2], 255};
    const int quads = stb_easy_font_print(0, 0, copy.data(), rgba, buffer.data(), static_cast<int>(buffer.size()));
    for (int q = 0; q < quads; ++q) {
        const auto* v = reinterpret_cast<const float*>(buffer.data() + q * 64);
        const float x0 = v[0], y0 = v[1], x1 = v[8], y1 = v[9];  // vertices 0 and 2 are opposite corners
        fill_rect(x + static_cast<int>(std::lround(x0 * scale)), y + static_cast<int>(std::lround(y0 * scale)),
                  static_cast<int>(std::lround((x1 - x0) * scale)), static_cast<int>(std::lround((y1 - y0) * scale)), color);
    }
}

int Canvas::text_width(const std::string& text, int scale) {
    std::string copy = text;
    return stb_easy_font_width(copy.data()) * scale;
}

void Canvas::save_png(const std::string& path) const { tg::data::save_png(path, pixels_.data(), width_, height_, 3); }

Rgb inferno(float t) {
    static const float stops[5][3] = {{0, 0, 4}, {87, 16, 110}, {188, 55, 84}, {249, 142, 9}, {252, 255, 164}};
    t = std::clamp(std::isnan(t) ? 0.0f : t, 0.0f, 1.0f) * 4.0f;
    const int i = std::min(3, static_cast<int>(t));
    const float f = t - static_cast<float>(i);
    Rgb c;
    for (int k = 0; k < 3; ++k) c[k] = static_cast<std::uint8_t>(std::lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k])));
    return c;
}

}  // namespace tg::examples
