// Joining, splitting, indexing and masks: cat, stack, split, chunk, index_select, embedding, gather,
// scatter_add, tril, triu, masked_fill. Each against a plain loop on odd sizes and non-contiguous inputs, a
// gradcheck, and every error message.

#include "autograd/gradcheck.h"
#include "core/ops.h"
#include "core/tensor.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using namespace tg;

namespace {

Tensor test_values(const Shape& shape, DType dtype, std::uint64_t seed) {
    std::uint64_t state = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    std::vector<double> v(static_cast<std::size_t>(numel(shape)));
    for (double& x : v) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        x = static_cast<double>(state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
    }
    return from_vector(v, shape).to(dtype);
}

Tensor leaf(const Shape& shape, std::uint64_t seed) { return test_values(shape, kFloat64, seed).requires_grad_(); }

Tensor ints(const std::vector<std::int64_t>& v, const Shape& shape, DType dtype = kInt64) {
    return from_vector(v, shape).to(dtype);
}

// Row-major multi-index <-> flat index, for the reference loops.
std::vector<std::int64_t> unravel(std::int64_t flat, const Shape& shape) {
    std::vector<std::int64_t> c(shape.size());
    for (std::size_t d = shape.size(); d-- > 0;) {
        c[d] = flat % shape[d];
        flat /= shape[d];
    }
    return c;
}
std::int64_t ravel(const std::vector<std::int64_t>& c, const Shape& shape) {
    std::int64_t flat = 0;
    for (std::size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + c[d];
    return flat;
}

void check_equal(const Tensor& got, const std::vector<double>& want, const Shape& shape) {
    REQUIRE(got.shape() == shape);
    const std::vector<double> g = got.to_vector<double>();
    REQUIRE(g.size() == want.size());
    double d = 0;
    for (std::size_t i = 0; i < g.size(); ++i) d = std::max(d, std::abs(g[i] - want[i]));
    CHECK(d == 0.0);
}

template <typename E, typename F>
void check_throws(F&& f, const std::string& part) {
    bool thrown = false;
    try {
        f();
    } catch (const E& e) {
        thrown = true;
        INFO("message: ", e.what());
        CHECK(std::string(e.what()).find(part) != std::string::npos);
    }
    INFO("expected an exception containing: ", part);
    CHECK(thrown);
}

void check_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs) {
    const auto result = autograd::gradcheck(f, inputs);
    INFO(result.message);
    CHECK(result.ok);
}

}  // namespace

TEST_SUITE("join") {

TEST_CASE("cat matches a reference along every dim, with non-contiguous inputs") {
    const Tensor a = test_values({3, 5, 7}, kFloat32, 1);
    const Tensor b_src = test_values({3, 7, 2}, kFloat32, 2);  // transposed to [3, 2, 7]
    for (std::int64_t dim : {0, 1, 2, -1}) {
        Shape bs = a.shape();
        const std::int64_t d = dim < 0 ? dim + 3 : dim;
        bs[d] = 2;
        const Tensor b = d == 1 ? b_src.transpose(1, 2) : test_values(bs, kFloat32, 3).slice(0, 0, bs[0]);
        const Tensor c = cat({a, b, a.narrow(d, 1, 1)}, dim);
        Shape cs = a.shape();
        cs[d] = a.size(d) + 2 + 1;
        std::vector<double> want(static_cast<std::size_t>(numel(cs)));
        const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
        for (std::int64_t f = 0; f < numel(cs); ++f) {
            std::vector<std::int64_t> idx = unravel(f, cs);
            if (idx[d] < a.size(d)) {
                want[f] = av[ravel(idx, a.shape())];
            } else if (idx[d] < a.size(d) + 2) {
                idx[d] -= a.size(d);
                want[f] = bv[ravel(idx, b.shape())];
            } else {
                idx[d] = 1;  // a.narrow(d, 1, 1)
                want[f] = av[ravel(idx, a.shape())];
            }
        }
        check_equal(c, want, cs);
    }
    CHECK(cat({ints({1, 2}, {2}), ints({3}, {1})}).to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 2, 3});
    CHECK(cat({zeros({2, 0}), ones({2, 3})}, 1).shape() == Shape{2, 3});
}

TEST_CASE("stack") {
    const Tensor a = test_values({2, 3}, kFloat64, 4), b = test_values({3, 2}, kFloat64, 5).t();
    const Tensor s0 = stack({a, b}), s2 = stack({a, b}, 2), sm1 = stack({a, b}, -1);
    CHECK(s0.shape() == Shape{2, 2, 3});
    CHECK(s2.shape() == Shape{2, 3, 2});
    CHECK(sm1.shape() == Shape{2, 3, 2});
    CHECK(stack({a, b}, 1).shape() == Shape{2, 2, 3});
    const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>(), v = s2.to_vector<double>();
    for (std::int64_t i = 0; i < 6; ++i) {
        CHECK(v[2 * i] == av[i]);
        CHECK(v[2 * i + 1] == bv[i]);
    }
    CHECK(stack({scalar_tensor(1.0), scalar_tensor(2.0)}).shape() == Shape{2});
}

TEST_CASE("split and chunk return views of the right sizes") {
    const Tensor x = test_values({7, 10}, kFloat32, 6);
    const auto pieces = split(x, 3);  // 3, 3, 1
    REQUIRE(pieces.size() == 3);
    CHECK(pieces[0].shape() == Shape{3, 10});
    CHECK(pieces[2].shape() == Shape{1, 10});
    for (const Tensor& p : pieces) CHECK(p.storage() == x.storage());
    CHECK(pieces[2].to_vector<float>() == x.narrow(0, 6, 1).to_vector<float>());

    const auto by_sizes = split(x, std::vector<std::int64_t>{2, 0, 8}, 1);
    REQUIRE(by_sizes.size() == 3);
    CHECK(by_sizes[1].shape() == Shape{7, 0});
    CHECK(by_sizes[2].to_vector<float>() == x.slice(1, 2, 10).to_vector<float>());

    std::vector<std::int64_t> chunk_sizes;
    for (const Tensor& c : chunk(x, 4, -1)) chunk_sizes.push_back(c.size(1));  // ceil(10 / 4) = 3
    CHECK(chunk_sizes == std::vector<std::int64_t>{3, 3, 3, 1});
    CHECK(chunk(x, 3, 0).size() == 3);               // 3, 3, 1
    CHECK(chunk(test_values({5}, kFloat32, 1), 4).size() == 3);  // like torch.chunk: 2, 2, 1
    CHECK(chunk(x, 20, 0).size() == 7);
    CHECK(split(zeros({0, 3}), 2).size() == 1);
    // A view of a view: split of a transposed tensor.
    const auto tp = split(x.t(), 4);
    CHECK(tp[1].to_vector<float>() == x.t().narrow(0, 4, 4).to_vector<float>());
}

TEST_CASE("gradcheck: cat, stack, split, chunk") {
    check_gradcheck([](const std::vector<Tensor>& in) { return cat({in[0], in[1], in[2]}, 1); },
                    {leaf({2, 3}, 1), leaf({2, 1}, 2), leaf({2, 4}, 3)});
    check_gradcheck([](const std::vector<Tensor>& in) { return cat({in[0].t(), in[1].expand({2, 3})}, 0); },
                    {leaf({3, 2}, 4), leaf({1, 3}, 5)});  // non-contiguous and broadcast inputs
    check_gradcheck([](const std::vector<Tensor>& in) { return cat({in[0], in[0] * 2.0}, -1); }, {leaf({2, 3}, 6)});
    check_gradcheck([](const std::vector<Tensor>& in) { return stack({in[0], in[1].t()}, 1); },
                    {leaf({2, 3}, 7), leaf({3, 2}, 8)});
    check_gradcheck(
        [](const std::vector<Tensor>& in) {
            const auto p = split(in[0], 2, 1);  // [3, 2], [3, 2], [3, 1]
            return cat({p[2] * 3.0, p[0] * p[1]}, 1);
        },
        {leaf({3, 5}, 9)});
    check_gradcheck(
        [](const std::vector<Tensor>& in) {
            const auto p = split(in[0].t(), std::vector<std::int64_t>{1, 3}, 0);
            return p[1] * 2.0 + p[0];
        },
        {leaf({3, 4}, 10)});
    check_gradcheck([](const std::vector<Tensor>& in) { return chunk(in[0], 2, -1)[1]; }, {leaf({2, 5}, 11)});
}

TEST_CASE("errors: cat, stack, split, chunk") {
    check_throws<ValueError>([] { cat({}); }, "cat: expected a non-empty list of tensors");
    check_throws<ValueError>([] { stack({}); }, "stack: expected a non-empty list of tensors");
    check_throws<DTypeError>([] { cat({zeros({2, 3}), zeros({2, 3}, kFloat64)}); },
                             "cat: all tensors must have the same dtype, but tensor 0 is float32 [2, 3] and tensor 1 "
                             "is float64 [2, 3]");
    check_throws<ShapeError>([] { cat({zeros({2, 3}), zeros({2, 4}), zeros({5, 3})}, 0); },
                             "cat: tensors must have the same shape except in dimension 0, got [2, 3], [2, 4], [5, 3]");
    check_throws<ShapeError>([] { cat({zeros({2, 3}), zeros({2, 3, 1})}, 0); }, "got [2, 3], [2, 3, 1]");
    check_throws<ShapeError>([] { cat({scalar_tensor(1.0)}); }, "cat: zero-dimensional tensors cannot be concatenated");
    check_throws<IndexError>([] { cat({zeros({2, 3})}, 2); }, "cat: dimension 2 is out of range");
    check_throws<ShapeError>([] { stack({zeros({2, 3}), zeros({3, 2})}); },
                             "stack: all tensors must have the same shape, got [2, 3], [3, 2]");
    check_throws<DTypeError>([] { stack({zeros({2}), zeros({2}, kInt32)}); }, "stack: all tensors must have the same dtype");
    check_throws<IndexError>([] { stack({zeros({2, 3})}, 3); }, "stack: dimension 3 is out of range");
    check_throws<ShapeError>([] { split(zeros({4, 6}), std::vector<std::int64_t>{2, 3}, 1); },
                             "split: sizes [2, 3] add up to 5 but dimension 1 of [4, 6] has size 6");
    check_throws<ValueError>([] { split(zeros({4, 6}), std::vector<std::int64_t>{7, -1}, 1); },
                             "split: sizes [7, -1] contain a negative size");
    check_throws<ValueError>([] { split(zeros({4, 6}), 0); },
                             "split: split_size must be positive, got 0 for dimension 0 of [4, 6]");
    check_throws<ShapeError>([] { split(scalar_tensor(1.0), 1); }, "split: cannot split a zero-dimensional tensor");
    check_throws<ValueError>([] { chunk(zeros({4, 6}), 0); }, "chunk: the number of chunks must be positive, got 0");
    check_throws<IndexError>([] { chunk(zeros({4, 6}), 2, 5); }, "chunk: dimension 5 is out of range");
}

}  // TEST_SUITE join

TEST_SUITE("index") {

TEST_CASE("index_select matches a reference, int32 and int64 indices, non-contiguous input") {
    const Tensor x = test_values({5, 7, 3}, kFloat32, 1).transpose(0, 2);  // [3, 7, 5], non-contiguous
    const std::vector<std::int64_t> picks{6, 0, 6, 2};
    for (DType index_dtype : {kInt32, kInt64}) {
        const Tensor out = index_select(x, 1, ints(picks, {4}, index_dtype));
        const std::vector<double> xv = x.to_vector<double>();
        std::vector<double> want;
        for (std::int64_t i = 0; i < 3; ++i)
            for (std::int64_t j : picks)
                for (std::int64_t k = 0; k < 5; ++k) want.push_back(xv[(i * 7 + j) * 5 + k]);
        check_equal(out, want, {3, 4, 5});
    }
    CHECK(index_select(x, -1, ints({4}, {1})).shape() == Shape{3, 7, 1});
    CHECK(index_select(x, 0, ints({}, {0})).shape() == Shape{0, 7, 5});
    CHECK(index_select(ints({10, 20, 30}, {3}), 0, ints({2, 0}, {2})).to_vector<std::int64_t>() ==
          std::vector<std::int64_t>{30, 10});
}

TEST_CASE("embedding matches a reference") {
    const Tensor weight = test_values({11, 5}, kFloat32, 2);
    const std::vector<std::int64_t> ids{3, 10, 0, 3, 7, 3};
    for (DType index_dtype : {kInt32, kInt64}) {
        const Tensor out = embedding(ints(ids, {2, 3}, index_dtype), weight);
        const std::vector<double> wv = weight.to_vector<double>();
        std::vector<double> want;
        for (std::int64_t id : ids)
            for (std::int64_t c = 0; c < 5; ++c) want.push_back(wv[id * 5 + c]);
        check_equal(out, want, {2, 3, 5});
    }
    CHECK(embedding(ints({4}, {}), weight).shape() == Shape{5});  // a 0-d id gives one row
    CHECK(embedding(ints({2, 1}, {2}), weight.t().t()).shape() == Shape{2, 5});
}

TEST_CASE("embedding and index_select backward sum repeated rows in a fixed order") {
    // Many repeats of few rows, large enough for the parallel path: the gradient equals the exact count times
    // the incoming value, and two runs agree bit for bit.
    const std::int64_t n = 20000, channels = 8;
    std::vector<std::int64_t> ids(n);
    for (std::int64_t i = 0; i < n; ++i) ids[i] = (i * 7) % 5;
    const Tensor id_tensor = ints(ids, {n});
    auto run = [&] {
        Tensor w = zeros({5, channels}).requires_grad_();
        embedding(id_tensor, w).backward(full({n, channels}, 0.5));
        return w.grad().to_vector<float>();
    };
    const std::vector<float> g1 = run(), g2 = run();
    CHECK(g1 == g2);
    for (float v : g1) CHECK(v == 0.5f * (n / 5));

    Tensor x = zeros({3, 5, channels}).requires_grad_();
    index_select(x, 1, id_tensor).backward(full({3, n, channels}, 0.25));
    for (float v : x.grad().to_vector<float>()) CHECK(v == 0.25f * (n / 5));
}

TEST_CASE("gather matches a reference") {
    const Tensor x = test_values({4, 6, 3}, kFloat64, 3);
    const Tensor xt = x.transpose(0, 1);  // [6, 4, 3], non-contiguous
    const Shape is{3, 4, 2};               // smaller than xt outside dim 0
    std::vector<std::int64_t> iv(static_cast<std::size_t>(numel(is)));
    for (std::size_t i = 0; i < iv.size(); ++i) iv[i] = static_cast<std::int64_t>((i * 5 + 1) % 6);
    for (DType index_dtype : {kInt32, kInt64}) {
        const Tensor out = gather(xt, 0, ints(iv, is, index_dtype));
        const std::vector<double> xv = xt.to_vector<double>();
        std::vector<double> want;
        for (std::int64_t f = 0; f < numel(is); ++f) {
            std::vector<std::int64_t> c = unravel(f, is);
            c[0] = iv[f];
            want.push_back(xv[ravel(c, xt.shape())]);
        }
        check_equal(out, want, is);
    }
    // Along the last dim, like picking the target logit in cross-entropy.
    const Tensor logits = test_values({3, 5}, kFloat32, 4);
    const Tensor picked = gather(logits, 1, ints({4, 0, 2}, {3, 1}));
    const std::vector<float> lv = logits.to_vector<float>();
    CHECK(picked.to_vector<float>() == std::vector<float>{lv[4], lv[5], lv[12]});
}

TEST_CASE("scatter_add matches a reference") {
    const Tensor x = test_values({3, 4}, kFloat64, 5);
    const Tensor src = test_values({2, 5}, kFloat64, 6).t();  // [5, 2], non-contiguous; the index covers [3, 2]
    // dim 1: out[i][index[i][j]] += src[i][j], repeated targets summed.
    const std::vector<std::int64_t> iv{0, 2, 2, 2, 1, 0};
    const Tensor out = scatter_add(x, 1, ints(iv, {3, 2}), src);
    std::vector<double> want = x.to_vector<double>();
    const std::vector<double> sv = src.to_vector<double>();
    for (std::int64_t i = 0; i < 3; ++i)
        for (std::int64_t j = 0; j < 2; ++j) want[i * 4 + iv[i * 2 + j]] += sv[i * 2 + j];
    check_equal(out, want, {3, 4});
    CHECK(x.to_vector<double>() == test_values({3, 4}, kFloat64, 5).to_vector<double>());  // x is not modified
    // dim 0, int32 indices.
    const Tensor sum_rows = scatter_add(zeros({2, 3}), 0, ints({1, 0, 1, 1, 1, 0}, {2, 3}, kInt32), ones({2, 3}));
    CHECK(sum_rows.to_vector<float>() == std::vector<float>{0, 1, 1, 2, 1, 1});
    const Tensor counts = scatter_add(zeros({4}), 0, ints({3, 3, 0, 3}, {4}), ones({4}));
    CHECK(counts.to_vector<float>() == std::vector<float>{1, 0, 0, 3});
}

TEST_CASE("gradcheck: index_select, embedding, gather, scatter_add") {
    const Tensor repeated = ints({2, 0, 2, 3}, {4});
    check_gradcheck([&](const std::vector<Tensor>& in) { return index_select(in[0], 1, repeated); },
                    {leaf({2, 4, 3}, 1)});
    check_gradcheck([&](const std::vector<Tensor>& in) { return index_select(in[0].transpose(0, 2), 0, repeated); },
                    {leaf({2, 3, 4}, 2)});  // non-contiguous
    check_gradcheck([&](const std::vector<Tensor>& in) { return index_select(in[0].expand({4, 3}), 0, repeated); },
                    {leaf({1, 3}, 3)});  // broadcast input
    check_gradcheck([](const std::vector<Tensor>& in) { return embedding(ints({1, 4, 1, 0, 1, 2}, {3, 2}), in[0]); },
                    {leaf({5, 3}, 4)});
    check_gradcheck([](const std::vector<Tensor>& in) { return embedding(ints({1, 1, 0}, {3}, kInt32), in[0].t()); },
                    {leaf({3, 2}, 5)});
    const Tensor gi = ints({1, 0, 2, 2, 0, 0, 1, 1}, {2, 4});
    check_gradcheck([&](const std::vector<Tensor>& in) { return gather(in[0], 0, gi); }, {leaf({3, 4}, 6)});
    check_gradcheck([&](const std::vector<Tensor>& in) { return gather(in[0].t(), 0, gi); }, {leaf({4, 3}, 7)});
    check_gradcheck([&](const std::vector<Tensor>& in) { return gather(in[0], 1, gi.slice(1, 0, 2)); },
                    {leaf({3, 4}, 8)});
    const Tensor si = ints({1, 0, 2, 2, 0, 0}, {2, 3});
    check_gradcheck([&](const std::vector<Tensor>& in) { return scatter_add(in[0], 0, si, in[1]); },
                    {leaf({3, 3}, 9), leaf({2, 3}, 10)});
    check_gradcheck([&](const std::vector<Tensor>& in) { return scatter_add(in[0], 1, si, in[1].t()); },
                    {leaf({2, 4}, 11), leaf({4, 3}, 12)});  // src larger than the index, non-contiguous
    const Tensor si2 = ints({1, 0, 1, 1, 0, 0}, {2, 3});
    check_gradcheck([&](const std::vector<Tensor>& in) { return scatter_add(in[0].expand({2, 3}), 0, si2, in[1]); },
                    {leaf({1, 3}, 13), leaf({2, 3}, 14)});  // broadcast input
}

TEST_CASE("errors: index_select, embedding, gather, scatter_add") {
    const Tensor x = zeros({5, 3});
    check_throws<IndexError>([&] { index_select(x, 0, ints({1, 5}, {2})); },
                             "index_select: index 5 is out of range for dimension 0 of size 5 (input [5, 3])");
    check_throws<IndexError>([&] { index_select(x, 1, ints({-1}, {1})); },
                             "index_select: index -1 is out of range for dimension 1 of size 3");
    check_throws<DTypeError>([&] { index_select(x, 0, zeros({2})); },
                             "index_select: index must be int32 or int64, got float32 [2]");
    check_throws<ShapeError>([&] { index_select(x, 0, ints({1, 2}, {1, 2})); },
                             "index_select: index must be 1-D, got [1, 2] for input [5, 3]");
    check_throws<IndexError>([&] { index_select(x, 2, ints({0}, {1})); }, "index_select: dimension 2 is out of range");
    check_throws<ShapeError>([] { index_select(scalar_tensor(1.0), 0, ints({0}, {1})); },
                             "index_select: the input must have at least one dimension");

    const Tensor w = zeros({10, 4});
    check_throws<IndexError>([&] { embedding(ints({3, 12}, {2}), w); },
                             "embedding: index 12 is out of range for a weight of 10 rows (weight [10, 4], ids [2])");
    check_throws<IndexError>([&] { embedding(ints({-2}, {1}, kInt32), w); }, "embedding: index -2 is out of range");
    check_throws<DTypeError>([&] { embedding(zeros({2}), w); }, "embedding: index must be int32 or int64, got float32 [2]");
    check_throws<ShapeError>([&] { embedding(ints({0}, {1}), zeros({10})); },
                             "embedding: weight must be 2-D [V, C], got [10] (ids [1])");

    check_throws<ShapeError>([&] { gather(x, 0, ints({0, 1}, {2})); },
                             "gather: index must have as many dimensions as the input (input [5, 3], index [2])");
    check_throws<ShapeError>([&] { gather(x, 0, ints({0, 0, 0, 0}, {1, 4})); },
                             "gather: index is larger than the input in dimension 1 (input [5, 3], index [1, 4])");
    check_throws<IndexError>([&] { gather(x, 1, ints({0, 3}, {2, 1})); },
                             "gather: index 3 is out of range for dimension 1 of size 3 (input [5, 3], index [2, 1])");
    check_throws<DTypeError>([&] { gather(x, 1, zeros({2, 1}, kFloat64)); }, "gather: index must be int32 or int64");

    check_throws<DTypeError>([&] { scatter_add(x, 0, ints({0}, {1, 1}), zeros({1, 1}, kFloat64)); },
                             "scatter_add: src must have the input's dtype, got input float32 [5, 3] and src float64 "
                             "[1, 1]");
    check_throws<ShapeError>([&] { scatter_add(x, 0, ints({0, 0}, {2, 1}), zeros({1, 1})); },
                             "scatter_add: index must be no larger than src in every dimension (input [5, 3], index "
                             "[2, 1], src [1, 1])");
    check_throws<ShapeError>([&] { scatter_add(x, 0, ints({0, 0, 0, 0}, {1, 4}), zeros({1, 4})); },
                             "scatter_add: index is larger than the input in dimension 1");
    check_throws<IndexError>([&] { scatter_add(x, 0, ints({7}, {1, 1}), zeros({1, 1})); },
                             "scatter_add: index 7 is out of range for dimension 0 of size 5 (input [5, 3], index "
                             "[1, 1], src [1, 1])");
}

}  // TEST_SUITE index

TEST_SUITE("mask") {

TEST_CASE("tril and triu match a reference over batch dims, any diagonal") {
    const Tensor x = test_values({2, 3, 5, 4}, kFloat32, 1).transpose(-1, -2);  // [2, 3, 4, 5], non-contiguous
    const std::vector<double> xv = x.to_vector<double>();
    for (std::int64_t k : {-5, -1, 0, 2, 6}) {
        std::vector<double> lower(xv.size()), upper(xv.size());
        for (std::size_t f = 0; f < xv.size(); ++f) {
            const std::int64_t i = (static_cast<std::int64_t>(f) / 5) % 4, j = static_cast<std::int64_t>(f) % 5;
            lower[f] = j - i <= k ? xv[f] : 0.0;
            upper[f] = j - i >= k ? xv[f] : 0.0;
        }
        check_equal(tril(x, k), lower, x.shape());
        check_equal(triu(x, k), upper, x.shape());
    }
    CHECK(tril(ones({3, 3}, kInt32)).to_vector<std::int32_t>() == std::vector<std::int32_t>{1, 0, 0, 1, 1, 0, 1, 1, 1});
    CHECK(triu(ones({2, 3}, kFloat64), 1).to_vector<double>() == std::vector<double>{0, 1, 1, 0, 0, 1});
    // Large enough for the parallel path.
    const Tensor big = ones({4, 130, 130});
    const std::vector<float> bv = tril(big).to_vector<float>();
    double total = 0;
    for (float v : bv) total += v;
    CHECK(total == 4.0 * 130 * 131 / 2);
}

TEST_CASE("masked_fill with broadcast masks of any dtype") {
    const Tensor x = test_values({3, 4}, kFloat32, 2).t();  // [4, 3], non-contiguous
    const std::vector<double> xv = x.to_vector<double>();
    const Tensor row_mask = from_vector(std::vector<double>{0, 1, 0}, {1, 3});
    const Tensor full_mask = ints({1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}, {4, 3}, kInt32);
    {
        std::vector<double> want = xv;
        for (std::int64_t i = 0; i < 4; ++i) want[i * 3 + 1] = -7.5;
        check_equal(masked_fill(x, row_mask, -7.5), want, {4, 3});
        check_equal(masked_fill(x, row_mask.view({3}), -7.5), want, {4, 3});
    }
    {
        std::vector<double> want = xv;
        const std::vector<std::int32_t> mv = full_mask.to_vector<std::int32_t>();
        for (std::size_t f = 0; f < want.size(); ++f)
            if (mv[f]) want[f] = 2.0;
        check_equal(masked_fill(x, full_mask, 2.0), want, {4, 3});
    }
    const Tensor inf_filled = masked_fill(zeros({2, 2}), tril(ones({2, 2}), -1), -INFINITY);
    CHECK(std::isinf(inf_filled.to_vector<float>()[2]));
    CHECK(masked_fill(ints({1, 2, 3}, {3}), ints({0, 1, 0}, {3}), 9).to_vector<std::int64_t>() ==
          std::vector<std::int64_t>{1, 9, 3});
    // A causal mask on [B, H, T, T] large enough for the parallel path.
    const Tensor causal = triu(ones({64, 64}), 1);
    const Tensor scores = masked_fill(zeros({2, 4, 64, 64}), causal, -1.0);
    double total = 0;
    for (float v : scores.to_vector<float>()) total += v;
    CHECK(total == -8.0 * 64 * 63 / 2);
}

TEST_CASE("gradcheck: tril, triu, masked_fill") {
    check_gradcheck([](const std::vector<Tensor>& in) { return tril(in[0]); }, {leaf({3, 4}, 1)});
    check_gradcheck([](const std::vector<Tensor>& in) { return triu(in[0].transpose(-1, -2), -1); },
                    {leaf({2, 4, 3}, 2)});
    check_gradcheck([](const std::vector<Tensor>& in) { return tril(in[0].expand({2, 3, 3}), 1); }, {leaf({3, 3}, 3)});
    const Tensor mask = from_vector(std::vector<double>{1, 0, 0, 1}, {2, 1, 2});
    check_gradcheck([&](const std::vector<Tensor>& in) { return masked_fill(in[0], mask, 3.0); },
                    {leaf({2, 3, 2}, 4)});
    check_gradcheck([&](const std::vector<Tensor>& in) { return masked_fill(in[0].transpose(0, 2), mask, -1.0); },
                    {leaf({2, 3, 2}, 5)});
    check_gradcheck([&](const std::vector<Tensor>& in) { return masked_fill(in[0].expand({2, 3, 2}), mask, 0.0); },
                    {leaf({3, 1}, 6)});
}

TEST_CASE("errors: tril, triu, masked_fill") {
    check_throws<ShapeError>([] { tril(zeros({5})); }, "tril: expected a tensor with at least 2 dimensions, got float32 [5]");
    check_throws<ShapeError>([] { triu(scalar_tensor(1.0)); }, "triu: expected a tensor with at least 2 dimensions");
    check_throws<ShapeError>([] { masked_fill(zeros({2, 3}), zeros({2, 5}), 1.0); },
                             "masked_fill: the mask [2, 5] cannot be broadcast to the input's shape [2, 3]");
    check_throws<ShapeError>([] { masked_fill(zeros({3}), zeros({2, 3}), 1.0); },
                             "masked_fill: the mask [2, 3] cannot be broadcast to the input's shape [3]");
    check_throws<ValueError>([] { masked_fill(zeros({3}, kInt32), zeros({3}), INFINITY); },
                             "masked_fill: the value inf does not fit the input int32 [3]");
    check_throws<ValueError>([] { masked_fill(zeros({3}, kInt32), zeros({3}), 3e9); }, "does not fit the input int32 [3]");
}

}  // TEST_SUITE mask
