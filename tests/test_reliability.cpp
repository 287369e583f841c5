// Issue 14's classes of defects, each kept fixed by a test here: non-finite values (find_non_finite and
// anomaly detection), optimizer state checked like a model's weights, data sets read with bounded memory
// (IDX decompression bombs, huge images, text streamed), empty data sets, and stale temporary files.

#include "core/anomaly.h"
#include "core/file_io.h"
#include "core/finite.h"
#include "core/ops.h"
#include "nn/data/byte_source.h"
#include "nn/data/idx.h"
#include "nn/data/image.h"
#include "nn/data/text_corpus.h"
#include "nn/optim.h"
#include "nn/optim/guard.h"
#include "nn/models/model_size.h"
#include "test_util.h"

#include <doctest/doctest.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace tg;
using tg::testing::check_throws;
using TempDir = tg::testing::ScratchDir;
namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

void write_bytes(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Bytes gzip(const Bytes& raw) {
    z_stream zs{};
    REQUIRE(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) == Z_OK);
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

// The header of an IDX file of uint8 images (N, H, W).
Bytes idx_images_header(std::uint32_t n, std::uint32_t h, std::uint32_t w) {
    Bytes b = {0, 0, 0x08, 3};
    for (std::uint32_t d : {n, h, w})
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(d >> s));
    return b;
}

}  // namespace

TEST_SUITE("reliability") {

// ---- non-finite values --------------------------------------------------------------------------------------------

TEST_CASE("find_non_finite: first element in logical order, the count, integer tensors always finite") {
    CHECK_FALSE(find_non_finite(from_vector(std::vector<float>{1, 2, 3})).has_value());
    const float inf = std::numeric_limits<float>::infinity();
    const Tensor t = from_vector(std::vector<float>{1, NAN, 3, -inf, 5, 6}).reshape({2, 3});
    auto bad = find_non_finite(t);
    REQUIRE(bad.has_value());
    CHECK(bad->index == 1);
    CHECK(bad->count == 2);
    CHECK(bad->text().find("nan at element 1") == 0);
    // A transposed view: logical order [[1, -inf], [nan, 5], [3, 6]] puts -inf first.
    bad = find_non_finite(t.transpose(0, 1));
    REQUIRE(bad.has_value());
    CHECK(bad->index == 1);
    CHECK(bad->value < 0);
    CHECK_FALSE(find_non_finite(from_vector(std::vector<std::int64_t>{1, 2})).has_value());
}

TEST_CASE("detect_anomaly: names the first op whose forward output is not finite; off by default") {
    const Tensor x = from_vector(std::vector<double>{1.0, 0.0, 2.0}).requires_grad_();
    {
        autograd::DetectAnomalyGuard guard;
        check_throws<autograd::AnomalyError>([&] { sum(log(x) * 2.0); },
                                             {"detect_anomaly", "forward of 'log'", "-inf at element 1", "[3]"});
    }
    CHECK_FALSE(autograd::is_anomaly_enabled());
    const Tensor y = sum(log(x) * 2.0);  // without the guard: silently -inf, as in PyTorch
    CHECK(std::isinf(y.item()));
}

TEST_CASE("detect_anomaly: names the backward rule that returns a non-finite gradient") {
    // sqrt(x) at 0 is finite (0) but its gradient 1 / (2 sqrt(x)) is inf.
    const Tensor x = from_vector(std::vector<double>{4.0, 0.0}).requires_grad_();
    autograd::DetectAnomalyGuard guard;
    const Tensor y = sum(sqrt(x));
    check_throws<autograd::AnomalyError>([&] { y.backward(); }, {"backward of 'sqrt'", "inf at element 1", "input 0"});
}

// ---- optimizer state checked on load ----------------------------------------------------------------------------

TEST_CASE("optimizer load_state_dict: missing moments, inconsistent steps, negative or non-finite moments refused") {
    Tensor p = zeros({3}, kFloat64).requires_grad_();
    Tensor q = zeros({2}, kFloat64).requires_grad_();
    optim::AdamW opt({p, q}, 0.01);
    for (int s = 0; s < 2; ++s) {
        p.set_grad(ones({3}, kFloat64));
        q.set_grad(ones({2}, kFloat64));
        opt.step();
    }
    const NamedTensors good = opt.state_dict();
    const auto without = [&](const std::string& key) {
        NamedTensors sd;
        for (const auto& [k, t] : good)
            if (k.rfind(key, 0) != 0) sd.emplace_back(k, t);
        return sd;
    };
    const auto replaced = [&](const std::string& key, const Tensor& value) {
        NamedTensors sd = good;
        for (auto& [k, t] : sd)
            if (k == key) t = value;
        return sd;
    };
    opt.load_state_dict(good, /*require_every_param=*/true);  // the real thing passes

    check_throws<ValueError>([&] { opt.load_state_dict(without("state.1.exp_avg_sq")); },
                             {"'state.1.exp_avg_sq' is missing", "took 2 steps", "incomplete"});
    check_throws<ValueError>([&] { opt.load_state_dict(without("state.0.step")); },
                             {"'state.0.exp_avg' is present but 'state.0.step' is not"});
    // Dropping all of a parameter's state is consistent on its face (an unused parameter) ...
    opt.load_state_dict(without("state.1."));
    // ... but not for a training run where every parameter is updated at every step.
    check_throws<ValueError>([&] { opt.load_state_dict(without("state.1."), true); },
                             {"parameter 1", "no state", "took 2 steps", "incomplete"});
    opt.load_state_dict(without("state."));  // no per-parameter state at all: consistent, if useless
    check_throws<ValueError>([&] { opt.load_state_dict(without("state."), true); }, {"parameter 0", "incomplete"});
    check_throws<ValueError>([&] { opt.load_state_dict(replaced("state.0.step", scalar_tensor(5, kInt64))); },
                             {"'state.0.step' is 5", "more than the optimizer's 'step' 2"});
    check_throws<ValueError>(
        [&] { opt.load_state_dict(replaced("state.0.exp_avg_sq", from_vector(std::vector<double>{1, -1e-3, 0}))); },
        {"'state.0.exp_avg_sq' has a negative element", "corrupt"});
    check_throws<ValueError>(
        [&] { opt.load_state_dict(replaced("state.1.exp_avg", from_vector(std::vector<double>{NAN, 0}))); },
        {"'state.1.exp_avg' holds nan at element 0"});
    check_throws<ValueError>([&] { opt.load_state_dict(replaced("lr", scalar_tensor(INFINITY, kFloat64))); },
                             {"'lr'", "not a finite number"});
    CHECK(opt.step_count() == 2);
}

// ---- data sets: bounded memory, empty sets ---------------------------------------------------------------------

TEST_CASE("IDX gzip bomb: inflated only up to the size the header declares") {
    // The header promises 2 images of 4 x 4 (32 bytes), the stream inflates to 64 MiB of zeros (a 64 KB .gz).
    Bytes raw = idx_images_header(2, 4, 4);
    raw.resize(raw.size() + (std::size_t{64} << 20), 0);
    const Bytes bomb = gzip(raw);
    CHECK(bomb.size() < 200'000);
    check_throws<IOError>([&] { data::decode_idx(bomb, "bomb.gz"); },
                          {"bomb.gz", "size mismatch", "[2, 4, 4]", "(trailing data)"});
    // gunzip itself stops at its limit, however much the stream would produce.
    check_throws<IOError>([&] { data::gunzip(bomb, "bomb.gz", 1 << 20); },
                          {"inflates to more than the limit of 1048576 bytes"});
    // A header declaring more than max_bytes is refused before any data is read.
    check_throws<IOError>([&] { data::decode_idx(gzip(idx_images_header(1000, 1000, 1000)), "big.gz", 1 << 20); },
                          {"1000000000 bytes of data, above the limit of 1048576"});
    // The honest stream still reads, from memory as from a file.
    Bytes good = idx_images_header(2, 4, 4);
    good.resize(good.size() + 32, 7);
    const data::IdxArray a = data::decode_idx(gzip(good), "good.gz");
    CHECK(a.shape == Shape{2, 4, 4});
    CHECK(a.data.size() == 32);
}

TEST_CASE("load_mnist: an empty split (0 images) is an error, not a 0% accuracy") {
    TempDir dir("empty-mnist");
    write_bytes(dir.file("t10k-images-idx3-ubyte.gz"), gzip(idx_images_header(0, 28, 28)));
    write_bytes(dir.file("t10k-labels-idx1-ubyte.gz"), gzip(Bytes{0, 0, 0x08, 1, 0, 0, 0, 0}));
    check_throws<IOError>([&] { data::load_mnist(dir.path.string(), "t10k"); },
                          {"t10k-images-idx3-ubyte.gz", "split is empty", "[0, 28, 28]"});
}

TEST_CASE("load_image: the pixel count is read from the header and checked before decoding") {
    TempDir dir("image-limit");
    std::vector<std::uint8_t> pixels(40 * 30, 128);
    data::save_png(dir.file("small.png"), pixels.data(), 40, 30, 1);
    CHECK(data::load_image(dir.file("small.png")).shape() == Shape{1, 30, 40});
    check_throws<IOError>([&] { data::load_image(dir.file("small.png"), 0, 1000); },
                          {"small.png", "40 x 30 = 1200 pixels", "above the limit of 1000", "max_pixels"});
    // A PNG whose header claims 15000 x 15000: refused by the default limit without decoding a pixel. (stb
    // does not check chunk CRCs, so patching the IHDR size is enough to make it claim that.)
    Bytes png = data::encode_png(pixels.data(), 40, 30, 1);
    for (int i = 0; i < 4; ++i) {
        png[16 + i] = static_cast<std::uint8_t>(15000u >> (24 - 8 * i));
        png[20 + i] = static_cast<std::uint8_t>(15000u >> (24 - 8 * i));
    }
    check_throws<IOError>([&] { data::decode_image(png, "huge.png"); },
                          {"huge.png", "15000 x 15000 = 225000000 pixels", "above the limit of 16777216"});
}

TEST_CASE("text corpus: read in pieces, a NUL byte found at its offset, the same text as a whole-file read") {
    TempDir dir("text-stream");
    // Three pieces' worth of fortunes with separators, lines crossing the piece boundaries.
    std::string text;
    for (int i = 0; text.size() < 3 * data::kTextChunkBytes; ++i) text += "fortune " + std::to_string(i) + " h\xC3\xA9\n%\n";
    std::ofstream(dir.file("a.txt"), std::ios::binary) << text;
    const data::TextCorpus corpus = data::load_text_corpus(dir.file("a.txt"));
    CHECK(corpus.text == data::strip_fortune_separators(text));

    std::string binary = text;
    binary[2 * data::kTextChunkBytes + 5] = '\0';
    std::ofstream(dir.file("b.txt"), std::ios::binary) << binary;
    check_throws<ValueError>([&] { data::load_text_corpus(dir.file("b.txt")); },
                             {"b.txt", "NUL byte at offset " + std::to_string(2 * data::kTextChunkBytes + 5)});
    // From memory through the same reader: invalid UTF-8 above 1% of the bytes.
    const std::string latin = std::string(50, 'a') + std::string(2, '\xE9');
    data::MemorySource source(reinterpret_cast<const std::uint8_t*>(latin.data()), latin.size());
    std::string out;
    check_throws<ValueError>([&] { data::append_text(source, "latin.txt", out); }, {"2 of 52 bytes are not valid UTF-8"});
}

// ---- stale temporary files ------------------------------------------------------------------------------------------

TEST_CASE("write_file_atomically: removes the temporary files of dead writers, keeps those of live ones") {
    TempDir dir("stale-tmp");
    // A pid that surely belongs to no process: a child that has exited and been reaped.
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    REQUIRE(child > 0);
    ::waitpid(child, nullptr, 0);
    const std::string dead = dir.file("model.safetensors.tmp." + std::to_string(child));
    const std::string live = dir.file("state.json.tmp." + std::to_string(::getppid()));  // our parent is alive
    const std::string other = dir.file("notes.tmp.txt");                                  // not ours at all
    for (const auto& f : {dead, live, other}) std::ofstream(f) << "x";
    const std::string data = "{}";
    write_file_atomically(dir.file("config.json"), data.data(), data.size(), "test");
    CHECK_FALSE(fs::exists(dead));
    CHECK(fs::exists(live));
    CHECK(fs::exists(other));
    CHECK(fs::exists(dir.file("config.json")));
}

TEST_CASE("write_file_atomically: a temporary file whose pid now belongs to a younger process is removed") {
    // pid_max is 32768 on many machines: a killed writer's pid can be reused before the next save. Our parent
    // is alive, so its pid is kept for a file written after it started, and removed for a file last written
    // (per its mtime) 30 years ago, long before it started: that file's writer was another process.
    TempDir dir("reused-pid");
    const std::string fresh = dir.file("model.safetensors.tmp." + std::to_string(::getppid()));
    const std::string old = dir.file("state.json.tmp." + std::to_string(::getppid()));
    for (const auto& f : {fresh, old}) std::ofstream(f) << "x";
    fs::last_write_time(old, fs::file_time_type::clock::now() - std::chrono::hours(24 * 365 * 30));
    const std::string data = "{}";
    write_file_atomically(dir.file("config.json"), data.data(), data.size(), "test");
    CHECK(fs::exists(fresh));
    CHECK_FALSE(fs::exists(old));
}

}  // TEST_SUITE

TEST_SUITE("reliability") {

TEST_CASE("check_finite_step: a non-finite loss or gradient norm stops the step, naming it") {
    optim::check_finite_step(3, 2.5, 0.7);  // finite: nothing happens
    check_throws<optim::NonFiniteError>([] { optim::check_finite_step(12, INFINITY, 1.0); },
                                        {"step 12: the loss is inf", "still those of step 11", "anomaly"});
    check_throws<optim::NonFiniteError>([] { optim::check_finite_step(4, 1.0, NAN); }, {"step 4: the gradient norm is nan"});
    Tensor p = from_vector(std::vector<double>{0, 0}).requires_grad_();
    p.set_grad(from_vector(std::vector<double>{3, 4}));
    CHECK(optim::grad_norm({p}) == doctest::Approx(5.0));
    CHECK(p.grad().to_vector<double>() == std::vector<double>{3, 4});  // unchanged
}

}  // TEST_SUITE

TEST_SUITE("reliability") {

TEST_CASE("model sizes from the config equal the built models' parameter counts; absurd configs overflow cleanly") {
    for (bool rope : {false, true}) {
        for (bool bias : {false, true}) {
            nn::GPTConfig c;
            c.vocab_size = 37;
            c.block_size = 11;
            c.n_layer = 2;
            c.n_head = 2;
            c.n_embd = 8;
            c.rope = rope;
            c.bias = bias;
            c.qk_layernorm = bias;
            CAPTURE(rope);
            CAPTURE(bias);
            CHECK(nn::gpt_parameter_count(c) == nn::GPT(c).num_parameters());
        }
    }
    nn::ViTConfig v;
    v.n_layer = 2;
    v.n_embd = 16;
    v.mlp_hidden = 24;
    v.num_classes = 7;
    CHECK(nn::vit_parameter_count(v) == nn::ViT(v).num_parameters());

    nn::GPTConfig huge;
    huge.n_layer = 1'000'000'000;
    huge.n_embd = 16384;
    huge.n_head = 128;
    CHECK(nn::gpt_parameter_count(huge) > (std::int64_t{1} << 50));  // counted, not allocated
    huge.n_embd = std::int64_t{1} << 40;
    check_throws<ValueError>([&] { nn::gpt_parameter_count(huge); }, {"GPTConfig", "overflow"});
    CHECK(nn::gpt_activation_bytes(nn::GPTConfig{}, 1'000'000'000, 256, true) > (std::uint64_t{1} << 40));
}

}  // TEST_SUITE
