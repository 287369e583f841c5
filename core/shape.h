#pragma once
// Shapes and strides. A shape lists the size of each dimension; strides (in elements, not bytes) say how far
// to move in storage to step one along each dimension. A contiguous row-major tensor of shape [2, 3, 4] has
// strides [12, 4, 1]; a broadcast (expanded) dimension has stride 0.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace tg {

using Shape = std::vector<std::int64_t>;
using Strides = std::vector<std::int64_t>;

std::int64_t numel(const Shape& shape);
Strides contiguous_strides(const Shape& shape);
std::string to_string(const Shape& shape);  // "[2, 3, 4]"

// Maps a possibly negative dim (-1 = last) into [0, ndim); throws IndexError naming `op` when out of range.
std::int64_t normalize_dim(std::int64_t dim, std::int64_t ndim, const char* op);

// NumPy broadcasting: align trailing dims; sizes must match or be 1. Throws ShapeError naming `op`.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace tg
