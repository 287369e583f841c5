// Gradient pieces (core/gradient.h, core/gradient_sum.h): slice, narrow, select and embedding hand the engine a
// gradient that covers part of their input; the engine places it without writing the zeros. Every case is
// checked against the values the rule implies, and bit for bit against the same backward pass with pieces
// turned off (each piece written out as its dense form and summed, as before pieces existed).

#include "core/gradient_sum.h"
#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/threading.h"
#include "nn/models/gpt.h"
#include "nn/models/vit.h"
#include "test_models.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

namespace {

using namespace tg;
using tg::testing::uniform_tensor;
using tg::testing::same_bits;

// Turns gradient pieces off for one scope.
struct PiecesOff {
    PiecesOff() { autograd::set_gradient_pieces(false); }
    ~PiecesOff() { autograd::set_gradient_pieces(true); }
};

// Runs `loss_of(leaves)` forward and backward twice — pieces on, then off — from the same leaf values, and
// returns both sets of leaf gradients.
struct Both {
    std::vector<Tensor> on, off;
};
Both grads_both_ways(const std::vector<Tensor>& values, const std::function<Tensor(const std::vector<Tensor>&)>& loss_of) {
    Both out;
    for (bool pieces : {true, false}) {
        autograd::set_gradient_pieces(pieces);
        std::vector<Tensor> leaves;
        for (const Tensor& v : values) leaves.push_back(v.clone().requires_grad_());
        loss_of(leaves).backward();
        for (const Tensor& l : leaves) (pieces ? out.on : out.off).push_back(l.grad());
    }
    autograd::set_gradient_pieces(true);
    return out;
}

void check_same(const Both& both) {
    REQUIRE(both.on.size() == both.off.size());
    for (std::size_t i = 0; i < both.on.size(); ++i) CHECK_MESSAGE(same_bits(both.on[i], both.off[i]), "leaf " << i);
}

// Leaves the storage cache (core/storage.cpp) holding freed buffers of `shape` full of NaN, more than the
// backward pass allocates: a materialised gradient that forgot to zero a gap would then show NaN there.
void poison_cache(const Shape& shape, DType dtype) {
    std::vector<Tensor> junk;
    for (int i = 0; i < 16; ++i) junk.push_back(full(shape, std::numeric_limits<double>::quiet_NaN(), dtype));
}

}  // namespace

TEST_SUITE("gradient pieces") {
    TEST_CASE("blocks that tile the input exactly: q, k, v from the row blocks of one weight") {
        const Tensor w0 = uniform_tensor({6, 4}, kFloat32, 1);
        const Tensor x = uniform_tensor({5, 4}, kFloat32, 2);
        auto loss = [&](const std::vector<Tensor>& l) {
            const Tensor q = matmul(x, l[0].narrow(0, 0, 2).t());
            const Tensor k = matmul(x, l[0].narrow(0, 2, 2).t());
            const Tensor v = matmul(x, l[0].narrow(0, 4, 2).t());
            return sum(q * k + v * v);
        };
        poison_cache({6, 4}, kFloat32);
        const Both both = grads_both_ways({w0}, loss);
        check_same(both);
        // The blocks against their own formulas: d/dWq Σ (x Wqᵀ)(x Wkᵀ) = (x Wkᵀ)ᵀ x, etc.
        const Tensor q = matmul(x, w0.narrow(0, 0, 2).t()), k = matmul(x, w0.narrow(0, 2, 2).t());
        const Tensor v = matmul(x, w0.narrow(0, 4, 2).t());
        const Tensor want = cat({matmul(k.t(), x), matmul(q.t(), x), matmul((v * 2.0).t(), x)}, 0);
        CHECK(max(abs(both.on[0] - want)).item<double>() < 1e-5);
    }

    TEST_CASE("blocks with gaps: only the gaps are zeroed") {
        const Tensor w0 = uniform_tensor({7, 3}, kFloat64, 3);
        auto loss = [](const std::vector<Tensor>& l) {
            return sum(l[0].narrow(0, 1, 2) * 3.0) + sum(square(l[0].narrow(0, 4, 1)));
        };
        poison_cache({7, 3}, kFloat64);
        const Both both = grads_both_ways({w0}, loss);
        check_same(both);
        const std::vector<double> g = both.on[0].to_vector<double>();
        const std::vector<double> w = w0.to_vector<double>();
        for (int r = 0; r < 7; ++r) {
            for (int c = 0; c < 3; ++c) {
                const double want = (r == 1 || r == 2) ? 3.0 : r == 4 ? 2.0 * w[r * 3 + c] : 0.0;
                CHECK(g[r * 3 + c] == want);
            }
        }
    }

    TEST_CASE("select, strided slices (even and odd columns) and a block in two dims") {
        const Tensor w0 = uniform_tensor({4, 6}, kFloat32, 4);
        auto loss = [](const std::vector<Tensor>& l) {
            const Tensor even = l[0].slice(1, 0, 6, 2), odd = l[0].slice(1, 1, 6, 2);  // disjoint by residue
            return sum(even * odd) + sum(l[0].select(0, 3) * 5.0) + sum(l[0].slice(0, 1, 3).slice(1, 2, 5));
        };
        poison_cache({4, 6}, kFloat32);
        const Both both = grads_both_ways({w0}, loss);
        check_same(both);
        // Composed by hand: even/odd swap, row 3 gets +5, rows 1..2 × cols 2..4 get +1.
        std::vector<float> want(24, 0.0f);
        const std::vector<float> w = w0.to_vector<float>();
        for (int r = 0; r < 4; ++r) {
            for (int c = 0; c < 6; ++c) {
                float g = w[r * 6 + (c % 2 == 0 ? c + 1 : c - 1)];
                if (r == 3) g += 5.0f;
                if (r >= 1 && r <= 2 && c >= 2 && c <= 4) g += 1.0f;
                want[r * 6 + c] = g;
            }
        }
        const std::vector<float> got = both.on[0].to_vector<float>();
        for (int i = 0; i < 24; ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-6));
    }

    TEST_CASE("overlapping pieces add up") {
        const Tensor w0 = uniform_tensor({6, 2}, kFloat64, 5);
        auto loss = [](const std::vector<Tensor>& l) {
            return sum(l[0].slice(0, 0, 4) * 2.0) + sum(l[0].slice(0, 2, 6) * 3.0) + sum(l[0].select(0, 3));
        };
        poison_cache({6, 2}, kFloat64);
        const Both both = grads_both_ways({w0}, loss);
        check_same(both);
        CHECK(both.on[0].to_vector<double>() == std::vector<double>{2, 2, 2, 2, 5, 5, 6, 6, 3, 3, 3, 3});
    }

    TEST_CASE("pieces and a dense gradient for one input, in either order") {
        const Tensor w0 = uniform_tensor({5, 3}, kFloat32, 6);
        // The dense path (w * w) runs backward before or after the slices, depending on where it enters the sum.
        auto dense_last = [](const std::vector<Tensor>& l) {
            return sum(l[0].slice(0, 0, 2) * 7.0) + sum(sin(l[0].slice(0, 2, 5))) + sum(l[0] * l[0]);
        };
        auto dense_first = [](const std::vector<Tensor>& l) {
            return sum(l[0] * l[0]) + sum(l[0].slice(0, 0, 3) * 7.0) + sum(sin(l[0].slice(0, 1, 5)));
        };
        for (const auto& loss : {std::function<Tensor(const std::vector<Tensor>&)>(dense_last),
                                 std::function<Tensor(const std::vector<Tensor>&)>(dense_first)}) {
            poison_cache({5, 3}, kFloat32);
            const Both both = grads_both_ways({w0}, loss);
            check_same(both);
        }
        const Both both = grads_both_ways({w0}, dense_last);
        const std::vector<float> g = both.on[0].to_vector<float>(), w = w0.to_vector<float>();
        for (int i = 0; i < 15; ++i) {
            const float want = 2.0f * w[i] + (i < 6 ? 7.0f : std::cos(w[i]));
            CHECK(g[i] == doctest::Approx(want).epsilon(1e-6));
        }
    }

    TEST_CASE("pieces next to a broadcast gradient (sum_to) and through expand") {
        const Tensor b0 = uniform_tensor({1, 4}, kFloat64, 7);
        const Tensor y = uniform_tensor({3, 4}, kFloat64, 8);
        auto loss = [&](const std::vector<Tensor>& l) {
            const Tensor dense = sum((l[0] + y) * (l[0] + y));          // dense, summed back from [3, 4]
            const Tensor through = sum(l[0].expand({3, 4}).slice(0, 1, 3) * 2.0);  // a piece of the expand
            const Tensor direct = sum(l[0].slice(1, 1, 3) * 10.0);     // a piece of b itself
            return dense + through + direct;
        };
        const Both both = grads_both_ways({b0}, loss);
        check_same(both);
        const std::vector<double> g = both.on[0].to_vector<double>(), b = b0.to_vector<double>(), yy = y.to_vector<double>();
        for (int c = 0; c < 4; ++c) {
            double want = 4.0 + ((c == 1 || c == 2) ? 10.0 : 0.0);
            for (int r = 0; r < 3; ++r) want += 2.0 * (b[c] + yy[r * 4 + c]);
            CHECK(g[c] == doctest::Approx(want).epsilon(1e-12));
        }
    }

    TEST_CASE("embedding rows into a tied weight's dense gradient, repeated ids") {
        const Tensor w0 = uniform_tensor({11, 4}, kFloat32, 9);
        const Tensor ids = from_vector<std::int64_t>({3, 7, 3, 0, 3, 10, 7}).view({1, 7});
        auto tied = [&](const std::vector<Tensor>& l) {  // embedding, then the LM head on the same table
            const Tensor h = tanh(embedding(ids, l[0]));   // (1, 7, 4)
            const Tensor logits = matmul(h, l[0].t());       // (1, 7, 11)
            return sum(logits * logits) * 0.01;
        };
        const Both both = grads_both_ways({w0}, tied);
        check_same(both);
        // The embedding alone: the table written in one pass, zeros where no id points.
        poison_cache({11, 4}, kFloat32);
        const Both alone = grads_both_ways({w0}, [&](const std::vector<Tensor>& l) { return sum(embedding(ids, l[0]) * 2.0); });
        check_same(alone);
        const std::vector<float> g = alone.on[0].to_vector<float>();
        const std::vector<float> count = {1, 0, 0, 3, 0, 0, 0, 2, 0, 0, 1};
        for (int v = 0; v < 11; ++v)
            for (int c = 0; c < 4; ++c) CHECK(g[v * 4 + c] == 2.0f * count[v]);
        // Two embeddings of one table: two rows pieces overlap, so they are summed in arrival order.
        const Tensor reversed = from_vector<std::int64_t>({7, 10, 3, 0, 3, 7, 3}).view({1, 7});
        const Both twice = grads_both_ways({w0}, [&](const std::vector<Tensor>& l) {
            return sum(embedding(ids, l[0]) * 2.0) + sum(square(embedding(reversed, l[0])));
        });
        check_same(twice);
    }

    TEST_CASE("retain_grad on a tensor that receives pieces, and leaves that already hold a gradient") {
        const Tensor w0 = uniform_tensor({4, 3}, kFloat32, 10);
        for (bool pieces : {true, false}) {
            autograd::set_gradient_pieces(pieces);
            const Tensor w = w0.clone().requires_grad_();
            const Tensor z = w * 2.0;
            z.retain_grad();
            const Tensor loss = sum(z.narrow(0, 0, 2) * 3.0) + sum(z.narrow(0, 3, 1));
            loss.backward(Tensor(), /*retain_graph=*/true);
            loss.backward();  // accumulates into w.grad and z.grad
            CHECK(z.grad().to_vector<float>() == std::vector<float>{6, 6, 6, 6, 6, 6, 0, 0, 0, 2, 2, 2});
            CHECK(w.grad().to_vector<float>() == std::vector<float>{12, 12, 12, 12, 12, 12, 0, 0, 0, 4, 4, 4});
        }
        autograd::set_gradient_pieces(true);
    }

    TEST_CASE("a piece that does not fit its input is refused, naming the op") {
        const Tensor x = uniform_tensor({3, 2}, kFloat32, 11).requires_grad_();
        Tensor out = x.detach().clone();
        autograd::record("bad_piece", out, {x}, [](const Tensor& dout) {
            return autograd::Grads{autograd::Gradient::slice(dout, 0, 2)};  // 3 rows from row 2 of 3
        });
        tg::testing::check_throws<ShapeError>([&] { sum(out).backward(); }, {"bad_piece", "input 0", "[3, 2]"});
        Tensor rows = x.detach().clone();
        autograd::record("bad_rows", rows, {x}, [](const Tensor& dout) {
            return autograd::Grads{autograd::Gradient::rows(dout, {0, 5, 1})};
        });
        tg::testing::check_throws<IndexError>([&] { sum(rows).backward(); }, {"bad_rows", "row 5"});
        // Called directly (no check_fits before it), add_to refuses the row as well instead of writing past the table.
        Tensor table = zeros({3, 2}, kFloat32);
        const autograd::Gradient piece = autograd::Gradient::rows(uniform_tensor({3, 2}, kFloat32, 12), {0, 5, 1});
        tg::testing::check_throws<IndexError>([&] { piece.add_to(table); }, {"row 5", "table of 3 rows"});
        CHECK(table.to_vector<float>() == std::vector<float>(6, 0.0f));  // nothing written
    }

    TEST_CASE("GPT and ViT gradients: the same bits with pieces as without, on 1 and 2 threads") {
        tg::testing::check_same_gradients_either_way(autograd::set_gradient_pieces);
    }

    TEST_CASE("add_ into its own memory: broadcast, views, and an operand sharing the storage") {
        Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}).view({2, 3});
        a.add_(from_vector<float>({10, 20, 30}));  // broadcast row
        CHECK(a.to_vector<float>() == std::vector<float>{11, 22, 33, 14, 25, 36});
        a.narrow(1, 1, 2).add_(full({2, 2}, 1.0, kFloat32));  // a strided view of a
        CHECK(a.to_vector<float>() == std::vector<float>{11, 23, 34, 14, 26, 37});
        Tensor s = from_vector<float>({1, 2, 3, 4}).view({2, 2});
        s.add_(s.t());  // reads s while writing it: must see the old values
        CHECK(s.to_vector<float>() == std::vector<float>{2, 5, 5, 8});
    }
}
