#pragma once
// Shared by the course's tests (docs/course/README.md). Each exercise has one doctest TEST_CASE named like
// the exercise ("ch6.layernorm_backward") in the suite "course-chN"; tests/course/exercises.tsv lists them.
//
// In a student copy of the repository (scripts/course.sh student) an exercise's body throws
// tg::NotImplementedError("exercise chN.name: see docs/course/NN-title.md"). attempt() turns that into one
// failed check carrying the message, so the test reports which exercise is missing and where it is
// explained. (A stub reached inside a CHECK is reported by doctest itself as "THREW exception: ..."; the
// grader finds the exercise's message in either form.)

#include "core/not_implemented.h"
#include "core/tensor.h"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace tg::course {

template <class Fn>
void attempt(Fn&& fn) {
    try {
        fn();
    } catch (const NotImplementedError& e) {
        FAIL_CHECK("not implemented yet: " << std::string(e.what()));
    }
}

// n values uniform in [lo, hi) from a fixed seed.
inline std::vector<double> random_values(std::size_t n, unsigned seed, double lo = -1.0, double hi = 1.0) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> dist(lo, hi);
    std::vector<double> v(n);
    for (auto& e : v) e = dist(gen);
    return v;
}

inline Tensor random_tensor(const Shape& shape, unsigned seed, double lo = -1.0, double hi = 1.0) {
    return from_vector(random_values(static_cast<std::size_t>(numel(shape)), seed, lo, hi), shape);
}

// Checks got[i] ≈ want[i] for every i; on the first mismatch, one failed check naming `what`, the index and
// both values (the rest of the comparison is skipped so that a wrong kernel reports one line, not a page).
inline void check_close(const std::string& what, const std::vector<double>& got, const std::vector<double>& want,
                        double tol = 1e-6) {
    REQUIRE_MESSAGE(got.size() == want.size(), what << ": got " << got.size() << " values, expected " << want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double err = std::abs(got[i] - want[i]);
        if (!(err <= tol * (1.0 + std::abs(want[i])))) {
            FAIL_CHECK(what << "[" << i << "] = " << got[i] << ", expected " << want[i] << " (difference " << err
                            << ", tolerance " << tol << ")");
            return;
        }
    }
}

// Central differences of a scalar function of a vector: d f / d x_i ≈ (f(x + h e_i) − f(x − h e_i)) / 2h.
inline std::vector<double> numeric_gradient(const std::function<double(const std::vector<double>&)>& f,
                                            std::vector<double> x, double h = 1e-6) {
    std::vector<double> g(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double keep = x[i];
        x[i] = keep + h;
        const double up = f(x);
        x[i] = keep - h;
        const double down = f(x);
        x[i] = keep;
        g[i] = (up - down) / (2 * h);
    }
    return g;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

}  // namespace tg::course
