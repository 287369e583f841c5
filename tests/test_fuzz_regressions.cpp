// Inputs the fuzzers found (tests/fuzz, docs/reliability.md), one test each, kept so the bugs stay fixed. Each
// input is also in its target's seed corpus (tests/fuzz/corpus/<target>/), which CI replays under ASan + UBSan;
// here the same inputs run in the ordinary build, where each check failed before its fix.

#include "core/error.h"
#include "core/ops.h"
#include "core/shape.h"
#include "nn/data/bpe_files.h"
#include "nn/data/idx.h"
#include "nn/data/image.h"

#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

using namespace tg;
using tg::testing::check_throws;
using Bytes = std::vector<std::uint8_t>;

TEST_CASE("fuzz_idx: an empty IDX array with absurd dimensions is refused, not given overflowing strides") {
    // corpus/idx/empty-huge-dims: uint8, 6 dimensions [2, 2, 2031616, 0, 329223, 134810123]: 0 elements, so the
    // data size check passes, but the strides multiply past int64 (UBSan: signed overflow in contiguous_strides).
    const Bytes bytes{0, 0, 8, 6, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0x1f, 0, 0, 0, 0, 0, 0, 0, 5, 6, 7, 8, 9, 10, 11};
    const data::IdxArray a = data::decode_idx(bytes, "empty-huge-dims");
    CHECK(a.data.empty());
    check_throws<ShapeError>([&] { (void)a.to_tensor(kFloat32); },
                             {"[2, 2, 2031616, 0, 329223, 134810123]", "strides do not fit in an int64"});
}

TEST_CASE("shapes whose sizes multiply past int64 are refused by numel, strides and empty") {
    const std::int64_t big = std::int64_t{1} << 40;
    CHECK(numel({big, big, 0}) == 0);  // exact: a zero size makes the product 0 whatever the others
    check_throws<ShapeError>([&] { (void)numel({big, big}); }, {"more elements than an int64 can count"});
    check_throws<ShapeError>([&] { (void)contiguous_strides({0, big, big}); }, {"strides do not fit"});
    check_throws<ShapeError>([&] { (void)empty({0, big, big}, kFloat32); }, {"strides do not fit"});
    // 2^62 float64 elements are 2^65 bytes: the byte count must not wrap to 0 (a 0-byte buffer for 2^62 elements).
    check_throws<ShapeError>([&] { (void)empty({std::int64_t{1} << 62}, kFloat64); },
                             {"[4611686018427387904] of float64", "more bytes than an int64 can count"});
}

TEST_CASE("fuzz_image: a 16-bit PNM converted to other channels is decoded in bounds and correctly") {
    // corpus/image/pnm16-to-rgb: P5 (gray), 3 x 2, maxval 552 (so 2 bytes a sample), 12 bytes of samples. stb_image
    // 2.27 converts its channels with the 8-bit routine and reads past its buffer (ASan: heap-buffer-overflow in
    // stbi__convert_16_to_8); nn/data/image.cpp decodes it in its own channels first.
    Bytes pgm = {'P', '5', '\n', '3', ' ', '2', '\n', '5', '5', '2', '\n'};
    for (int i = 0; i < 6; ++i) {
        const int v = 90 * i + 7;  // <= 552, big-endian
        pgm.push_back(static_cast<std::uint8_t>(v >> 8));
        pgm.push_back(static_cast<std::uint8_t>(v & 0xFF));
    }
    const Tensor gray = data::decode_image(pgm, "pnm16.pgm", 1);
    REQUIRE(gray.shape() == Shape{1, 2, 3});
    for (const int channels : {2, 3, 4}) {
        CAPTURE(channels);
        const Tensor image = data::decode_image(pgm, "pnm16.pgm", channels);
        REQUIRE(image.shape() == Shape{channels, 2, 3});
        const std::vector<float> g = gray.to_vector<float>(), all = image.to_vector<float>();
        for (int c = 0; c < channels; ++c) {
            const bool alpha = (channels == 2 && c == 1) || (channels == 4 && c == 3);
            for (std::size_t i = 0; i < g.size(); ++i) {
                CHECK(all[c * g.size() + i] == (alpha ? 1.0f : g[i]));  // gray replicated, alpha opaque
            }
        }
    }
    // The fuzzer's own input (truncated samples): an image or a clear error, never a read out of bounds.
    const Bytes found{'P', '5', '\n', '3', ' ', '2', '\v', '5', '5', '2', '\n', 0, '2', 'd', 0x96, 0xc8, 0xfa};
    for (const int channels : {0, 1, 2, 3, 4}) {
        try {
            (void)data::decode_image(found, "found.pgm", channels);
        } catch (const Error&) {
        }
    }
}

TEST_CASE("fuzz_image: a PNG chunk longer than the file is refused before stb allocates for it") {
    // corpus/image/png-idat-800mb: an 80-byte PNG whose IDAT chunk declares 805 MB. stb_image grows its data buffer
    // to the declared length before reading (libFuzzer: malloc(805306391) over the 512 MB cap).
    const std::vector<std::uint8_t> pixels(4 * 3, 200);
    Bytes png = data::encode_png(pixels.data(), 4, 3, 1);
    CHECK(data::decode_image(png, "good.png").shape() == Shape{1, 3, 4});
    const auto idat = std::search(png.begin(), png.end(), std::begin("IDAT"), std::begin("IDAT") + 4);
    REQUIRE(idat != png.end());
    const std::size_t at = static_cast<std::size_t>(idat - png.begin()) - 4;  // the chunk's length field
    for (int i = 0; i < 4; ++i) png[at + i] = static_cast<std::uint8_t>(0x30000000u >> (24 - 8 * i));
    check_throws<IOError>([&] { (void)data::decode_image(png, "idat.png"); },
                          {"idat.png", "PNG chunk 'IDAT'", "declares 805306368 bytes", "truncated or corrupt"});
}

TEST_CASE("fuzz_image: a top-down BMP's negative height is checked against the limit by its size") {
    // corpus/image/bmp-topdown-16m-rows: a 71-byte BMP whose header says 30 x −16119294 (negative: rows top-down).
    // stb_image's header reader returns the negative height, so 30 · h passed the pixel limit, and its decoder
    // then allocated 30 · 16119294 · 3 bytes (libFuzzer: malloc(1450736460) over the 512 MB cap).
    const Bytes bmp{0x42, 0x4d, 0x46, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0, 0x28, 0, 0, 0, 0x1e, 0, 0, 0, 0x2, 0xa,
                    0xa, 0xff, 0x1, 0, 0x18, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x13, 0xb, 0, 0, 0x13, 0xb, 0, 0, 0, 0,
                    0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0xff, 0x2c, 0, 0, 0, 0, 0xff, 0, 0, 0, 0xff, 0, 0};
    // Refused by the header check, before decoding (after decoding, the second check would catch it too late).
    check_throws<IOError>([&] { (void)data::decode_image(bmp, "topdown.bmp", 3, std::int64_t{1} << 20); },
                          {"topdown.bmp", "the image is 30 x 16119294 = 483578820 pixels", "above the limit"});
    // A genuine top-down BMP (2 x 2, height −2) still decodes, rows in file order.
    const Bytes small{0x42, 0x4d, 70, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0, 2, 0, 0, 0, 0xfe, 0xff, 0xff,
                      0xff, 1, 0, 24, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0x13, 0xb, 0, 0, 0x13, 0xb, 0, 0, 0, 0, 0, 0, 0, 0,
                      0, 0,
                      0, 0, 255, 0, 255, 0, 0, 0,       // first row stored: red, green (BGR), padded to 8 bytes
                      255, 0, 0, 255, 255, 255, 0, 0};  // second: blue, white
    const Tensor image = data::decode_image(small, "small-topdown.bmp", 3);
    REQUIRE(image.shape() == Shape{3, 2, 2});
    const std::vector<float> v = image.to_vector<float>();  // planar: R plane, G plane, B plane
    CHECK(v[0] == 1.0f);  // first row, first pixel: red (file order kept: the first row stored is the top)
    CHECK(v[4 + 1] == 1.0f);  // first row, second pixel: green
    CHECK(v[8 + 2] == 1.0f);  // second row, first pixel: blue
    CHECK(v[3] == 1.0f);      // second row, second pixel: white
}

TEST_CASE("fuzz_image: a PNM header number too large for an int is refused before stb parses it") {
    // corpus/image/pnm-huge-width: stb_image multiplies the digits into an int unchecked (UBSan: signed overflow
    // in stbi__pnm_getinteger). Numbers up to 9 digits (and comments, odd whitespace) still reach stb.
    const std::string huge = "P5\n99999999999 2\n255\n" + std::string(12, 'x');
    const Bytes bytes(huge.begin(), huge.end());
    check_throws<IOError>([&] { (void)data::decode_image(bytes, "huge.pgm"); },
                          {"huge.pgm", "the PNM header's width has more than 9 digits"});
    const std::string ok = "P5 # a comment\n3\v2 000000000255\n" + std::string(6, 'x');
    CHECK(data::decode_image(Bytes(ok.begin(), ok.end()), "ok.pgm").shape() == Shape{1, 2, 3});
}

TEST_CASE("fuzz_bpe_files: a token id far past the vocabulary is refused before anything is allocated for it") {
    // CI's fuzzing run: a tokenizer.json whose added token had an id near 2^31 made the reader allocate 2^31
    // empty token strings (64 GB) only to find the gap below it (AddressSanitizer: out-of-memory). The seed is
    // corpus/bpe_files/added-token-huge-id.json; here a minimal file in each of the two formats.
    const std::string pre = R"("pre_tokenizer": {"type": "ByteLevel"}, )";
    const std::string hf_huge_added = "{" + pre +
                                      R"("added_tokens": [{"id": 2147483000, "content": "<|x|>", "special": true}], )"
                                      R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}})";
    check_throws<ValueError>([&] { (void)data::parse_hf_tokenizer_json(hf_huge_added, "huge.json"); },
                             {"huge.json", "<|x|>", "has id 2147483000", "only 3 tokens", "0..2 without gaps"});
    const std::string hf_int64_max = "{" + pre + R"("model": {"type": "BPE", "vocab": {"a": 9223372036854775807}, "merges": []}})";
    check_throws<ValueError>([&] { (void)data::parse_hf_tokenizer_json(hf_int64_max, "max.json"); },
                             {"token \"a\" has id 9223372036854775807", "only 1 tokens"});
    check_throws<ValueError>([&] { (void)data::parse_gpt2_bpe(R"({"a": 0, "b": 5})", "", "gpt2"); },
                             {"token \"b\" has id 5", "only 2 tokens"});
    check_throws<ValueError>([&] { (void)data::parse_gpt2_bpe(R"({"a": 0, "b": -1})", "", "gpt2"); },
                             {"token \"b\" has a negative id -1"});
}

TEST_CASE("fuzz_bpe_files: a tokenizer.json field of the wrong JSON type is a ValueError, not nlohmann's type_error") {
    // A local fuzzing run: "model": {"type": 5, ...} made nlohmann's value("type", "BPE") throw json::type_error,
    // which is not a tg::Error and escaped the caller's handler (std::terminate in the fuzz target).
    const std::string pre = R"("pre_tokenizer": {"type": "ByteLevel"}, )";
    const std::string model = R"("model": {"type": 5, "vocab": {"a": 0}, "merges": []})";
    check_throws<ValueError>([&] { (void)data::parse_hf_tokenizer_json("{" + pre + model + "}", "t.json"); },
                             {"t.json: model", "\"type\" must be a string, got 5"});
    const std::string decoder = R"("decoder": {"type": ["ByteLevel"]}, )";
    const std::string good_model = R"("model": {"type": "BPE", "vocab": {"a": 0}, "merges": []})";
    check_throws<ValueError>([&] { (void)data::parse_hf_tokenizer_json("{" + pre + decoder + good_model + "}", "t.json"); },
                             {"t.json: decoder", "\"type\" must be a string"});
}
