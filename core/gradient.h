#pragma once
// One input's gradient as a backward rule hands it to the engine: a dense tensor of the input's shape (or of a
// shape that broadcasts to it), or a *piece* — a gradient that is zero except on a part of the input.
//
// Pieces exist so that ops which touch only part of their input do not pay for the whole of it. The backward
// of x.slice(0, 0, C) on a [3C, C] weight is a [3C, C] tensor that is zero outside the first C rows; written
// out, it costs a 3C·C zero fill, and when the three row blocks of a fused q/k/v weight are each sliced, the
// engine then adds three such tensors. As pieces, the engine places the three blocks side by side into one
// buffer that they tile exactly: no zero fill, no additions (core/gradient_sum.h says how pieces are summed).
//
//   - Gradient::slice(values, d, start, step): values along dim d at indices start, start + step, ...; all
//     other dims whole. The backward of slice, narrow and select (select passes dout.unsqueeze(d)).
//   - Gradient::block(values, start, step): the same in every dim at once (a box of the input's index space).
//   - Gradient::rows(values, ids): row ids[i] (along dim 0) receives values[i]; repeated ids add up. The
//     backward of embedding: a few hundred rows of a 50,257-row table.

#include "core/tensor.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tg::autograd {

class Gradient {
public:
    enum class Kind { None, Dense, Block, Rows };

    Gradient() = default;
    Gradient(Tensor dense);  // NOLINT(google-explicit-constructor): every ordinary rule returns tensors

    // A gradient equal to `values` at indices start, start + step, ... along dim d of the input, zero elsewhere.
    // values has the input's number of dims, and the input's sizes outside d.
    static Gradient slice(Tensor values, std::int64_t d, std::int64_t start, std::int64_t step = 1);
    // A gradient equal to `values` on the box {start[k] + i·step[k] : i < values.size(k)} of every dim k.
    static Gradient block(Tensor values, std::vector<std::int64_t> start, std::vector<std::int64_t> step);
    // A gradient whose row ids[i] along dim 0 is the sum of values[i] over every i naming it, zero elsewhere.
    // values is [ids.size(), the input's sizes after dim 0...].
    static Gradient rows(Tensor values, std::vector<std::int64_t> ids);

    Kind kind() const { return kind_; }
    bool defined() const { return kind_ != Kind::None; }
    bool is_dense() const { return kind_ == Kind::Dense; }
    bool is_piece() const { return kind_ == Kind::Block || kind_ == Kind::Rows; }
    // The dense gradient, or a piece's values.
    const Tensor& values() const { return values_; }
    Tensor& values() { return values_; }

    // Checks that the piece fits an input of `shape`; throws ShapeError naming `op` and input `index`.
    void check_fits(const Shape& shape, const std::string& op, std::size_t index) const;
    // How many of the input's elements the piece writes (a block's volume; a rows piece: distinct rows × row).
    std::int64_t covered() const;
    // True when the two pieces are sure to write disjoint elements (blocks whose index ranges miss in some
    // dim). Conservative: false when unsure (a rows piece, boxes with steps that interleave).
    bool disjoint_from(const Gradient& other) const;
    // For a block that spans every dim whole except one: that dim, its first index and its end (step 1 only);
    // else returns false. Lets the engine zero just the gaps between such blocks.
    bool spans_one_dim(const Shape& shape, std::int64_t& d, std::int64_t& begin, std::int64_t& end) const;

    // dst += this gradient, dst having the input's shape. A rows piece sums its repeated ids first, in
    // position order, and then adds each distinct row once: bit for bit what adding its dense form would give.
    void add_to(Tensor& dst) const;
    // Writes into dst, which nothing has written yet: a block its region (the rest of dst is left alone); a
    // rows piece the whole table, zeros where no id points (in one pass, as the embedding kernel does).
    void copy_to(Tensor& dst) const;

    // The piece written out: a new tensor of the input's shape, zeros outside the piece (what slice and
    // embedding returned before pieces existed).
    Tensor dense_form(const Shape& shape, DType dtype) const;

private:
    Tensor region_of(const Tensor& dst) const;  // a block's view of dst

    Kind kind_ = Kind::None;
    Tensor values_;
    std::vector<std::int64_t> start_, step_;          // Block: per dim
    std::shared_ptr<const std::vector<std::int64_t>> ids_;  // Rows
};

}  // namespace tg::autograd
