// q, k, v gradients written side by side (nn/attention_detail.h: gradients_side_by_side) and pieces the engine
// finds already in place (core/gradient_sum.h). Checked: the engine takes such a buffer without copying only
// when nothing else sees it and every piece sits at its own place; exact attention on views of one fused
// (B, T, 3C) tensor returns dq, dk, dv in one buffer at q, k, v's places (and separate buffers otherwise); and
// the fused tensor's gradient is the same bit for bit as with pieces off and as with q, k, v as separate
// tensors, for head widths 16/32/64/128 and odd sizes, causal or not, on 1 and 2 threads.

#include "core/gradient_sum.h"
#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/threading.h"
#include "nn/attention.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

namespace {

using namespace tg;
namespace F = tg::nn::functional;
using autograd::Gradient;
using autograd::GradientSum;
using tg::testing::same_bits;

// q, k, v (B, H, T, D) as MultiHeadAttention::project makes them: views of one (B, T, 3C) tensor.
std::vector<Tensor> heads_of(const Tensor& fused, std::int64_t H) {
    const std::int64_t B = fused.size(0), T = fused.size(1), C = fused.size(2) / 3;
    std::vector<Tensor> out;
    for (std::int64_t i = 0; i < 3; ++i) out.push_back(fused.narrow(2, i * C, C).view({B, T, H, C / H}).permute({0, 2, 1, 3}));
    return out;
}

}  // namespace

TEST_SUITE("qkv gradient buffer") {
    TEST_CASE("pieces already in one buffer at their places: taken without a copy, only when nothing else sees it") {
        const Shape shape{2, 3, 12};
        const Tensor values = tg::testing::uniform_tensor(shape, kFloat32, 1);
        for (int variant : {0, 1, 2}) {
            CAPTURE(variant);
            Tensor buffer = values.clone();
            const void* where = buffer.raw_data();
            GradientSum sum;
            for (std::int64_t i = 0; i < 3; ++i) {
                // variant 2 names the blocks in the wrong places: block i's values sit at block (i + 1) % 3's place
                const std::int64_t at = variant == 2 ? (i + 1) % 3 : i;
                sum.add(Gradient::slice(buffer.narrow(2, at * 4, 4), 2, i * 4), shape, kFloat32);
            }
            Tensor expected = values.clone();
            if (variant == 2) expected = cat({values.narrow(2, 4, 8), values.narrow(2, 0, 4)}, 2);
            const Tensor keep = variant == 1 ? buffer : Tensor();  // variant 1: someone else still holds it
            buffer = Tensor();
            const Tensor got = sum.take();
            CHECK(same_bits(got, expected));
            CHECK((got.raw_data() == where) == (variant == 0));
        }
    }

    TEST_CASE("exact attention on views of one fused tensor: dq, dk, dv in one buffer, at q, k, v's places") {
        const Tensor fused = tg::testing::uniform_tensor({2, 5, 3 * 8}, kFloat32, 2).requires_grad_();
        const std::vector<Tensor> h = heads_of(fused, 2);
        const Tensor out = F::scaled_dot_product_attention(h[0], h[1], h[2]);
        const Tensor dout = tg::testing::uniform_tensor(out.shape(), kFloat32, 3);
        // The same attention on separate q, k, v (copies): separate gradient buffers, as before.
        Tensor q = h[0].detach().contiguous(), k = h[1].detach().contiguous(), v = h[2].detach().contiguous();
        const Tensor out2 = F::scaled_dot_product_attention(q.requires_grad_(), k.requires_grad_(), v.requires_grad_());

        NoGradGuard no_grad;
        const autograd::Grads g = out.grad_fn()->apply(dout);
        REQUIRE(g.size() == 3);
        for (std::size_t i = 0; i < 3; ++i) {
            CHECK(g[i].values().storage() == g[0].values().storage());
            CHECK(g[i].values().offset() == h[i].offset());
            CHECK(g[i].values().strides() == h[i].strides());
        }
        CHECK(g[0].values().storage()->nbytes() == static_cast<std::size_t>(fused.numel()) * sizeof(float));
        const autograd::Grads g2 = out2.grad_fn()->apply(dout);
        CHECK(g2[0].values().storage() != g2[1].values().storage());
        for (std::size_t i = 0; i < 3; ++i) CHECK(same_bits(g2[i].values(), g[i].values()));
    }

    TEST_CASE("the fused tensor's gradient: same bits as pieces off and as separate q, k, v; widths 16-128") {
        const int threads_before = get_num_threads();
        for (int threads : {1, 2}) {
            set_num_threads(threads);
            for (auto [T, H, D] : std::vector<std::array<std::int64_t, 3>>{{7, 3, 16}, {33, 2, 32}, {20, 1, 64},
                                                                           {9, 2, 128}, {5, 3, 5}}) {
                for (bool causal : {false, true}) {
                    CAPTURE(threads);
                    CAPTURE(T);
                    CAPTURE(D);
                    CAPTURE(causal);
                    F::AttentionOptions options;
                    options.causal = causal;
                    const std::int64_t C = H * D;
                    const Tensor x0 = tg::testing::uniform_tensor({2, T, 3 * C}, kFloat32, static_cast<unsigned>(T * D));
                    const Tensor w = tg::testing::uniform_tensor({2, H, T, D}, kFloat32, 9);
                    std::vector<Tensor> grads;
                    for (bool pieces : {true, false}) {
                        autograd::set_gradient_pieces(pieces);
                        const Tensor x = x0.clone().requires_grad_();
                        const std::vector<Tensor> h = heads_of(x, H);
                        sum(F::scaled_dot_product_attention(h[0], h[1], h[2], options) * w).backward();
                        grads.push_back(x.grad());
                    }
                    autograd::set_gradient_pieces(true);
                    CHECK(same_bits(grads[0], grads[1]));
                    // q, k, v as three separate tensors (no shared buffer), their gradients side by side.
                    std::vector<Tensor> parts;
                    for (const Tensor& view : heads_of(x0, H)) parts.push_back(view.contiguous().requires_grad_());
                    sum(F::scaled_dot_product_attention(parts[0], parts[1], parts[2], options) * w).backward();
                    std::vector<Tensor> merged;
                    for (const Tensor& p : parts) merged.push_back(p.grad().permute({0, 2, 1, 3}).reshape({2, T, C}));
                    CHECK(same_bits(grads[0], cat(merged, 2)));
                }
            }
        }
        set_num_threads(threads_before);
    }
}
