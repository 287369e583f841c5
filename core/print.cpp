// Printing tensors the way PyTorch does (torch/_tensor_str.py), so output reads the same in both:
//
//   tensor([[1.0000, 2.0000],
//           [3.0000, 4.0000]], shape=[2, 2], dtype=float32)
//
// Floats use one format for the whole tensor: fixed with 4 decimals, or scientific (1.0000e+05) when the
// nonzero finite magnitudes span more than 1000x, exceed 1e8 or go below 1e-4 (PyTorch's rule). Every element is
// right-aligned to the widest one. A tensor of more than 1000 elements is summarised: each dim longer than 6
// shows its first and last 3 entries around "...". Rows wrap at 80 columns.
//
// Values are read with index arithmetic on the strides, so any view prints without copying, and a summarised
// tensor only reads the elements it shows.

#include "core/node.h"
#include "core/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace tg {

namespace {

constexpr std::int64_t kThreshold = 1000;  // more elements than this: summarise
constexpr std::int64_t kEdgeItems = 3;     // entries shown at each end of a summarised dim
constexpr std::int64_t kLineWidth = 80;
constexpr int kPrecision = 4;

// The indices shown along a dim of `size`: all of them, or the first and last kEdgeItems with -1 marking "...".
std::vector<std::int64_t> shown_indices(std::int64_t size, bool summarize) {
    std::vector<std::int64_t> idx;
    if (summarize && size > 2 * kEdgeItems) {
        for (std::int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
        idx.push_back(-1);
        for (std::int64_t i = size - kEdgeItems; i < size; ++i) idx.push_back(i);
    } else {
        for (std::int64_t i = 0; i < size; ++i) idx.push_back(i);
    }
    return idx;
}

// Calls visit(storage offset from element [0, ...]) for every shown element, in row-major order.
template <typename Visit>
void walk_shown(const Tensor& t, bool summarize, std::int64_t d, std::int64_t pos, Visit& visit) {
    if (d == t.dim()) {
        visit(pos);
        return;
    }
    for (std::int64_t i : shown_indices(t.shape()[d], summarize))
        if (i >= 0) walk_shown(t, summarize, d + 1, pos + i * t.strides()[d], visit);
}

std::string format_float(double v, bool sci) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[64];
    std::snprintf(buf, sizeof buf, sci ? "%.*e" : "%.*f", kPrecision, v);
    return buf;
}

// The shown elements as strings, in row-major order, each padded to the common width.
std::vector<std::string> format_cells(const Tensor& t, bool summarize) {
    std::vector<std::string> cells;
    if (is_floating(t.dtype())) {
        std::vector<double> values;
        dispatch_floating(t.dtype(), [&](auto tag) {
            using T = decltype(tag);
            const T* base = t.data<T>();
            auto visit = [&](std::int64_t pos) { values.push_back(static_cast<double>(base[pos])); };
            walk_shown(t, summarize, 0, 0, visit);
        });
        // PyTorch's choice between fixed and scientific, over the nonzero finite magnitudes.
        double lo = INFINITY, hi = 0.0;
        for (double v : values)
            if (std::isfinite(v) && v != 0.0) {
                lo = std::min(lo, std::abs(v));
                hi = std::max(hi, std::abs(v));
            }
        const bool sci = hi > 0.0 && (hi / lo > 1000.0 || hi > 1e8 || lo < 1e-4);
        for (double v : values) cells.push_back(format_float(v, sci));
    } else {
        dispatch(t.dtype(), [&](auto tag) {
            using T = decltype(tag);
            if constexpr (std::is_integral_v<T>) {
                const T* base = t.data<T>();
                auto visit = [&](std::int64_t pos) { cells.push_back(std::to_string(base[pos])); };
                walk_shown(t, summarize, 0, 0, visit);
            }
        });
    }
    std::size_t width = 0;
    for (const auto& c : cells) width = std::max(width, c.size());
    for (auto& c : cells) c.insert(0, width - c.size(), ' ');
    return cells;
}

// The bracketed body for dims d.. of the tensor, consuming cells in order (_tensor_str_with_formatter).
// `indent` is the column of this level's "[".
std::string body(const Tensor& t, bool summarize, std::int64_t d, std::int64_t indent,
                 const std::vector<std::string>& cells, std::size_t& next) {
    const std::int64_t size = t.shape()[d];
    const std::vector<std::int64_t> idx = shown_indices(size, summarize);
    const std::int64_t dims_left = t.dim() - d;
    if (dims_left == 1) {
        // A row: elements joined by ", ", wrapped so no line passes kLineWidth (_vector_str).
        const std::int64_t element_length = static_cast<std::int64_t>(cells.empty() ? 1 : cells[0].size()) + 2;
        const std::int64_t per_line = std::max<std::int64_t>(1, (kLineWidth - indent) / element_length);
        std::string line_break = ",\n";
        line_break.append(static_cast<std::size_t>(indent + 1), ' ');
        std::string out = "[";
        for (std::size_t k = 0; k < idx.size(); ++k) {
            if (k > 0) out += static_cast<std::int64_t>(k) % per_line == 0 ? line_break : std::string(", ");
            out += idx[k] < 0 ? std::string(" ...") : cells[next++];
        }
        out += "]";
        return out;
    }
    // Sub-tensors separated by "," and dims_left - 1 newlines, aligned one column right of this "[".
    std::string separator = ",";
    separator.append(static_cast<std::size_t>(dims_left - 1), '\n');
    separator.append(static_cast<std::size_t>(indent + 1), ' ');
    std::string out = "[";
    for (std::size_t k = 0; k < idx.size(); ++k) {
        if (k > 0) out += separator;
        out += idx[k] < 0 ? std::string("...") : body(t, summarize, d + 1, indent + 1, cells, next);
    }
    out += "]";
    return out;
}

}  // namespace

std::string to_string(const Tensor& t) {
    if (!t.defined()) return "tensor(undefined)";
    const std::string prefix = "tensor(";
    std::string out = prefix;
    if (t.numel() == 0) {
        out += "[]";
    } else {
        const bool summarize = t.numel() > kThreshold;
        const std::vector<std::string> cells = format_cells(t, summarize);
        if (t.dim() == 0) {
            out += cells[0];
        } else {
            std::size_t next = 0;
            out += body(t, summarize, 0, static_cast<std::int64_t>(prefix.size()), cells, next);
        }
    }
    if (t.dim() > 0) out += ", shape=" + to_string(t.shape());  // a 0-d tensor's shape [] says nothing
    out += ", dtype=" + dtype_name(t.dtype());
    if (t.grad_fn())
        out += ", grad_fn=<" + t.grad_fn()->name() + ">";
    else if (t.requires_grad())
        out += ", requires_grad=True";
    return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << to_string(t); }

}  // namespace tg
