// Reductions: sum, mean, max, min, argmax, argmin, var and sum_to, each with its backward rule right below.
//
// ---- How a reduction is laid out -----------------------------------------------------------------------------
// Every reduction here sees its input as a contiguous block of shape [O, R, K]:
//
//   O  the kept dims before the reduced ones (outer)
//   R  the reduced dims (their sizes multiplied)
//   K  the kept dims after the reduced ones (inner)
//
// and produces O x K results, out[o, k] = reduce_r x[o, r, k], stored in the row-major order of the kept dims
// (which is the output's order, keepdim or not). Three cases:
//
//   K == 1   reduced dims innermost (sum over the last dim, over all dims, ...): each output reduces one
//            contiguous row of R elements -> SIMD row reduction (reduce_row).
//   K  > 1   reduced dims outermost or in the middle (the bias gradient sum(dy, {0}), dim 1 of [B, T, C]):
//            for each o, accumulate rows of K elements into a vector of K accumulators -> SIMD across the kept
//            inner dims (the column branch of reduce_block). No copy.
//   other    reduced dims not adjacent ({0, 2} of [A, B, C]) or a non-contiguous input with gaps or stride 0
//            (a strided slice, an expanded gradient): permute the kept dims first and the reduced dims last,
//            copy to contiguous, then it is the K == 1 case.
//
// A transposed (permuted but gap-free) input is not copied: its dims are taken in memory order, where it is
// contiguous, and the first two cases apply; only the small result is permuted back (finish). Summing
// x.t() over its last dim is then a column reduction of x.
//
// Size-1 dims never move the index, so they are ignored when classifying (reducing [3, 1, 4] over {0, 2} is
// a full reduction of 12 contiguous elements).
//
// ---- Determinism ----------------------------------------------------------------------------------------------
// The work is cut into fixed-size pieces that depend only on the shape, never on the thread count: a row of R
// elements into chunks of kRowChunk elements, the R rows of a column reduction into chunks of kColumnRowChunk
// rows (and the K columns into tiles of kColumnTile). Each piece is reduced by one thread into its own partial
// result, and the partials of one output are then combined in a fixed pairwise order. So the bits of a result
// are the same at 1 thread and at 64, whether or not the input is big enough to go parallel at all.
//
// ---- Accuracy of float32 sums ---------------------------------------------------------------------------------
// float32 sums accumulate in float32 SIMD lanes, not in float64: a float64 accumulator would halve the SIMD
// width. The error stays small because no single accumulator sees many additions. In a row chunk of
// kRowChunk = 4096 elements, four batches of W lanes (W = 16 with AVX-512, 8 with AVX2) give 4W independent
// partial sums of 4096 / 4W = 64 (AVX-512) to 128 (AVX2) elements each; lanes and then chunks are combined
// pairwise. The standard bound for recursive summation of n terms is |error| <= (n - 1) u sum|x_i| with
// u = 2^-24 ~ 6e-8 (Higham, "Accuracy and Stability of Numerical Algorithms", eq. 4.4); for this blocked
// scheme n - 1 becomes (elements per lane) + log2(lanes) + log2(chunks), about 64 + 6 + 20 ~ 90 for a
// billion elements, i.e. a relative error below ~5e-6 in the worst case and ~sqrt(90) u ~ 6e-7 typically,
// against ~n u for a naive left-to-right float loop. Column reductions accumulate kColumnRowChunk = 256 rows
// per lane before their pairwise combine, so their bound is ~(256 + log2(R / 256)) u.

#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/strided.h"
#include "kernels/parallel_region.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace tg {

namespace {

// ================================================================================================================
// Dims and layout
// ================================================================================================================

std::string dims_to_string(const std::vector<std::int64_t>& dims) { return to_string(Shape(dims)); }

// The reduced dims as a mask over x's dims. Empty `dims` means every dim; negative dims count from the end;
// a dim named twice is an error (as in PyTorch). A 0-d tensor accepts dim 0 / -1, which reduces nothing.
std::vector<bool> reduced_mask(const char* op, const Tensor& x, const std::vector<std::int64_t>& dims) {
    const std::int64_t ndim = x.dim();
    std::vector<bool> mask(static_cast<std::size_t>(ndim), dims.empty());
    std::vector<bool> seen(static_cast<std::size_t>(std::max<std::int64_t>(ndim, 1)), false);
    for (std::int64_t d : dims) {
        const std::int64_t nd = normalize_dim(d, ndim, op);
        if (seen[nd]) {
            throw ValueError(std::string(op) + ": dim " + std::to_string(nd) + " appears more than once in dims " +
                             dims_to_string(dims) + " for input of shape " + to_string(x.shape()));
        }
        seen[nd] = true;
        if (ndim > 0) mask[nd] = true;
    }
    return mask;
}

// The plan of one reduction: the [O, R, K] source and the shapes of the result.
struct Reduction {
    Tensor src;             // contiguous; viewed as [O, R, K]
    std::int64_t O = 1, R = 1, K = 1;
    Shape out_shape;        // the result's shape (reduced dims dropped unless keepdim)
    Shape keep_shape;       // the result's shape with reduced dims kept as 1 (for broadcasting in backward)
    // The kernel writes its O x K results in the memory order of src's kept dims. When src is a transposed
    // view, that differs from the logical order: raw_shape is the kept sizes in kernel order and
    // raw_to_logical the permutation that puts them back (empty when the orders agree).
    Shape raw_shape;
    std::vector<std::int64_t> raw_to_logical;
};

// If the size > 1 dims of `shape` split into [before, reduced block, after] with the reduced ones adjacent,
// sets O, R, K and returns true.
bool adjacent_block(const Shape& shape, const std::vector<bool>& reduced, std::int64_t& O, std::int64_t& R,
                    std::int64_t& K) {
    int phase = 0;  // 0: before the reduced block, 1: inside it, 2: after it
    O = R = K = 1;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] == 1) continue;  // never moves the index: either side of the block
        if (reduced[d]) {
            if (phase == 2) return false;
            phase = 1;
            R *= shape[d];
        } else if (phase == 0) {
            O *= shape[d];
        } else {
            phase = 2;
            K *= shape[d];
        }
    }
    return true;  // (when nothing of size > 1 is reduced, every dim went into O: R = K = 1)
}

Reduction plan_reduction(const Tensor& x, const std::vector<bool>& reduced, bool keepdim) {
    NoGradGuard no_grad;  // internal views and copies: the op records its own single node
    Reduction plan;
    const Shape& shape = x.shape();
    const std::size_t nd = shape.size();
    for (std::size_t d = 0; d < nd; ++d) {
        plan.keep_shape.push_back(reduced[d] ? 1 : shape[d]);
        if (!reduced[d] || keepdim) plan.out_shape.push_back(reduced[d] ? 1 : shape[d]);
        if (!reduced[d]) plan.raw_shape.push_back(shape[d]);
    }

    // Fast paths, no copy: x is contiguous, or a permutation of a contiguous layout (a transpose of one;
    // then xm = x with its dims in memory order, largest stride first, is contiguous), and in memory order
    // the reduced dims form one adjacent block.
    std::vector<std::int64_t> order(nd);
    for (std::size_t d = 0; d < nd; ++d) order[d] = static_cast<std::int64_t>(d);
    if (!x.is_contiguous()) {
        std::stable_sort(order.begin(), order.end(),
                         [&](std::int64_t a, std::int64_t b) { return x.stride(a) > x.stride(b); });
    }
    const Tensor xm = x.is_contiguous() ? x : x.permute(order);  // a view: no copy
    if (xm.is_contiguous()) {
        Shape mem_shape;
        std::vector<bool> mem_reduced;
        for (std::int64_t d : order) mem_shape.push_back(shape[d]), mem_reduced.push_back(reduced[d]);
        if (adjacent_block(mem_shape, mem_reduced, plan.O, plan.R, plan.K)) {
            plan.src = xm;
            // Kept dims in memory order; if that is not ascending, remember how to permute the result back.
            std::vector<std::int64_t> kept_mem;
            for (std::int64_t d : order)
                if (!reduced[d]) kept_mem.push_back(d);
            if (!std::is_sorted(kept_mem.begin(), kept_mem.end())) {
                plan.raw_shape.clear();
                for (std::int64_t d : kept_mem) plan.raw_shape.push_back(shape[d]);
                // Result dim i is the i-th kept dim in logical order; it sits at raw position p[i].
                std::vector<std::int64_t> sorted = kept_mem;
                std::sort(sorted.begin(), sorted.end());
                for (std::int64_t d : sorted)
                    plan.raw_to_logical.push_back(std::find(kept_mem.begin(), kept_mem.end(), d) - kept_mem.begin());
            }
            return plan;
        }
    }

    // General case: kept dims first (in order), reduced dims last, one contiguous copy -> K == 1.
    std::vector<std::int64_t> perm;
    std::int64_t O = 1, R = 1;
    for (std::size_t d = 0; d < nd; ++d)
        if (!reduced[d]) perm.push_back(static_cast<std::int64_t>(d)), O *= shape[d];
    for (std::size_t d = 0; d < nd; ++d)
        if (reduced[d]) perm.push_back(static_cast<std::int64_t>(d)), R *= shape[d];
    plan.src = x.permute(perm).contiguous();
    plan.O = O, plan.R = R, plan.K = 1;
    return plan;
}

// The kernel's raw result (O x K values in kernel order) as the reduction's output: permuted back to the
// logical order of the kept dims if needed (a copy of the small result), then shaped as out_shape.
Tensor finish(const Reduction& plan, const Tensor& raw) {
    if (plan.raw_to_logical.empty()) return raw.view(plan.out_shape);
    NoGradGuard no_grad;
    return raw.view(plan.raw_shape).permute(plan.raw_to_logical).contiguous().view(plan.out_shape);
}

// ================================================================================================================
// Reduction operators. Each works on scalars and on xsimd batches alike:
//   identity      the value of an empty reduction
//   map(x, c)     what is accumulated for element x (c: a per-output "center", used only by var)
//   combine(a, b) how two accumulations merge; associative, so chunks may be combined in any fixed order
// ================================================================================================================

struct SumOp {
    static constexpr bool kUsesCenter = false;
    template <typename A> static A identity() { return A(0); }
    template <typename V> static V map(V x, V) { return x; }
    template <typename V> static V combine(V a, V b) { return a + b; }
};

// Sum of squared deviations from the center (the mean): the second pass of var.
struct SquaredDeviationOp {
    static constexpr bool kUsesCenter = true;
    template <typename A> static A identity() { return A(0); }
    template <typename V> static V map(V x, V c) { return (x - c) * (x - c); }
    template <typename V> static V combine(V a, V b) { return a + b; }
};

// max/min propagate NaN like PyTorch: once a NaN is seen, it wins.
template <typename V> auto is_nan(V v) {
    if constexpr (std::is_arithmetic_v<V>) {
        if constexpr (std::is_floating_point_v<V>) return std::isnan(v);
        else return false;
    } else {
        return xsimd::isnan(v);
    }
}

struct MaxOp {
    static constexpr bool kUsesCenter = false;
    template <typename A> static A identity() {
        if constexpr (std::is_floating_point_v<A>) return -std::numeric_limits<A>::infinity();
        else return std::numeric_limits<A>::lowest();
    }
    template <typename V> static V map(V x, V) { return x; }
    template <typename V> static V combine(V a, V b) {
        if constexpr (std::is_arithmetic_v<V>) return (a > b || is_nan(a)) ? a : b;
        else return xsimd::select((a > b) | xsimd::isnan(a), a, b);
    }
};

struct MinOp {
    static constexpr bool kUsesCenter = false;
    template <typename A> static A identity() {
        if constexpr (std::is_floating_point_v<A>) return std::numeric_limits<A>::infinity();
        else return std::numeric_limits<A>::max();
    }
    template <typename V> static V map(V x, V) { return x; }
    template <typename V> static V combine(V a, V b) {
        if constexpr (std::is_arithmetic_v<V>) return (a < b || is_nan(a)) ? a : b;
        else return xsimd::select((a < b) | xsimd::isnan(a), a, b);
    }
};

// ================================================================================================================
// Kernels
// ================================================================================================================

constexpr std::int64_t kRowChunk = 4096;       // elements of one row reduced by one task (K == 1)
constexpr std::int64_t kColumnTile = 1024;     // columns of one column-reduction task (K > 1)
constexpr std::int64_t kColumnRowChunk = 256;  // rows of one column-reduction task

// Runs fn(u) for u in [0, units), in parallel when the total work is above the grain. Each unit writes only
// its own outputs, so the result does not depend on how units are spread over threads.
template <typename Fn>
void for_units(std::int64_t units, std::int64_t work_per_unit, Fn fn) {
    work_per_unit = std::max<std::int64_t>(work_per_unit, 1);
    if (units <= 1 || units * work_per_unit < detail::kParallelGrain) {
        for (std::int64_t u = 0; u < units; ++u) fn(u);
        return;
    }
    const std::int64_t grain = std::max<std::int64_t>(1, detail::kParallelGrain / 2 / work_per_unit);
    const kernels::ParallelRegion region;
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, units, grain), [&](const tbb::blocked_range<std::int64_t>& r) {
        for (std::int64_t u = r.begin(); u < r.end(); ++u) fn(u);
    });
}

template <typename T, typename A>
inline constexpr bool kSimd = std::is_same_v<T, A> && (std::is_same_v<T, float> || std::is_same_v<T, double>);

// Reduces x[0..n) (contiguous) with center c: four SIMD accumulators, a fixed-order fold of their lanes,
// then the scalar tail.
template <typename Op, typename T, typename A>
A reduce_row(const T* x, std::int64_t n, A c) {
    A result = Op::template identity<A>();
    std::int64_t i = 0;
    if constexpr (kSimd<T, A>) {
        using V = xsimd::batch<A>;
        constexpr std::int64_t W = V::size;
        if (n >= W) {
            const V vc(c);
            V acc0(result), acc1(result), acc2(result), acc3(result);
            for (; i + 4 * W <= n; i += 4 * W) {
                acc0 = Op::combine(acc0, Op::map(V::load_unaligned(x + i), vc));
                acc1 = Op::combine(acc1, Op::map(V::load_unaligned(x + i + W), vc));
                acc2 = Op::combine(acc2, Op::map(V::load_unaligned(x + i + 2 * W), vc));
                acc3 = Op::combine(acc3, Op::map(V::load_unaligned(x + i + 3 * W), vc));
            }
            for (; i + W <= n; i += W) acc0 = Op::combine(acc0, Op::map(V::load_unaligned(x + i), vc));
            const V acc = Op::combine(Op::combine(acc0, acc1), Op::combine(acc2, acc3));
            alignas(64) A lanes[W];
            acc.store_aligned(lanes);
            for (std::int64_t w = W; w > 1; w /= 2)  // pairwise fold of the lanes: W is a power of two
                for (std::int64_t l = 0; l < w / 2; ++l) lanes[l] = Op::combine(lanes[l], lanes[l + w / 2]);
            result = lanes[0];
        }
    }
    for (; i < n; ++i) result = Op::combine(result, Op::map(static_cast<A>(x[i]), c));
    return result;
}

// acc[k] = reduce_{r < rows} map(x[r·stride + k], c[k]) for k < n: one task of a column reduction. The
// columns are taken in blocks of four SIMD vectors whose accumulators stay in registers while all the rows go
// by, then a vector at a time, then the scalar tail. Each column still combines its rows in order r = 0, 1, ...
// starting from the identity, and the same columns take the SIMD and the scalar path as when the rows were
// added one at a time into acc in memory, so the bits are the same; the old way made every row wait for the
// previous row's store of acc to be forwarded to its load (a sum over the rows of a (2048, 128) gradient:
// 29.7 µs on one core, see docs/performance.md, "Session 11").
template <typename Op, typename T, typename A>
void accumulate_rows(A* acc, const T* x, std::int64_t stride, std::int64_t rows, const A* c, std::int64_t n) {
    const auto center = [&](std::int64_t k) { return Op::kUsesCenter ? c[k] : A(0); };
    std::int64_t k = 0;
    if constexpr (kSimd<T, A>) {
        using V = xsimd::batch<A>;
        constexpr std::int64_t W = V::size;
        const auto centers = [&](std::int64_t k0) { return Op::kUsesCenter ? V::load_unaligned(c + k0) : V(A(0)); };
        for (; k + 4 * W <= n; k += 4 * W) {
            const V c0 = centers(k), c1 = centers(k + W), c2 = centers(k + 2 * W), c3 = centers(k + 3 * W);
            V a0(Op::template identity<A>()), a1 = a0, a2 = a0, a3 = a0;
            for (std::int64_t r = 0; r < rows; ++r) {
                const T* xr = x + r * stride + k;
                a0 = Op::combine(a0, Op::map(V::load_unaligned(xr), c0));
                a1 = Op::combine(a1, Op::map(V::load_unaligned(xr + W), c1));
                a2 = Op::combine(a2, Op::map(V::load_unaligned(xr + 2 * W), c2));
                a3 = Op::combine(a3, Op::map(V::load_unaligned(xr + 3 * W), c3));
            }
            a0.store_unaligned(acc + k);
            a1.store_unaligned(acc + k + W);
            a2.store_unaligned(acc + k + 2 * W);
            a3.store_unaligned(acc + k + 3 * W);
        }
        for (; k + W <= n; k += W) {
            const V c0 = centers(k);
            V a0(Op::template identity<A>());
            for (std::int64_t r = 0; r < rows; ++r) a0 = Op::combine(a0, Op::map(V::load_unaligned(x + r * stride + k), c0));
            a0.store_unaligned(acc + k);
        }
    }
    for (; k < n; ++k) {
        A a = Op::template identity<A>();
        for (std::int64_t r = 0; r < rows; ++r) a = Op::combine(a, Op::map(static_cast<A>(x[r * stride + k]), center(k)));
        acc[k] = a;
    }
}

// Combines `count` partial vectors of `width` accumulators (laid out one after another) pairwise into the
// first: ((p0 + p1) + (p2 + p3)) + ... The order is fixed by `count` alone.
template <typename Op, typename A>
void combine_pairwise(A* partials, std::int64_t count, std::int64_t width) {
    for (std::int64_t step = 1; step < count; step *= 2)
        for (std::int64_t i = 0; i + step < count; i += 2 * step) {
            A* into = partials + i * width;
            const A* from = partials + (i + step) * width;
            for (std::int64_t k = 0; k < width; ++k) into[k] = Op::combine(into[k], from[k]);
        }
}

// out[o, k] = reduce_r map(x[o, r, k], center[o, k]) for the contiguous [O, R, K] block x.
template <typename Op, typename T, typename A>
void reduce_block(const T* x, std::int64_t O, std::int64_t R, std::int64_t K, const A* center, A* out) {
    if (O * K == 0) return;
    if (K == 1) {
        // Row reduction; a long row is cut into chunks reduced separately, then combined pairwise.
        const std::int64_t chunks = std::max<std::int64_t>(1, (R + kRowChunk - 1) / kRowChunk);
        if (chunks == 1) {
            for_units(O, R, [&](std::int64_t o) {
                out[o] = reduce_row<Op>(x + o * R, R, Op::kUsesCenter ? center[o] : A(0));
            });
            return;
        }
        std::vector<A> partials(static_cast<std::size_t>(O * chunks));
        for_units(O * chunks, kRowChunk, [&](std::int64_t u) {
            const std::int64_t o = u / chunks, first = (u % chunks) * kRowChunk;
            partials[u] = reduce_row<Op>(x + o * R + first, std::min(kRowChunk, R - first),
                                         Op::kUsesCenter ? center[o] : A(0));
        });
        for_units(O, chunks, [&](std::int64_t o) {
            combine_pairwise<Op>(partials.data() + o * chunks, chunks, 1);
            out[o] = partials[o * chunks];
        });
        return;
    }

    // Column reduction: task (o, tile, row chunk) accumulates rows [r0, r1) of columns [k0, k1).
    const std::int64_t tiles = (K + kColumnTile - 1) / kColumnTile;
    const std::int64_t chunks = std::max<std::int64_t>(1, (R + kColumnRowChunk - 1) / kColumnRowChunk);
    // With one row chunk the tasks write straight into out; otherwise into partials [O, chunks, K].
    std::vector<A> partials(chunks > 1 ? static_cast<std::size_t>(O * chunks * K) : 0);
    const std::int64_t rows_per_task = std::min(R, kColumnRowChunk);
    for_units(O * tiles * chunks, rows_per_task * std::min(K, kColumnTile), [&](std::int64_t u) {
        const std::int64_t chunk = u % chunks, tile = (u / chunks) % tiles, o = u / (chunks * tiles);
        const std::int64_t k0 = tile * kColumnTile, width = std::min(kColumnTile, K - k0);
        const std::int64_t r0 = chunk * kColumnRowChunk, r1 = std::min(R, r0 + kColumnRowChunk);
        A* acc = chunks > 1 ? partials.data() + (o * chunks + chunk) * K + k0 : out + o * K + k0;
        const A* c = Op::kUsesCenter ? center + o * K + k0 : nullptr;
        accumulate_rows<Op>(acc, x + (o * R + r0) * K + k0, K, r1 - r0, c, width);
    });
    if (chunks > 1) {
        for_units(O, chunks * K, [&](std::int64_t o) {
            A* p = partials.data() + o * chunks * K;
            combine_pairwise<Op>(p, chunks, K);
            std::copy(p, p + K, out + o * K);
        });
    }
}

// Runs Op over a planned reduction into a new tensor of out_dtype, accumulating in out_dtype's C++ type.
// Returns the raw O x K results in kernel order (see finish); `center`, if given, is laid out alike.
template <typename Op>
Tensor run_reduction(const Reduction& plan, DType out_dtype, const Tensor& center = Tensor()) {
    Tensor out = empty({plan.O * plan.K}, out_dtype);
    dispatch(plan.src.dtype(), [&](auto in_tag) {
        using T = decltype(in_tag);
        dispatch(out_dtype, [&](auto out_tag) {
            using A = decltype(out_tag);
            // Only the pairs used below are instantiated with real work: T -> T and int32 -> int64.
            if constexpr (std::is_same_v<T, A> || (std::is_same_v<T, std::int32_t> && std::is_same_v<A, std::int64_t>)) {
                const A* c = center.defined() ? center.data<A>() : nullptr;
                reduce_block<Op>(plan.src.data<T>(), plan.O, plan.R, plan.K, c, out.data<A>());
            } else {
                assert(false && "run_reduction: unsupported dtype pair");
            }
        });
    });
    return out;
}

void require_floating(const char* op, const Tensor& x) {
    if (!is_floating(x.dtype())) {
        throw DTypeError(std::string(op) + ": expected a floating input, got " + x.describe() +
                         " (convert it first, e.g. x.to(tg::kFloat32))");
    }
}

void require_nonempty(const char* op, const Tensor& x, const Reduction& plan, const std::vector<std::int64_t>& dims) {
    if (plan.R == 0) {
        throw IndexError(std::string(op) + ": cannot reduce over an empty dimension: input shape " +
                         to_string(x.shape()) + ", dims " + (dims.empty() ? std::string("all") : dims_to_string(dims)) +
                         " (the reduction has no identity)");
    }
}

// The gradient dout of a reduction's output (out_shape) as a view of the input's shape: reshape to keep_shape
// (reduced dims back as size 1), then expand (stride 0) along the reduced dims.
Tensor expand_back(const Tensor& dout, const Shape& keep_shape, const Shape& in_shape) {
    return dout.reshape(keep_shape).expand(in_shape);
}

}  // namespace

// ================================================================================================================
// sum
// ================================================================================================================

// y = sum_r x_r. Integer inputs sum into int64 (like torch.sum), floating ones keep their dtype.
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
    const Reduction plan = plan_reduction(x, reduced_mask("sum", x, dims), keepdim);
    const DType out_dtype = is_floating(x.dtype()) ? x.dtype() : kInt64;
    Tensor out = finish(plan, run_reduction<SumOp>(plan, out_dtype));
    // dy/dx_r = 1: every input element gets the gradient of its output.
    autograd::record("sum", out, {x}, [keep = plan.keep_shape, in = x.shape()](const Tensor& dout) {
        return autograd::Grads{expand_back(dout, keep, in)};
    });
    return out;
}

// ================================================================================================================
// mean
// ================================================================================================================

// y = (1/R) sum_r x_r over the R reduced elements. Floating only (like torch.mean); an empty reduction is
// 0/0 = NaN.
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
    require_floating("mean", x);
    const Reduction plan = plan_reduction(x, reduced_mask("mean", x, dims), keepdim);
    Tensor raw = run_reduction<SumOp>(plan, x.dtype());
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        T* y = raw.data<T>();
        for (std::int64_t i = 0; i < raw.numel(); ++i) y[i] /= static_cast<T>(plan.R);
    });
    Tensor out = finish(plan, raw);
    // dy/dx_r = 1/R.
    autograd::record("mean", out, {x}, [keep = plan.keep_shape, in = x.shape(), R = plan.R](const Tensor& dout) -> autograd::Grads {
        // BEGIN EXERCISE ch2.mean_backward
        return autograd::Grads{expand_back(dout / static_cast<double>(R), keep, in)};
        // END EXERCISE
    });
    return out;
}

// ================================================================================================================
// max, min
// ================================================================================================================

namespace {

// Backward of max/min over dims (like torch.amax/amin): the gradient is split evenly among the elements equal
// to the extreme value, dx_r = dy * [x_r == y] / #{r : x_r == y}. A single extreme gets all of dy; two tied
// maxima get dy/2 each. (torch.max(x, dim) returning indices instead sends all of it to one index.)
Tensor extreme_backward(const Tensor& dout, const Tensor& x, const Tensor& out, const Shape& keep_shape,
                        const std::vector<std::int64_t>& dims) {
    // BEGIN EXERCISE ch2.max_backward
    const Tensor hit = eq(x, out.reshape(keep_shape));  // 1 where x_r == y (broadcast over the reduced dims)
    const Tensor count = sum(hit, dims, /*keepdim=*/true);
    return hit * (dout.reshape(keep_shape) / count);
    // END EXERCISE
}

template <typename Op>
Tensor extreme(const char* op, const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
    const Reduction plan = plan_reduction(x, reduced_mask(op, x, dims), keepdim);
    require_nonempty(op, x, plan, dims);
    Tensor out = finish(plan, run_reduction<Op>(plan, x.dtype()));
    autograd::record(op, out, {x},
                     [xs = autograd::SavedTensor(x), ys = autograd::SavedTensor(out), keep = plan.keep_shape,
                      dims](const Tensor& dout) {
                         return autograd::Grads{extreme_backward(dout, xs.get(), ys.get(), keep, dims)};
                     });
    return out;
}

}  // namespace

Tensor max(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
    return extreme<MaxOp>("max", x, dims, keepdim);
}

Tensor min(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
    return extreme<MinOp>("min", x, dims, keepdim);
}

// ================================================================================================================
// argmax, argmin (not differentiable: the result is an index)
// ================================================================================================================

namespace {

// out[o, k] = the first r with x[o, r, k] extreme (NaN counts as the extreme, like PyTorch). Scalar loops:
// each output is one task, so the first index wins regardless of threads.
template <bool kMax>
Tensor arg_extreme(const char* op, const Tensor& x, std::int64_t dim, bool keepdim) {
    const std::int64_t d = normalize_dim(dim, x.dim(), op);
    std::vector<bool> reduced(static_cast<std::size_t>(x.dim()), false);
    if (x.dim() > 0) reduced[d] = true;
    const Reduction plan = plan_reduction(x, reduced, keepdim);
    require_nonempty(op, x, plan, {dim});
    Tensor raw = empty({plan.O * plan.K}, kInt64);
    std::int64_t* idx = raw.data<std::int64_t>();
    const std::int64_t R = plan.R, K = plan.K;
    dispatch(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* src = plan.src.data<T>();
        for_units(plan.O * K, R, [&](std::int64_t u) {
            const std::int64_t o = u / K, k = u % K;
            const T* p = src + o * R * K + k;
            T best = p[0];
            std::int64_t best_r = 0;
            for (std::int64_t r = 1; r < R && !is_nan(best); ++r) {
                const T v = p[r * K];
                if ((kMax ? v > best : v < best) || is_nan(v)) best = v, best_r = r;
            }
            idx[u] = best_r;
        });
    });
    return finish(plan, raw);
}

}  // namespace

Tensor argmax(const Tensor& x, std::int64_t dim, bool keepdim) { return arg_extreme<true>("argmax", x, dim, keepdim); }

Tensor argmin(const Tensor& x, std::int64_t dim, bool keepdim) { return arg_extreme<false>("argmin", x, dim, keepdim); }

// ================================================================================================================
// var
// ================================================================================================================

// var = sum_r (x_r - mean)^2 / (R - correction), correction = 1 by default (Bessel's unbiased estimate), like
// torch.var. Floating only.
//
// Two passes: first the mean, then the sum of squared deviations from it. Why not the one-pass textbook
// formula E[x^2] - E[x]^2: it cancels catastrophically when |mean| >> std (float32 data around 1000 with std
// 0.01 gives garbage, even negative variances). Why not Welford's online update: it needs a division per
// element, so it neither vectorises nor chunks as cheaply, and its only gain, reading the data once, matters
// little when the data fits in cache or the reduction is memory-light. The two-pass result has error
// O(n u) var, independent of the mean (Chan, Golub & LeVeque, "Algorithms for computing the sample variance",
// 1983), and both passes are the same SIMD, chunked, deterministic kernels as sum.
//
// R <= correction divides by 0 (PyTorch too): inf, or NaN for 0/0 (a single element, an empty reduction).
Tensor var(const Tensor& x, const std::vector<std::int64_t>& dims, std::int64_t correction, bool keepdim) {
    require_floating("var", x);
    if (correction < 0) {
        throw ValueError("var: correction must be >= 0, got " + std::to_string(correction) + " for input of shape " +
                         to_string(x.shape()));
    }
    const Reduction plan = plan_reduction(x, reduced_mask("var", x, dims), keepdim);
    // Pass 1: the mean of each output, laid out [O, K] like the output.
    Tensor mu = run_reduction<SumOp>(plan, x.dtype());
    // Pass 2: sum of (x - mean)^2, then divide by max(R - correction, 0).
    Tensor raw;
    dispatch_floating(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        T* m = mu.data<T>();
        for (std::int64_t i = 0; i < mu.numel(); ++i) m[i] /= static_cast<T>(plan.R);
        raw = run_reduction<SquaredDeviationOp>(plan, x.dtype(), mu);
        const T divisor = static_cast<T>(std::max<std::int64_t>(plan.R - correction, 0));
        T* y = raw.data<T>();
        for (std::int64_t i = 0; i < raw.numel(); ++i) y[i] /= divisor;
    });
    Tensor out = finish(plan, raw);
    // d var / dx_r = 2 (x_r - mean) / (R - correction); the mean's own dependence on x_r drops out because
    // sum_r (x_r - mean) = 0.
    autograd::record("var", out, {x},
                     [xs = autograd::SavedTensor(x), mean = finish(plan, mu).reshape(plan.keep_shape), keep = plan.keep_shape,
                      divisor = static_cast<double>(std::max<std::int64_t>(plan.R - correction, 0))](
                         const Tensor& dout) -> autograd::Grads {
                         // BEGIN EXERCISE ch2.var_backward
                         const Tensor centered = xs.get() - mean;
                         return autograd::Grads{centered * (dout.reshape(keep) * (2.0 / divisor))};
                         // END EXERCISE
                     });
    return out;
}

// ================================================================================================================
// sum_to
// ================================================================================================================

// Sums x down to `shape`, the inverse of x = y.expand(...) for y of `shape`: the leading dims x has beyond
// `shape` are summed away, and so are the dims where `shape` has 1 and x does not. The autograd engine
// calls this to undo broadcasting; it is differentiable because it is built from sum and reshape.
Tensor sum_to(const Tensor& x, const Shape& shape) {
    const Shape& from = x.shape();
    // `shape` may have more dims than x only through leading 1s (they are restored by the final reshape).
    std::size_t extra = 0;
    while (shape.size() - extra > from.size() && shape[extra] == 1) ++extra;
    const Shape target(shape.begin() + static_cast<std::ptrdiff_t>(extra), shape.end());
    const std::size_t lead = from.size() >= target.size() ? from.size() - target.size() : 0;
    bool ok = target.size() <= from.size();
    for (std::size_t i = 0; ok && i < target.size(); ++i)
        ok = target[i] == from[lead + i] || target[i] == 1;
    if (!ok) {
        throw ShapeError("sum_to: cannot sum a tensor of shape " + to_string(from) + " to shape " + to_string(shape) +
                         " (the target must broadcast to the source)");
    }
    // BEGIN EXERCISE ch3.sum_to
    std::vector<std::int64_t> dims;
    for (std::size_t d = 0; d < lead; ++d) dims.push_back(static_cast<std::int64_t>(d));
    for (std::size_t i = 0; i < target.size(); ++i)
        if (target[i] == 1 && from[lead + i] != 1) dims.push_back(static_cast<std::int64_t>(lead + i));
    if (dims.empty()) return from == shape ? x : x.reshape(shape);  // only size-1 dims differ
    return sum(x, dims, /*keepdim=*/true).reshape(shape);
    // END EXERCISE
}

}  // namespace tg
