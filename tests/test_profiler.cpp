// The op profiler (core/profiler.h): what a forward and backward pass charge, per op name and call count;
// that the charges partition the profiled time; regions; off by default and per thread.

#include "core/ops.h"
#include "core/profiler.h"
#include "core/random.h"
#include "core/threading.h"
#include "kernels/parallel_region.h"

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>

using namespace tg;

namespace {

std::map<std::string, profiler::Entry> by_name(const std::vector<profiler::Entry>& entries) {
    std::map<std::string, profiler::Entry> out;
    for (const auto& e : entries) out[e.name] = e;
    return out;
}

// Turns the profiler on for one test and off again, whatever happens.
struct ProfilerOn {
    ProfilerOn() {
        profiler::enable(true);
        profiler::reset();
    }
    ~ProfilerOn() { profiler::enable(false); }
};

}  // namespace

TEST_SUITE("profiler") {

TEST_CASE("a forward and backward pass charge each op's forward, its backward rule and the engine") {
    const Tensor a = randn({16, 8}).requires_grad_();
    const Tensor b = randn({8, 4}).requires_grad_();
    ProfilerOn on;
    const Tensor loss = sum(gelu(matmul(a, b)));
    loss.backward();
    const auto entries = by_name(profiler::entries());
    for (const char* name : {"matmul", "gelu", "sum", "matmul backward", "gelu backward", "sum backward", "engine"}) {
        INFO(name);
        REQUIRE(entries.count(name) == 1);
        CHECK(entries.at(name).seconds >= 0.0);
    }
    CHECK(entries.at("matmul").calls == 1);
    CHECK(entries.at("gelu backward").calls == 1);
    CHECK(entries.at("AccumulateGrad backward").calls == 2);  // a and b
}

TEST_CASE("the charges partition the profiled time: their sum is the time between reset and entries") {
    const Tensor x = randn({64, 64}).requires_grad_();
    const auto outer_start = std::chrono::steady_clock::now();
    ProfilerOn on;
    for (int i = 0; i < 3; ++i) sum(tanh(matmul(x, x))).backward();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // charged to "unattributed"
    const std::vector<profiler::Entry> entries = profiler::entries();
    const double outer = std::chrono::duration<double>(std::chrono::steady_clock::now() - outer_start).count();
    double total = 0;
    for (const auto& e : entries) total += e.seconds;
    CHECK(total <= outer);
    CHECK(total >= 0.020);
    const auto named = by_name(entries);
    CHECK(named.at("unattributed").seconds >= 0.020);
    CHECK(named.at("tanh").calls == 3);
    CHECK(entries.front().seconds >= entries.back().seconds);  // largest first
}

TEST_CASE("a region charges its body to its name and what came before to unattributed") {
    ProfilerOn on;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    {
        profiler::ScopedRegion region("optimizer");
        std::this_thread::sleep_for(std::chrono::milliseconds(15));
    }
    const auto entries = by_name(profiler::entries());
    CHECK(entries.at("optimizer").seconds >= 0.015);
    CHECK(entries.at("optimizer").calls == 1);
    CHECK(entries.at("unattributed").seconds >= 0.005);
}

TEST_CASE("off by default and per thread: nothing is recorded unless enabled, and other threads keep their own") {
    profiler::reset();
    const Tensor x = randn({4, 4}).requires_grad_();
    sum(exp(x)).backward();
    CHECK(profiler::entries().empty());

    ProfilerOn on;
    std::thread other([&] {
        profiler::reset();
        sum(neg(x)).backward();
        const auto entries = by_name(profiler::entries());
        CHECK(entries.count("neg") == 1);
        CHECK(entries.count("sqrt") == 0);
    });
    other.join();
    sum(sqrt(exp(x))).backward();
    const auto entries = by_name(profiler::entries());
    CHECK(entries.count("sqrt") == 1);
    CHECK(entries.count("neg") == 0);
}

TEST_CASE("each charge is split into time inside parallel loops and time on the calling thread alone") {
    const int threads_before = get_num_threads();
    set_num_threads(2);
    const Tensor big = randn({1 << 21}).requires_grad_();  // far above every task threshold
    const Tensor small = randn({8}).requires_grad_();      // far below: runs on this thread
    {
        ProfilerOn on;
        const Tensor y = exp(big);
        const Tensor z = tanh(small);
        {
            profiler::ScopedRegion region("waiting");
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        const auto entries = by_name(profiler::entries());
        CHECK(entries.at("exp").parallel_seconds > 0.0);
        CHECK(entries.at("exp").parallel_seconds <= entries.at("exp").seconds);
        CHECK(entries.at("tanh").parallel_seconds == 0.0);
        CHECK(entries.at("waiting").parallel_seconds == 0.0);
        CHECK(entries.at("waiting").seconds >= 0.005);
    }
    // Off, the loops are not timed at all: nothing waits to be charged when the profiler comes back on.
    const Tensor y = exp(big);
    CHECK(kernels::take_parallel_region_seconds() == 0.0);
    set_num_threads(threads_before);
}

}  // TEST_SUITE
