// Matrix multiplication with torch.matmul semantics, and its backward rule right below.
//
//   a [k]          · b [k]          -> []              dot product
//   a [m, k]       · b [k, n]       -> [m, n]          matrix product
//   a [k]          · b [..., k, n]  -> [..., n]        a becomes a row [1, k]; the added dim is removed again
//   a [..., m, k]  · b [k]          -> [..., m]        b becomes a column [k, 1]; likewise
//   a [A..., m, k] · b [B..., k, n] -> [broadcast(A..., B...), m, n]   batched, batch dims broadcast
//
// Every product ends in kernels::sgemm_batched / dgemm_batched (kernels/gemm.h), which read row-major
// matrices through a leading dimension and a transpose flag. So a transposed or sliced view reaches the GEMM
// without a copy whenever one of its last two dims has stride 1; a broadcast batch dim is a batch stride 0.

#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/strided.h"
#include "kernels/gemm.h"

#include <algorithm>
#include <array>
#include <type_traits>

namespace tg {

namespace {

// One operand as the GEMM reads it: element (r, c) of the matrix at batch offset o is
//   data[o + r * ld + c]   (trans == false)   or   data[o + r + c * ld]   (trans == true).
struct GemmOperand {
    Tensor storage_view;  // the operand itself, or a contiguous copy when neither layout fits
    bool trans = false;
    std::int64_t ld = 1;
};

// Picks the layout that avoids a copy. A dimension of size 1 is never stepped along, so its stride is free and
// is chosen to keep the leading dimension valid (ld >= row length), which the GEMM checks.
GemmOperand as_gemm_operand(const Tensor& x) {
    const std::int64_t rows = x.size(-2), cols = x.size(-1);
    const std::int64_t rs = x.stride(-2), cs = x.stride(-1);
    // Row-major: unit stride along a row, rows at least a row length apart.
    if ((cols <= 1 || cs == 1) && (rows <= 1 || rs >= std::max<std::int64_t>(cols, 1)))
        return {x, false, rows <= 1 ? std::max<std::int64_t>(cols, 1) : rs};
    // Column-major (e.g. w.t()): the GEMM reads it as the transpose of a row-major [cols, rows] matrix.
    if ((rows <= 1 || rs == 1) && (cols <= 1 || cs >= std::max<std::int64_t>(rows, 1)))
        return {x, true, cols <= 1 ? std::max<std::int64_t>(rows, 1) : cs};
    // Anything else (a stride-2 slice, a broadcast row): copy once.
    const Tensor c = x.contiguous();
    return {c, false, std::max<std::int64_t>(cols, 1)};
}

void gemm_batched(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m, std::int64_t n, std::int64_t k,
                  const float* a, std::int64_t lda, std::int64_t stride_a, const float* b, std::int64_t ldb,
                  std::int64_t stride_b, float* c, std::int64_t ldc, std::int64_t stride_c) {
    kernels::sgemm_batched(trans_a, trans_b, batch, m, n, k, 1.0f, a, lda, stride_a, b, ldb, stride_b, 0.0f, c, ldc,
                           stride_c);
}
void gemm_batched(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m, std::int64_t n, std::int64_t k,
                  const double* a, std::int64_t lda, std::int64_t stride_a, const double* b, std::int64_t ldb,
                  std::int64_t stride_b, double* c, std::int64_t ldc, std::int64_t stride_c) {
    kernels::dgemm_batched(trans_a, trans_b, batch, m, n, k, 1.0, a, lda, stride_a, b, ldb, stride_b, 0.0, c, ldc,
                           stride_c);
}

Shape batch_dims(const Tensor& x) { return Shape(x.shape().begin(), x.shape().end() - 2); }
Strides batch_strides(const Tensor& x) { return Strides(x.strides().begin(), x.strides().end() - 2); }

// All rows of a [..., m, k] as one [rows, k] matrix over the same storage, when every leading dim steps
// uniformly from row to row (a contiguous tensor, or a slice of one along the last dim); else undefined.
Tensor stacked_rows(const Tensor& a) {
    const Shape lead(a.shape().begin(), a.shape().end() - 1);
    const Strides lead_strides(a.strides().begin(), a.strides().end() - 1);
    if (a.numel() == 0) return Tensor();
    const detail::RowLayout<1> merged = detail::merge_dims<1>(lead, {lead_strides});
    if (merged.shape.size() != 1) return Tensor();
    return make_tensor(a.storage(), {merged.shape[0], a.size(-1)}, {merged.strides[0][0], a.stride(-1)}, a.offset(),
                       a.dtype());
}

// C = A · B for a [A..., m, k] and b [B..., k, n] (both at least 2-D, shapes already checked); no autograd.
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
    const std::int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);

    // A stack of rows times one matrix (x [B, T, C] · w [C, D], the linear layer) is one tall product
    // [B·T, C] · [C, D]: a single GEMM call with large m instead of B calls with small m.
    if (b.dim() == 2 && a.dim() > 2) {
        if (const Tensor rows = stacked_rows(a); rows.defined()) {
            Shape out_shape = a.shape();
            out_shape.back() = n;
            return matmul_nd(rows, b).view(out_shape);
        }
    }

    const Shape batch = broadcast_shapes(batch_dims(a), batch_dims(b), "matmul");
    Shape out_shape = batch;
    out_shape.push_back(m);
    out_shape.push_back(n);
    Tensor out = empty(out_shape, a.dtype());
    if (out.numel() == 0) return out;
    if (k == 0) return out.zero_();  // an empty sum

    const GemmOperand A = as_gemm_operand(a), B = as_gemm_operand(b);
    // Batch strides of each operand over the broadcast batch shape (0 where it is broadcast), then merged:
    // dims that step uniformly in all three operands collapse into one. The innermost merged dim becomes one
    // strided-batched GEMM call; any outer dims (mixed broadcasting, e.g. [4, 1] against [1, 5]) are looped.
    const std::array<Strides, 3> strides{
        detail::broadcast_strides(batch_dims(a), batch_strides(A.storage_view), batch),
        detail::broadcast_strides(batch_dims(b), batch_strides(B.storage_view), batch),
        detail::broadcast_strides(batch, batch_strides(out), batch)};
    const detail::RowLayout<3> layout = detail::merge_dims<3>(batch, strides);
    const std::size_t inner = layout.shape.size() - 1;
    const std::int64_t calls = numel(layout.shape) / layout.shape[inner];

    dispatch_floating(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* pa = A.storage_view.data<T>();
        const T* pb = B.storage_view.data<T>();
        T* pc = out.data<T>();
        for (std::int64_t call = 0; call < calls; ++call) {
            // Offsets of this call's first matrix: decompose `call` over the outer merged dims.
            std::int64_t oa = 0, ob = 0, oc = 0, rest = call;
            for (std::size_t d = inner; d-- > 0;) {
                const std::int64_t i = rest % layout.shape[d];
                rest /= layout.shape[d];
                oa += i * layout.strides[0][d];
                ob += i * layout.strides[1][d];
                oc += i * layout.strides[2][d];
            }
            gemm_batched(A.trans, B.trans, layout.shape[inner], m, n, k, pa + oa, A.ld, layout.strides[0][inner],
                         pb + ob, B.ld, layout.strides[1][inner], pc + oc, n, layout.strides[2][inner]);
        }
    });
    return out;
}

// ---- backward -------------------------------------------------------------------------------------------------
// C = A·B, so dA = dC·Bᵀ and dB = Aᵀ·dC, batch by batch. The gradients keep the broadcast batch shape of C;
// the engine sums them back over the batch dims an operand was broadcast along (sum_to).
Tensor matmul_recorded(const Tensor& a, const Tensor& b) {
    Tensor out;
    {
        NoGradGuard no_grad;  // the views inside matmul_nd are bookkeeping; the one node is recorded below
        out = matmul_nd(a, b);
    }
    autograd::record("matmul", out, {a, b},
                     [a_saved = autograd::SavedTensor(a), b_saved = autograd::SavedTensor(b),
                      need_a = a.requires_grad(), need_b = b.requires_grad()](const Tensor& dout) -> autograd::Grads {
                         // BEGIN EXERCISE ch5.matmul_backward
                         const Tensor a = a_saved.get(), b = b_saved.get();
                         autograd::Grads grads(2);
                         if (need_a) grads[0] = matmul_nd(dout, b.transpose(-1, -2));  // dA = dC·Bᵀ
                         if (need_b) {
                             if (b.dim() == 2 && a.dim() > 2 && a.size(-1) > 0) {
                                 // One weight for every batch entry: sum_i A_iᵀ·dC_i is one product of the
                                 // stacked rows, [k, B·m] · [B·m, n], instead of B products summed later.
                                 const std::int64_t k = a.size(-1), n = b.size(-1);
                                 grads[1] = matmul_nd(a.reshape({-1, k}).transpose(0, 1), dout.reshape({-1, n}));
                             } else {
                                 grads[1] = matmul_nd(a.transpose(-1, -2), dout);  // dB = Aᵀ·dC
                             }
                         }
                         return grads;
                         // END EXERCISE
                     });
    return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
    if (!a.defined() || !b.defined()) throw ValueError("matmul: an operand is an undefined tensor");
    if (!is_floating(a.dtype()) || !is_floating(b.dtype())) {
        throw DTypeError("matmul: expected float32 or float64 operands, got " + a.describe() + " and " +
                         b.describe() + " (convert integer tensors with .to(kFloat32))");
    }
    if (a.dtype() != b.dtype()) {
        throw DTypeError("matmul: both operands must have the same dtype, got " + a.describe() + " and " +
                         b.describe());
    }
    if (a.dim() == 0 || b.dim() == 0) {
        throw ShapeError("matmul: both operands need at least one dimension, got " + to_string(a.shape()) +
                         " and " + to_string(b.shape()) + " (use mul for a scalar product)");
    }
    const auto shapes = [&] { return to_string(a.shape()) + " by " + to_string(b.shape()); };  // for the messages
    const std::int64_t k_a = a.size(-1), k_b = b.dim() == 1 ? b.size(0) : b.size(-2);
    if (k_a != k_b) {
        throw ShapeError("matmul: cannot multiply " + shapes() + ": inner dimensions " + std::to_string(k_a) +
                         " and " + std::to_string(k_b) + " differ");
    }
    if (a.dim() > 2 || b.dim() > 2) {
        const Shape batch_a = a.dim() > 2 ? batch_dims(a) : Shape{};
        const Shape batch_b = b.dim() > 2 ? batch_dims(b) : Shape{};
        try {
            broadcast_shapes(batch_a, batch_b, "matmul");
        } catch (const ShapeError&) {
            throw ShapeError("matmul: cannot multiply " + shapes() + ": batch dimensions " + to_string(batch_a) +
                             " and " + to_string(batch_b) + " cannot be broadcast");
        }
    }

    // A 1-D operand becomes a matrix (a row on the left, a column on the right); the dim added for it is
    // removed from the result again. unsqueeze and squeeze are differentiable views.
    const Tensor a2 = a.dim() == 1 ? a.unsqueeze(0) : a;  // [k] -> [1, k]
    const Tensor b2 = b.dim() == 1 ? b.unsqueeze(1) : b;  // [k] -> [k, 1]
    Tensor out = matmul_recorded(a2, b2);
    if (b.dim() == 1) out = out.squeeze(-1);
    if (a.dim() == 1) out = out.squeeze(b.dim() == 1 ? -1 : -2);
    return out;
}

}  // namespace tg
