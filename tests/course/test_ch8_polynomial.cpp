// Chapter 8, the polynomial approximation of attention and its error (docs/course/08-polynomial-attention.md).

#include "kernels/attention_poly.h"
#include "tests/course/course_test.h"

using namespace tg;
using tg::course::attempt;
using tg::course::dot;
using tg::course::random_values;

TEST_SUITE("course-ch8") {

TEST_CASE("ch8.poly_feature_rank") {
    attempt([] {
        // R = C(D + g, g): the monomials of degree <= g in D variables.
        CHECK_MESSAGE(kernels::poly_feature_rank(3, 2) == 10, "D = 3, g = 2: 1 + 3 + 6 = 10 monomials");
        CHECK(kernels::poly_feature_rank(1, 4) == 5);
        CHECK(kernels::poly_feature_rank(16, 2) == 153);
        CHECK(kernels::poly_feature_rank(32, 4) == 58905);
        CHECK(kernels::poly_feature_rank(64, 4) == 814385);  // exact in integers, no overflow on the way
        CHECK(kernels::poly_feature_rank(5, 3) == kernels::PolyFeatureMap(5, {1, 1, 0.5, 1.0 / 6}).rank());
    });
}

TEST_CASE("ch8.poly_features") {
    attempt([] {
        // φ_Q(x)·φ_K(y) = Σ_j a_j (x·y)^j for every x, y: the feature map turns the polynomial of the score
        // into a dot product (Taylor coefficients a_j = 1/j! here, degree 4).
        const std::int64_t d = 3;
        const std::vector<double> a{1, 1, 0.5, 1.0 / 6, 1.0 / 24};
        const kernels::PolyFeatureMap map(d, a);
        const std::int64_t n = 4, r = map.rank();
        const auto x = random_values(static_cast<std::size_t>(n * d), 50), y = random_values(static_cast<std::size_t>(n * d), 51);
        std::vector<double> phi_q(static_cast<std::size_t>(n * r)), phi_k(static_cast<std::size_t>(n * r));
        map.forward(n, x.data(), d, /*query=*/true, phi_q.data(), r);
        map.forward(n, y.data(), d, /*query=*/false, phi_k.data(), r);
        for (std::int64_t i = 0; i < n; ++i) {
            for (std::int64_t j = 0; j < n; ++j) {
                const std::vector<double> xi(x.begin() + i * d, x.begin() + (i + 1) * d);
                const std::vector<double> yj(y.begin() + j * d, y.begin() + (j + 1) * d);
                const double s = dot(xi, yj);
                double want = 0, power = 1;
                for (double aj : a) want += aj * power, power *= s;
                const std::vector<double> fq(phi_q.begin() + i * r, phi_q.begin() + (i + 1) * r);
                const std::vector<double> fk(phi_k.begin() + j * r, phi_k.begin() + (j + 1) * r);
                const double got = dot(fq, fk);
                CHECK_MESSAGE(got == doctest::Approx(want).epsilon(1e-12),
                              "φ_Q(x_" << i << ")·φ_K(y_" << j << ") = " << got << ", expected Σ a_j s^j = " << want
                                       << " with s = x·y = " << s);
            }
        }
    });
}

}  // TEST_SUITE
