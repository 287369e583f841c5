// GPT-2 in Hugging Face's layout (nn/models/gpt2_hf.h): a small random GPT-2 written exactly as Hugging Face
// stores it (Conv1D weights (in, out), names h.{i}.*, optional "transformer." prefix, mask buffers, F32 / F16 /
// BF16) is loaded and its logits compared with a float64 GPT-2 written here in plain loops straight from the
// Hugging Face tensors; malformed folders give errors naming the tensor or field; load -> fine-tune -> export ->
// reload gives identical weights. A second check against a hand-written PyTorch GPT-2 uses checked-in fixtures
// (tests/fixtures/gpt2_hf, made by tests/tools/gpt2_reference.py).

#include "test_util.h"

#include "core/file_io.h"
#include "core/ops.h"
#include "core/random.h"
#include "nn/data/tokenizer.h"
#include "nn/models/gpt.h"
#include "nn/models/gpt2_hf.h"
#include "nn/optim.h"
#include "nn/safetensors_read.h"

#include <nlohmann/json.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <unistd.h>

using namespace tg;
using tg::testing::check_throws;

namespace {

namespace fs = std::filesystem;

struct Sizes {
    std::int64_t V = 61, P = 12, C = 16, H = 4, L = 2;
};

std::string hf_config_json(const Sizes& s, const std::string& extra = "") {
    return "{\"model_type\": \"gpt2\", \"architectures\": [\"GPT2LMHeadModel\"], \"vocab_size\": " +
           std::to_string(s.V) + ", \"n_positions\": " + std::to_string(s.P) + ", \"n_ctx\": " + std::to_string(s.P) +
           ", \"n_embd\": " + std::to_string(s.C) + ", \"n_head\": " + std::to_string(s.H) + ", \"n_layer\": " +
           std::to_string(s.L) + ", \"layer_norm_epsilon\": 1e-05, \"activation_function\": \"gelu_new\", " +
           "\"n_inner\": null, \"resid_pdrop\": 0.1, \"embd_pdrop\": 0.1, \"attn_pdrop\": 0.1" + extra + "}";
}

// Random weights in Hugging Face's names and shapes (no prefix), in the order save_pretrained writes them.
// quantize: values k/128 (|k| < 256: 8 significant bits), exact in F16 and BF16, so the three file dtypes hold the same model.
std::vector<std::pair<std::string, Tensor>> random_hf_weights(const Sizes& s, unsigned seed, bool quantize) {
    unsigned next = seed;
    auto draw = [&](const Shape& shape, double center, double spread) {
        Tensor t = testing::uniform_tensor(shape, kFloat64, next++, center - spread, center + spread);
        if (quantize) {
            std::vector<double> v = t.to_vector<double>();
            for (double& x : v) x = std::round(x * 128.0) / 128.0;
            t = from_vector(v, shape);
        }
        return t.to(kFloat32);
    };
    const std::int64_t C = s.C;
    std::vector<std::pair<std::string, Tensor>> w;
    w.emplace_back("wte.weight", draw({s.V, C}, 0.0, 0.5));
    w.emplace_back("wpe.weight", draw({s.P, C}, 0.0, 0.3));
    for (std::int64_t i = 0; i < s.L; ++i) {
        const std::string h = "h." + std::to_string(i) + ".";
        w.emplace_back(h + "ln_1.weight", draw({C}, 1.0, 0.3));
        w.emplace_back(h + "ln_1.bias", draw({C}, 0.0, 0.2));
        w.emplace_back(h + "attn.c_attn.weight", draw({C, 3 * C}, 0.0, 0.5));
        w.emplace_back(h + "attn.c_attn.bias", draw({3 * C}, 0.0, 0.2));
        w.emplace_back(h + "attn.c_proj.weight", draw({C, C}, 0.0, 0.4));
        w.emplace_back(h + "attn.c_proj.bias", draw({C}, 0.0, 0.2));
        w.emplace_back(h + "ln_2.weight", draw({C}, 1.0, 0.3));
        w.emplace_back(h + "ln_2.bias", draw({C}, 0.0, 0.2));
        w.emplace_back(h + "mlp.c_fc.weight", draw({C, 4 * C}, 0.0, 0.5));
        w.emplace_back(h + "mlp.c_fc.bias", draw({4 * C}, 0.0, 0.2));
        w.emplace_back(h + "mlp.c_proj.weight", draw({4 * C, C}, 0.0, 0.3));
        w.emplace_back(h + "mlp.c_proj.bias", draw({C}, 0.0, 0.2));
    }
    w.emplace_back("ln_f.weight", draw({C}, 1.0, 0.3));
    w.emplace_back("ln_f.bias", draw({C}, 0.0, 0.2));
    return w;
}

// ---- the float64 reference: GPT-2 in plain loops on the Hugging Face tensors ----------------------------------

using Matrix = std::vector<std::vector<double>>;  // rows

struct Weights {
    std::map<std::string, std::vector<double>> t;
    const std::vector<double>& operator[](const std::string& name) const { return t.at(name); }
};

// y = x W + b with W (in, out) row-major: the Conv1D of Hugging Face.
Matrix conv1d(const Matrix& x, const std::vector<double>& W, const std::vector<double>& b) {
    const std::size_t in = x[0].size(), out = b.size();
    Matrix y(x.size(), std::vector<double>(out));
    for (std::size_t r = 0; r < x.size(); ++r)
        for (std::size_t o = 0; o < out; ++o) {
            double acc = b[o];
            for (std::size_t i = 0; i < in; ++i) acc += x[r][i] * W[i * out + o];
            y[r][o] = acc;
        }
    return y;
}

Matrix layer_norm(const Matrix& x, const std::vector<double>& g, const std::vector<double>& b) {
    Matrix y = x;
    for (auto& row : y) {
        double mean = 0, var = 0;
        for (double v : row) mean += v;
        mean /= static_cast<double>(row.size());
        for (double v : row) var += (v - mean) * (v - mean);
        var /= static_cast<double>(row.size());
        for (std::size_t i = 0; i < row.size(); ++i) row[i] = (row[i] - mean) / std::sqrt(var + 1e-5) * g[i] + b[i];
    }
    return y;
}

double gelu_tanh(double x) {
    return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

// Logits (T, V) of one sequence.
Matrix reference_logits(const Weights& w, const Sizes& s, const std::vector<std::int64_t>& ids) {
    const std::size_t T = ids.size(), C = static_cast<std::size_t>(s.C), H = static_cast<std::size_t>(s.H), D = C / H;
    Matrix x(T, std::vector<double>(C));
    for (std::size_t t = 0; t < T; ++t)
        for (std::size_t c = 0; c < C; ++c)
            x[t][c] = w["wte.weight"][static_cast<std::size_t>(ids[t]) * C + c] + w["wpe.weight"][t * C + c];
    for (std::int64_t l = 0; l < s.L; ++l) {
        const std::string h = "h." + std::to_string(l) + ".";
        const Matrix qkv = conv1d(layer_norm(x, w[h + "ln_1.weight"], w[h + "ln_1.bias"]), w[h + "attn.c_attn.weight"],
                                  w[h + "attn.c_attn.bias"]);
        Matrix y(T, std::vector<double>(C, 0.0));
        for (std::size_t head = 0; head < H; ++head)
            for (std::size_t t = 0; t < T; ++t) {
                std::vector<double> score(t + 1);
                double top = -INFINITY, total = 0;
                for (std::size_t u = 0; u <= t; ++u) {
                    double dot = 0;
                    for (std::size_t d = 0; d < D; ++d) dot += qkv[t][head * D + d] * qkv[u][C + head * D + d];
                    score[u] = dot / std::sqrt(static_cast<double>(D));
                    top = std::max(top, score[u]);
                }
                for (double& e : score) total += (e = std::exp(e - top));
                for (std::size_t u = 0; u <= t; ++u)
                    for (std::size_t d = 0; d < D; ++d) y[t][head * D + d] += score[u] / total * qkv[u][2 * C + head * D + d];
            }
        const Matrix a = conv1d(y, w[h + "attn.c_proj.weight"], w[h + "attn.c_proj.bias"]);
        for (std::size_t t = 0; t < T; ++t)
            for (std::size_t c = 0; c < C; ++c) x[t][c] += a[t][c];
        Matrix f = conv1d(layer_norm(x, w[h + "ln_2.weight"], w[h + "ln_2.bias"]), w[h + "mlp.c_fc.weight"],
                          w[h + "mlp.c_fc.bias"]);
        for (auto& row : f)
            for (double& v : row) v = gelu_tanh(v);
        const Matrix m = conv1d(f, w[h + "mlp.c_proj.weight"], w[h + "mlp.c_proj.bias"]);
        for (std::size_t t = 0; t < T; ++t)
            for (std::size_t c = 0; c < C; ++c) x[t][c] += m[t][c];
    }
    x = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"]);
    Matrix logits(T, std::vector<double>(static_cast<std::size_t>(s.V)));
    for (std::size_t t = 0; t < T; ++t)
        for (std::size_t v = 0; v < static_cast<std::size_t>(s.V); ++v) {
            double acc = 0;
            for (std::size_t c = 0; c < C; ++c) acc += x[t][c] * w["wte.weight"][v * C + c];
            logits[t][v] = acc;
        }
    return logits;
}

Weights as_weights(const std::vector<std::pair<std::string, Tensor>>& named) {
    Weights w;
    for (const auto& [name, t] : named) w.t[name] = t.to_vector<double>();
    return w;
}

// ---- writing folders --------------------------------------------------------------------------------------------

struct TempDir {
    fs::path path;
    explicit TempDir(const std::string& name)
        : path(fs::temp_directory_path() / ("tg-test-gpt2-hf-" + name + "-" + std::to_string(::getpid()))) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    std::string str() const { return path.string(); }
    std::string operator/(const char* name) const { return (path / name).string(); }
};

void write_text(const std::string& path, const std::string& text) { write_file_atomically(path, text.data(), text.size(), "test"); }

// 16-bit encodings of values that are exact in them (k/128, |k| < 256): a truncation that must lose nothing.
std::uint16_t f16_bits(float f) {
    const std::uint32_t b = std::bit_cast<std::uint32_t>(f);
    const std::uint16_t sign = static_cast<std::uint16_t>((b >> 16) & 0x8000);
    if ((b & 0x7FFFFFFF) == 0) return sign;
    const int exponent = static_cast<int>((b >> 23) & 0xFF) - 127 + 15;
    REQUIRE((exponent > 0 && exponent < 31 && (b & 0x1FFF) == 0));
    return static_cast<std::uint16_t>(sign | (exponent << 10) | ((b >> 13) & 0x3FF));
}
std::uint16_t bf16_bits(float f) {
    const std::uint32_t b = std::bit_cast<std::uint32_t>(f);
    REQUIRE((b & 0xFFFF) == 0);
    return static_cast<std::uint16_t>(b >> 16);
}

// A safetensors file of 16-bit floats ("F16" or "BF16"), written byte by byte as the format describes
// (nn/serialization.h), since tapegrad itself only writes its own dtypes.
void write_half_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                            const std::string& code) {
    nlohmann::ordered_json header;
    header["__metadata__"] = {{"format", "pt"}};
    std::vector<std::uint16_t> data;
    for (const auto& [name, t] : tensors) {
        const std::uint64_t begin = data.size() * 2;
        for (float v : t.to_vector<float>()) data.push_back(code == "F16" ? f16_bits(v) : bf16_bits(v));
        header[name] = {{"dtype", code}, {"shape", t.shape()}, {"data_offsets", {begin, data.size() * 2}}};
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    std::string bytes(8 + text.size() + data.size() * 2, '\0');
    const std::uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
    std::memcpy(bytes.data() + 8, text.data(), text.size());
    std::memcpy(bytes.data() + 8 + text.size(), data.data(), data.size() * 2);
    write_text(path, bytes);
}

struct FolderOptions {
    std::string prefix;          // "" or "transformer."
    bool buffers = false;        // add h.{i}.attn.bias / masked_bias as older files have
    std::string dtype = "F32";   // F32, F16 or BF16
};

void write_hf_folder(const TempDir& dir, const Sizes& s, const std::vector<std::pair<std::string, Tensor>>& weights,
                     const FolderOptions& o = {}) {
    write_text(dir / "config.json", hf_config_json(s));
    std::vector<std::pair<std::string, Tensor>> named;
    for (const auto& [name, t] : weights) named.emplace_back(o.prefix + name, t);
    if (o.buffers) {
        for (std::int64_t i = 0; i < s.L; ++i) {
            const std::string h = o.prefix + "h." + std::to_string(i) + ".attn.";
            named.emplace_back(h + "bias", ones({1, 1, s.P, s.P}));
            named.emplace_back(h + "masked_bias", full({}, -1e4));
        }
    }
    if (o.dtype == "F32") save_safetensors(dir / "model.safetensors", named, {{"format", "pt"}});
    else write_half_safetensors(dir / "model.safetensors", named, o.dtype);
}

const std::vector<std::int64_t> kIdsA = {3, 17, 60, 0, 42, 42, 7, 11, 29};
const std::vector<std::int64_t> kIdsB = {59, 1, 2, 33, 8, 15, 40, 21, 5};

// Our logits for a batch of sequences (of one length), against the float64 reference of each.
void check_logits_against_reference(nn::GPT& model, const Weights& w, const Sizes& s, double tolerance,
                                    const std::vector<std::vector<std::int64_t>>& sequences = {kIdsA, kIdsB}) {
    model.eval();
    std::vector<std::int64_t> ids;
    for (const auto& seq : sequences) ids.insert(ids.end(), seq.begin(), seq.end());
    const std::int64_t B = static_cast<std::int64_t>(sequences.size()), T = static_cast<std::int64_t>(sequences[0].size());
    const std::vector<float> got = model.forward(from_vector(ids, {B, T})).to_vector<float>();  // (B, T, V)
    double worst = 0, largest = 0;
    for (std::int64_t b = 0; b < B; ++b) {
        const Matrix want = reference_logits(w, s, sequences[static_cast<std::size_t>(b)]);
        for (std::int64_t t = 0; t < T; ++t)
            for (std::int64_t v = 0; v < s.V; ++v) {
                const double ref = want[static_cast<std::size_t>(t)][static_cast<std::size_t>(v)];
                worst = std::max(worst, std::abs(got[static_cast<std::size_t>((b * T + t) * s.V + v)] - ref));
                largest = std::max(largest, std::abs(ref));
            }
    }
    MESSAGE("max |logit - float64 reference| = " << worst << " (largest |logit| " << largest << ")");
    CHECK(largest > 1.0);  // the model is not degenerate: the comparison means something
    CHECK(worst < tolerance);
}

}  // namespace

TEST_SUITE("gpt2_hf") {

TEST_CASE("a random GPT-2 in Hugging Face's layout matches the float64 reference (F32, F16, BF16, prefix, buffers)") {
    const Sizes s;
    struct Case {
        const char* name;
        FolderOptions options;
    };
    for (const Case& c : {Case{"f32", {}}, Case{"f32-prefixed-buffers", {"transformer.", true, "F32"}},
                          Case{"f16", {"", true, "F16"}}, Case{"bf16", {"transformer.", false, "BF16"}}}) {
        SUBCASE(c.name) {
            const bool half = c.options.dtype != "F32";
            const auto weights = random_hf_weights(s, 100, half);
            TempDir dir(c.name);
            write_hf_folder(dir, s, weights, c.options);
            const auto model = nn::load_gpt2_hf(dir.str());
            CHECK(model->config.vocab_size == s.V);
            CHECK(model->config.block_size == s.P);
            CHECK(model->config.n_layer == s.L);
            // A sum over C = 16 and 4C = 64 terms of float32 products, two layers deep.
            check_logits_against_reference(*model, as_weights(weights), s, 2e-5);
        }
    }
}

TEST_CASE("the Conv1D weights are transposed and the qkv blocks land in place") {
    const Sizes s;
    const auto weights = random_hf_weights(s, 7, false);
    TempDir dir("transpose");
    write_hf_folder(dir, s, weights);
    const auto model = nn::load_gpt2_hf(dir.str());
    const Weights w = as_weights(weights);
    std::vector<double> qkv;
    for (const auto& [name, p] : model->named_parameters())
        if (name == "blocks.1.attn.qkv.weight") qkv = p.to_vector<double>();
    REQUIRE(!qkv.empty());
    const std::vector<double>& c_attn = w["h.1.attn.c_attn.weight"];  // (C, 3C)
    const std::int64_t C = s.C;
    // Our row r (output r), column i (input i) is Hugging Face's [i, r]; rows C..2C are the keys.
    for (std::int64_t r : {std::int64_t{0}, C + 3, 2 * C + 5, 3 * C - 1})
        for (std::int64_t i : {std::int64_t{0}, C - 1})
            CHECK(qkv[static_cast<std::size_t>(r * C + i)] == c_attn[static_cast<std::size_t>(i * 3 * C + r)]);
}

TEST_CASE("load -> fine-tune -> export -> reload gives the same model") {
    const Sizes s;
    const auto weights = random_hf_weights(s, 300, false);
    TempDir dir("roundtrip"), out("roundtrip-out");
    write_hf_folder(dir, s, weights, {"transformer.", true, "F32"});
    auto model = nn::load_gpt2_hf(dir.str());

    // Export right after loading gives back the very same tensors and an equivalent config.json.
    nn::save_gpt2_hf(out.str(), *model);
    const SafetensorsFile exported = load_safetensors(out / "model.safetensors");
    REQUIRE(exported.tensors.size() == weights.size());
    for (const auto& [name, t] : weights) {
        INFO(name);
        CHECK(exported.get(name).shape() == t.shape());
        CHECK(exported.get(name).to_vector<float>() == t.to_vector<float>());
    }
    CHECK(exported.metadata.at("format") == "pt");

    // A few AdamW steps move every weight; the exported, reloaded model is the fine-tuned one, bit for bit.
    manual_seed(5);
    optim::AdamW opt(model->parameters(), 1e-2);
    model->train();
    const Tensor x = randint(0, s.V, {2, 8}, kInt64), y = randint(0, s.V, {2, 8}, kInt64);
    double first = 0, last = 0;
    for (int step = 0; step < 4; ++step) {
        opt.zero_grad();
        const Tensor loss = model->loss(x, y);
        loss.backward();
        opt.step();
        (step == 0 ? first : last) = loss.item();
    }
    CHECK(last < first);
    nn::save_gpt2_hf(out.str(), *model);
    const auto reloaded = nn::load_gpt2_hf(out.str());
    CHECK(reloaded->config.to_json() == model->config.to_json());
    const auto a = model->state_dict(), b = reloaded->state_dict();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO(a[i].first);
        CHECK(a[i].first == b[i].first);
        CHECK(a[i].second.to_vector<float>() == b[i].second.to_vector<float>());
    }
    CHECK(reloaded->state_dict().front().second.to_vector<float>() != weights.front().second.to_vector<float>());
}

TEST_CASE("config.json: round trip and every unsupported setting refused by name") {
    const Sizes s;
    const nn::GPTConfig c = nn::gpt2_config_from_hf_json(hf_config_json(s), "config.json");
    CHECK(c.n_embd == s.C);
    CHECK(c.n_head == s.H);
    CHECK(c.bias);
    CHECK(!c.rope);
    CHECK(nn::gpt2_config_from_hf_json(nn::gpt2_config_to_hf_json(c), "again").to_json() == c.to_json());

    auto refused = [&](const std::string& extra, const std::vector<std::string>& parts) {
        check_throws<ValueError>([&] { nn::gpt2_config_from_hf_json(hf_config_json(s, extra), "cfg.json"); }, parts);
    };
    refused(", \"activation_function\": \"relu\"", {"cfg.json", "activation_function", "relu", "gelu_new"});
    refused(", \"layer_norm_epsilon\": 1e-6", {"layer_norm_epsilon", "1e-05"});
    refused(", \"n_inner\": 50", {"n_inner", "50", "64"});
    refused(", \"scale_attn_by_inverse_layer_idx\": true", {"scale_attn_by_inverse_layer_idx"});
    refused(", \"tie_word_embeddings\": false", {"tie_word_embeddings"});
    refused(", \"model_type\": \"llama\"", {"model_type", "llama"});
    check_throws<ValueError>([] { nn::gpt2_config_from_hf_json("{\"n_embd\": 8}", "c.json"); }, {"c.json", "missing", "vocab_size"});
    check_throws<ValueError>([] { nn::gpt2_config_from_hf_json("{nope", "c.json"); }, {"c.json", "not valid JSON"});
    check_throws<ValueError>(
        [&] { nn::gpt2_config_from_hf_json(hf_config_json(Sizes{61, 12, 18, 4, 2}), "c.json"); },
        {"c.json", "n_embd must be a multiple of n_head"});

    nn::GPTConfig rope = c;
    rope.rope = true;
    check_throws<ValueError>([&] { nn::gpt2_config_to_hf_json(rope); }, {"not GPT-2's architecture", "rope"});
}

TEST_CASE("malformed Hugging Face folders: each missing, extra, mis-shaped or mistyped tensor named") {
    const Sizes s;
    const auto weights = random_hf_weights(s, 11, false);
    TempDir dir("malformed");
    const std::string folder = dir.str();

    check_throws<IOError>([] { nn::load_gpt2_hf("/nonexistent/gpt2"); }, {"/nonexistent/gpt2", "no such directory"});
    check_throws<IOError>([&] { nn::load_gpt2_hf(folder); }, {"config.json", "cannot open"});
    write_text(dir / "config.json", hf_config_json(s));
    check_throws<IOError>([&] { nn::load_gpt2_hf(folder); }, {"model.safetensors", "no such file"});
    write_text(dir / "pytorch_model.bin", "pickle");
    check_throws<IOError>([&] { nn::load_gpt2_hf(folder); }, {"pytorch_model.bin", "safe_serialization"});

    auto with = [&](const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit) {
        auto w = weights;
        edit(w);
        write_hf_folder(dir, s, w);
    };
    auto erase = [](std::vector<std::pair<std::string, Tensor>>& w, const std::string& name) {
        w.erase(std::find_if(w.begin(), w.end(), [&](const auto& p) { return p.first == name; }));
    };
    // Two missing tensors, both named.
    with([&](auto& w) {
        erase(w, "h.1.mlp.c_fc.weight");
        erase(w, "ln_f.bias");
    });
    check_throws<IOError>([&] { nn::load_gpt2_hf(folder); },
                          {"model.safetensors", "missing 'h.1.mlp.c_fc.weight' [16, 64]", "missing 'ln_f.bias' [16]"});
    // An unexpected tensor, and a buffer of a layer that does not exist.
    with([&](auto& w) {
        w.emplace_back("h.0.attn.rotary", zeros({4}));
        w.emplace_back("h.2.attn.bias", zeros({1}));
    });
    check_throws<IOError>([&] { nn::load_gpt2_hf(folder); },
                          {"unexpected tensor 'h.0.attn.rotary'", "unexpected tensor 'h.2.attn.bias'"});
    // A weight stored (out, in) as a Linear would be: the shape names the tensor and what config.json implies.
    with([&](auto& w) {
        for (auto& [name, t] : w)
            if (name == "h.0.mlp.c_proj.weight") t = t.t().contiguous();
    });
    check_throws<IOError>([&] { nn::load_gpt2_hf(folder); },
                          {"'h.0.mlp.c_proj.weight' has shape [16, 64], config.json implies [64, 16]"});
    // A vocabulary that disagrees with config.json.
    with([&](auto& w) { w.front().second = zeros({60, s.C}); });
    check_throws<IOError>([&] { nn::load_gpt2_hf(folder); }, {"'wte.weight' has shape [60, 16]", "vocab_size=61"});
    // Integer weights.
    with([&](auto& w) { w.back().second = zeros({s.C}, kInt64); });
    check_throws<IOError>([&] { nn::load_gpt2_hf(folder); }, {"'ln_f.bias' has dtype I64"});
    // An untied LM head.
    with([&](auto& w) { w.emplace_back("lm_head.weight", zeros({s.V, s.C})); });
    check_throws<IOError>([&] { nn::load_gpt2_hf(folder); }, {"lm_head.weight differs from wte.weight"});
    // ... while a tied one saved twice is fine.
    with([&](auto& w) { w.emplace_back("lm_head.weight", w.front().second.clone()); });
    CHECK_NOTHROW(nn::load_gpt2_hf(folder));
    // A truncated file: the safetensors reader's own checks.
    write_text(dir / "model.safetensors", std::string("\x10\0\0\0\0\0\0\0{}", 10));
    check_throws<IOError>([&] { nn::load_gpt2_hf(folder); }, {"model.safetensors", "header length"});
}

TEST_CASE("GPT-2's real 50,257-token vocabulary: a random GPT-2 folder with encoder.json + vocab.bpe") {
    // OpenAI's files are not in the repository: scripts/setup.sh fetches them (see tests/test_tokenizer_gpt2.cpp).
    const fs::path cache = fs::path(TG_TEST_DATA_DIR) / "gpt2-cache";
    if (!fs::exists(cache / "encoder.json") || !fs::exists(cache / "vocab.bpe")) {
        MESSAGE("GPT-2's encoder.json / vocab.bpe not in " << cache.string() << " (scripts/setup.sh): skipped");
        return;
    }
    const Sizes s{50257, 32, 16, 2, 1};
    const auto weights = random_hf_weights(s, 500, false);
    TempDir dir("vocab50257");
    write_hf_folder(dir, s, weights);
    fs::copy_file(cache / "encoder.json", dir.path / "encoder.json");
    fs::copy_file(cache / "vocab.bpe", dir.path / "vocab.bpe");
    const auto model = nn::load_gpt2_hf(dir.str());
    const data::Tokenizer tokenizer = data::Tokenizer::load(dir.str());
    CHECK(tokenizer.vocab_size() == model->config.vocab_size);
    const std::vector<std::int64_t> ids = tokenizer.encode("Hello world, said GPT-2.");
    REQUIRE(ids.size() >= 2);
    CHECK(ids[0] == 15496);  // "Hello"
    CHECK(ids[1] == 995);    // " world"
    check_logits_against_reference(*model, as_weights(weights), s, 2e-5, {ids});
}

TEST_CASE("safetensors: F16 and BF16 are refused by default and widened exactly on request") {
    TempDir dir("half");
    const std::vector<float> values = {0.0f, -0.0f, 1.0f, -2.5f, 0.00390625f, 300.0f, -0.75f};
    const Tensor t = from_vector(values, {7});
    for (const std::string code : {"F16", "BF16"}) {
        INFO(code);
        write_half_safetensors(dir / "h.safetensors", {{"x", t}, {"y", t.view({7, 1})}}, code);
        check_throws<IOError>([&] { load_safetensors(dir / "h.safetensors"); }, {"unsupported dtype \"" + code + "\""});
        const SafetensorsFile f = load_safetensors(dir / "h.safetensors", {.widen_half_to_float32 = true});
        CHECK(f.get("x").dtype() == kFloat32);
        CHECK(f.get("x").to_vector<float>() == values);
        CHECK(f.get("y").shape() == Shape{7, 1});
        const SafetensorsHeader h = read_safetensors_header(dir / "h.safetensors", {.widen_half_to_float32 = true});
        REQUIRE(h.tensors.size() == 2);
        CHECK(h.tensors[0].dtype == code);
        CHECK(h.tensors[1].shape == Shape{7, 1});
    }
}

TEST_CASE("a hand-written PyTorch GPT-2 agrees (fixtures from tests/tools/gpt2_reference.py)") {
    const std::string fixtures = std::string(TG_TEST_DATA_DIR) + "/gpt2_hf";
    if (!fs::exists(fixtures + "/expected.json")) {
        MESSAGE("no fixtures in " << fixtures << ": skipped");
        return;
    }
    const auto model = nn::load_gpt2_hf(fixtures);
    model->eval();
    std::ifstream in(fixtures + "/expected.json");
    const nlohmann::json expected = nlohmann::json::parse(in);
    const auto ids = expected["ids"].get<std::vector<std::vector<std::int64_t>>>();
    const auto want = expected["logits"].get<std::vector<std::vector<std::vector<double>>>>();  // (B, T, V)
    const std::int64_t B = static_cast<std::int64_t>(ids.size()), T = static_cast<std::int64_t>(ids[0].size());
    std::vector<std::int64_t> flat;
    for (const auto& row : ids) flat.insert(flat.end(), row.begin(), row.end());
    const std::vector<float> got = model->forward(from_vector(flat, {B, T})).to_vector<float>();
    const std::int64_t V = model->config.vocab_size;
    double worst = 0;
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t t = 0; t < T; ++t)
            for (std::int64_t v = 0; v < V; ++v)
                worst = std::max(worst, std::abs(got[static_cast<std::size_t>((b * T + t) * V + v)] -
                                                 want[static_cast<std::size_t>(b)][static_cast<std::size_t>(t)]
                                                     [static_cast<std::size_t>(v)]));
    MESSAGE("max |logit - PyTorch reference| = " << worst << " over " << B * T * V << " logits");
    CHECK(worst < 1e-4 * std::max(1.0, expected["max_abs_logit"].get<double>()));
    // The loss of the next-token predictions, as PyTorch's F.cross_entropy computed it.
    std::vector<std::int64_t> targets;
    for (const auto& row : expected["targets"].get<std::vector<std::vector<std::int64_t>>>())
        targets.insert(targets.end(), row.begin(), row.end());
    CHECK(model->loss(from_vector(flat, {B, T}), from_vector(targets, {B, T})).item() ==
          doctest::Approx(expected["loss"].get<double>()).epsilon(1e-5));
}

}  // TEST_SUITE
