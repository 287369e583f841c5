// Gradient pieces (core/gradient.h): how each kind checks its geometry and writes itself into a dense buffer.

#include "core/gradient.h"

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/ops.h"
#include "core/strided.h"
#include "kernels/embedding.h"
#include "kernels/vecmath.h"

#include <algorithm>

namespace tg::autograd {

Gradient::Gradient(Tensor dense) : kind_(dense.defined() ? Kind::Dense : Kind::None), values_(std::move(dense)) {}

Gradient Gradient::slice(Tensor values, std::int64_t d, std::int64_t start, std::int64_t step) {
    std::vector<std::int64_t> starts(static_cast<std::size_t>(values.dim()), 0);
    std::vector<std::int64_t> steps(static_cast<std::size_t>(values.dim()), 1);
    if (d < 0 || d >= values.dim()) {
        throw ShapeError("Gradient::slice: dim " + std::to_string(d) + " is out of range for values " +
                         to_string(values.shape()));
    }
    starts[static_cast<std::size_t>(d)] = start;
    steps[static_cast<std::size_t>(d)] = step;
    return block(std::move(values), std::move(starts), std::move(steps));
}

Gradient Gradient::block(Tensor values, std::vector<std::int64_t> start, std::vector<std::int64_t> step) {
    if (!values.defined()) return {};
    Gradient g;
    g.kind_ = Kind::Block;
    g.values_ = std::move(values);
    g.start_ = std::move(start);
    g.step_ = std::move(step);
    return g;
}

Gradient Gradient::rows(Tensor values, std::vector<std::int64_t> ids) {
    if (!values.defined()) return {};
    Gradient g;
    g.kind_ = Kind::Rows;
    g.values_ = std::move(values);
    g.ids_ = std::make_shared<const std::vector<std::int64_t>>(std::move(ids));
    return g;
}

void Gradient::check_fits(const Shape& shape, const std::string& op, std::size_t index) const {
    // The start of every message, built only for one (the engine checks every piece of every step).
    const auto where = [&] {
        return op + ": the gradient piece for input " + std::to_string(index) + " of shape " + to_string(shape);
    };
    const std::size_t nd = shape.size();
    if (kind_ == Kind::Block) {
        if (values_.shape().size() != nd || start_.size() != nd || step_.size() != nd) {
            throw ShapeError(where() + " is a block of " + std::to_string(start_.size()) + " dims with values " +
                             to_string(values_.shape()) + ": it needs one start, step and size per input dim");
        }
        for (std::size_t k = 0; k < nd; ++k) {
            const std::int64_t n = values_.shape()[k];
            const bool ok = start_[k] >= 0 && step_[k] >= 1 && (n == 0 || start_[k] + (n - 1) * step_[k] < shape[k]);
            if (!ok) {
                throw ShapeError(where() + " does not fit: dim " + std::to_string(k) + " has start " +
                                 std::to_string(start_[k]) + ", step " + std::to_string(step_[k]) + " and " +
                                 std::to_string(n) + " values");
            }
        }
    } else if (kind_ == Kind::Rows) {
        Shape want{static_cast<std::int64_t>(ids_->size())};
        if (nd > 0) want.insert(want.end(), shape.begin() + 1, shape.end());
        if (nd == 0 || values_.shape() != want) {
            throw ShapeError(where() + " has values " + to_string(values_.shape()) + " for " +
                             std::to_string(ids_->size()) + " row ids; expected " + to_string(want));
        }
        for (std::int64_t id : *ids_) {
            if (id < 0 || id >= shape[0]) {
                throw IndexError(where() + " names row " + std::to_string(id) + " of " + std::to_string(shape[0]));
            }
        }
    }
}

std::int64_t Gradient::covered() const {
    if (kind_ != Kind::Rows) return values_.defined() ? values_.numel() : 0;
    std::vector<std::int64_t> distinct = *ids_;
    std::sort(distinct.begin(), distinct.end());
    const auto rows = std::unique(distinct.begin(), distinct.end()) - distinct.begin();
    const std::int64_t row_size = ids_->empty() ? 0 : values_.numel() / static_cast<std::int64_t>(ids_->size());
    return static_cast<std::int64_t>(rows) * row_size;
}

bool Gradient::disjoint_from(const Gradient& other) const {
    if (kind_ != Kind::Block || other.kind_ != Kind::Block) return false;
    if (values_.numel() == 0 || other.values_.numel() == 0) return true;
    for (std::size_t k = 0; k < start_.size() && k < other.start_.size(); ++k) {
        const std::int64_t a0 = start_[k], a1 = a0 + (values_.shape()[k] - 1) * step_[k];
        const std::int64_t b0 = other.start_[k], b1 = b0 + (other.values_.shape()[k] - 1) * other.step_[k];
        if (a1 < b0 || b1 < a0) return true;  // the index ranges miss each other in dim k
        // Interleaved: the same step, different residues (even and odd columns).
        if (step_[k] == other.step_[k] && (a0 - b0) % step_[k] != 0) return true;
    }
    return false;
}

bool Gradient::spans_one_dim(const Shape& shape, std::int64_t& d, std::int64_t& begin, std::int64_t& end) const {
    if (kind_ != Kind::Block || shape.empty()) return false;
    d = -1;
    for (std::size_t k = 0; k < shape.size(); ++k) {
        const std::int64_t n = values_.shape()[k];
        const bool whole = start_[k] == 0 && n == shape[k] && (step_[k] == 1 || n <= 1);
        if (whole) continue;
        if (d >= 0 || (step_[k] != 1 && n > 1)) return false;  // a second partial dim, or a strided one
        d = static_cast<std::int64_t>(k);
    }
    if (d < 0) d = 0;  // the whole input
    begin = start_[static_cast<std::size_t>(d)];
    end = begin + values_.shape()[static_cast<std::size_t>(d)];
    return true;
}

Tensor Gradient::region_of(const Tensor& dst) const {
    Tensor region = dst;
    for (std::size_t k = 0; k < start_.size(); ++k) {
        const std::int64_t n = values_.shape()[k];
        const std::int64_t end = n == 0 ? start_[k] : start_[k] + (n - 1) * step_[k] + 1;
        region = region.slice(static_cast<std::int64_t>(k), start_[k], end, step_[k]);
    }
    return region;
}

namespace {

// The rows piece's ids (rows of a table of `table_rows`) renumbered 0, 1, ... in order of first appearance:
// slot[i] is position i's distinct row, distinct[s] the input row of slot s. One array entry per table row
// instead of a hash map: the S model's 2048 ids (its tied embedding's rows piece, added into the LM head's
// dense gradient once per step) took 0.04-0.08 ms through std::unordered_map, 0.006 ms this way.
void number_rows(const std::vector<std::int64_t>& ids, std::int64_t table_rows, std::vector<std::int64_t>& slot,
                 std::vector<std::int64_t>& distinct) {
    std::vector<std::int64_t> slot_of_row(static_cast<std::size_t>(table_rows), -1);
    slot.resize(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= table_rows) {  // check_fits says the same for the engine's pieces
            throw IndexError("Gradient::add_to: a rows piece names row " + std::to_string(ids[i]) + " of a table of " +
                             std::to_string(table_rows) + " rows");
        }
        std::int64_t& s = slot_of_row[static_cast<std::size_t>(ids[i])];
        if (s < 0) {
            s = static_cast<std::int64_t>(distinct.size());
            distinct.push_back(ids[i]);
        }
        slot[i] = s;
    }
}

}  // namespace

void Gradient::add_to(Tensor& dst) const {
    NoGradGuard no_grad;
    if (kind_ == Kind::Dense) {
        dst.add_(values_);
    } else if (kind_ == Kind::Block) {
        region_of(dst).add_(values_);
    } else if (kind_ == Kind::Rows && !ids_->empty()) {
        // First each distinct row's sum, in position order (the embedding kernel on a table of just the
        // distinct rows), then each sum added to its row once: dst[v] + (a + b), as adding the dense form would.
        std::vector<std::int64_t> slot, distinct;
        number_rows(*ids_, dst.size(0), slot, distinct);
        const std::int64_t n = static_cast<std::int64_t>(ids_->size()), rows = static_cast<std::int64_t>(distinct.size());
        const std::int64_t row_size = values_.numel() / n;
        const Tensor values = values_.contiguous();
        Tensor sums = empty({rows, row_size}, values.dtype());  // (distinct rows, row)
        dispatch_floating(values.dtype(), [&](auto tag) {
            using T = decltype(tag);
            kernels::embedding_backward(values.data<T>(), slot.data(), sums.data<T>(), n, rows, row_size);
        });
        if (!dst.is_contiguous()) {
            for (std::int64_t s = 0; s < rows; ++s) dst.select(0, distinct[s]).view({row_size}).add_(sums.select(0, s));
            return;
        }
        dispatch_floating(dst.dtype(), [&](auto tag) {
            using T = decltype(tag);
            T* out = dst.data<T>();
            const T* in = sums.data<T>();
            kernels::vec::parallel_rows(rows, row_size, [&](std::int64_t s0, std::int64_t s1) {
                for (std::int64_t s = s0; s < s1; ++s) {
                    T* row = out + distinct[static_cast<std::size_t>(s)] * row_size;
                    const T* add = in + s * row_size;
                    for (std::int64_t c = 0; c < row_size; ++c) row[c] += add[c];
                }
            });
        });
    }
}

void Gradient::copy_to(Tensor& dst) const {
    NoGradGuard no_grad;
    if (kind_ == Kind::Block) {
        region_of(dst).copy_(values_);
    } else if (kind_ == Kind::Rows) {
        // Every row of the table: zeros, or its values summed in position order (kernels/embedding.h).
        const Tensor values = values_.contiguous();
        const std::int64_t vocab = dst.size(0), row_size = vocab == 0 ? 0 : dst.numel() / vocab;
        if (!dst.is_contiguous() || !is_floating(dst.dtype())) {
            dst.zero_();
            add_to(dst);
            return;
        }
        dispatch_floating(values.dtype(), [&](auto tag) {
            using T = decltype(tag);
            kernels::embedding_backward(values.data<T>(), ids_->data(), dst.data<T>(),
                                        static_cast<std::int64_t>(ids_->size()), vocab, row_size);
        });
    } else if (kind_ == Kind::Dense) {
        dst.copy_(values_);
    }
}

Tensor Gradient::dense_form(const Shape& shape, DType dtype) const {
    if (kind_ == Kind::Dense) return values_;
    Tensor out = zeros(shape, dtype);
    copy_to(out);
    return out;
}

}  // namespace tg::autograd
