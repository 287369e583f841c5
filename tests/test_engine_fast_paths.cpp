// The fast paths added for the GPT training step, each against a plain reference:
//   - sgemm_bias / dgemm_bias (the Linear layer's bias added as C is stored), full and edge tiles, several
//     k blocks, with A read in place (transposed, or row-major when n is small) or packed;
//   - the fused linear node (forward and all three gradients) against matmul + add;
//   - the storage cache: memory_stats still counts live bytes only, cached blocks are reused and freed, a
//     miss does not send the blocks of the last step back to the OS; blocks of 2 MB or more are 2 MB aligned
//     (for transparent huge pages).

#include "core/ops.h"
#include "core/storage.h"
#include "core/tensor.h"
#include "kernels/gemm.h"
#include "nn/functional.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using namespace tg;
using tg::testing::random_values;

// C = op(A)·op(B) + bias through the fast kernel and through the reference plus a bias loop; returns the
// number of elements differing by more than the usual GEMM bound (test_gemm.cpp explains it).
template <class T>
int bias_mismatches(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t pad) {
    const std::int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    const auto a = random_values<T>(static_cast<std::size_t>((ta ? k : m) * lda), 1);
    const auto b = random_values<T>(static_cast<std::size_t>((tb ? n : k) * ldb), 2);
    const auto bias = random_values<T>(static_cast<std::size_t>(n), 3);
    std::vector<T> got = random_values<T>(static_cast<std::size_t>(m * ldc), 4);  // garbage: must not be read
    std::vector<T> want(got.size(), T(0));
    if constexpr (std::is_same_v<T, float>) {
        kernels::sgemm_bias(ta, tb, m, n, k, a.data(), lda, b.data(), ldb, bias.data(), got.data(), ldc);
        kernels::sgemm_reference(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, want.data(), ldc);
    } else {
        kernels::dgemm_bias(ta, tb, m, n, k, a.data(), lda, b.data(), ldb, bias.data(), got.data(), ldc);
        kernels::dgemm_reference(ta, tb, m, n, k, 1.0, a.data(), lda, b.data(), ldb, 0.0, want.data(), ldc);
    }
    const double eps = std::numeric_limits<T>::epsilon();
    int bad = 0;
    for (std::int64_t i = 0; i < m; ++i) {
        for (std::int64_t j = 0; j < n; ++j) {
            const double w = static_cast<double>(want[i * ldc + j]) + static_cast<double>(bias[j]);
            // |a|, |b| <= 1: the sum of magnitudes is at most k, plus the bias.
            const double tol = 2.0 * eps * (std::sqrt(static_cast<double>(k)) + 3.0) * (static_cast<double>(k) + 1.0);
            if (std::fabs(static_cast<double>(got[i * ldc + j]) - w) > tol && ++bad <= 3) {
                MESSAGE("m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " tb=" << tb << ": C[" << i << "]["
                             << j << "] = " << got[i * ldc + j] << ", want " << w);
            }
        }
    }
    return bad;
}

}  // namespace

TEST_SUITE("gemm") {
    TEST_CASE("sgemm_bias / dgemm_bias: product plus a bias row, every tile kind and A layout") {
        struct Shape {
            std::int64_t m, n, k;
        };
        // n <= 64 and 65..128: A read in place by rows (partial last sliver packed); n = 200: A packed;
        // k = 600 > KC: two k blocks (the bias only in the first); m = 512 with trans_a: lda of 2 KB, packed.
        const Shape shapes[] = {{1, 1, 1}, {7, 64, 5}, {13, 100, 600}, {150, 128, 70}, {37, 200, 33}, {512, 70, 40}};
        for (const Shape& s : shapes) {
            for (bool ta : {false, true}) {
                for (bool tb : {false, true}) {
                    CHECK(bias_mismatches<float>(ta, tb, s.m, s.n, s.k, 0) == 0);
                    CHECK(bias_mismatches<float>(ta, tb, s.m, s.n, s.k, 3) == 0);
                }
            }
            CHECK(bias_mismatches<double>(false, true, s.m, s.n, s.k, 1) == 0);
        }
    }
}

TEST_SUITE("nn") {
    TEST_CASE("fused linear: forward and gradients equal matmul + add (float32, GPT-like shapes)") {
        for (bool with_bias : {true, false}) {
            const Tensor x0 = testing::uniform_tensor({3, 37, 96}, kFloat32, 11, -1.0, 1.0);
            const Tensor w0 = testing::uniform_tensor({200, 96}, kFloat32, 12, -0.1, 0.1);
            const Tensor b0 = testing::uniform_tensor({200}, kFloat32, 13, -1.0, 1.0);
            const Tensor dy = testing::uniform_tensor({3, 37, 200}, kFloat32, 14, -1.0, 1.0);

            Tensor x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_(), b = b0.clone().requires_grad_();
            const Tensor y = nn::functional::linear(x, w, with_bias ? b : Tensor());
            y.backward(dy);
            Tensor xr = x0.clone().requires_grad_(), wr = w0.clone().requires_grad_(),
                   br = b0.clone().requires_grad_();
            Tensor yr = matmul(xr, wr.t());
            if (with_bias) yr = yr + br;
            yr.backward(dy);

            CHECK(y.shape() == yr.shape());
            CHECK(max(abs(y - yr)).item() < 1e-5);
            CHECK(max(abs(x.grad() - xr.grad())).item() < 1e-5);
            CHECK(max(abs(w.grad() - wr.grad())).item() < 1e-4);  // sums over 111 rows
            if (with_bias) CHECK(max(abs(b.grad() - br.grad())).item() < 1e-4);
            if (!with_bias) CHECK_FALSE(b.grad().defined());
        }
    }
}

TEST_SUITE("tensor") {
    TEST_CASE("storage cache: live bytes stay exact, freed blocks are reused, empty_cache releases them") {
        const MemoryStats before = memory_stats();
#if defined(__SANITIZE_ADDRESS__)
        const bool caching = false;  // core/storage.cpp turns the cache off under ASan (use-after-free stays visible)
#else
        const bool caching = std::getenv("TG_CACHE_LIMIT_MB") == nullptr;
#endif
        const void* first = nullptr;
        {
            const Tensor a = empty({100000}, kFloat32);  // 400 KB: cached when freed
            first = a.raw_data();
            CHECK(memory_stats().current_bytes == before.current_bytes + 400000);
        }
        CHECK(memory_stats().current_bytes == before.current_bytes);
        if (caching) {
            CHECK(memory_stats().cached_bytes >= before.cached_bytes + 400000);
            const Tensor again = empty({100000}, kFloat32);  // the same size: the same block comes back
            CHECK(again.raw_data() == first);
            CHECK(memory_stats().current_bytes == before.current_bytes + 400000);
        }
        empty_cache();
        CHECK(memory_stats().cached_bytes == 0);
        CHECK(memory_stats().current_bytes == before.current_bytes);
    }

    TEST_CASE("storage: blocks of 2 MB or more start on a 2 MB boundary (transparent huge pages), smaller on 64 bytes") {
        // core/storage.cpp asks Linux for huge pages on large blocks, which needs 2 MB aligned ranges: a
        // T-long attention array that keeps 4 KB pages costs a page-table walk per 4 KB once T is large.
        const auto address = [](const Tensor& t) { return reinterpret_cast<std::uintptr_t>(t.raw_data()); };
        const char* env = std::getenv("TG_HUGE_PAGES");
        const bool huge = env == nullptr || std::string(env) != "0";  // TG_HUGE_PAGES=0 turns them off
        for (const std::int64_t bytes : {std::int64_t{2} << 20, (std::int64_t{4} << 20) + 4096, std::int64_t{9} << 20}) {
            Tensor big = empty({bytes / 4}, kFloat32);
            CHECK(address(big) % (huge ? std::uintptr_t{2} << 20 : 64) == 0);
            big.fill_(1.5);  // the whole block is usable
            CHECK(sum(big).item<double>() == doctest::Approx(1.5 * static_cast<double>(bytes / 4)));
        }
        for (const std::int64_t bytes : {std::int64_t{64}, std::int64_t{1} << 20, (std::int64_t{2} << 20) - 4096}) {
            const Tensor small = empty({bytes / 4}, kFloat32);
            CHECK(address(small) % 64 == 0);
        }
    }

    TEST_CASE("storage cache: a step that needs more than 1 GiB at its peak keeps all its blocks") {
#if defined(__SANITIZE_ADDRESS__)
        const bool caching = false;
#else
        const bool caching = std::getenv("TG_CACHE_LIMIT_MB") == nullptr;  // the default limit follows the peak
#endif
        if (!caching) return;
        empty_cache();
        const std::int64_t block = std::int64_t{256} << 20;  // 5 × 256 MB: past the 1 GiB floor
        {
            std::vector<Tensor> held;  // never written: the pages are only reserved, not touched
            for (int i = 0; i < 5; ++i) held.push_back(empty({block / 4}, kFloat32));
            CHECK(memory_stats().peak_bytes >= 5 * block);
        }
        // A fixed 1 GiB cap would have sent the fifth block back to the OS; the peak held all five at once.
        CHECK(memory_stats().cached_bytes >= 5 * block);
        const Tensor again = empty({block / 4}, kFloat32);  // served from the cache
        CHECK(memory_stats().cached_bytes >= 4 * block);
        empty_cache();
        CHECK(memory_stats().cached_bytes == 0);
        reset_peak_memory();
    }

    TEST_CASE("storage cache: a miss while little is live keeps the blocks the last step held at its peak") {
        // A training step frees its activations into the cache; the next step asks for them again. A size not
        // in the cache (a miss) used to trim the cache down to the bytes live at that moment (256 MB at
        // least), sending most of the last step's blocks back to the OS: they came back as page faults in
        // the stores of the next step's activations (about 4,500 per step for the GPT's config M).
#if defined(__SANITIZE_ADDRESS__)
        const bool caching = false;
#else
        const bool caching = std::getenv("TG_CACHE_LIMIT_MB") == nullptr;
#endif
        if (!caching) return;
        empty_cache();
        const std::int64_t block = std::int64_t{64} << 20;  // 6 × 64 MB held at once: past the 256 MB floor
        std::vector<const void*> addresses;
        {
            std::vector<Tensor> step;  // never written: the pages are only reserved, not touched
            for (int i = 0; i < 6; ++i) {
                step.push_back(empty({block / 4}, kFloat32));
                addresses.push_back(step.back().raw_data());
            }
        }
        CHECK(memory_stats().cached_bytes >= 6 * block);
        { const Tensor other = empty({12345}, kFloat32); }  // 48 KB, a size the cache does not hold: a miss
        CHECK(memory_stats().cached_bytes >= 6 * block);
        // The next step gets the same six blocks back from the cache.
        std::vector<Tensor> again;
        for (int i = 0; i < 6; ++i) again.push_back(empty({block / 4}, kFloat32));
        int reused = 0;
        for (const Tensor& t : again) {
            reused += std::find(addresses.begin(), addresses.end(), t.raw_data()) != addresses.end() ? 1 : 0;
        }
        CHECK(reused == 6);
        again.clear();
        empty_cache();
        reset_peak_memory();
    }
}
