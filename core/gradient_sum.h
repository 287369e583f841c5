#pragma once
// The engine's running sum of the gradients that reach one node during a backward pass (core/engine.cpp).
//
// Dense gradients add as they always did: into a buffer nothing else can see when there is one, else into a
// new tensor. A piece (core/gradient.h) is added in place into the dense sum when there is one; otherwise it
// waits, and take() materialises all waiting pieces at once, when the node is about to run:
//
//   - blocks that a backward rule already wrote side by side into one buffer of the input's shape, each at its
//     own place, that nothing else sees (exact attention's dq, dk, dv when q, k, v are views of one fused
//     projection, nn/attention.cpp): that buffer is the sum — no copy at all;
//   - blocks that tile the input exactly (q, k, v's three row blocks of one fused weight): allocate and copy
//     each block in — no zero fill, no additions;
//   - disjoint blocks that leave gaps: zero only the gaps (when the blocks differ from the input in one dim,
//     as slices along one dim do), then copy;
//   - a lone rows piece (embedding): the table written once, zeros where no id points;
//   - anything else (overlapping pieces): zeros, then each piece added in arrival order.
//
// Summation order. Contributions are summed in the order they arrive, which the topological order fixes, and
// each element sees the same additions as the dense forms would have given (a piece adds nothing outside its
// region, and x + 0 = x): the result is the same bit for bit as summing dense gradients, for any thread count.
// The one reordering: pieces that waited and then meet a dense gradient are added into it (g + a instead of
// a + g, equal in floating point) only when they are pairwise disjoint; otherwise they are summed first.

#include "core/gradient.h"

#include <vector>

namespace tg::autograd {

class GradientSum {
public:
    // Adds g, which already fits the input (shape and dtype: the engine checks and converts).
    void add(Gradient g, const Shape& shape, DType dtype);
    // The sum as one dense tensor of the input's shape; the sum is empty afterwards.
    Tensor take();
    // The sum's buffer, for a backward rule to add into in place (core/gradient_targets.h): defined only when
    // the sum is one dense tensor of the input's shape and dtype that nothing else can see (no pieces wait).
    Tensor writable_sum();

private:
    void own_dense();               // makes dense_ a buffer nothing else can see (copies it if needed)
    Tensor materialise_pieces();    // the waiting pieces as one new dense tensor

    Tensor dense_;                  // the sum of the dense gradients so far (and of the pieces added into it)
    bool dense_is_ours_ = false;    // dense_ was allocated here: safe to add into
    std::vector<Gradient> waiting_; // pieces that arrived while there was no dense sum, in arrival order
    Shape shape_;
    DType dtype_ = DType::Float32;
};

// On by default. Off, the engine writes every piece out as its dense form the moment a rule returns it and
// sums those, as before pieces existed: for tests that compare the two, and for measuring what pieces save.
void set_gradient_pieces(bool enabled);
bool gradient_pieces_enabled();

}  // namespace tg::autograd
