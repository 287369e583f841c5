// The distributed layer (distributed/): the Communicator's allreduce (odd sizes, float32 and float64, ring and
// MPI's own), broadcast, barrier and argument errors, and the gradient bucketer (averaged gradients equal to
// a per-tensor allreduce, bitwise the same with and without overlap, parameters without a gradient).
//
// The same binary runs as one process (no MPI started) and under `mpirun -np 1` and `mpirun -np 2` (meson
// suite 'mpi'); every expectation is written for any number of ranks.

#include "distributed/communicator.h"
#include "distributed/gradient_bucketer.h"
#include "nn/linear.h"

#include <tapegrad/tapegrad.h>

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

using namespace tg;
using tg::distributed::Communicator;
using tg::distributed::ReduceAlgorithm;

namespace {

Communicator& world() { return Communicator::world(); }

// Rank r's values: small integers, so sums over ranks are exact in float32 and the expected result is known.
template <typename T>
Tensor integer_ramp(std::int64_t n, int rank) {
    std::vector<T> v(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<T>((i % 97) * (rank + 1) - 40);
    return from_vector(v);
}

// Every rank holds bitwise the same tensor as rank 0.
bool same_on_every_rank(const Tensor& t) {
    Tensor root = t.clone();
    world().broadcast(root, 0);
    const bool equal = (root.to_vector<double>() == t.to_vector<double>());
    return world().allreduce_max(equal ? 0.0 : 1.0) == 0.0;
}

}  // namespace

TEST_CASE("allreduce sums float32 over the ranks exactly for odd sizes, ring and MPI's own") {
    const int n = world().size();
    // 0..N-1 elements per chunk happen with sizes below the rank count; 100003 is prime.
    for (const std::int64_t size : {std::int64_t{1}, std::int64_t{3}, std::int64_t{7}, std::int64_t{1001}, std::int64_t{100003}}) {
        for (const auto algorithm : {ReduceAlgorithm::Ring, ReduceAlgorithm::Library}) {
            CAPTURE(size);
            Tensor t = integer_ramp<float>(size, world().rank());
            world().allreduce_sum(t, algorithm);
            const std::vector<float> got = t.to_vector<float>();
            bool exact = true;
            for (std::int64_t i = 0; i < size; ++i) {
                // sum over r of (i % 97)(r + 1) - 40 = (i % 97) N (N + 1) / 2 - 40 N
                const float expected = static_cast<float>((i % 97) * n * (n + 1) / 2 - 40 * n);
                exact = exact && got[static_cast<std::size_t>(i)] == expected;
            }
            CHECK(exact);
            CHECK(same_on_every_rank(t));
        }
    }
}

TEST_CASE("allreduce of float64 and the average; the ring gives every rank the same bits") {
    const int n = world().size();
    const std::int64_t size = 12345;
    std::vector<double> mine(size);
    for (std::int64_t i = 0; i < size; ++i) mine[i] = 1.0 / (3.0 + i) + 0.1 * world().rank();
    Tensor t = from_vector(mine);
    world().allreduce_average(t);
    const std::vector<double> got = t.to_vector<double>();
    double worst = 0;
    for (std::int64_t i = 0; i < size; ++i) {
        const double expected = 1.0 / (3.0 + i) + 0.1 * (n - 1) / 2.0;  // mean of 0.1 r over r < N
        worst = std::max(worst, std::abs(got[i] - expected) / std::abs(expected));
    }
    CHECK(worst < 1e-14);
    CHECK(same_on_every_rank(t));
    CHECK(world().allreduce_average(2.0 * world().rank()) == doctest::Approx(n - 1.0));
    CHECK(world().allreduce_max(static_cast<double>(world().rank())) == n - 1.0);
}

TEST_CASE("broadcast copies the root's tensor to every rank, for any dtype and root") {
    const int last = world().size() - 1;
    Tensor f = full({5, 3}, 1.5 + world().rank(), kFloat32);
    world().broadcast(f, last);
    CHECK(f.to_vector<float>() == std::vector<float>(15, 1.5f + static_cast<float>(last)));
    Tensor ids = from_vector(std::vector<std::int64_t>{7 + world().rank(), -1, 1LL << 40});
    world().broadcast(ids, 0);
    CHECK(ids.to_vector<std::int64_t>() == std::vector<std::int64_t>{7, -1, 1LL << 40});
    world().barrier();
}

TEST_CASE("collectives refuse tensors they cannot reduce, naming the problem") {
    Tensor ints = from_vector(std::vector<std::int64_t>{1, 2});
    CHECK_THROWS_WITH_AS(world().allreduce_sum(ints), doctest::Contains("only float32 and float64"), ValueError);
    Tensor strided = zeros({4, 4}).transpose(0, 1);
    CHECK_THROWS_WITH_AS(world().allreduce_sum(strided), doctest::Contains("not contiguous"), ValueError);
    Tensor t = zeros({2});
    CHECK_THROWS_WITH_AS(world().broadcast(t, world().size()), doctest::Contains("is not a rank"), ValueError);
    CHECK_THROWS_AS(world().set_timeout(0), ValueError);
}

namespace {

// A two-layer model with one parameter the loss never uses; each rank's input differs.
struct Model {
    nn::Linear first{5, 7, true, kFloat64}, second{7, 3, true, kFloat64};
    Tensor unused = zeros({4}, kFloat64).requires_grad_();
    std::vector<Tensor> params() {
        std::vector<Tensor> p = first.parameters();
        for (const Tensor& q : second.parameters()) p.push_back(q);
        p.push_back(unused);
        return p;
    }
    Tensor loss(int rank) {
        manual_seed(100 + static_cast<std::uint64_t>(rank));
        const Tensor x = randn({6, 5}, kFloat64);
        return mean(square(second.forward(tanh(first.forward(x)))));
    }
};

std::vector<std::vector<double>> grads_of(const std::vector<Tensor>& params) {
    std::vector<std::vector<double>> out;
    for (const Tensor& p : params) out.push_back(p.grad().defined() ? p.grad().to_vector<double>() : std::vector<double>{});
    return out;
}

}  // namespace

TEST_CASE("the gradient bucketer averages gradients over ranks, the same with and without overlap") {
    manual_seed(1);
    Model model;  // the same weights on every rank
    std::vector<Tensor> params = model.params();

    // Reference: each gradient averaged on its own, after backward.
    model.loss(world().rank()).backward();
    for (Tensor& p : params) {
        if (!p.grad().defined()) p.set_grad(zeros(p.shape(), kFloat64));
        Tensor g = p.grad();
        world().allreduce_average(g);
    }
    const auto reference = grads_of(params);
    for (Tensor& p : params) p.zero_grad();

    std::vector<std::vector<std::vector<double>>> results;
    for (const bool overlap : {true, false}) {
        // 40-byte buckets: {unused, second.bias}, {second.weight}, {first.bias}, {first.weight}.
        distributed::GradientBucketer bucketer(params, world(), {40, overlap});
        CHECK(bucketer.bucket_count() == 4);
        for (int step = 0; step < 2; ++step) {  // the second pass checks the per-pass state was reset
            model.loss(world().rank()).backward();
            bucketer.synchronize();
            results.push_back(grads_of(params));
            for (Tensor& p : params) p.zero_grad();
        }
    }
    for (const auto& r : results) {
        REQUIRE(r.size() == reference.size());
        for (std::size_t k = 0; k < r.size(); ++k) {
            REQUIRE(r[k].size() == reference[k].size());
            for (std::size_t i = 0; i < r[k].size(); ++i) CHECK(r[k][i] == doctest::Approx(reference[k][i]).epsilon(1e-14));
        }
        CHECK(r == results.front());  // bitwise: overlap changes when buckets are sent, not what they hold
    }
    CHECK(results.front().back() == std::vector<double>(4, 0.0));  // the unused parameter: zeros
    // Its hooks are gone with the bucketer: a new one may hook the same parameters.
    CHECK_NOTHROW(distributed::GradientBucketer(params, world()));
}
