#pragma once
// The tensor operations. Names and semantics follow PyTorch so code translates 1:1.
//
// Binary ops broadcast like NumPy and compute in the promoted dtype of their operands (float64 > float32 >
// int64 > int32). Every op on floating tensors is differentiable: each lives in core/ops/<family>.cpp with
// its backward rule right below its forward.

#include "core/tensor.h"

#include <cstdint>
#include <vector>

namespace tg {

// ---- elementwise binary (core/ops/binary.cpp) -------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double exponent);
Tensor atan2(const Tensor& y, const Tensor& x);  // the angle of the point (x, y), in (−π, π]; floating result
Tensor maximum(const Tensor& a, const Tensor& b);  // gradient to the larger operand; a tie splits it evenly
Tensor minimum(const Tensor& a, const Tensor& b);

// Comparisons return 0/1 in the promoted dtype of the operands (there is no bool dtype); not differentiable.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

// condition != 0 ? a : b, all three broadcast together; differentiable in a and b.
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
// A scalar operand becomes a 0-d tensor of the other operand's dtype.
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

// ---- elementwise unary (core/ops/unary.cpp); integer inputs are computed in float32 -----------------------
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
enum class GeluApproximation { None, Tanh };  // None = exact erf form
Tensor gelu(const Tensor& x, GeluApproximation approximate = GeluApproximation::None);
Tensor abs(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor square(const Tensor& x);

// ---- reductions (core/ops/reduce.cpp); dims may be negative; an empty dims list means all dims -----------
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
Tensor max(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
Tensor min(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
Tensor argmax(const Tensor& x, std::int64_t dim, bool keepdim = false);  // int64; first index of the max
Tensor argmin(const Tensor& x, std::int64_t dim, bool keepdim = false);
// Variance with Bessel's correction by default (correction = 1), like torch.var.
Tensor var(const Tensor& x, const std::vector<std::int64_t>& dims = {}, std::int64_t correction = 1,
           bool keepdim = false);
// Sums a gradient of a broadcast shape back to `shape` (the inverse of expand). Used by the autograd engine.
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra (core/ops/matmul.cpp) ----------------------------------------------------------------
// 1-D·1-D dot, 2-D matrix product, and batched products with broadcast batch dims, like torch.matmul.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- joining and splitting (core/ops/join.cpp) --------------------------------------------------------------
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, std::int64_t split_size, std::int64_t dim = 0);  // views
std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, std::int64_t chunks, std::int64_t dim = 0);

// ---- indexing (core/ops/index.cpp); index tensors are int32 or int64 ------------------------------------------
Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index);
Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index);
// A copy of x with src added at the positions named by index along dim (like torch.scatter_add).
Tensor scatter_add(const Tensor& x, std::int64_t dim, const Tensor& index, const Tensor& src);
// Rows of `weight` [V, C] picked by integer `ids` of any shape: result shape ids.shape + [C].
Tensor embedding(const Tensor& ids, const Tensor& weight);

// ---- masks (core/ops/mask.cpp) ------------------------------------------------------------------------------
// Keep elements on and below (tril) / above (triu) the diagonal + k of the last two dims; zero the rest.
Tensor tril(const Tensor& x, std::int64_t diagonal = 0);
Tensor triu(const Tensor& x, std::int64_t diagonal = 0);
// x where mask == 0, value where mask != 0 (mask broadcasts to x).
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// ---- softmax (core/ops/softmax.cpp) ----------------------------------------------------------------------
Tensor softmax(const Tensor& x, std::int64_t dim = -1);  // stable: subtracts the row max
Tensor log_softmax(const Tensor& x, std::int64_t dim = -1);

}  // namespace tg
