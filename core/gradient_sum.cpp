// GradientSum (core/gradient_sum.h): summing one node's incoming gradients, dense or in pieces.

#include "core/gradient_sum.h"

#include "core/node.h"
#include "core/ops.h"

#include <algorithm>
#include <atomic>

namespace tg::autograd {

namespace {

std::atomic<bool> g_gradient_pieces{true};

// Two paths' gradients for one input meet: sum += g. Into a buffer nothing else can see when one of the two
// is such a buffer (a tied weight's two 50257×768 gradients in GPT-2 would otherwise cost a third one), else
// into a new tensor. a + b and b + a round the same, so which buffer is reused does not change the bits.
void add_dense(Tensor& sum, bool& sum_is_ours, Tensor g) {
    const bool same_layout = sum.shape() == g.shape() && sum.dtype() == g.dtype();
    if (same_layout && (sum_is_ours || is_sole_owner(sum))) {
        sum.add_(g);
    } else if (same_layout && is_sole_owner(g)) {
        g.add_(sum);
        sum = std::move(g);
    } else {
        sum = sum + g;
    }
    sum_is_ours = sum_is_ours || is_sole_owner(sum);
}

bool pairwise_disjoint(const std::vector<Gradient>& pieces) {
    for (std::size_t i = 0; i < pieces.size(); ++i)
        for (std::size_t j = i + 1; j < pieces.size(); ++j)
            if (!pieces[i].disjoint_from(pieces[j])) return false;
    return true;
}

// Zeros the elements of dst that none of the disjoint `blocks` will write. Nothing when they tile dst; only
// the gaps when every block differs from dst in the same single dim; else all of dst (before the copies).
void zero_uncovered(Tensor& dst, const std::vector<Gradient>& blocks) {
    std::int64_t covered = 0;
    for (const Gradient& b : blocks) covered += b.covered();
    if (covered == dst.numel()) return;  // disjoint blocks whose sizes add up to the whole: an exact tiling

    std::vector<std::pair<std::int64_t, std::int64_t>> spans;  // [begin, end) along dim d
    std::int64_t d = -1;
    for (const Gradient& b : blocks) {
        std::int64_t bd = 0, begin = 0, end = 0;
        if (!b.spans_one_dim(dst.shape(), bd, begin, end) || (d >= 0 && bd != d)) {
            dst.zero_();
            return;
        }
        d = bd;
        spans.emplace_back(begin, end);
    }
    if (d < 0) {  // no blocks at all
        dst.zero_();
        return;
    }
    std::sort(spans.begin(), spans.end());
    std::int64_t next = 0;  // the first index along d not yet accounted for
    for (const auto& [begin, end] : spans) {
        if (begin > next) dst.narrow(d, next, begin - next).zero_();
        next = std::max(next, end);
    }
    if (next < dst.size(d)) dst.narrow(d, next, dst.size(d) - next).zero_();
}

// The buffer the pieces already fill, each at its place, when a backward rule wrote them side by side into one
// storage of the input's shape that only they hold; else an undefined tensor.
Tensor buffer_the_pieces_fill(const std::vector<Gradient>& pieces, const Shape& shape, DType dtype) {
    if (pieces.empty() || !pieces[0].values().defined()) return {};
    const std::shared_ptr<Storage>& storage = pieces[0].values().storage();
    const std::size_t bytes = static_cast<std::size_t>(numel(shape)) * element_size(dtype);
    if (storage->is_borrowed() || storage->nbytes() != bytes ||
        storage.use_count() != static_cast<long>(pieces.size())) {
        return {};  // borrowed, another size, or seen by someone else (each piece's view holds one reference)
    }
    std::int64_t covered = 0;
    for (const Gradient& p : pieces) {
        if (p.kind() != Gradient::Kind::Block || p.values().storage() != storage ||
            p.values().impl_ptr().use_count() != 1) {
            return {};
        }
        covered += p.covered();
    }
    if (covered != numel(shape) || !pairwise_disjoint(pieces)) return {};
    // Each piece's values must be the very view of `whole` that copy_to would write (blocks along one dim).
    Tensor whole = make_tensor(storage, shape, contiguous_strides(shape), 0, dtype);
    for (const Gradient& p : pieces) {
        std::int64_t d = 0, begin = 0, end = 0;
        if (!p.spans_one_dim(shape, d, begin, end)) return {};
        const Tensor region = whole.narrow(d, begin, end - begin);
        const Tensor& v = p.values();
        if (v.shape() != region.shape() || v.offset() != region.offset()) return {};
        for (std::size_t k = 0; k < region.shape().size(); ++k)
            if (region.shape()[k] > 1 && region.strides()[k] != v.strides()[k]) return {};
    }
    return whole;
}

}  // namespace

void set_gradient_pieces(bool enabled) { g_gradient_pieces = enabled; }
bool gradient_pieces_enabled() { return g_gradient_pieces; }

void GradientSum::add(Gradient g, const Shape& shape, DType dtype) {
    shape_ = shape;
    dtype_ = dtype;
    if (g.is_dense()) {
        Tensor t = std::move(g.values());
        if (!waiting_.empty()) {
            // Pieces came first. Add them into g when that cannot change the rounding (disjoint pieces: each
            // element meets one of them) and g is a buffer we may write; otherwise sum them first.
            if (pairwise_disjoint(waiting_) && is_sole_owner(t) && t.shape() == shape_ && t.dtype() == dtype_) {
                dense_ = std::move(t);
                dense_is_ours_ = true;
                for (const Gradient& piece : waiting_) piece.add_to(dense_);
                waiting_.clear();
                return;
            }
            dense_ = materialise_pieces();
            dense_is_ours_ = true;
        }
        if (!dense_.defined()) {
            dense_ = std::move(t);
            dense_is_ours_ = false;  // it may be a view, or shared with another input's gradient
        } else {
            add_dense(dense_, dense_is_ours_, std::move(t));
        }
    } else if (dense_.defined()) {
        own_dense();
        g.add_to(dense_);
    } else {
        waiting_.push_back(std::move(g));
    }
}

Tensor GradientSum::take() {
    if (!waiting_.empty()) {
        dense_ = materialise_pieces();  // waiting pieces imply no dense sum (they would have been added into it)
    }
    dense_is_ours_ = false;
    return std::move(dense_);
}

Tensor GradientSum::writable_sum() {
    if (!waiting_.empty() || !dense_.defined() || dense_.shape() != shape_ || dense_.dtype() != dtype_) return {};
    if (!dense_is_ours_ && !is_sole_owner(dense_)) return {};  // a view, or shared: adding into it needs a copy
    if (!dense_.is_contiguous() || dense_.offset() != 0) return {};
    dense_is_ours_ = true;
    return dense_;
}

void GradientSum::own_dense() {
    if (dense_is_ours_ || is_sole_owner(dense_)) {
        dense_is_ours_ = true;
        return;
    }
    dense_ = dense_.clone();
    dense_is_ours_ = true;
}

Tensor GradientSum::materialise_pieces() {
    if (Tensor placed = buffer_the_pieces_fill(waiting_, shape_, dtype_); placed.defined()) {
        waiting_.clear();  // the pieces' views go; `placed` is the buffer's one owner now
        return placed;
    }
    Tensor out = empty(shape_, dtype_);
    if (waiting_.size() == 1 && waiting_[0].kind() == Gradient::Kind::Rows) {
        waiting_[0].copy_to(out);  // the whole table in one pass
    } else if (std::all_of(waiting_.begin(), waiting_.end(),
                           [](const Gradient& p) { return p.kind() == Gradient::Kind::Block; }) &&
               pairwise_disjoint(waiting_)) {
        zero_uncovered(out, waiting_);
        for (const Gradient& piece : waiting_) piece.copy_to(out);
    } else {
        out.zero_();
        for (const Gradient& piece : waiting_) piece.add_to(out);
    }
    waiting_.clear();
    return out;
}

}  // namespace tg::autograd
