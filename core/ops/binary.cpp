// Elementwise binary ops with NumPy broadcasting: forward and backward rule side by side.
//
// Every backward rule returns gradients in the broadcast output shape; the autograd engine sums each back to
// its input's shape (sum_to). So `a + b` with a: [B, C] and b: [C] needs no special code here.

#include "core/node.h"
#include "core/ops.h"
#include "core/strided.h"
#include "kernels/elementwise.h"

#include <cmath>

namespace tg {

namespace {

using autograd::Grads;
using autograd::SavedTensor;

void check_defined(const Tensor& a, const Tensor& b, const char* op) {
    if (!a.defined() || !b.defined()) throw ValueError(std::string(op) + ": an operand is an undefined tensor");
}

// out = op(a, b) elementwise over the broadcast shape, computed in dtype `compute`.
template <typename Op>
Tensor binary_map(const char* name, const Tensor& a_in, const Tensor& b_in, DType compute, Op op) {
    check_defined(a_in, b_in, name);
    const Tensor a = a_in.dtype() == compute ? a_in : a_in.detach().to(compute);
    const Tensor b = b_in.dtype() == compute ? b_in : b_in.detach().to(compute);
    const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
    Tensor out = empty(shape, compute);
    dispatch(compute, [&](auto tag) {
        using T = decltype(tag);
        const T* pa = a.data<T>();
        const T* pb = b.data<T>();
        T* po = out.data<T>();
        detail::for_each_row<3>(shape,
                                {detail::broadcast_strides(a.shape(), a.strides(), shape),
                                 detail::broadcast_strides(b.shape(), b.strides(), shape), out.strides()},
                                [&](const auto& off, const auto& inner, std::int64_t n) {
                                    kernels::map2_row(pa + off[0], inner[0], pb + off[1], inner[1], po + off[2],
                                                      inner[2], n, op);
                                });
    });
    return out;
}

// (An undefined operand gets a placeholder dtype here so that binary_map can report it by the op's name.)
DType promoted(const Tensor& a, const Tensor& b) {
    if (!a.defined() || !b.defined()) return kFloat32;
    return promote_types(a.dtype(), b.dtype());
}

// Division and powers are computed in floating point even for integer operands (true division, like PyTorch).
DType promoted_floating(const Tensor& a, const Tensor& b) {
    const DType t = promoted(a, b);
    return is_floating(t) ? t : kFloat32;
}

// x^y for scalars and xsimd batches. pow is only computed in floating dtypes; the integer branch exists so
// that dispatch() can instantiate every dtype.
template <typename V> V power(V x, V y) {
    if constexpr (std::is_integral_v<V>) {
        return static_cast<V>(std::pow(static_cast<double>(x), static_cast<double>(y)));
    } else {
        using std::pow;
        using xsimd::pow;
        return pow(x, y);
    }
}

// atan2(y, x) for scalars and xsimd batches (floating dtypes only; the integer branch lets dispatch()
// instantiate every dtype, as for power above).
template <typename V> V arctan2(V y, V x) {
    if constexpr (std::is_integral_v<V>) {
        return static_cast<V>(std::atan2(static_cast<double>(y), static_cast<double>(x)));
    } else {
        using std::atan2;
        using xsimd::atan2;
        return atan2(y, x);
    }
}

// A scalar operand takes the tensor's dtype, unless that would truncate it (int tensor * 0.5 is float32).
Tensor scalar_like(double value, const Tensor& like) {
    const bool fits = is_floating(like.dtype()) || value == std::trunc(value);
    return scalar_tensor(value, fits ? like.dtype() : kFloat32);
}

}  // namespace

// ---- arithmetic -------------------------------------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
    Tensor out = binary_map("add", a, b, promoted(a, b), [](auto x, auto y) { return x + y; });
    // d(a + b) = da + db
    autograd::record("add", out, {a, b}, [](const Tensor& dout) { return Grads{dout, dout}; });
    return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
    Tensor out = binary_map("sub", a, b, promoted(a, b), [](auto x, auto y) { return x - y; });
    // d(a - b) = da - db
    autograd::record("sub", out, {a, b}, [](const Tensor& dout) { return Grads{dout, neg(dout)}; });
    return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
    Tensor out = binary_map("mul", a, b, promoted(a, b), [](auto x, auto y) { return x * y; });
    // d(a b) = b da + a db
    autograd::record("mul", out, {a, b},
                     [sa = SavedTensor(a), sb = SavedTensor(b), need_a = a.requires_grad(),
                      need_b = b.requires_grad()](const Tensor& dout) -> Grads {
                         // BEGIN EXERCISE ch3.mul_backward
                         return Grads{need_a ? dout * sb.get() : Tensor(), need_b ? dout * sa.get() : Tensor()};
                         // END EXERCISE
                     });
    return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
    Tensor out = binary_map("div", a, b, promoted_floating(a, b), [](auto x, auto y) { return x / y; });
    // d(a / b) = da / b - (a / b²) db = da / b - out / b db
    autograd::record("div", out, {a, b},
                     [sb = SavedTensor(b), sout = SavedTensor(out), need_b = b.requires_grad()](const Tensor& dout) -> Grads {
                         // BEGIN EXERCISE ch3.div_backward
                         const Tensor b = sb.get();
                         const Tensor da = dout / b;
                         return Grads{da, need_b ? neg(da * sout.get()) : Tensor()};
                         // END EXERCISE
                     });
    return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
    Tensor out = binary_map("pow", a, b, promoted_floating(a, b), [](auto x, auto y) {
        return power(x, y);
    });
    // d(a^b) = b a^(b-1) da + a^b ln(a) db. Where a == 0 the second term is taken as 0 (PyTorch's choice:
    // a^b is flat in b there for b > 0, and ln 0 would give 0 * -inf = NaN).
    autograd::record("pow", out, {a, b},
                     [sa = SavedTensor(a), sb = SavedTensor(b), sout = SavedTensor(out), need_a = a.requires_grad(),
                      need_b = b.requires_grad()](const Tensor& dout) {
                         const Tensor a = sa.get(), b = sb.get();
                         Tensor da, db;
                         if (need_a) da = dout * b * pow(a, b - 1.0);
                         if (need_b) {
                             const Tensor safe_log = where(eq(a, scalar_like(0.0, a)), zeros_like(a), log(a));
                             db = dout * sout.get() * safe_log;
                         }
                         return Grads{da, db};
                     });
    return out;
}

Tensor pow(const Tensor& a, double exponent) {
    if (!a.defined()) throw ValueError("pow: the base is an undefined tensor");
    if (exponent == 2.0 && is_floating(a.dtype())) return square(a);
    const DType compute = is_floating(a.dtype()) ? a.dtype() : kFloat32;
    Tensor out = binary_map("pow", a, scalar_tensor(exponent, compute), compute, [](auto x, auto y) {
        return power(x, y);
    });
    // d(a^e) = e a^(e-1) da
    autograd::record("pow", out, {a}, [sa = SavedTensor(a), exponent](const Tensor& dout) {
        if (exponent == 0.0) return Grads{zeros_like(dout)};  // a^0 = 1 is flat (0 * a^-1 would be NaN at 0)
        return Grads{dout * pow(sa.get(), exponent - 1.0) * exponent};
    });
    return out;
}

Tensor atan2(const Tensor& y, const Tensor& x) {
    Tensor out = binary_map("atan2", y, x, promoted_floating(y, x), [](auto v, auto u) { return arctan2(v, u); });
    // d atan2(y, x) = (x dy − y dx) / (x² + y²)
    autograd::record("atan2", out, {y, x}, [sy = SavedTensor(y), sx = SavedTensor(x)](const Tensor& dout) {
        const Tensor y = sy.get(), x = sx.get();
        const Tensor scale = dout / (x * x + y * y);
        return Grads{scale * x, neg(scale * y)};
    });
    return out;
}

Tensor maximum(const Tensor& a, const Tensor& b) {
    Tensor out = binary_map("maximum", a, b, promoted(a, b), [](auto x, auto y) {
        return kernels::select(x >= y, x, y);
    });
    // The gradient goes to the larger operand; at a tie it is split evenly between both (as in PyTorch).
    autograd::record("maximum", out, {a, b}, [sa = SavedTensor(a), sb = SavedTensor(b)](const Tensor& dout) {
        const Tensor a = sa.get(), b = sb.get();
        const Tensor share_a = gt(a, b) + eq(a, b) * 0.5;
        return Grads{dout * share_a, dout * (1.0 - share_a)};
    });
    return out;
}

Tensor minimum(const Tensor& a, const Tensor& b) {
    Tensor out = binary_map("minimum", a, b, promoted(a, b), [](auto x, auto y) {
        return kernels::select(x <= y, x, y);
    });
    autograd::record("minimum", out, {a, b}, [sa = SavedTensor(a), sb = SavedTensor(b)](const Tensor& dout) {
        const Tensor a = sa.get(), b = sb.get();
        const Tensor share_a = lt(a, b) + eq(a, b) * 0.5;
        return Grads{dout * share_a, dout * (1.0 - share_a)};
    });
    return out;
}

// ---- comparisons: 0/1 in the promoted dtype, not differentiable ---------------------------------------------------

#define TG_COMPARISON(NAME, EXPR)                                                               \
    Tensor NAME(const Tensor& a, const Tensor& b) {                                             \
        return binary_map(#NAME, a, b, promoted(a, b), [](auto x, auto y) {                     \
            using V = decltype(x);                                                              \
            return kernels::select(EXPR, V(1), V(0));                                           \
        });                                                                                     \
    }
TG_COMPARISON(eq, x == y)
TG_COMPARISON(ne, x != y)
TG_COMPARISON(lt, x < y)
TG_COMPARISON(le, x <= y)
TG_COMPARISON(gt, x > y)
TG_COMPARISON(ge, x >= y)
#undef TG_COMPARISON

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
    check_defined(a, b, "where");
    if (!condition.defined()) throw ValueError("where: the condition is an undefined tensor");
    const DType compute = promoted(a, b);
    const Shape shape = broadcast_shapes(broadcast_shapes(condition.shape(), a.shape(), "where"), b.shape(), "where");
    // Compute in two steps with the SIMD binary kernel: pick a or b by a 0/1 mask in the compute dtype.
    const Tensor mask = ne(condition.detach(), scalar_tensor(0.0, condition.dtype())).to(compute).expand(shape);
    const Tensor picked_a = binary_map("where", mask, a.detach(), compute, [](auto m, auto x) {
        using V = decltype(x);
        return kernels::select(m != V(0), x, V(0));
    });
    Tensor out = binary_map("where", mask, b.detach(), compute, [](auto m, auto y) {
        using V = decltype(y);
        return kernels::select(m != V(0), V(0), y);
    });
    out = binary_map("where", picked_a, out, compute, [](auto x, auto y) { return x + y; });
    // Rule: the gradient flows to a where the condition holds, to b elsewhere.
    autograd::record("where", out, {a, b}, [mask](const Tensor& dout) {
        const Tensor da = dout * mask;
        return Grads{da, dout - da};
    });
    return out;
}

// ---- operators --------------------------------------------------------------------------------------------------

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double b) { return add(a, scalar_like(b, a)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_like(b, a)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_like(b, a)); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_like(b, a)); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like(a, b), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like(a, b), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like(a, b), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(a, b), b); }

}  // namespace tg
