// The residual add and the LayerNorm after it in one pass (kernels::add_layernorm_forward,
// functional::add_layer_norm, LayerNorm::forward_sum, TransformerBlock::forward_normed, nn::forward_blocks).
// Checked: the kernel bit for bit against the elementwise add followed by layernorm_forward (odd sizes, padded
// rows, float and double, 1-4 threads) and close to the plain reference; the functional op against x + y then
// layer_norm (values, tape and gradients bit for bit; broadcast, strided and mixed-dtype inputs take the
// unfused ops); a float64 gradcheck through the fused path; errors naming the op and shapes; and a GPT trained
// a few AdamW steps fused and unfused with equal losses and parameters, and a ViT block stack's gradients.

#include "autograd/gradcheck.h"
#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/threading.h"
#include "kernels/layernorm.h"
#include "nn/embedding.h"
#include "nn/functional.h"
#include "nn/models/gpt.h"
#include "nn/optim.h"
#include "nn/transformer_block.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

namespace {

using namespace tg;
namespace F = tg::nn::functional;
using tg::testing::same_bits;

template <class T>
std::vector<T> random_values(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(-2.0, 2.0);
    std::vector<T> v(n);
    for (T& e : v) e = static_cast<T>(u(rng));
    return v;
}

// Rows of `cols` values `stride` apart (stride ≥ cols; the gap holds NaN, which must never be read or written).
template <class T>
struct Rows {
    std::int64_t rows, cols, stride;
    std::vector<T> data;
    Rows(std::int64_t r, std::int64_t c, std::int64_t s, unsigned seed)
        : rows(r), cols(c), stride(s), data(random_values<T>(static_cast<std::size_t>(r * s), seed)) {
        for (std::int64_t i = 0; i < r; ++i) {
            for (std::int64_t j = c; j < s; ++j) data[static_cast<std::size_t>(i * s + j)] = std::nan("");
        }
    }
};

template <class T>
struct Outputs {
    Rows<T> h, y;
    std::vector<T> mean, rstd;
    bool operator==(const Outputs& o) const {
        return same_bits(h.data, o.h.data) && same_bits(y.data, o.y.data) && same_bits(mean, o.mean) &&
               same_bits(rstd, o.rstd);
    }
};

// The fused kernel on `threads` threads (a task arena of that many, as tests/test_gemm.cpp's product_on_threads:
// 3 and 4 threads run even on a 2-core machine).
template <class T>
Outputs<T> fused_on_threads(int threads, const Rows<T>& a, const Rows<T>& b, const std::vector<T>& gamma,
                            const std::vector<T>& beta, std::int64_t out_stride) {
    Outputs<T> o{Rows<T>(a.rows, a.cols, out_stride, 90), Rows<T>(a.rows, a.cols, out_stride, 91),
                 std::vector<T>(static_cast<std::size_t>(a.rows)), std::vector<T>(static_cast<std::size_t>(a.rows))};
    tbb::global_control allow(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    arena.execute([&] {
        kernels::add_layernorm_forward(a.data.data(), b.data.data(), o.h.data.data(), gamma.data(), beta.data(),
                                       o.y.data.data(), o.mean.data(), o.rstd.data(), a.rows, a.cols, 1e-5, a.stride,
                                       b.stride, out_stride, out_stride);
    });
    return o;
}

template <class T>
void check_kernel(std::int64_t rows, std::int64_t cols, std::int64_t pad) {
    CAPTURE(rows);
    CAPTURE(cols);
    CAPTURE(pad);
    const Rows<T> a(rows, cols, cols + pad, 1), b(rows, cols, cols + 2 * pad, 2);
    const std::vector<T> gamma = random_values<T>(static_cast<std::size_t>(cols), 3);
    const std::vector<T> beta = random_values<T>(static_cast<std::size_t>(cols), 4);
    const std::int64_t out_stride = cols + pad;

    // Expected: the elementwise add (one rounding per entry), then the LayerNorm kernel on its result.
    Outputs<T> expected{Rows<T>(rows, cols, out_stride, 90), Rows<T>(rows, cols, out_stride, 91),
                        std::vector<T>(static_cast<std::size_t>(rows)), std::vector<T>(static_cast<std::size_t>(rows))};
    for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t j = 0; j < cols; ++j) {
            expected.h.data[static_cast<std::size_t>(r * out_stride + j)] =
                a.data[static_cast<std::size_t>(r * a.stride + j)] + b.data[static_cast<std::size_t>(r * b.stride + j)];
        }
    }
    kernels::layernorm_forward(expected.h.data.data(), gamma.data(), beta.data(), expected.y.data.data(),
                               expected.mean.data(), expected.rstd.data(), rows, cols, 1e-5, out_stride, out_stride);

    const Outputs<T> one = fused_on_threads<T>(1, a, b, gamma, beta, out_stride);
    CHECK(one == expected);
    for (int threads : {2, 3, 4}) {
        CAPTURE(threads);
        CHECK(fused_on_threads<T>(threads, a, b, gamma, beta, out_stride) == one);
    }

    // And close to the plain scalar reference (a different summation order).
    std::vector<T> ref_y(static_cast<std::size_t>(rows * out_stride)), ref_mean(static_cast<std::size_t>(rows)),
        ref_rstd(static_cast<std::size_t>(rows));
    kernels::layernorm_forward_reference(expected.h.data.data(), gamma.data(), beta.data(), ref_y.data(),
                                         ref_mean.data(), ref_rstd.data(), rows, cols, 1e-5, out_stride, out_stride);
    const double tol = std::is_same_v<T, float> ? 1e-4 : 1e-12;
    double worst = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t j = 0; j < cols; ++j) {
            const std::size_t i = static_cast<std::size_t>(r * out_stride + j);
            worst = std::max(worst, std::abs(static_cast<double>(one.y.data[i]) - static_cast<double>(ref_y[i])));
        }
    }
    CHECK(worst < tol);
}

Tensor as_parameter(const Tensor& t) { return t.detach().clone().requires_grad_(); }

// x + y then layer_norm, and add_layer_norm, on copies of the same inputs: values and gradients bit for bit.
void check_functional_matches(const Tensor& x0, const Tensor& y0, const Tensor& w0, const Tensor& b0) {
    const Shape normalized{x0.size(-1)};
    std::vector<std::vector<Tensor>> grads;
    std::vector<F::SumAndNorm> outs;
    for (bool fused : {true, false}) {
        const Tensor x = as_parameter(x0), y = as_parameter(y0), w = as_parameter(w0), b = as_parameter(b0);
        F::SumAndNorm s;
        if (fused) {
            s = F::add_layer_norm(x, y, normalized, w, b);
        } else {
            s.sum = x + y;
            s.norm = F::layer_norm(s.sum, normalized, w, b);
        }
        // h feeds the next residual add as well as the LayerNorm, as in a block.
        sum(square(s.sum + exp(s.norm))).backward();
        outs.push_back(s);
        grads.push_back({x.grad(), y.grad(), w.grad(), b.grad()});
    }
    CHECK(same_bits(outs[0].sum, outs[1].sum));
    CHECK(same_bits(outs[0].norm, outs[1].norm));
    for (std::size_t i = 0; i < 4; ++i) CHECK_MESSAGE(same_bits(grads[0][i], grads[1][i]), "input " << i);
}

// The GPT's loss through the unfused ops: x + f(x), then each LayerNorm's own forward (nn/models/gpt.cpp before
// forward_blocks).
Tensor unfused_gpt_loss(nn::GPT& m, const Tensor& idx, const Tensor& targets) {
    Tensor x = m.wte->forward(idx) + m.wpe->weight.narrow(0, 0, idx.size(1));
    for (const auto& block : m.blocks) {
        const Tensor h = x + block->attn->forward(block->ln1->forward(x));
        x = h + block->mlp->forward(block->ln2->forward(h));
    }
    const Tensor logits = F::linear(m.ln_f->forward(x), m.wte->weight);
    return F::cross_entropy(logits.view({-1, m.config.vocab_size}), targets.reshape({-1}));
}

}  // namespace

TEST_SUITE("add_layer_norm") {
    TEST_CASE("kernel: the add then layernorm_forward bit for bit, odd sizes and padded rows, 1-4 threads") {
        for (auto [rows, cols] : std::vector<std::pair<std::int64_t, std::int64_t>>{
                 {1, 1}, {3, 7}, {5, 16}, {37, 29}, {300, 133}, {1030, 64}, {2048, 128}}) {
            for (std::int64_t pad : {0, 3}) {
                check_kernel<float>(rows, cols, pad);
                check_kernel<double>(rows, cols, pad);
            }
        }
    }

    TEST_CASE("functional: the same values and gradients as x + y then layer_norm, fused or not") {
        // Fused: contiguous, one shape and dtype (odd sizes).
        check_functional_matches(tg::testing::uniform_tensor({2, 5, 7}, kFloat32, 1),
                                 tg::testing::uniform_tensor({2, 5, 7}, kFloat32, 2),
                                 tg::testing::uniform_tensor({7}, kFloat32, 3),
                                 tg::testing::uniform_tensor({7}, kFloat32, 4));
        check_functional_matches(tg::testing::uniform_tensor({33, 131}, kFloat32, 5),
                                 tg::testing::uniform_tensor({33, 131}, kFloat32, 6),
                                 tg::testing::uniform_tensor({131}, kFloat32, 7),
                                 tg::testing::uniform_tensor({131}, kFloat32, 8));
        // Unfused: a transposed (non-contiguous) operand, a broadcast operand, mixed dtypes.
        check_functional_matches(tg::testing::uniform_tensor({9, 6}, kFloat32, 9).t(),
                                 tg::testing::uniform_tensor({6, 9}, kFloat32, 10),
                                 tg::testing::uniform_tensor({9}, kFloat32, 11),
                                 tg::testing::uniform_tensor({9}, kFloat32, 12));
        check_functional_matches(tg::testing::uniform_tensor({4, 3, 8}, kFloat32, 13),
                                 tg::testing::uniform_tensor({3, 8}, kFloat32, 14),
                                 tg::testing::uniform_tensor({8}, kFloat32, 15),
                                 tg::testing::uniform_tensor({8}, kFloat32, 16));
        check_functional_matches(tg::testing::uniform_tensor({4, 8}, kFloat32, 17),
                                 tg::testing::uniform_tensor({4, 8}, kFloat64, 18),
                                 tg::testing::uniform_tensor({8}, kFloat64, 19),
                                 tg::testing::uniform_tensor({8}, kFloat64, 20));
    }

    TEST_CASE("functional: the tape holds an add and a layer_norm; no weight or bias; no grad mode") {
        const Tensor x = tg::testing::uniform_tensor({3, 4, 6}, kFloat32, 21).requires_grad_();
        const Tensor y = tg::testing::uniform_tensor({3, 4, 6}, kFloat32, 22);
        const F::SumAndNorm s = F::add_layer_norm(x, y, {6});
        REQUIRE(s.sum.grad_fn() != nullptr);  // (x requires grad, y does not)
        REQUIRE(s.norm.grad_fn() != nullptr);
        CHECK(s.sum.grad_fn()->name() == std::string("add"));
        CHECK(s.norm.grad_fn()->name() == std::string("layer_norm"));
        CHECK(same_bits(s.norm, F::layer_norm(x + y, {6})));
        {
            NoGradGuard no_grad;
            const F::SumAndNorm n = F::add_layer_norm(x, y, {6});
            CHECK(n.sum.grad_fn() == nullptr);
            CHECK(n.norm.grad_fn() == nullptr);
            CHECK(same_bits(n.norm, s.norm));
        }
    }

    TEST_CASE("float64 gradcheck through the fused path") {
        auto f = [](const std::vector<Tensor>& in) {
            const F::SumAndNorm s = F::add_layer_norm(in[0], in[1], {7}, in[2], in[3]);
            return sum(square(s.sum + exp(s.norm)));  // h also feeds a residual, as in a block
        };
        const auto r = autograd::gradcheck(
            f, {tg::testing::uniform_tensor({2, 3, 7}, kFloat64, 23).requires_grad_(),
                tg::testing::uniform_tensor({2, 3, 7}, kFloat64, 24).requires_grad_(),
                tg::testing::uniform_tensor({7}, kFloat64, 25, 0.5, 1.5).requires_grad_(),
                tg::testing::uniform_tensor({7}, kFloat64, 26).requires_grad_()});
        CHECK_MESSAGE(r.ok, r.message);
    }

    TEST_CASE("errors name the op and the shapes") {
        const Tensor x = tg::testing::uniform_tensor({2, 5, 7}, kFloat32, 27);
        tg::testing::check_throws<ShapeError>([&] { F::add_layer_norm(x, x, {8}); },
                                              {"layer_norm", "[2, 5, 7]", "[8]"});
        tg::testing::check_throws<ShapeError>(
            [&] { F::add_layer_norm(x, tg::testing::uniform_tensor({2, 4, 7}, kFloat32, 28), {7}); },
            {"add", "[2, 5, 7]", "[2, 4, 7]"});
        tg::testing::check_throws<ShapeError>(
            [&] { F::add_layer_norm(x, x, {7}, tg::testing::uniform_tensor({6}, kFloat32, 29)); },
            {"layer_norm", "weight", "[6]", "[7]"});
        tg::testing::check_throws<ValueError>([&] { F::add_layer_norm(x, Tensor(), {7}); }, {"add_layer_norm"});
    }

    TEST_CASE("a GPT trained 4 AdamW steps fused and unfused: equal losses and parameters, 1 and 2 threads") {
        const int threads_before = get_num_threads();
        for (int threads : {1, 2}) {
            set_num_threads(threads);
            nn::GPTConfig gc;
            gc.vocab_size = 37;
            gc.block_size = 16;
            gc.n_layer = 3;
            gc.n_head = 2;
            gc.n_embd = 24;
            manual_seed(7);
            nn::GPT fused(gc);
            manual_seed(7);
            nn::GPT unfused(gc);
            optim::AdamW opt_fused(fused.parameters(), 1e-2), opt_unfused(unfused.parameters(), 1e-2);
            for (int step = 0; step < 4; ++step) {
                const Tensor idx = randint(0, 37, {3, 11}), targets = randint(0, 37, {3, 11});
                opt_fused.zero_grad();
                opt_unfused.zero_grad();
                const Tensor a = fused.loss(idx, targets), b = unfused_gpt_loss(unfused, idx, targets);
                CHECK_MESSAGE(same_bits(a, b), "step " << step << " on " << threads << " threads");
                a.backward();
                b.backward();
                opt_fused.step();
                opt_unfused.step();
            }
            const auto pf = fused.named_parameters(), pu = unfused.named_parameters();
            REQUIRE(pf.size() == pu.size());
            for (std::size_t i = 0; i < pf.size(); ++i) {
                CHECK_MESSAGE(same_bits(pf[i].second, pu[i].second), pf[i].first << " on " << threads << " threads");
            }
        }
        set_num_threads(threads_before);
    }

    TEST_CASE("a ViT block stack: forward_blocks against block->forward then ln_f, gradients bit for bit") {
        nn::TransformerBlockConfig config;
        config.attention.embed_dim = 16;
        config.attention.num_heads = 2;
        config.attention.causal = false;
        config.mlp_hidden = 32;
        config.gelu = GeluApproximation::None;  // the ViT's erf form
        manual_seed(11);
        std::vector<std::shared_ptr<nn::TransformerBlock>> blocks;
        for (int i = 0; i < 2; ++i) blocks.push_back(std::make_shared<nn::TransformerBlock>(config));
        const auto ln_f = nn::make_layer_norm(16, true);
        const Tensor x0 = tg::testing::uniform_tensor({3, 5, 16}, kFloat32, 30);
        std::vector<Tensor> outs, dxs;
        std::vector<std::vector<Tensor>> parameter_grads;
        for (bool fused : {true, false}) {
            for (const auto& block : blocks) block->zero_grad();
            ln_f->zero_grad();
            const Tensor x = as_parameter(x0);
            Tensor out;
            if (fused) {
                out = nn::forward_blocks(blocks, x, *ln_f);
            } else {
                Tensor h = x;
                for (const auto& block : blocks) {  // the unfused block: x + attn(ln1(x)), then + mlp(ln2(.))
                    const Tensor mid = h + block->attn->forward(block->ln1->forward(h));
                    h = mid + block->mlp->forward(block->ln2->forward(mid));
                }
                out = ln_f->forward(h);
            }
            sum(square(out)).backward();
            outs.push_back(out);
            dxs.push_back(x.grad());
            parameter_grads.emplace_back();
            for (const auto& block : blocks) {
                for (const auto& [name, p] : block->named_parameters()) parameter_grads.back().push_back(p.grad());
            }
            for (const auto& [name, p] : ln_f->named_parameters()) parameter_grads.back().push_back(p.grad());
        }
        CHECK(same_bits(outs[0], outs[1]));
        CHECK(same_bits(dxs[0], dxs[1]));
        REQUIRE(parameter_grads[0].size() == parameter_grads[1].size());
        for (std::size_t i = 0; i < parameter_grads[0].size(); ++i) {
            CHECK_MESSAGE(parameter_grads[0][i].defined(), "parameter " << i);
            CHECK_MESSAGE(same_bits(parameter_grads[0][i], parameter_grads[1][i]), "parameter " << i);
        }
        // Empty stack: the final LayerNorm alone.
        CHECK(same_bits(nn::forward_blocks({}, x0, *ln_f), ln_f->forward(x0)));
    }
}
