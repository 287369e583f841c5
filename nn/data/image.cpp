// Image loading, grayscale conversion, resizing and PNG writing. The only file that compiles stb_image and
// stb_image_write: their implementations are made `static` here (STB_IMAGE_STATIC / STB_IMAGE_WRITE_STATIC),
// so another copy of stb elsewhere in a program (e.g. Debian's libstb) cannot clash with ours.

#include "nn/data/image.h"

#include "core/error.h"
#include "core/file_io.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
// stb is C-style code that trips our warning level; its warnings are not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>

namespace tg::data {

namespace {

// Interleaved 8-bit pixels (H, W, C) -> float32 [C, H, W] in [0, 1].
Tensor planar_from_interleaved(const unsigned char* pixels, int w, int h, int c) {
    Tensor out = empty({c, h, w}, kFloat32);
    float* dst = out.data<float>();
    const std::int64_t plane = std::int64_t{w} * h;
    for (std::int64_t i = 0; i < plane; ++i) {
        for (int ch = 0; ch < c; ++ch) dst[ch * plane + i] = pixels[i * c + ch] * (1.0f / 255.0f);
    }
    return out;
}

// The tap weights of one output axis: output pixel o reads inputs first[o] .. first[o] + weights[o].size() − 1.
struct AxisFilter {
    std::vector<std::int64_t> first;
    std::vector<std::vector<float>> weights;
};

// Triangle (tent) filter: the input pixel i, centred at i + 0.5, gets weight max(0, 1 − |i + 0.5 − c| / support)
// for the output centre c = (o + 0.5)·scale, with support 1 (plain bilinear) or scale when shrinking with
// antialias. Weights are normalised to sum 1, which at the borders equals clamping the coordinate.
AxisFilter make_filter(std::int64_t in, std::int64_t out, bool antialias) {
    const double scale = static_cast<double>(in) / out;
    const double support = (antialias && scale > 1.0) ? scale : 1.0;
    AxisFilter f;
    for (std::int64_t o = 0; o < out; ++o) {
        const double centre = (o + 0.5) * scale;
        std::int64_t lo = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor(centre - support - 0.5)));
        std::int64_t hi = std::min<std::int64_t>(in - 1, static_cast<std::int64_t>(std::ceil(centre + support - 0.5)));
        std::vector<float> w;
        double total = 0;
        for (std::int64_t i = lo; i <= hi; ++i) {
            const double weight = std::max(0.0, 1.0 - std::abs(i + 0.5 - centre) / support);
            w.push_back(static_cast<float>(weight));
            total += weight;
        }
        if (total <= 0) {  // centre outside every pixel's reach (cannot happen for in >= 1): nearest pixel
            lo = std::clamp<std::int64_t>(static_cast<std::int64_t>(centre), 0, in - 1);
            w.assign(1, 1.0f);
            total = 1;
        }
        for (float& x : w) x = static_cast<float>(x / total);
        f.first.push_back(lo);
        f.weights.push_back(std::move(w));
    }
    return f;
}

// stb_image trusts the length a PNG chunk declares: it grows its buffer of image data (IDAT) to that length
// before reading it, so an 80-byte file declaring an 800 MB chunk costs 800 MB (found by tests/fuzz/fuzz_image).
// Each chunk (4-byte big-endian length, 4-byte type, data, 4-byte CRC) must therefore have its data inside the
// file; then stb's buffers stay below twice the file's size. Other formats: nothing to do here.
void check_png_chunks(const std::vector<std::uint8_t>& file, const std::string& origin) {
    static constexpr std::uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (file.size() < 8 || std::memcmp(file.data(), kSignature, 8) != 0) return;
    for (std::size_t pos = 8; pos + 8 <= file.size();) {
        const std::uint8_t* c = file.data() + pos;
        const std::uint64_t length = (std::uint64_t{c[0]} << 24) | (std::uint64_t{c[1]} << 16) | (std::uint64_t{c[2]} << 8) | c[3];
        const std::string type(reinterpret_cast<const char*>(c + 4), 4);
        const std::uint64_t left = file.size() - pos - 8;
        if (length > left) {
            throw IOError("load_image: " + origin + ": PNG chunk '" + type + "' at byte " + std::to_string(pos) +
                          " declares " + std::to_string(length) + " bytes of data, but the file has " +
                          std::to_string(left) + " after it (a truncated or corrupt PNG)");
        }
        if (type == "IEND") return;
        pos += 12 + static_cast<std::size_t>(length);
    }
}

// stb_image reads the width, height and maximum value of a binary PNM (P5, P6) into an int with no overflow
// check: "99999999999" is signed overflow, undefined behaviour (found by tests/fuzz/fuzz_image under UBSan). The
// header is walked here first exactly as stb walks it (its whitespace, '#' comments, end-of-data rule), and a
// number above 999,999,999 is refused; no image needs one (stb refuses sides above 2^24 anyway).
void check_pnm_header(const std::vector<std::uint8_t>& file, const std::string& origin) {
    if (file.size() < 2 || file[0] != 'P' || (file[1] != '5' && file[1] != '6')) return;
    std::size_t next = 2;  // stb's read position; reading past the end gives 0 and does not move
    const auto get8 = [&] { return next < file.size() ? static_cast<char>(file[next++]) : '\0'; };
    const auto at_eof = [&] { return next >= file.size(); };
    const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
    char c = get8();
    for (const char* field : {"width", "height", "maximum value"}) {
        for (;;) {  // stbi__pnm_skip_whitespace
            while (!at_eof() && space(c)) c = get8();
            if (at_eof() || c != '#') break;
            while (!at_eof() && c != '\n' && c != '\r') c = get8();
        }
        std::int64_t value = 0;  // stbi__pnm_getinteger
        while (!at_eof() && c >= '0' && c <= '9') {
            if (value > 99999999) {
                throw IOError("load_image: " + origin + ": the PNM header's " + field +
                              " has more than 9 digits (a corrupt file)");
            }
            value = value * 10 + (c - '0');
            c = get8();
        }
    }
}

int stb_write_to_vector(std::vector<std::uint8_t>& out, const void* data, int size) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    out.insert(out.end(), p, p + size);
    return size;
}

}  // namespace

Tensor decode_image(const std::vector<std::uint8_t>& encoded, const std::string& origin, int channels,
                    std::int64_t max_pixels) {
    if (channels < 0 || channels > 4) {
        throw ValueError("load_image: channels must be 0 (as in the file) or 1..4, got " + std::to_string(channels));
    }
    if (encoded.empty()) throw IOError("load_image: " + origin + ": the file is empty");
    if (encoded.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw IOError("load_image: " + origin + ": the file is " + std::to_string(encoded.size()) +
                      " bytes, more than stb_image can read (2 GiB)");
    }
    check_png_chunks(encoded, origin);
    check_pnm_header(encoded, origin);
    // The header first: the size decides whether decoding is allowed at all.
    int w = 0, h = 0, c = 0;
    if (!stbi_info_from_memory(encoded.data(), static_cast<int>(encoded.size()), &w, &h, &c)) {
        throw IOError("load_image: " + origin + ": cannot decode the image (stb_image: " + stbi_failure_reason() + ")");
    }
    // The sizes as the decoder will use them. stb_image 2.27 reports a top-down BMP's height as its header field,
    // negative, and then allocates for the absolute value (found by tests/fuzz/fuzz_image: a BMP of 30 x
    // −16119294 pixels passed a signed check and made stb ask for 1.45 GB).
    const std::int64_t width = std::abs(std::int64_t{w}), height = std::abs(std::int64_t{h});
    if (width * height > max_pixels) {
        throw IOError("load_image: " + origin + ": the image is " + std::to_string(width) + " x " +
                      std::to_string(height) + " = " + std::to_string(width * height) + " pixels, above the limit of " +
                      std::to_string(max_pixels) + " (raise max_pixels, e.g. tg-vit classify --max-pixels, to read it)");
    }
    // stb_image 2.27 (Debian 12's libstb-dev) converts the channels of a 16-bit PNM (maxval > 255) with its 8-bit
    // routine, reading past the end of its buffer (found by tests/fuzz/fuzz_image; fixed upstream in 2.28). So a
    // 16-bit file is decoded in its own channels (16 -> 8 bits is correct on that path) and its channels are then
    // converted by the same 8-bit routine stb uses for every 8-bit file.
    const bool sixteen_bit = stbi_is_16_bit_from_memory(encoded.data(), static_cast<int>(encoded.size())) != 0;
    std::unique_ptr<unsigned char, void (*)(void*)> pixels(
        stbi_load_from_memory(encoded.data(), static_cast<int>(encoded.size()), &w, &h, &c, sixteen_bit ? 0 : channels),
        stbi_image_free);
    if (pixels && sixteen_bit && channels != 0 && channels != c) {
        pixels.reset(stbi__convert_format(pixels.release(), c, channels, static_cast<unsigned>(w), static_cast<unsigned>(h)));
    }
    if (!pixels) {
        throw IOError("load_image: " + origin + ": cannot decode the image (stb_image: " + stbi_failure_reason() + ")");
    }
    if (std::int64_t{w} * h > max_pixels) {  // a decoder that disagrees with its own header: refuse all the same
        throw IOError("load_image: " + origin + ": the decoded image is " + std::to_string(w) + " x " +
                      std::to_string(h) + ", more than its header said and above the limit of " +
                      std::to_string(max_pixels) + " pixels");
    }
    return planar_from_interleaved(pixels.get(), w, h, channels == 0 ? c : channels);
}

Tensor load_image(const std::string& path, int channels, std::int64_t max_pixels) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw IOError("load_image: cannot open " + path + ": " + std::strerror(errno));
    // No image format needs more than 16 bytes per pixel (16-bit RGBA is 8) plus a header: a larger file is
    // refused before it is read into memory.
    const std::streamoff size = in.tellg();
    const std::int64_t max_file = 64 + 16 * max_pixels;
    if (size > max_file) {
        throw IOError("load_image: " + path + ": the file is " + std::to_string(size) + " bytes, more than an image of " +
                      std::to_string(max_pixels) + " pixels needs (limit " + std::to_string(max_file) +
                      " bytes; raise max_pixels to read it)");
    }
    in.seekg(0);
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(std::max<std::streamoff>(size, 0)));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (static_cast<std::size_t>(in.gcount()) != bytes.size()) throw IOError("load_image: " + path + ": read error");
    return decode_image(bytes, path, channels, max_pixels);
}

Tensor to_grayscale(const Tensor& image) {
    if (image.dim() != 3 || image.size(0) < 1 || image.size(0) > 4) {
        throw ShapeError("to_grayscale: expected an image [C, H, W] with C in 1..4, got " + to_string(image.shape()));
    }
    const Tensor x = image.to(kFloat32).contiguous();
    const std::int64_t c = x.size(0), plane = x.size(1) * x.size(2);
    Tensor out = empty({1, x.size(1), x.size(2)}, kFloat32);
    const float* src = x.data<float>();
    float* dst = out.data<float>();
    for (std::int64_t i = 0; i < plane; ++i) {
        dst[i] = c >= 3 ? 0.299f * src[i] + 0.587f * src[plane + i] + 0.114f * src[2 * plane + i] : src[i];
    }
    return out;
}

Tensor resize(const Tensor& image, std::int64_t out_h, std::int64_t out_w, bool antialias) {
    if (image.dim() != 2 && image.dim() != 3) {
        throw ShapeError("resize: expected an image [C, H, W] or [H, W], got " + to_string(image.shape()));
    }
    if (out_h <= 0 || out_w <= 0) {
        throw ValueError("resize: output size must be positive, got " + std::to_string(out_h) + "x" + std::to_string(out_w));
    }
    const bool planar = image.dim() == 3;
    const Tensor x = (planar ? image : image.unsqueeze(0)).to(kFloat32).contiguous();  // (C, H, W)
    const std::int64_t c = x.size(0), h = x.size(1), w = x.size(2);
    if (h == 0 || w == 0) throw ShapeError("resize: cannot resize an empty image " + to_string(image.shape()));
    const AxisFilter fy = make_filter(h, out_h, antialias), fx = make_filter(w, out_w, antialias);
    // Separable: rows first (H, W) -> (H, out_w), then columns -> (out_h, out_w).
    Tensor out = empty({c, out_h, out_w}, kFloat32);
    std::vector<float> rows(static_cast<std::size_t>(h * out_w));
    for (std::int64_t ch = 0; ch < c; ++ch) {
        const float* src = x.data<float>() + ch * h * w;
        for (std::int64_t y = 0; y < h; ++y) {
            for (std::int64_t ox = 0; ox < out_w; ++ox) {
                float acc = 0;
                const auto& wt = fx.weights[ox];
                for (std::size_t k = 0; k < wt.size(); ++k) acc += wt[k] * src[y * w + fx.first[ox] + k];
                rows[y * out_w + ox] = acc;
            }
        }
        float* dst = out.data<float>() + ch * out_h * out_w;
        for (std::int64_t oy = 0; oy < out_h; ++oy) {
            const auto& wt = fy.weights[oy];
            for (std::int64_t ox = 0; ox < out_w; ++ox) {
                float acc = 0;
                for (std::size_t k = 0; k < wt.size(); ++k) acc += wt[k] * rows[(fy.first[oy] + k) * out_w + ox];
                dst[oy * out_w + ox] = acc;
            }
        }
    }
    return planar ? out : out.squeeze(0);
}

std::vector<std::uint8_t> encode_png(const std::uint8_t* pixels, int width, int height, int channels) {
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4) {
        throw ValueError("save_png: bad image size " + std::to_string(width) + "x" + std::to_string(height) + "x" +
                         std::to_string(channels));
    }
    std::vector<std::uint8_t> png;
    const auto sink = [](void* context, void* data, int size) {
        stb_write_to_vector(*static_cast<std::vector<std::uint8_t>*>(context), data, size);
    };
    if (!stbi_write_png_to_func(sink, &png, width, height, channels, pixels, width * channels)) {
        throw IOError("save_png: stb_image_write could not encode the image");
    }
    return png;
}

void save_png(const std::string& path, const std::uint8_t* pixels, int width, int height, int channels) {
    const std::vector<std::uint8_t> png = encode_png(pixels, width, height, channels);
    write_file_atomically(path, png.data(), png.size(), "save_png");
}

void save_png(const std::string& path, const Tensor& image) {
    if (!(image.dim() == 2 || (image.dim() == 3 && image.size(0) >= 1 && image.size(0) <= 4))) {
        throw ShapeError("save_png: expected an image [C, H, W] with C in 1..4 or [H, W], got " +
                         to_string(image.shape()));
    }
    const Tensor x = (image.dim() == 2 ? image.unsqueeze(0) : image).to(kFloat32).contiguous();
    const std::int64_t c = x.size(0), h = x.size(1), w = x.size(2), plane = h * w;
    std::vector<std::uint8_t> pixels(static_cast<std::size_t>(c * plane));
    const float* src = x.data<float>();
    for (std::int64_t i = 0; i < plane; ++i) {
        for (std::int64_t ch = 0; ch < c; ++ch) {
            const float v = std::isnan(src[ch * plane + i]) ? 0.0f : std::clamp(src[ch * plane + i], 0.0f, 1.0f);
            pixels[i * c + ch] = static_cast<std::uint8_t>(std::lround(v * 255.0f));
        }
    }
    save_png(path, pixels.data(), static_cast<int>(w), static_cast<int>(h), static_cast<int>(c));
}

}  // namespace tg::data
