#pragma once
// Helpers shared by the doctest suites: checking error messages, making seeded test data, comparing results.

#include "core/error.h"
#include "core/tensor.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

namespace tg::testing {

// The message of the tg::Error that fn throws, or "(no exception)".
inline std::string error_message(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no exception)";
}

// A fresh empty folder under the temp dir ("tg-<name>-<pid>"), removed with its contents at the end of the scope.
struct ScratchDir {
    std::filesystem::path path;
    explicit ScratchDir(const std::string& name)
        : path(std::filesystem::temp_directory_path() / ("tg-" + name + "-" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    std::string file(const std::string& name) const { return (path / name).string(); }
    // Writes `bytes` to the file `name` (creating its folders) and returns its path.
    std::string write(const std::string& name, const std::string& bytes) const {
        const std::filesystem::path p = path / name;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << bytes;
        return p.string();
    }
};

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Bit-for-bit equality of two results (the determinism tests: 1 vs 2 threads, one head vs a batch).
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Bit-for-bit equality of two tensors of any layout (undefined equals undefined): the switch-on/off tests.
inline bool same_bits(const Tensor& a, const Tensor& b) {
    if (!a.defined() || !b.defined()) return a.defined() == b.defined();
    if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
    const Tensor ac = a.contiguous(), bc = b.contiguous();
    return std::memcmp(ac.raw_data(), bc.raw_data(), static_cast<std::size_t>(a.numel()) * element_size(a.dtype())) == 0;
}

// Checks that fn throws an E whose message contains every one of `parts`.
template <typename E, typename Fn>
void check_throws(Fn&& fn, const std::vector<std::string>& parts) {
    bool threw = false;
    try {
        fn();
    } catch (const E& e) {
        threw = true;
        INFO("message: " << e.what());
        for (const auto& part : parts) CHECK_MESSAGE(contains(e.what(), part), part);
    }
    CHECK_MESSAGE(threw, "expected an exception containing: " << parts.front());
}

// Values uniform in [lo, hi) from a fixed seed (std::mt19937, independent of tapegrad's own RNG).
inline Tensor uniform_tensor(const Shape& shape, DType dtype, unsigned seed, double lo = -1.0, double hi = 1.0) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> dist(lo, hi);
    std::vector<double> v(static_cast<std::size_t>(numel(shape)));
    for (auto& e : v) e = dist(gen);
    return from_vector(v, shape).to(dtype);
}

// ‖got − want‖₂ / ‖want‖₂ over two equally long sequences of numbers (the kernels' accuracy measure).
template <class A, class B>
double rel_err(const A& got, const B& want) {
    REQUIRE(got.size() == want.size());
    double num = 0, den = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double diff = static_cast<double>(got[i]) - static_cast<double>(want[i]);
        num += diff * diff;
        den += static_cast<double>(want[i]) * static_cast<double>(want[i]);
    }
    return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

// `count` values uniform in [−1, 1) as T, from a fixed seed (std::mt19937): the GEMM tests' operands.
template <class T>
std::vector<T> random_values(std::size_t count, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    std::vector<T> v(count);
    for (auto& x : v) x = static_cast<T>(dist(rng));
    return v;
}

// n values from N(0, std_dev²), fixed seed.
inline std::vector<double> random_vec(std::size_t n, unsigned seed, double std_dev = 1.0) {
    std::mt19937 gen(seed);
    std::normal_distribution<double> dist(0.0, std_dev);
    std::vector<double> v(n);
    for (auto& e : v) e = dist(gen);
    return v;
}

}  // namespace tg::testing
