// functional::residual_add (nn/functional.h): x + branch, written into branch's memory when the caller handed
// branch over and nothing else sees it. Checked: the same values, tape node and gradients bit for bit as
// x + branch, with the memory taken (a temporary, std::move) and not taken (a tensor the caller keeps, a view,
// a tensor an op saved for its backward, a leaf that requires grad, broadcasting, mixed dtypes, odd sizes);
// the caller's tensors never change; the same bits on 1-4 threads; a float64 gradcheck through the in-place
// path; errors naming the op and the shapes; and a GPT trained 4 AdamW steps and a ViT-style block stack
// against the same models written with x + branch.

#include "autograd/gradcheck.h"
#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/storage.h"
#include "core/threading.h"
#include "kernels/gelu.h"
#include "nn/embedding.h"
#include "nn/functional.h"
#include "nn/models/gpt.h"
#include "nn/optim.h"
#include "nn/transformer_block.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <string>
#include <vector>

namespace {

using namespace tg;
namespace F = tg::nn::functional;
using tg::testing::same_bits;
using tg::testing::uniform_tensor;

Tensor leaf(const Tensor& t) { return t.detach().clone().requires_grad_(); }

// residual_add(x, make_branch(b)) against x + make_branch(b): value and the gradients of x and b, bit for bit,
// with h feeding two paths as in a block. `taken` says whether the sum must reuse the branch's memory.
void check_against_add(const Tensor& x0, const Tensor& b0, const std::function<Tensor(const Tensor&)>& make_branch,
                       bool taken) {
    std::vector<Tensor> sums, dxs, dbs;
    for (bool residual : {true, false}) {
        const Tensor x = leaf(x0), b = leaf(b0);
        Tensor branch = make_branch(b);
        const void* branch_memory = branch.raw_data();
        const Tensor h = residual ? F::residual_add(x, std::move(branch)) : x + branch;
        if (residual) CHECK_MESSAGE((h.raw_data() == branch_memory) == taken, "memory taken: " << !taken);
        REQUIRE(h.grad_fn() != nullptr);
        CHECK(h.grad_fn()->name() == std::string("add"));
        sum(square(h) + exp(h * 0.5)).backward();
        sums.push_back(h.detach());
        dxs.push_back(x.grad());
        dbs.push_back(b.grad());
    }
    CHECK(same_bits(sums[0], sums[1]));
    CHECK(same_bits(dxs[0], dxs[1]));
    CHECK(same_bits(dbs[0], dbs[1]));
}

// The GPT's loss with x + branch for the residual connections (the block before residual_add).
Tensor gpt_loss_with_add(nn::GPT& m, const Tensor& idx, const Tensor& targets) {
    Tensor x = m.wte->forward(idx) + m.wpe->weight.narrow(0, 0, idx.size(1));
    for (const auto& block : m.blocks) {
        const Tensor h = x + block->attn->forward(block->ln1->forward(x));
        x = h + block->mlp->forward(block->ln2->forward(h));
    }
    const Tensor logits = F::linear(m.ln_f->forward(x), m.wte->weight);
    return F::cross_entropy(logits.view({-1, m.config.vocab_size}), targets.reshape({-1}));
}

}  // namespace

TEST_SUITE("residual_add") {
    TEST_CASE("the branch's memory taken: the same values, node and gradients as x + branch, odd sizes") {
        for (const Shape& shape : {Shape{1}, Shape{7}, Shape{2, 5, 7}, Shape{33, 131}, Shape{3, 64, 48}}) {
            CAPTURE(to_string(shape));
            const Tensor x0 = uniform_tensor(shape, kFloat32, 1), b0 = uniform_tensor(shape, kFloat32, 2);
            check_against_add(x0, b0, [](const Tensor& b) { return b * 1.5; }, /*taken=*/true);  // mul saves b, not its output
            check_against_add(x0.to(kFloat64), b0.to(kFloat64), [](const Tensor& b) { return b * 1.5; }, true);
        }
    }

    TEST_CASE("the branch's memory not taken: saved for a backward rule, a view, broadcast, mixed dtypes") {
        const Tensor x0 = uniform_tensor({4, 6}, kFloat32, 3), b0 = uniform_tensor({4, 6}, kFloat32, 4);
        // exp saves its output for its backward rule: overwriting it would corrupt exp's gradient.
        check_against_add(x0, b0, [](const Tensor& b) { return exp(b); }, false);
        // A transposed view, a slice (not the whole storage).
        check_against_add(x0, b0.t().contiguous(), [](const Tensor& b) { return (b * 2.0).t(); }, false);
        check_against_add(x0.narrow(1, 0, 3), b0, [](const Tensor& b) { return (b * 2.0).narrow(1, 1, 3); }, false);
        // Broadcasting (branch [6] over x [4, 6]) and mixed dtypes.
        check_against_add(x0, uniform_tensor({6}, kFloat32, 5), [](const Tensor& b) { return b * 2.0; }, false);
        check_against_add(x0, b0.to(kFloat64), [](const Tensor& b) { return b * 2.0; }, false);
    }

    TEST_CASE("a tensor the caller keeps, or a leaf that requires grad, is never overwritten") {
        const Tensor x = uniform_tensor({5, 8}, kFloat32, 6);
        const Tensor kept = uniform_tensor({5, 8}, kFloat32, 7) * 3.0;  // an lvalue: copied into the parameter
        const Tensor before = kept.clone();
        const Tensor h = F::residual_add(x, kept);
        CHECK(same_bits(kept, before));
        CHECK(h.raw_data() != kept.raw_data());
        CHECK(same_bits(h, x + kept));
        Tensor parameter = uniform_tensor({5, 8}, kFloat32, 8).requires_grad_();
        const Tensor values = parameter.detach().clone();
        const void* memory = parameter.raw_data();
        const Tensor h2 = F::residual_add(x, std::move(parameter));
        CHECK(h2.raw_data() != memory);
        CHECK(same_bits(h2, x + values));
    }

    TEST_CASE("no grad mode: the memory is taken and the sum has no node") {
        NoGradGuard no_grad;
        const Tensor x = uniform_tensor({3, 9}, kFloat32, 9), b = uniform_tensor({3, 9}, kFloat32, 10);
        Tensor branch = b * 2.0;
        const void* memory = branch.raw_data();
        const Tensor h = F::residual_add(x, std::move(branch));
        CHECK(h.raw_data() == memory);
        CHECK(h.grad_fn() == nullptr);
        CHECK(same_bits(h, x + b * 2.0));
    }

    TEST_CASE("the same bits on 1 to 4 threads") {
        const Tensor x = uniform_tensor({300, 133}, kFloat32, 11), b = uniform_tensor({300, 133}, kFloat32, 12);
        std::vector<Tensor> sums;
        for (int threads : {1, 2, 3, 4}) {
            tbb::global_control allow(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
            tbb::task_arena arena(threads);
            arena.execute([&] { sums.push_back(F::residual_add(x, b * 2.0)); });
        }
        for (int i = 1; i < 4; ++i) CHECK_MESSAGE(same_bits(sums[static_cast<std::size_t>(i)], sums[0]), (i + 1) << " threads");
        CHECK(same_bits(sums[0], x + b * 2.0));
    }

    TEST_CASE("float64 gradcheck through the in-place path") {
        auto f = [](const std::vector<Tensor>& in) {
            const Tensor h = F::residual_add(in[0], in[1] * 1.5);  // taken: mul's output is held by no one else
            return sum(square(h) + exp(h * 0.5));
        };
        const auto r = autograd::gradcheck(f, {uniform_tensor({2, 3, 7}, kFloat64, 13).requires_grad_(),
                                               uniform_tensor({2, 3, 7}, kFloat64, 14).requires_grad_()});
        CHECK_MESSAGE(r.ok, r.message);
    }

    TEST_CASE("errors name the op and the shapes") {
        const Tensor x = uniform_tensor({2, 5, 7}, kFloat32, 15);
        tg::testing::check_throws<ShapeError>([&] { F::residual_add(x, uniform_tensor({2, 4, 7}, kFloat32, 16)); },
                                              {"add", "[2, 5, 7]", "[2, 4, 7]"});
        tg::testing::check_throws<ValueError>([&] { F::residual_add(x, Tensor()); }, {"residual_add"});
    }

    TEST_CASE("a GPT trained 4 AdamW steps with residual_add and with x + branch: equal losses and parameters") {
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
            nn::GPT model(gc);
            manual_seed(7);
            nn::GPT reference(gc);
            optim::AdamW opt(model.parameters(), 1e-2), opt_reference(reference.parameters(), 1e-2);
            for (int step = 0; step < 4; ++step) {
                const Tensor idx = randint(0, 37, {3, 11}), targets = randint(0, 37, {3, 11});
                opt.zero_grad();
                opt_reference.zero_grad();
                const Tensor a = model.loss(idx, targets), b = gpt_loss_with_add(reference, idx, targets);
                CHECK_MESSAGE(same_bits(a, b), "step " << step << " on " << threads << " threads");
                a.backward();
                b.backward();
                opt.step();
                opt_reference.step();
            }
            const auto p = model.named_parameters(), q = reference.named_parameters();
            REQUIRE(p.size() == q.size());
            for (std::size_t i = 0; i < p.size(); ++i) {
                CHECK_MESSAGE(same_bits(p[i].second, q[i].second), p[i].first << " on " << threads << " threads");
            }
        }
        set_num_threads(threads_before);
    }

    TEST_CASE("a ViT-style block stack (non-causal, erf GELU): outputs and gradients as with x + branch") {
        nn::TransformerBlockConfig config;
        config.attention.embed_dim = 16;
        config.attention.num_heads = 2;
        config.attention.causal = false;
        config.mlp_hidden = 32;
        config.gelu = GeluApproximation::None;
        manual_seed(11);
        std::vector<std::shared_ptr<nn::TransformerBlock>> blocks;
        for (int i = 0; i < 2; ++i) blocks.push_back(std::make_shared<nn::TransformerBlock>(config));
        const Tensor x0 = uniform_tensor({3, 5, 16}, kFloat32, 17);
        std::vector<Tensor> outs, dxs;
        std::vector<std::vector<Tensor>> parameter_grads;
        for (bool residual : {true, false}) {
            for (const auto& block : blocks) block->zero_grad();
            const Tensor x = leaf(x0);
            Tensor h = x;
            for (const auto& block : blocks) {
                if (residual) {
                    h = block->forward(h);
                } else {
                    const Tensor mid = h + block->attn->forward(block->ln1->forward(h));
                    h = mid + block->mlp->forward(block->ln2->forward(mid));
                }
            }
            sum(square(h)).backward();
            outs.push_back(h.detach());
            dxs.push_back(x.grad());
            parameter_grads.emplace_back();
            for (const auto& block : blocks) {
                for (const auto& [name, p] : block->named_parameters()) parameter_grads.back().push_back(p.grad());
            }
        }
        CHECK(same_bits(outs[0], outs[1]));
        CHECK(same_bits(dxs[0], dxs[1]));
        // In the block both sums take their branch's memory (the output of attn's and mlp's last Linear): two
        // storages fewer than with x + branch.
        const Tensor x = leaf(x0);
        const std::int64_t before = memory_stats().allocations;
        const Tensor with_residual_add = blocks[0]->forward(x);
        const std::int64_t middle = memory_stats().allocations;
        const Tensor mid = x + blocks[0]->attn->forward(blocks[0]->ln1->forward(x));
        const Tensor with_add = mid + blocks[0]->mlp->forward(blocks[0]->ln2->forward(mid));
        CHECK(memory_stats().allocations - middle == (middle - before) + 2);
        REQUIRE(parameter_grads[0].size() == parameter_grads[1].size());
        for (std::size_t i = 0; i < parameter_grads[0].size(); ++i) {
            CHECK_MESSAGE(parameter_grads[0][i].defined(), "parameter " << i);
            CHECK_MESSAGE(same_bits(parameter_grads[0][i], parameter_grads[1][i]), "parameter " << i);
        }
    }
}

TEST_SUITE("gelu_backward_in_place") {
    // x.grad of sum(gelu(x) · c) is the kernel's backward of dy = c, bit for bit; the rule may write it over the
    // engine's gradient (mul's fresh c · 1), which allocates one storage fewer than writing a new one.
    TEST_CASE("dx over the incoming gradient: the kernel's bits, tanh and erf forms, float32 and float64") {
        for (GeluApproximation form : {GeluApproximation::Tanh, GeluApproximation::None}) {
            for (DType dtype : {kFloat32, kFloat64}) {
                const Tensor x = uniform_tensor({37, 29}, dtype, 20, -4.0, 4.0).requires_grad_();
                const Tensor c = uniform_tensor({37, 29}, dtype, 21);
                sum(gelu(x, form) * c).backward();
                Tensor expected = empty({37, 29}, dtype);
                const Tensor xd = x.detach();
                if (dtype == kFloat32) {
                    if (form == GeluApproximation::Tanh) {
                        kernels::gelu_tanh_backward(xd.data<float>(), c.data<float>(), expected.data<float>(), x.numel());
                    } else {
                        kernels::gelu_erf_backward(xd.data<float>(), c.data<float>(), expected.data<float>(), x.numel());
                    }
                } else if (form == GeluApproximation::Tanh) {
                    kernels::gelu_tanh_backward(xd.data<double>(), c.data<double>(), expected.data<double>(), x.numel());
                } else {
                    kernels::gelu_erf_backward(xd.data<double>(), c.data<double>(), expected.data<double>(), x.numel());
                }
                CHECK(same_bits(x.grad(), expected));
            }
        }
    }

    TEST_CASE("the incoming gradient is overwritten only when nothing else sees it") {
        const Tensor c = uniform_tensor({16, 24}, kFloat32, 22);
        for (bool keep : {false, true}) {
            // An identity after the GELU whose backward hands on a new gradient c (and, with keep, holds a second
            // handle on it, so the GELU's rule must not overwrite it).
            Tensor kept;
            const void* handed = nullptr;
            const Tensor x = uniform_tensor({16, 24}, kFloat32, 23).requires_grad_();
            Tensor y = gelu(x, GeluApproximation::Tanh).detach();
            autograd::record("probe", y, {gelu(x, GeluApproximation::Tanh)}, [&](const Tensor&) {
                Tensor g = c.clone();
                handed = g.raw_data();
                if (keep) kept = g;
                return autograd::Grads{g};
            });
            sum(y).backward();
            Tensor expected = empty({16, 24}, kFloat32);
            kernels::gelu_tanh_backward(x.detach().data<float>(), c.data<float>(), expected.data<float>(), x.numel());
            CHECK(same_bits(x.grad(), expected));
            CHECK_MESSAGE((x.grad().raw_data() == handed) == !keep, "keep " << keep);  // dx in g's memory
            if (keep) CHECK(same_bits(kept, c));  // the kept gradient is unchanged
        }
    }

    TEST_CASE("float64 gradcheck through the overwriting path") {
        auto f = [](const std::vector<Tensor>& in) {
            return sum(gelu(in[0], GeluApproximation::Tanh) * in[1]) + sum(gelu(in[0] * 0.7) * in[1]);
        };
        const auto r = autograd::gradcheck(f, {uniform_tensor({3, 7}, kFloat64, 27, -3.0, 3.0).requires_grad_(),
                                               uniform_tensor({3, 7}, kFloat64, 28).requires_grad_()});
        CHECK_MESSAGE(r.ok, r.message);
    }
}
