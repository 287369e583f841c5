#pragma once
// A tiny RGB canvas for the programs' pictures (tg-gpt's loss plots, tg-vit's attention maps): pixels,
// rectangles, lines, upscaled grayscale images, heat-map overlays and text in stb_easy_font's bitmap font (a
// public-domain font of line segments that comes with libstb-dev; we fill its quads ourselves). Saved as PNG
// by tg::data::save_png (atomically), or handed over as raw RGB bytes.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace tg::examples {

using Rgb = std::array<std::uint8_t, 3>;

class Canvas {
public:
    Canvas(int width, int height, Rgb background);
    int width() const { return width_; }
    int height() const { return height_; }
    const std::vector<std::uint8_t>& pixels() const { return pixels_; }  // height × width × 3, row-major RGB

    void set(int x, int y, Rgb color);  // pixels outside the canvas are ignored
    void fill_rect(int x, int y, int w, int h, Rgb color);
    // Bresenham's line from (x0, y0) to (x1, y1), both ends included, with a square brush of `thick` pixels.
    void line(int x0, int y0, int x1, int y1, Rgb color, int thick = 1);
    // Draws a grayscale image (h × w floats in [0, 1], row-major) with its top-left corner at (x, y), each pixel
    // as a scale × scale block.
    void draw_gray(int x, int y, const float* pixels, int w, int h, int scale);
    // Blends colormap(heat) over the canvas: pixel ← (1 − alpha)·pixel + alpha·inferno(heat), heat (h × w) in [0, 1].
    void overlay_heat(int x, int y, const float* heat, int w, int h, float alpha);
    // Text with its top-left corner at (x, y); `scale` 1 gives characters about 6 px wide and 7 px tall.
    void draw_text(int x, int y, const std::string& text, Rgb color, int scale = 1);
    static int text_width(const std::string& text, int scale = 1);

    void save_png(const std::string& path) const;

private:
    int width_, height_;
    std::vector<std::uint8_t> pixels_;  // height × width × 3
};

// The "inferno" colour map (matplotlib), piecewise linear through five of its colours; t in [0, 1].
Rgb inferno(float t);

}  // namespace tg::examples
