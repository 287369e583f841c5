#pragma once
// Images in and out, on top of stb_image / stb_image_write (Sean Barrett's public-domain single-file
// libraries, Debian libstb-dev): PNG, JPEG, BMP, GIF, TGA, ... → a float tensor [C, H, W] with values in
// [0, 1], the layout torchvision's ToTensor() produces; and tensors → PNG files.
//
//   Tensor img  = data::load_image("shirt.jpg", 1);     // (1, H, W) grayscale
//   Tensor x    = data::resize(img, 28, 28);             // (1, 28, 28), antialiased bilinear
//   data::save_png("out.png", x);                        // written atomically

#include "core/tensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace tg::data {

// The largest image decoded by default: 4096 × 4096 = 16.8 million pixels (268 MB as float32 RGBA). A
// compressed image can be tiny on disk and huge decoded (a 214 KB PNG of 15000 × 15000 decodes to 3.5 GB),
// so the size is read from the file's header first (stbi_info) and a larger image is refused before any
// pixel is decoded. Pass a larger max_pixels (tg-vit classify --max-pixels) to accept one.
inline constexpr std::int64_t kMaxImagePixels = std::int64_t{4096} * 4096;

// Decodes an image file into float32 [C, H, W] in [0, 1]. channels = 0 keeps the file's channels (1 gray,
// 2 gray+alpha, 3 RGB, 4 RGBA); 1..4 converts (stb_image's conversion: gray = (77 R + 150 G + 29 B) / 256).
// Throws IOError naming the file and stb_image's reason for an unreadable or unsupported file, or the
// image's size when it has more than max_pixels pixels (or the file more than 64 + 16 · max_pixels bytes);
// ValueError for channels outside 0..4.
Tensor load_image(const std::string& path, int channels = 0, std::int64_t max_pixels = kMaxImagePixels);
// The same from an encoded file already in memory; `origin` names it in messages.
Tensor decode_image(const std::vector<std::uint8_t>& encoded, const std::string& origin, int channels = 0,
                    std::int64_t max_pixels = kMaxImagePixels);

// [C, H, W] -> [1, H, W]: gray = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601) for 3 or 4 channels (alpha is
// dropped), the first channel for 1 or 2. Throws ShapeError for another layout.
Tensor to_grayscale(const Tensor& image);

// Resizes a float [C, H, W] (or [H, W]) image to out_h × out_w by bilinear interpolation with pixel centres
// at half-integers (PyTorch's align_corners=False, edges clamped). With antialias, a shrinking axis uses a
// triangle filter widened by the scale factor, so every input pixel contributes (PIL / torchvision
// antialias=True); without it, plain bilinear, which skips pixels when shrinking by more than 2.
// Not differentiable (a data-loading op). Throws ShapeError / ValueError for bad shapes or sizes.
Tensor resize(const Tensor& image, std::int64_t out_h, std::int64_t out_w, bool antialias = true);

// Writes a PNG: `image` float [C, H, W] with C in 1..4, or [H, W] (gray), values clamped to [0, 1] and
// rounded to 8 bits. The file is written atomically (tg::write_file_atomically). Throws ShapeError for another
// shape, IOError when the file cannot be written.
void save_png(const std::string& path, const Tensor& image);
// Writes 8-bit pixels, row-major interleaved (height × width × channels bytes).
void save_png(const std::string& path, const std::uint8_t* pixels, int width, int height, int channels);
// The PNG bytes of 8-bit pixels, without writing a file.
std::vector<std::uint8_t> encode_png(const std::uint8_t* pixels, int width, int height, int channels);

}  // namespace tg::data
