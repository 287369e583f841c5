// Chapter 1, strides and views (docs/course/01-strides-and-views.md).

#include "core/ops.h"
#include "tests/course/course_test.h"

using namespace tg;
using tg::course::attempt;

TEST_SUITE("course-ch1") {

TEST_CASE("ch1 tour: a tensor is storage + shape + strides + offset") {
    const Tensor x = arange(24.0, kFloat64).reshape({2, 3, 4});
    CHECK(x.strides() == Strides{12, 4, 1});
    CHECK(contiguous_strides({5, 1, 3}) == Strides{3, 3, 1});
    const Tensor xt = x.transpose(0, 2);  // a view: same storage, strides swapped
    CHECK(xt.storage() == x.storage());
    CHECK(xt.strides() == Strides{1, 4, 12});
    CHECK_FALSE(xt.is_contiguous());
    CHECK(xt.contiguous().is_contiguous());
}

TEST_CASE("ch1.slice") {
    attempt([] {
        const Tensor x = arange(24.0, kFloat64).reshape({4, 6});  // x[i, j] = 6 i + j
        const Tensor s = x.slice(1, 1, 6, 2);                      // columns 1, 3, 5
        CHECK_MESSAGE((s.shape() == Shape{4, 3}), "shape " << to_string(s.shape()));
        CHECK_MESSAGE((s.strides() == Strides{6, 2}), "a step of 2 doubles the column stride; got strides "
                                                        << to_string(s.strides()));
        CHECK_MESSAGE(s.offset() == 1, "the view starts at x[0, 1], storage offset 1; got " << s.offset());
        CHECK_MESSAGE(s.storage() == x.storage(), "slice must not copy: it is a view of x's storage");
        CHECK(s.to_vector<double>() == std::vector<double>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});

        // Rows 1..2 of the transposed view: offsets and strides compose.
        const Tensor r = x.t().slice(0, 1, 3);  // x.t() is [6, 4] with strides [1, 6]
        CHECK_MESSAGE(r.offset() == 1, "x.t().slice(0, 1, 3) starts at x[0, 1]; got offset " << r.offset());
        CHECK(r.strides() == Strides{1, 6});
        CHECK(r.to_vector<double>() == std::vector<double>{1, 7, 13, 19, 2, 8, 14, 20});

        // Python-style bounds: negative start counts from the end, an end past the size is clamped.
        CHECK(x.slice(0, -1, 100).to_vector<double>() == std::vector<double>{18, 19, 20, 21, 22, 23});
        CHECK(x.slice(1, 4, 2).numel() == 0);

        // The backward rule routes the gradient to the sliced positions and zeros elsewhere.
        const Tensor leaf = arange(6.0, kFloat64).requires_grad_();
        sum(leaf.slice(0, 1, 6, 2)).backward();
        REQUIRE_MESSAGE(leaf.grad().defined(), "slice must record a backward rule (autograd::record)");
        CHECK(leaf.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 1, 0, 1});
    });
}

TEST_CASE("ch1.select") {
    attempt([] {
        const Tensor x = arange(24.0, kFloat64).reshape({2, 3, 4});
        const Tensor s = x.select(1, 2);  // x[:, 2, :]
        CHECK_MESSAGE((s.shape() == Shape{2, 4}), "select removes the dimension; got shape " << to_string(s.shape()));
        CHECK(s.strides() == Strides{12, 1});
        CHECK_MESSAGE(s.offset() == 8, "x[0, 2, 0] is at 2 * stride(1) = 8; got offset " << s.offset());
        CHECK(s.storage() == x.storage());
        CHECK(s.to_vector<double>() == std::vector<double>{8, 9, 10, 11, 20, 21, 22, 23});
        CHECK(x.select(2, -1).to_vector<double>() == std::vector<double>{3, 7, 11, 15, 19, 23});

        const Tensor leaf = arange(6.0, kFloat64).reshape({2, 3}).requires_grad_();
        leaf.select(0, 1).backward(full({3}, 2.0, kFloat64));
        REQUIRE_MESSAGE(leaf.grad().defined(), "select must record a backward rule (autograd::record)");
        CHECK(leaf.grad().to_vector<double>() == std::vector<double>{0, 0, 0, 2, 2, 2});
    });
}

}  // TEST_SUITE
