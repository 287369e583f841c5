// Tests for core/print.cpp: exact expected strings, laid out as PyTorch lays them out (torch/_tensor_str.py),
// with our always-present shape= and dtype= suffixes.

#include "core/ops.h"
#include "core/tensor.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using namespace tg;

TEST_SUITE("print") {

TEST_CASE("small float tensors: 4 decimals, right-aligned, rows on their own lines") {
    CHECK(to_string(from_vector<float>({1, 2, 3, 4}, {2, 2})) ==
          "tensor([[1.0000, 2.0000],\n"
          "        [3.0000, 4.0000]], shape=[2, 2], dtype=float32)");
    CHECK(to_string(from_vector<double>({1.5, -2, 3.25})) ==
          "tensor([ 1.5000, -2.0000,  3.2500], shape=[3], dtype=float64)");
    CHECK(to_string(from_vector<float>({0.12345f, 10.5f})) == "tensor([ 0.1235, 10.5000], shape=[2], dtype=float32)");
}

TEST_CASE("scientific notation when magnitudes are large, small or far apart") {
    CHECK(to_string(from_vector<double>({1e5, 1.0})) == "tensor([1.0000e+05, 1.0000e+00], shape=[2], dtype=float64)");
    CHECK(to_string(from_vector<double>({1e-5, -2.0})) ==
          "tensor([ 1.0000e-05, -2.0000e+00], shape=[2], dtype=float64)");
    CHECK(to_string(from_vector<double>({2e9})) == "tensor([2.0000e+09], shape=[1], dtype=float64)");
    // Zeros do not count as small: this stays fixed.
    CHECK(to_string(from_vector<double>({0.0, 0.5})) == "tensor([0.0000, 0.5000], shape=[2], dtype=float64)");
    // A span under 1000x stays fixed.
    CHECK(to_string(from_vector<double>({999.0, 1.0})) == "tensor([999.0000,   1.0000], shape=[2], dtype=float64)");
}

TEST_CASE("nan and inf") {
    const double inf = std::numeric_limits<double>::infinity();
    CHECK(to_string(from_vector<double>({std::nan(""), 1.0, -inf})) ==
          "tensor([   nan, 1.0000,   -inf], shape=[3], dtype=float64)");
    CHECK(to_string(from_vector<float>({std::numeric_limits<float>::infinity()})) ==
          "tensor([inf], shape=[1], dtype=float32)");
}

TEST_CASE("integer tensors print plain") {
    CHECK(to_string(from_vector<std::int64_t>({1, -20, 300})) == "tensor([  1, -20, 300], shape=[3], dtype=int64)");
    CHECK(to_string(from_vector<std::int32_t>({7})) == "tensor([7], shape=[1], dtype=int32)");
}

TEST_CASE("0-d, empty and undefined tensors") {
    CHECK(to_string(scalar_tensor(3.5)) == "tensor(3.5000, dtype=float32)");
    CHECK(to_string(scalar_tensor(-7, kInt64)) == "tensor(-7, dtype=int64)");
    CHECK(to_string(scalar_tensor(1e-6, kFloat64)) == "tensor(1.0000e-06, dtype=float64)");
    CHECK(to_string(zeros({0, 3})) == "tensor([], shape=[0, 3], dtype=float32)");
    CHECK(to_string(zeros({0}, kInt64)) == "tensor([], shape=[0], dtype=int64)");
    CHECK(to_string(Tensor()) == "tensor(undefined)");
}

TEST_CASE("3-d tensors separate their matrices with a blank line") {
    CHECK(to_string(from_vector<std::int64_t>({0, 1, 2, 3, 4, 5, 6, 7}, {2, 2, 2})) ==
          "tensor([[[0, 1],\n"
          "         [2, 3]],\n"
          "\n"
          "        [[4, 5],\n"
          "         [6, 7]]], shape=[2, 2, 2], dtype=int64)");
    CHECK(to_string(zeros({1, 1, 1, 1}, kInt32)) == "tensor([[[[0]]]], shape=[1, 1, 1, 1], dtype=int32)");
}

TEST_CASE("non-contiguous views print in logical order") {
    const Tensor m = from_vector<std::int32_t>({1, 2, 3, 4, 5, 6}, {2, 3});
    CHECK(to_string(m.t()) ==
          "tensor([[1, 4],\n"
          "        [2, 5],\n"
          "        [3, 6]], shape=[3, 2], dtype=int32)");
    const Tensor v = from_vector<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(to_string(v.slice(0, 1, 10, 3)) == "tensor([1.0000, 4.0000, 7.0000], shape=[3], dtype=float32)");
    CHECK(to_string(from_vector<float>({1.5f, -2.5f}).unsqueeze(0).expand({2, 2})) ==
          "tensor([[ 1.5000, -2.5000],\n"
          "        [ 1.5000, -2.5000]], shape=[2, 2], dtype=float32)");
    CHECK(to_string(m.select(1, 2)) == "tensor([3, 6], shape=[2], dtype=int32)");
}

TEST_CASE("more than 1000 elements are summarised with the first and last 3 per dim") {
    CHECK(to_string(arange(1001, kInt64)) ==
          "tensor([   0,    1,    2,  ...,  998,  999, 1000], shape=[1001], dtype=int64)");
    CHECK(to_string(arange(2000, kInt64).reshape({100, 20})) ==
          "tensor([[   0,    1,    2,  ...,   17,   18,   19],\n"
          "        [  20,   21,   22,  ...,   37,   38,   39],\n"
          "        [  40,   41,   42,  ...,   57,   58,   59],\n"
          "        ...,\n"
          "        [1940, 1941, 1942,  ..., 1957, 1958, 1959],\n"
          "        [1960, 1961, 1962,  ..., 1977, 1978, 1979],\n"
          "        [1980, 1981, 1982,  ..., 1997, 1998, 1999]], shape=[100, 20], dtype=int64)");
    // Exactly 1000 elements are printed in full (here 1000 rows of one element).
    const std::string full = to_string(zeros({1000, 1}, kInt32));
    CHECK(full.find("...") == std::string::npos);
    // A dim of at most 6 is never cut, even in a summarised tensor. The shown values span 1..1199, over 1000x,
    // so the format is scientific.
    CHECK(to_string(arange(1200, kFloat32).reshape({200, 6})) ==
          "tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00, 3.0000e+00, 4.0000e+00, 5.0000e+00],\n"
          "        [6.0000e+00, 7.0000e+00, 8.0000e+00, 9.0000e+00, 1.0000e+01, 1.1000e+01],\n"
          "        [1.2000e+01, 1.3000e+01, 1.4000e+01, 1.5000e+01, 1.6000e+01, 1.7000e+01],\n"
          "        ...,\n"
          "        [1.1820e+03, 1.1830e+03, 1.1840e+03, 1.1850e+03, 1.1860e+03, 1.1870e+03],\n"
          "        [1.1880e+03, 1.1890e+03, 1.1900e+03, 1.1910e+03, 1.1920e+03, 1.1930e+03],\n"
          "        [1.1940e+03, 1.1950e+03, 1.1960e+03, 1.1970e+03, 1.1980e+03, 1.1990e+03]], shape=[200, 6], "
          "dtype=float32)");
}

TEST_CASE("long rows wrap at 80 columns") {
    // Cells are 7 wide ("10.0000"), 9 with ", ", so (80 - 7) / 9 = 8 per line inside the one "[" of a 1-d tensor.
    CHECK(to_string(arange(12, kFloat32)) ==
          "tensor([ 0.0000,  1.0000,  2.0000,  3.0000,  4.0000,  5.0000,  6.0000,  7.0000,\n"
          "         8.0000,  9.0000, 10.0000, 11.0000], shape=[12], dtype=float32)");
}

TEST_CASE("autograd suffixes: requires_grad and grad_fn") {
    Tensor x = from_vector<double>({1, 2});
    x.requires_grad_();
    CHECK(to_string(x) == "tensor([1.0000, 2.0000], shape=[2], dtype=float64, requires_grad=True)");
    const Tensor y = x * x;
    CHECK(to_string(y) == "tensor([1.0000, 4.0000], shape=[2], dtype=float64, grad_fn=<mul>)");
    CHECK(to_string(y.detach()) == "tensor([1.0000, 4.0000], shape=[2], dtype=float64)");
}

TEST_CASE("operator<< writes the same text as to_string") {
    const Tensor t = from_vector<std::int64_t>({4, 5}, {1, 2});
    std::ostringstream os;
    os << t;
    CHECK(os.str() == to_string(t));
    CHECK(os.str() == "tensor([[4, 5]], shape=[1, 2], dtype=int64)");
}

}  // TEST_SUITE
