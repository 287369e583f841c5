// Tests for nn/: modules (registration, names, state_dict, train/eval, printing), layers against plain
// reference loops and gradcheck, init, dropout statistics and seeding, and the losses.

#include "autograd/gradcheck.h"
#include "core/grad_mode.h"
#include "core/ops.h"
#include "core/random.h"
#include "nn/activation.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/functional.h"
#include "nn/init.h"
#include "nn/layernorm.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/module.h"
#include "nn/sequential.h"

#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <cmath>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace tg;
using namespace tg::testing;
namespace F = tg::nn::functional;

namespace {


void check_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs) {
    auto r = autograd::gradcheck(f, inputs);
    CHECK_MESSAGE(r.ok, r.message);
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
        CHECK(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])));
    }
}

Tensor randn64(const Shape& shape, Generator& gen) { return randn(shape, kFloat64, &gen); }

// A small two-level model for name and state tests: embed -> blocks.{0,1} (each: fc, norm) -> head.
class Block : public nn::Module {
public:
    explicit Block(std::int64_t dim) {
        fc = register_module("fc", std::make_shared<nn::Linear>(dim, dim));
        norm = register_module("norm", std::make_shared<nn::LayerNorm>(dim));
        register_buffer("scale", full({1}, 2.0));
    }
    std::string name() const override { return "Block"; }
    Tensor forward(const Tensor& x) override { return norm->forward(fc->forward(x)); }
    std::shared_ptr<nn::Linear> fc;
    std::shared_ptr<nn::LayerNorm> norm;
};

class Net : public nn::Module {
public:
    Net() {
        embed = register_module("embed", std::make_shared<nn::Embedding>(10, 4));
        auto list = register_module("blocks", std::make_shared<nn::Sequential>());
        list->push_back(std::make_shared<Block>(4));
        list->push_back(std::make_shared<Block>(4));
        blocks = list;
        head = register_module("head", std::make_shared<nn::Linear>(4, 3, /*bias=*/false));
        drop = register_module("drop", std::make_shared<nn::Dropout>(0.1));
    }
    std::string name() const override { return "Net"; }
    std::shared_ptr<nn::Embedding> embed;
    std::shared_ptr<nn::Sequential> blocks;
    std::shared_ptr<nn::Linear> head;
    std::shared_ptr<nn::Dropout> drop;
};

std::vector<std::string> names_of(const NamedTensors& named) {
    std::vector<std::string> out;
    for (const auto& [n, t] : named) out.push_back(n);
    return out;
}

}  // namespace

TEST_SUITE("nn") {

// ---- Module ----------------------------------------------------------------------------------------------------

TEST_CASE("named_parameters: dotted names in registration order, buffers, num_parameters") {
    Net net;
    const std::vector<std::string> want = {
        "embed.weight",           "blocks.0.fc.weight", "blocks.0.fc.bias", "blocks.0.norm.weight",
        "blocks.0.norm.bias",     "blocks.1.fc.weight", "blocks.1.fc.bias", "blocks.1.norm.weight",
        "blocks.1.norm.bias",     "head.weight"};
    CHECK(names_of(net.named_parameters()) == want);
    CHECK(names_of(net.named_buffers()) == std::vector<std::string>{"blocks.0.scale", "blocks.1.scale"});
    CHECK(net.num_parameters() == 10 * 4 + 2 * (16 + 4 + 4 + 4) + 12);
    for (const auto& p : net.parameters()) CHECK(p.requires_grad());
    CHECK(net.named_parameters()[0].second.same(net.embed->weight));  // the registered tensor is the member
    CHECK(net.children().size() == 4);
    CHECK(net.blocks->size() == 2);

    // state_dict: parameters then buffers per module, depth first.
    const auto sd_names = names_of(net.state_dict());
    CHECK(sd_names.size() == 12);
    CHECK(sd_names[1] == "blocks.0.scale");  // own buffers before the children's entries, as in PyTorch
    CHECK(sd_names[2] == "blocks.0.fc.weight");
    for (const auto& [n, t] : net.state_dict()) CHECK_FALSE(t.requires_grad());

    const auto modules = net.named_modules();
    CHECK(modules.size() == 1 + 1 + 1 + 2 * 3 + 1 + 1);
    CHECK(modules[0].first == "");
    CHECK(modules[3].first == "blocks.0");
    CHECK(modules[4].first == "blocks.0.fc");
}

TEST_CASE("named_parameters lists a tied weight once; state_dict under both names") {
    // Tied through registration: a module whose parameter is another module's tensor.
    struct Shared : nn::Module {
        explicit Shared(const Tensor& w) { register_parameter("weight", w); }
    };
    struct Outer : nn::Module {
        Outer() {
            a = register_module("a", std::make_shared<nn::Linear>(3, 3));
            b = register_module("b", std::make_shared<Shared>(a->weight));
        }
        std::shared_ptr<nn::Linear> a;
        std::shared_ptr<Shared> b;
    };
    Outer outer;
    CHECK(names_of(outer.named_parameters()) == std::vector<std::string>{"a.weight", "a.bias"});
    CHECK(outer.num_parameters() == 12);
    CHECK(names_of(outer.state_dict()) == std::vector<std::string>{"a.weight", "a.bias", "b.weight"});
}

TEST_CASE("register_*: name and tensor errors") {
    nn::Module m;
    m.register_parameter("w", zeros({2}));
    check_throws<ValueError>([&] { m.register_parameter("w", zeros({2})); }, {"register_parameter", "'w'", "already"});
    check_throws<ValueError>([&] { m.register_buffer("w", zeros({2})); }, {"register_buffer", "already"});
    check_throws<ValueError>([&] { m.register_parameter("a.b", zeros({2})); }, {"'a.b'", "'.'"});
    check_throws<ValueError>([&] { m.register_parameter("", zeros({2})); }, {"empty"});
    check_throws<DTypeError>([&] { m.register_parameter("i", zeros({2}, kInt64)); }, {"requires_grad_"});
    Tensor leaf = ones({2}).requires_grad_();
    check_throws<ValueError>([&] { m.register_parameter("nonleaf", leaf * 2.0); }, {"nonleaf", "leaf", "detach"});
    check_throws<ValueError>([&] { m.register_module("null", std::shared_ptr<nn::Module>()); }, {"null"});
    check_throws<Error>([&] { m.forward(zeros({1})); }, {"Module", "forward"});
}

TEST_CASE("train/eval propagate to every descendant") {
    Net net;
    CHECK(net.is_training());
    net.eval();
    for (const auto& [name, m] : net.named_modules()) CHECK_MESSAGE(!m->is_training(), name);
    net.train();
    for (const auto& [name, m] : net.named_modules()) CHECK_MESSAGE(m->is_training(), name);
    net.blocks->eval();  // a subtree only
    CHECK(net.is_training());
    CHECK_FALSE(net.blocks->is_training());
    CHECK_FALSE((*net.blocks)[1]->is_training());
    CHECK(net.drop->is_training());
}

TEST_CASE("zero_grad drops every gradient") {
    nn::Linear lin(3, 2);
    Tensor x = randn({4, 3});
    sum(lin(x)).backward();
    CHECK(lin.weight.grad().defined());
    CHECK(lin.bias.grad().defined());
    lin.zero_grad();
    CHECK_FALSE(lin.weight.grad().defined());
    CHECK_FALSE(lin.bias.grad().defined());
}

TEST_CASE("state_dict round trip copies values in place") {
    manual_seed(1);
    nn::MLP a({3, 5, 2});
    manual_seed(2);
    nn::MLP b({3, 5, 2});
    const Tensor weight_handle = a.parameters()[0];
    Tensor x = randn({4, 3});
    CHECK(a(x).to_vector<float>() != b(x).to_vector<float>());

    auto result = a.load_state_dict(b.state_dict());
    CHECK(result.missing_keys.empty());
    CHECK(result.unexpected_keys.empty());
    CHECK(a(x).to_vector<float>() == b(x).to_vector<float>());
    CHECK(a.parameters()[0].same(weight_handle));  // same tensors, new values
    CHECK(a.parameters()[0].requires_grad());
    // The copy is a copy: changing b afterwards leaves a alone.
    {
        NoGradGuard g;
        b.parameters()[0].fill_(7.0);
    }
    CHECK(a.parameters()[0].to_vector<float>()[0] != 7.0f);
}

TEST_CASE("load_state_dict: strict errors name the keys and shapes, and change nothing") {
    manual_seed(3);
    nn::MLP a({3, 4, 2});
    const auto before = a.parameters()[0].to_vector<float>();
    NamedTensors good = nn::MLP({3, 4, 2}).state_dict();

    SUBCASE("missing") {
        NamedTensors sd(good.begin(), good.end() - 1);  // drops "2.bias"
        check_throws<ValueError>([&] { a.load_state_dict(sd); }, {"load_state_dict", "MLP", "missing keys", "'2.bias'"});
        auto r = a.load_state_dict(sd, /*strict=*/false);
        CHECK(r.missing_keys == std::vector<std::string>{"2.bias"});
        CHECK(r.unexpected_keys.empty());
        CHECK(a.parameters()[0].to_vector<float>() == good[0].second.to_vector<float>());  // the rest loaded
    }
    SUBCASE("unexpected") {
        NamedTensors sd = good;
        sd.emplace_back("3.weight", zeros({2, 2}));
        sd.emplace_back("extra", zeros({1}));
        check_throws<ValueError>([&] { a.load_state_dict(sd); }, {"unexpected keys", "'3.weight'", "'extra'"});
        CHECK(a.parameters()[0].to_vector<float>() == before);
        auto r = a.load_state_dict(sd, false);
        CHECK(r.unexpected_keys == std::vector<std::string>{"3.weight", "extra"});
    }
    SUBCASE("missing and unexpected together") {
        NamedTensors sd(good.begin() + 1, good.end());
        sd.emplace_back("0.wieght", zeros({4, 3}));
        check_throws<ValueError>([&] { a.load_state_dict(sd); }, {"missing keys ['0.weight']", "unexpected keys ['0.wieght']"});
    }
    SUBCASE("shape mismatch, even when not strict; nothing is copied") {
        NamedTensors sd = good;
        sd[2].second = zeros({2, 5});  // "2.weight" should be [2, 4]
        check_throws<ShapeError>([&] { a.load_state_dict(sd); }, {"size mismatch", "'2.weight'", "[2, 5]", "[2, 4]"});
        check_throws<ShapeError>([&] { a.load_state_dict(sd, false); }, {"'2.weight'"});
        CHECK(a.parameters()[0].to_vector<float>() == before);  // checked before anything was copied
    }
    SUBCASE("dtype mismatch") {
        NamedTensors sd = good;
        sd[1].second = sd[1].second.to(kFloat64);
        check_throws<DTypeError>([&] { a.load_state_dict(sd); }, {"dtype mismatch", "'0.bias'", "float64", "float32"});
    }
}

TEST_CASE("printing the module tree like PyTorch") {
    nn::Sequential seq({std::make_shared<nn::Linear>(4, 8), std::make_shared<nn::GELU>(GeluApproximation::Tanh),
                        std::make_shared<nn::Dropout>(0.25), std::make_shared<nn::LayerNorm>(8)});
    std::ostringstream os;
    os << seq;
    CHECK(os.str() ==
          "Sequential(\n"
          "  (0): Linear(in_features=4, out_features=8, bias=true)\n"
          "  (1): GELU(approximate='tanh')\n"
          "  (2): Dropout(p=0.25)\n"
          "  (3): LayerNorm((8,), eps=1e-05, elementwise_affine=true)\n"
          ")");
    Net net;
    const std::string s = net.repr();
    CHECK(s.find("  (blocks): Sequential(\n    (0): Block(\n      (fc): Linear(in_features=4, out_features=4, bias=true)") !=
          std::string::npos);
    CHECK(s.find("(head): Linear(in_features=4, out_features=3, bias=false)") != std::string::npos);
    CHECK(s.find("(embed): Embedding(10, 4)") != std::string::npos);
    CHECK(nn::CrossEntropyLoss().repr() == "CrossEntropyLoss(ignore_index=-100, reduction='mean')");
}

// ---- init ------------------------------------------------------------------------------------------------------

TEST_CASE("init: fans, bounds, fills on parameters") {
    CHECK(nn::init::calculate_fan_in_and_fan_out(zeros({5, 3})) == std::pair<std::int64_t, std::int64_t>{3, 5});
    CHECK(nn::init::calculate_fan_in_and_fan_out(zeros({6, 4, 3, 2})) == std::pair<std::int64_t, std::int64_t>{24, 36});
    check_throws<ValueError>([] { nn::init::calculate_fan_in_and_fan_out(zeros({5})); }, {"fewer than 2", "[5]"});

    Generator gen(11);
    Tensor w = zeros({40, 60}).requires_grad_();  // a parameter: fills must work despite requires_grad
    nn::init::xavier_uniform_(w, 2.0, &gen);
    const double xavier_bound = 2.0 * std::sqrt(6.0 / 100.0);
    double max_abs = 0.0;
    for (float v : w.to_vector<float>()) max_abs = std::max(max_abs, std::abs(static_cast<double>(v)));
    CHECK(max_abs <= xavier_bound);
    CHECK(max_abs > 0.95 * xavier_bound);  // 2400 draws reach close to the bound

    nn::init::kaiming_uniform_(w, 0.0, nn::init::FanMode::FanOut, &gen);  // bound = sqrt(2) sqrt(3 / 40)
    max_abs = 0.0;
    for (float v : w.to_vector<float>()) max_abs = std::max(max_abs, std::abs(static_cast<double>(v)));
    CHECK(max_abs <= std::sqrt(2.0) * std::sqrt(3.0 / 40.0));
    CHECK(max_abs > 0.95 * std::sqrt(2.0) * std::sqrt(3.0 / 40.0));

    nn::init::ones_(w);
    for (float v : w.to_vector<float>()) CHECK(v == 1.0f);
    nn::init::zeros_(w);
    for (float v : w.to_vector<float>()) CHECK(v == 0.0f);
    CHECK(w.requires_grad());

    // Same generator state -> same values.
    Generator g1(5), g2(5);
    CHECK(nn::init::normal_(zeros({7}), 1.0, 2.0, &g1).to_vector<float>() ==
          nn::init::normal_(zeros({7}), 1.0, 2.0, &g2).to_vector<float>());
}

TEST_CASE("Linear and Embedding initialisation follow PyTorch") {
    manual_seed(0);
    nn::Linear lin(50, 30);
    const double bound = 1.0 / std::sqrt(50.0);
    double w_max = 0.0, b_max = 0.0;
    for (float v : lin.weight.to_vector<float>()) w_max = std::max(w_max, std::abs(static_cast<double>(v)));
    for (float v : lin.bias.to_vector<float>()) b_max = std::max(b_max, std::abs(static_cast<double>(v)));
    CHECK(w_max <= bound);
    CHECK(w_max > 0.98 * bound);
    CHECK(b_max <= bound);
    CHECK(b_max > 0.5 * bound);
    CHECK(lin.weight.shape() == Shape{30, 50});

    nn::Embedding emb(100, 50);  // 5000 draws of N(0, 1): mean within 5 sigma = 5/sqrt(5000), var within 5 sd
    const auto v = emb.weight.to_vector<float>();
    double m = 0.0, s = 0.0;
    for (float x : v) m += x;
    m /= static_cast<double>(v.size());
    for (float x : v) s += (x - m) * (x - m);
    s /= static_cast<double>(v.size());
    CHECK(std::abs(m) < 5.0 / std::sqrt(5000.0));
    CHECK(std::abs(s - 1.0) < 5.0 * std::sqrt(2.0 / 5000.0));
}

// ---- layers ----------------------------------------------------------------------------------------------------

TEST_CASE("Linear: forward against a reference loop; gradcheck") {
    Generator gen(21);
    nn::Linear lin(5, 3, true, kFloat64);
    nn::init::normal_(lin.weight, 0.0, 1.0, &gen);
    nn::init::normal_(lin.bias, 0.0, 1.0, &gen);
    Tensor x = randn64({2, 3, 5}, gen);
    const auto y = lin(x).to_vector<double>();
    CHECK(lin(x).shape() == Shape{2, 3, 3});
    const auto xv = x.to_vector<double>(), w = lin.weight.to_vector<double>(), b = lin.bias.to_vector<double>();
    std::vector<double> want(6 * 3);
    for (int r = 0; r < 6; ++r)
        for (int o = 0; o < 3; ++o) {
            double s = b[o];
            for (int i = 0; i < 5; ++i) s += xv[r * 5 + i] * w[o * 5 + i];
            want[r * 3 + o] = s;
        }
    check_close(y, want, 1e-14);

    // The module's own tensors are passed to gradcheck, which perturbs them in place.
    check_gradcheck([&](const std::vector<Tensor>& in) { return lin(in[0]); }, {x.requires_grad_(), lin.weight, lin.bias});
    Tensor xt = randn64({5, 4}, gen).t().requires_grad_();  // non-contiguous [4, 5]
    check_gradcheck([&](const std::vector<Tensor>& in) { return lin(in[0]); }, {xt, lin.weight, lin.bias});

    nn::Linear no_bias(5, 2, false, kFloat64);
    CHECK_FALSE(no_bias.bias.defined());
    CHECK(no_bias.named_parameters().size() == 1);
    check_gradcheck([&](const std::vector<Tensor>& in) { return no_bias(in[0]); }, {x, no_bias.weight});

    check_throws<ShapeError>([&] { lin(zeros({2, 4}, kFloat64)); }, {"linear", "[2, 4]", "[3, 5]"});
    check_throws<ShapeError>([&] { F::linear(zeros({2, 5}), zeros({3, 5}), zeros({4})); }, {"linear", "bias", "[4]"});
}

TEST_CASE("Embedding: rows by id; gradcheck w.r.t. weight with repeated ids") {
    Generator gen(22);
    nn::Embedding emb(6, 3, kFloat64);
    Tensor ids = from_vector<std::int64_t>({4, 0, 4, 5, 1, 4}, {2, 3});
    Tensor y = emb(ids);
    CHECK(y.shape() == Shape{2, 3, 3});
    const auto w = emb.weight.to_vector<double>();
    const auto yv = y.to_vector<double>();
    const std::vector<int> idv = {4, 0, 4, 5, 1, 4};
    for (int p = 0; p < 6; ++p)
        for (int c = 0; c < 3; ++c) CHECK(yv[p * 3 + c] == w[idv[p] * 3 + c]);
    Tensor weights = randn64({2, 3, 3}, gen);  // a non-uniform upstream gradient
    check_gradcheck([&](const std::vector<Tensor>& in) { return emb(in[1]) * weights; }, {emb.weight, ids});
    CHECK(emb(from_vector<std::int32_t>({2})).shape() == Shape{1, 3});
    check_throws<IndexError>([&] { emb(from_vector<std::int64_t>({6})); }, {"embedding", "6"});
}

TEST_CASE("LayerNorm: forward against a reference loop; gradcheck") {
    Generator gen(23);
    nn::LayerNorm ln(5, 1e-5, true, kFloat64);
    nn::init::normal_(ln.weight, 1.0, 0.5, &gen);
    nn::init::normal_(ln.bias, 0.0, 0.5, &gen);
    Tensor x = randn64({3, 5}, gen) * 2.0 + 1.0;
    const auto xv = x.to_vector<double>(), g = ln.weight.to_vector<double>(), b = ln.bias.to_vector<double>();
    std::vector<double> want(15);
    for (int r = 0; r < 3; ++r) {
        double mu = 0.0, var = 0.0;
        for (int j = 0; j < 5; ++j) mu += xv[r * 5 + j] / 5.0;
        for (int j = 0; j < 5; ++j) var += (xv[r * 5 + j] - mu) * (xv[r * 5 + j] - mu) / 5.0;
        for (int j = 0; j < 5; ++j) want[r * 5 + j] = (xv[r * 5 + j] - mu) / std::sqrt(var + 1e-5) * g[j] + b[j];
    }
    check_close(ln(x).to_vector<double>(), want, 1e-13);

    x = x.detach().requires_grad_();
    check_gradcheck([&](const std::vector<Tensor>& in) { return ln(in[0]); }, {x, ln.weight, ln.bias});
    Tensor xt = randn64({5, 2, 3}, gen).permute({1, 2, 0}).requires_grad_();  // non-contiguous [2, 3, 5]
    check_gradcheck([&](const std::vector<Tensor>& in) { return ln(in[0]); }, {xt, ln.weight, ln.bias});

    // Two normalised dims, no affine: every [.., 2, 3] group has mean 0 and biased variance ~1.
    nn::LayerNorm ln2(Shape{2, 3}, 1e-5, false, kFloat64);
    CHECK(ln2.parameters().empty());
    Tensor z = ln2(randn64({4, 2, 3}, gen) * 3.0);
    const auto zv = z.to_vector<double>();
    for (int r = 0; r < 4; ++r) {
        double mu = 0.0, var = 0.0;
        for (int j = 0; j < 6; ++j) mu += zv[r * 6 + j] / 6.0;
        for (int j = 0; j < 6; ++j) var += (zv[r * 6 + j] - mu) * (zv[r * 6 + j] - mu) / 6.0;
        CHECK(std::abs(mu) < 1e-12);
        CHECK(std::abs(var - 1.0) < 1e-4);
    }
    Tensor x3 = randn64({2, 2, 3}, gen).requires_grad_();
    check_gradcheck([&](const std::vector<Tensor>& in) { return ln2(in[0]); }, {x3});

    check_throws<ShapeError>([&] { ln(zeros({3, 4}, kFloat64)); }, {"layer_norm", "[3, 4]", "[5]"});
    check_throws<ValueError>([] { nn::LayerNorm bad(4, 0.0); }, {"LayerNorm", "eps"});
}

TEST_CASE("MLP: structure and gradcheck through every layer") {
    Generator gen(24);
    nn::MLP mlp({3, 4, 2}, [] { return std::make_shared<nn::Tanh>(); }, true, kFloat64);
    CHECK(mlp.size() == 3);
    CHECK(names_of(mlp.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
    CHECK(mlp[1]->name() == "Tanh");
    Tensor x = randn64({2, 3}, gen).requires_grad_();
    std::vector<Tensor> inputs{x};
    for (const auto& p : mlp.parameters()) inputs.push_back(p);
    check_gradcheck([&](const std::vector<Tensor>& in) { return mlp(in[0]); }, inputs);

    nn::MLP gelu_mlp({3, 5, 5, 1}, [] { return std::make_shared<nn::GELU>(); }, true, kFloat64);
    std::vector<Tensor> inputs2{x};
    for (const auto& p : gelu_mlp.parameters()) inputs2.push_back(p);
    check_gradcheck([&](const std::vector<Tensor>& in) { return gelu_mlp(in[0]); }, inputs2);

    nn::MLP relu_mlp({2, 3});  // a single Linear, no activation
    CHECK(relu_mlp.size() == 1);
    check_throws<ValueError>([] { nn::MLP bad({3}); }, {"MLP", "two sizes"});
    check_throws<IndexError>([&] { (void)mlp[3]; }, {"index 3", "3 modules"});
}

TEST_CASE("activations match their ops") {
    Generator gen(25);
    Tensor x = randn64({7}, gen);
    CHECK(nn::ReLU()(x).to_vector<double>() == relu(x).to_vector<double>());
    CHECK(nn::Tanh()(x).to_vector<double>() == tanh(x).to_vector<double>());
    CHECK(nn::GELU()(x).to_vector<double>() == gelu(x).to_vector<double>());
    CHECK(nn::GELU(GeluApproximation::Tanh)(x).to_vector<double>() == gelu(x, GeluApproximation::Tanh).to_vector<double>());
}

// ---- dropout ---------------------------------------------------------------------------------------------------

TEST_CASE("Dropout: statistics, scaling and gradient") {
    const double p = 0.3;
    const std::int64_t n = 20000;
    nn::Dropout drop(p, /*seed=*/7);
    Tensor x = ones({n}, kFloat64).requires_grad_();
    Tensor y = drop(x);
    const auto yv = y.to_vector<double>();
    std::int64_t zeros_count = 0, badly_scaled = 0;
    for (double v : yv) {
        if (v == 0.0) {
            ++zeros_count;
        } else if (v != 1.0 / (1.0 - p)) {  // survivors are scaled by exactly 1/(1-p)
            ++badly_scaled;
        }
    }
    CHECK(badly_scaled == 0);
    // The zero count is Binomial(n, p): within 5 standard deviations sqrt(n p (1-p)) ~ 65.
    const double sd = std::sqrt(n * p * (1.0 - p));
    CHECK(std::abs(static_cast<double>(zeros_count) - n * p) < 5.0 * sd);
    // dy/dx = mask / (1 - p): the gradient is y itself for x = 1.
    sum(y).backward();
    CHECK(x.grad().to_vector<double>() == yv);
}

TEST_CASE("Dropout: seeding, eval identity, p = 0 and p = 1, errors") {
    Tensor x = ones({64});
    nn::Dropout a(0.5, 3), b(0.5, 3), c(0.5, 4);
    const auto ya = a(x).to_vector<float>();
    CHECK(ya == b(x).to_vector<float>());           // same seed, same masks
    CHECK(ya != c(x).to_vector<float>());           // another seed
    CHECK(a(x).to_vector<float>() != ya);           // the generator moves on
    b(x);
    CHECK(a(x).to_vector<float>() == b(x).to_vector<float>());  // and stays in step with b

    // Unseeded dropout uses the global generator.
    manual_seed(9);
    const auto g1 = nn::Dropout(0.5)(x).to_vector<float>();
    manual_seed(9);
    CHECK(nn::Dropout(0.5)(x).to_vector<float>() == g1);

    a.eval();
    CHECK(a(x).same(x));  // identity: the same tensor
    CHECK(nn::Dropout(0.0)(x).same(x));
    Tensor xg = ones({5}).requires_grad_();
    Tensor all_dropped = nn::Dropout(1.0)(xg);
    CHECK(all_dropped.to_vector<float>() == std::vector<float>(5, 0.0f));
    sum(all_dropped).backward();
    CHECK(xg.grad().to_vector<float>() == std::vector<float>(5, 0.0f));
    CHECK(F::dropout(x, 0.5, /*training=*/false).same(x));

    check_throws<ValueError>([] { nn::Dropout bad(1.5); }, {"Dropout", "[0, 1]", "1.5"});
    check_throws<ValueError>([] { nn::Dropout bad(-0.1); }, {"Dropout", "-0.1"});
    check_throws<ValueError>([&] { F::dropout(x, std::nan("")); }, {"dropout", "[0, 1]"});
    check_throws<DTypeError>([] { F::dropout(zeros({3}, kInt64), 0.5); }, {"dropout", "int64"});
}

// ---- losses ----------------------------------------------------------------------------------------------------

TEST_CASE("cross_entropy: values against a log-sum-exp reference") {
    Generator gen(31);
    const std::int64_t N = 5, C = 7;
    Tensor logits = randn64({N, C}, gen) * 3.0;
    Tensor targets = from_vector<std::int64_t>({3, 0, 6, -100, 2});
    const auto z = logits.to_vector<double>();
    const std::vector<std::int64_t> t = {3, 0, 6, -100, 2};
    std::vector<double> per_row(N, 0.0);
    double total = 0.0;
    for (std::int64_t n = 0; n < N; ++n) {
        if (t[n] == -100) continue;
        double m = -1e300;
        for (std::int64_t c = 0; c < C; ++c) m = std::max(m, z[n * C + c]);
        double s = 0.0;
        for (std::int64_t c = 0; c < C; ++c) s += std::exp(z[n * C + c] - m);
        per_row[n] = m + std::log(s) - z[n * C + t[n]];
        total += per_row[n];
    }
    check_close(F::cross_entropy(logits, targets, -100, F::Reduction::None).to_vector<double>(), per_row, 1e-13);
    CHECK(F::cross_entropy(logits, targets, -100, F::Reduction::Sum).item() == doctest::Approx(total).epsilon(1e-13));
    CHECK(F::cross_entropy(logits, targets).item() == doctest::Approx(total / 4.0).epsilon(1e-13));  // 4 kept
    // int32 targets, float32 logits, and the module form agree.
    Tensor t32 = targets.to(kInt32);
    CHECK(nn::CrossEntropyLoss()(logits.to(kFloat32), t32).item() == doctest::Approx(total / 4.0).epsilon(1e-5));
    // A custom ignore_index that is also a valid class.
    Tensor t2 = from_vector<std::int64_t>({3, 0, 6, 0, 2});
    const double no_zero = per_row[0] + per_row[2] + per_row[4];
    CHECK(F::cross_entropy(logits, t2, /*ignore_index=*/0).item() == doctest::Approx(no_zero / 3.0).epsilon(1e-13));
}

TEST_CASE("cross_entropy: stable for huge logits; all ignored") {
    Tensor logits = from_vector<float>({1000.0f, 0.0f, -1000.0f, 3000.0f, 3000.0f, 0.0f}, {2, 3});
    Tensor loss = F::cross_entropy(logits, from_vector<std::int64_t>({0, 1}), -100, F::Reduction::None);
    const auto l = loss.to_vector<float>();
    CHECK(l[0] == doctest::Approx(0.0).epsilon(1e-6));
    CHECK(l[1] == doctest::Approx(std::log(2.0)).epsilon(1e-6));

    // A masked (-inf) logit in an ignored row must not make NaN.
    const float inf = std::numeric_limits<float>::infinity();
    Tensor masked = from_vector<float>({-inf, 1.0f, 2.0f, 0.5f}, {2, 2}).requires_grad_();
    Tensor m = F::cross_entropy(masked, from_vector<std::int64_t>({-100, 1}));
    CHECK(std::isfinite(m.item()));
    m.backward();
    for (float v : masked.grad().to_vector<float>()) CHECK(std::isfinite(v));

    Tensor all_ignored = from_vector<std::int64_t>({-100, -100});
    CHECK(std::isnan(F::cross_entropy(logits, all_ignored).item()));  // mean over no targets, as PyTorch
    CHECK(F::cross_entropy(logits, all_ignored, -100, F::Reduction::Sum).item() == 0.0);
}

TEST_CASE("cross_entropy: gradcheck for mean, sum and none, with ignore_index") {
    Generator gen(32);
    Tensor logits = randn64({4, 5}, gen).requires_grad_();
    Tensor targets = from_vector<std::int64_t>({1, -100, 4, 0});
    for (auto reduction : {F::Reduction::Mean, F::Reduction::Sum, F::Reduction::None}) {
        INFO("reduction " << nn::reduction_name(reduction));
        check_gradcheck([&](const std::vector<Tensor>& in) { return F::cross_entropy(in[0], in[1], -100, reduction); },
                        {logits, targets});
    }
    Tensor lt = randn64({5, 4}, gen).t().requires_grad_();  // non-contiguous [4, 5]
    check_gradcheck([&](const std::vector<Tensor>& in) { return F::cross_entropy(in[0], in[1]); }, {lt, targets});
    // The gradient of the mean loss: (softmax − onehot) / kept, zero on ignored rows.
    Tensor loss = F::cross_entropy(logits, targets);
    loss.backward();
    const auto g = logits.grad().to_vector<double>();
    const auto sm = softmax(logits.detach(), 1).to_vector<double>();
    for (int c = 0; c < 5; ++c) CHECK(g[5 + c] == 0.0);
    CHECK(g[0 * 5 + 1] == doctest::Approx((sm[1] - 1.0) / 3.0).epsilon(1e-12));
    CHECK(g[0 * 5 + 2] == doctest::Approx(sm[2] / 3.0).epsilon(1e-12));
}

TEST_CASE("cross_entropy: errors") {
    Tensor logits = zeros({3, 5});
    check_throws<IndexError>([&] { F::cross_entropy(logits, from_vector<std::int64_t>({1, 5, 0})); },
                             {"cross_entropy", "target 5", "5 classes", "[3, 5]"});
    check_throws<IndexError>([&] { F::cross_entropy(logits, from_vector<std::int64_t>({-1, 0, 0})); }, {"target -1"});
    check_throws<ShapeError>([&] { F::cross_entropy(zeros({2, 3, 5}), zeros({2, 3}, kInt64)); },
                             {"cross_entropy", "[2, 3, 5]", "view"});
    check_throws<ShapeError>([&] { F::cross_entropy(logits, zeros({4}, kInt64)); }, {"[3]", "[4]"});
    check_throws<DTypeError>([&] { F::cross_entropy(logits, zeros({3})); }, {"int64", "float32"});
    check_throws<DTypeError>([&] { F::cross_entropy(zeros({3, 5}, kInt64), zeros({3}, kInt64)); }, {"floating"});
}

TEST_CASE("mse_loss: values, gradcheck, errors") {
    Generator gen(33);
    Tensor a = randn64({3, 4}, gen).requires_grad_();
    Tensor b = randn64({3, 4}, gen).requires_grad_();
    const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
    double s = 0.0;
    for (std::size_t i = 0; i < av.size(); ++i) s += (av[i] - bv[i]) * (av[i] - bv[i]);
    CHECK(F::mse_loss(a, b).item() == doctest::Approx(s / 12.0).epsilon(1e-14));
    CHECK(F::mse_loss(a, b, F::Reduction::Sum).item() == doctest::Approx(s).epsilon(1e-14));
    CHECK(nn::MSELoss(F::Reduction::None)(a, b).shape() == Shape{3, 4});
    for (auto reduction : {F::Reduction::Mean, F::Reduction::Sum, F::Reduction::None}) {
        check_gradcheck([&](const std::vector<Tensor>& in) { return F::mse_loss(in[0], in[1], reduction); }, {a, b});
    }
    Tensor at = randn64({4, 3}, gen).t().requires_grad_();
    check_gradcheck([&](const std::vector<Tensor>& in) { return F::mse_loss(in[0], in[1]); }, {at, b});
    check_throws<ShapeError>([&] { F::mse_loss(a, zeros({4}, kFloat64)); }, {"mse_loss", "[3, 4]", "[4]"});
}

}  // TEST_SUITE
