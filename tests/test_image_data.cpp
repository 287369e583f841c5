// IDX (MNIST) and image (stb_image) loaders on files generated here: valid ones round-trip, malformed ones
// throw IOError naming the file and the problem.

#include "core/ops.h"
#include "nn/data/idx.h"
#include "nn/data/image.h"
#include "test_util.h"

#include <doctest/doctest.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

using tg::testing::check_throws;
using TempDir = tg::testing::ScratchDir;
namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

void write_bytes(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void put_be32(Bytes& b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

// An IDX file: magic 00 00, type code, ndim, big-endian sizes, then the (already big-endian) payload.
Bytes idx_bytes(std::uint8_t type, const std::vector<std::uint32_t>& dims, const Bytes& payload) {
    Bytes b = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
    for (auto d : dims) put_be32(b, d);
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
}

Bytes gzip(const Bytes& raw) {
    z_stream zs{};
    REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);  // +16: gzip wrapper
    Bytes out(deflateBound(&zs, raw.size()) + 64);
    zs.next_in = const_cast<Bytef*>(raw.data());
    zs.avail_in = static_cast<uInt>(raw.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

Bytes iota_bytes(std::size_t n, std::uint8_t start = 0) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(start + i);
    return b;
}

}  // namespace

TEST_SUITE("image_data") {

TEST_CASE("read_idx: uint8 images round-trip, plain and gzip-compressed") {
    TempDir dir("idx");
    const Bytes file = idx_bytes(0x08, {2, 3, 4}, iota_bytes(24, 10));
    write_bytes(dir.file("a.idx"), file);
    write_bytes(dir.file("a.idx.gz"), gzip(file));
    for (const std::string name : {"a.idx", "a.idx.gz"}) {
        CAPTURE(name);
        const tg::data::IdxArray a = tg::data::read_idx(dir.file(name));
        CHECK(a.type == tg::data::IdxType::UInt8);
        CHECK(a.shape == tg::Shape{2, 3, 4});
        const tg::Tensor t = a.to_tensor(tg::kFloat32);
        CHECK(t.shape() == tg::Shape{2, 3, 4});
        CHECK(t.data<float>()[0] == 10.0f);
        CHECK(t.data<float>()[23] == 33.0f);
    }
}

TEST_CASE("read_idx: big-endian int32 and float32 elements are converted to host order") {
    TempDir dir("idx-types");
    Bytes ints;
    put_be32(ints, static_cast<std::uint32_t>(-5));
    put_be32(ints, 1000000u);
    write_bytes(dir.file("i.idx"), idx_bytes(0x0C, {2}, ints));
    const auto i = tg::data::read_idx(dir.file("i.idx")).to_tensor(tg::kInt64).to_vector<std::int64_t>();
    CHECK(i == std::vector<std::int64_t>{-5, 1000000});

    Bytes floats;
    std::uint32_t bits;
    const float value = -1.5f;
    std::memcpy(&bits, &value, 4);
    put_be32(floats, bits);
    write_bytes(dir.file("f.idx"), idx_bytes(0x0D, {1, 1}, floats));
    const tg::data::IdxArray f = tg::data::read_idx(dir.file("f.idx"));
    CHECK(tg::data::to_string(f.type) == "float32");
    CHECK(f.to_tensor(tg::kFloat64).item() == -1.5);
}

TEST_CASE("read_idx: malformed files throw IOError naming the file and the problem") {
    TempDir dir("idx-bad");
    const auto check_file = [&](const std::string& name, const Bytes& bytes, const std::vector<std::string>& parts) {
        CAPTURE(name);
        write_bytes(dir.file(name), bytes);
        std::vector<std::string> expected = parts;
        expected.push_back(dir.file(name));
        check_throws<tg::IOError>([&] { tg::data::read_idx(dir.file(name)); }, expected);
    };
    const Bytes good = idx_bytes(0x08, {4, 5}, iota_bytes(20));

    Bytes bad_magic = good;
    bad_magic[0] = 0x12;
    check_file("magic", bad_magic, {"bad magic", "not an IDX file"});
    Bytes bad_type = good;
    bad_type[2] = 0x07;
    check_file("type", bad_type, {"unknown element type code 0x7"});
    check_file("nodims", Bytes{0, 0, 8, 0}, {"0 dimensions"});
    check_file("short", Bytes{0, 0}, {"shorter than the 4-byte IDX magic"});
    check_file("header", Bytes{0, 0, 8, 3, 0, 0, 0, 4}, {"truncated header", "3 dimensions need 16 bytes"});
    check_file("truncated", Bytes(good.begin(), good.end() - 3), {"size mismatch", "[4, 5]", "(truncated)"});
    Bytes trailing = good;
    trailing.push_back(0);
    check_file("trailing", trailing, {"size mismatch", "(trailing data)"});
    // A header that claims 2^32 − 1 × 2^32 − 1 elements must not overflow the size computation.
    check_file("huge", idx_bytes(0x08, {0xFFFFFFFFu, 0xFFFFFFFFu}, {}), {"implausibly large"});

    const Bytes compressed = gzip(good);
    check_file("cut.gz", Bytes(compressed.begin(), compressed.end() - 12), {"gunzip", "truncated"});
    Bytes corrupt = compressed;
    for (std::size_t k = 12; k < corrupt.size() - 8; ++k) corrupt[k] ^= 0x5A;
    check_file("corrupt.gz", corrupt, {"gunzip", "corrupt"});
    Bytes bad_crc = compressed;
    bad_crc[bad_crc.size() - 6] ^= 0xFF;  // inside the CRC-32 of the trailer
    check_file("crc.gz", bad_crc, {"gunzip", "corrupt"});

    check_throws<tg::IOError>([&] { tg::data::read_idx(dir.file("missing.idx")); },
                              {"cannot open", dir.file("missing.idx")});
}

TEST_CASE("load_mnist: images scaled to [0, 1], labels int64, counts and label range checked") {
    TempDir dir("mnist");
    Bytes pixels(3 * 2 * 2, 0);
    pixels[0] = 255;
    pixels[5] = 51;
    write_bytes(dir.file("train-images-idx3-ubyte.gz"), gzip(idx_bytes(0x08, {3, 2, 2}, pixels)));
    write_bytes(dir.file("train-labels-idx1-ubyte"), idx_bytes(0x08, {3}, Bytes{7, 0, 9}));
    const tg::data::ImageDataset set = tg::data::load_mnist(dir.path.string(), "train");
    CHECK(set.images.shape() == tg::Shape{3, 2, 2});
    CHECK(set.images.data<float>()[0] == 1.0f);
    CHECK(set.images.data<float>()[5] == doctest::Approx(0.2));
    CHECK(set.labels.to_vector<std::int64_t>() == std::vector<std::int64_t>{7, 0, 9});

    write_bytes(dir.file("train-labels-idx1-ubyte"), idx_bytes(0x08, {2}, Bytes{7, 0}));
    check_throws<tg::IOError>([&] { tg::data::load_mnist(dir.path.string(), "train"); },
                              {"holds 3 images but", "holds 2 labels"});
    write_bytes(dir.file("train-labels-idx1-ubyte"), idx_bytes(0x08, {3}, Bytes{7, 10, 9}));
    check_throws<tg::IOError>([&] { tg::data::load_mnist(dir.path.string(), "train"); },
                              {"label 10 at index 1", "num_classes = 10"});
    write_bytes(dir.file("train-labels-idx1-ubyte"), idx_bytes(0x0C, {3}, Bytes(12, 0)));
    check_throws<tg::IOError>([&] { tg::data::load_mnist(dir.path.string(), "train"); },
                              {"expected uint8 labels (N)", "int32 [3]"});
    check_throws<tg::IOError>([&] { tg::data::load_mnist(dir.path.string(), "t10k"); },
                              {"t10k-images-idx3-ubyte.gz", "dataset-fashion-mnist"});
}

TEST_CASE("save_png / load_image: RGB and gray round-trip within 8-bit rounding, files written atomically") {
    TempDir dir("png");
    const tg::Tensor rgb = tg::testing::uniform_tensor({3, 5, 7}, tg::kFloat32, 1, 0.0, 1.0);
    tg::data::save_png(dir.file("rgb.png"), rgb);
    const tg::Tensor back = tg::data::load_image(dir.file("rgb.png"));
    REQUIRE(back.shape() == tg::Shape{3, 5, 7});
    const auto a = rgb.to_vector<float>(), b = back.to_vector<float>();
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(std::abs(a[i] - b[i]) <= 0.5f / 255.0f + 1e-6f);

    // Gray conversion by stb (integer weights) and by to_grayscale (BT.601) agree to a few levels.
    const tg::Tensor gray_stb = tg::data::load_image(dir.file("rgb.png"), 1);
    const tg::Tensor gray_ours = tg::data::to_grayscale(back);
    CHECK(gray_stb.shape() == tg::Shape{1, 5, 7});
    const auto g1 = gray_stb.to_vector<float>(), g2 = gray_ours.to_vector<float>();
    for (std::size_t i = 0; i < g1.size(); ++i) CHECK(std::abs(g1[i] - g2[i]) < 3.0f / 255.0f);

    // [H, W] is saved as one gray channel; values outside [0, 1] are clamped.
    const tg::Tensor plane = tg::from_vector(std::vector<float>{-1.0f, 0.0f, 0.5f, 2.0f}, {2, 2});
    tg::data::save_png(dir.file("gray.png"), plane);
    const auto g = tg::data::load_image(dir.file("gray.png")).to_vector<float>();
    CHECK(g == std::vector<float>{0.0f, 0.0f, 128.0f / 255.0f, 1.0f});

    std::size_t files = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path)) ++files;
    CHECK(files == 2);  // no temporary files left behind

    check_throws<tg::ShapeError>([&] { tg::data::save_png(dir.file("x.png"), tg::zeros({5, 2, 2})); },
                                 {"save_png", "[5, 2, 2]"});
    check_throws<tg::IOError>([&] { tg::data::save_png((dir.path / "no-such-dir" / "x.png").string(), plane); },
                              {"save_png", "no-such-dir"});
}

TEST_CASE("load_image: unreadable files throw IOError naming the file and stb's reason") {
    TempDir dir("img-bad");
    write_bytes(dir.file("junk.png"), Bytes{'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'});
    check_throws<tg::IOError>([&] { tg::data::load_image(dir.file("junk.png")); },
                              {"load_image", dir.file("junk.png"), "cannot decode", "stb_image"});
    write_bytes(dir.file("empty.png"), Bytes{});
    check_throws<tg::IOError>([&] { tg::data::load_image(dir.file("empty.png")); }, {"empty"});
    // A valid PNG cut in half.
    const auto png = tg::data::encode_png(std::vector<std::uint8_t>(256, 7).data(), 16, 16, 1);
    write_bytes(dir.file("cut.png"), Bytes(png.begin(), png.begin() + static_cast<std::ptrdiff_t>(png.size() / 2)));
    check_throws<tg::IOError>([&] { tg::data::load_image(dir.file("cut.png")); }, {dir.file("cut.png"), "cannot decode"});
    check_throws<tg::IOError>([&] { tg::data::load_image(dir.file("missing.png")); }, {"cannot open"});
    check_throws<tg::ValueError>([&] { tg::data::load_image(dir.file("junk.png"), 5); }, {"channels", "5"});
}

TEST_CASE("resize: bilinear with half-pixel centres (PyTorch align_corners=False), antialiased shrinking") {
    // 2×2 -> 4×4: the values torch.nn.functional.interpolate(mode="bilinear", align_corners=False) gives.
    const tg::Tensor x = tg::from_vector(std::vector<float>{0, 1, 2, 3}, {1, 2, 2});
    const auto y = tg::data::resize(x, 4, 4, false).to_vector<float>();
    const std::vector<float> expected = {0.0f, 0.25f, 0.75f, 1.0f, 0.5f, 0.75f, 1.25f, 1.5f,
                                         1.5f, 1.75f, 2.25f, 2.5f, 2.0f, 2.25f, 2.75f, 3.0f};
    REQUIRE(y.size() == expected.size());
    for (std::size_t i = 0; i < y.size(); ++i) CHECK(y[i] == doctest::Approx(expected[i]));

    // A constant image stays constant at any size, and [H, W] in gives [H, W] out.
    const tg::Tensor constant = tg::zeros({9, 13}) + 0.3;
    for (const bool antialias : {false, true}) {
        const tg::Tensor r = tg::data::resize(constant, 4, 30, antialias);
        CHECK(r.shape() == tg::Shape{4, 30});
        for (const float v : r.to_vector<float>()) CHECK(v == doctest::Approx(0.3f));
    }

    // Stripes 0 1 0 1 ... shrunk 4×: antialiased, every input pixel counts and the result is gray (≈ 0.5);
    // plain bilinear reads only the two pixels around each centre.
    std::vector<float> stripes(2 * 16);
    for (std::size_t i = 0; i < stripes.size(); ++i) stripes[i] = static_cast<float>(i % 2);
    const tg::Tensor s = tg::from_vector(stripes, {1, 2, 16});
    for (const float v : tg::data::resize(s, 2, 4, true).to_vector<float>()) CHECK(std::abs(v - 0.5f) < 0.1f);

    check_throws<tg::ShapeError>([] { tg::data::resize(tg::zeros({2, 2, 2, 2}), 3, 3); }, {"resize", "[2, 2, 2, 2]"});
    check_throws<tg::ValueError>([] { tg::data::resize(tg::zeros({2, 2}), 0, 3); }, {"resize", "0x3"});
}

TEST_CASE("to_grayscale: BT.601 weights for RGB(A), the first channel otherwise") {
    const tg::Tensor rgba = tg::from_vector(std::vector<float>{1.0f, 0.0f, 0.0f, 0.5f}, {4, 1, 1});
    CHECK(tg::data::to_grayscale(rgba).item() == doctest::Approx(0.299));
    const tg::Tensor ga = tg::from_vector(std::vector<float>{0.25f, 1.0f}, {2, 1, 1});
    CHECK(tg::data::to_grayscale(ga).item() == doctest::Approx(0.25));
    check_throws<tg::ShapeError>([] { tg::data::to_grayscale(tg::zeros({3, 3})); }, {"to_grayscale", "[3, 3]"});
}

}  // TEST_SUITE
