// Chapter 5, linear layers and the GEMM idea (docs/course/05-linear-and-gemm.md).

#include "autograd/gradcheck.h"
#include "core/ops.h"
#include "kernels/gemm.h"
#include "tests/course/course_test.h"

using namespace tg;
using tg::course::attempt;
using tg::course::check_close;
using tg::course::random_tensor;
using tg::course::random_values;

TEST_SUITE("course-ch5") {

TEST_CASE("ch5 tour: the fast GEMM computes C = alpha op(A) op(B) + beta C") {
    // [2, 3] · [3, 2]
    const std::vector<double> a{1, 2, 3, 4, 5, 6}, b{1, 0, 0, 1, 1, 1};
    std::vector<double> c(4, 0.0);
    kernels::dgemm(false, false, 2, 2, 3, 1.0, a.data(), 3, b.data(), 2, 0.0, c.data(), 2);
    CHECK(c == std::vector<double>{4, 5, 10, 11});
}

TEST_CASE("ch5.matmul_backward") {
    attempt([] {
        const Tensor a = from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2}).requires_grad_();
        const Tensor b = from_vector(std::vector<double>{5, 6, 7, 8}, {2, 2}).requires_grad_();
        matmul(a, b).backward(from_vector(std::vector<double>{1, 0, 0, 0}, {2, 2}));
        REQUIRE(a.grad().defined());
        // dC = e_00: dA = dC·Bᵀ = [[5, 7], [0, 0]], dB = Aᵀ·dC = [[1, 0], [2, 0]]
        CHECK_MESSAGE((a.grad().to_vector<double>() == std::vector<double>{5, 7, 0, 0}), "dA = dC·Bᵀ");
        CHECK_MESSAGE((b.grad().to_vector<double>() == std::vector<double>{1, 0, 2, 0}), "dB = Aᵀ·dC");
        const auto r = autograd::gradcheck([](const auto& in) { return matmul(in[0], in[1]); },
                                           {random_tensor({3, 4}, 14).requires_grad_(),
                                            random_tensor({4, 5}, 15).requires_grad_()});
        CHECK_MESSAGE(r.ok, "[3, 4]·[4, 5]: " << r.message);
        const auto rb = autograd::gradcheck([](const auto& in) { return matmul(in[0], in[1]); },
                                            {random_tensor({2, 3, 4}, 16).requires_grad_(),
                                             random_tensor({2, 4, 2}, 17).requires_grad_()});
        CHECK_MESSAGE(rb.ok, "batched [2, 3, 4]·[2, 4, 2]: " << rb.message);
    });
}

TEST_CASE("ch5.gemm_reference") {
    attempt([] {
        // Odd sizes, both transposes, alpha and beta: compared with the fast kernel on the same inputs.
        const std::int64_t m = 5, n = 7, k = 3;
        const auto a = random_values(static_cast<std::size_t>(m * k), 18);
        const auto b = random_values(static_cast<std::size_t>(k * n), 19);
        const auto c0 = random_values(static_cast<std::size_t>(m * n), 20);
        for (bool ta : {false, true}) {
            for (bool tb : {false, true}) {
                for (double beta : {0.0, 0.5}) {
                    std::vector<double> want = c0, got = c0;
                    const std::int64_t lda = ta ? m : k, ldb = tb ? k : n;
                    kernels::dgemm(ta, tb, m, n, k, 1.5, a.data(), lda, b.data(), ldb, beta, want.data(), n);
                    kernels::dgemm_reference(ta, tb, m, n, k, 1.5, a.data(), lda, b.data(), ldb, beta, got.data(), n);
                    check_close(std::string("C (trans_a=") + (ta ? "1" : "0") + ", trans_b=" + (tb ? "1" : "0") +
                                    ", beta=" + std::to_string(beta) + ")",
                                got, want, 1e-12);
                }
            }
        }
    });
}

}  // TEST_SUITE
