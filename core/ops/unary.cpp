// Elementwise unary ops: forward and backward rule side by side. Integer inputs to floating functions are
// computed in float32 (exp of an int tensor is a float tensor, as in PyTorch).

#include "core/node.h"
#include "core/ops.h"
#include "core/strided.h"
#include "kernels/elementwise.h"
#include "kernels/gelu.h"

#include <cmath>

namespace tg {

namespace {

using autograd::Grads;
using autograd::SavedTensor;

template <typename Op>
Tensor unary_map(const char* name, const Tensor& x_in, DType compute, Op op) {
    if (!x_in.defined()) throw ValueError(std::string(name) + ": the input is an undefined tensor");
    const Tensor x = x_in.dtype() == compute ? x_in : x_in.detach().to(compute);
    Tensor out = empty(x.shape(), compute);
    dispatch(compute, [&](auto tag) {
        using T = decltype(tag);
        const T* px = x.data<T>();
        T* po = out.data<T>();
        detail::for_each_row<2>(x.shape(), {x.strides(), out.strides()},
                                [&](const auto& off, const auto& inner, std::int64_t n) {
                                    kernels::map1_row(px + off[0], inner[0], po + off[1], inner[1], n, op);
                                });
    });
    return out;
}

// The dtype an op computes in: the input's (`same`) or a floating one (`floating`). An undefined input gets a
// placeholder so that unary_map can report it by the op's name.
DType same(const Tensor& x) { return x.defined() ? x.dtype() : kFloat32; }
DType floating(const Tensor& x) { return x.defined() && is_floating(x.dtype()) ? x.dtype() : kFloat32; }

// Math functions that take scalars and xsimd batches alike.
template <typename V> V vexp(V x) { using std::exp; using xsimd::exp; return exp(x); }
template <typename V> V vlog(V x) { using std::log; using xsimd::log; return log(x); }
template <typename V> V vsqrt(V x) { using std::sqrt; using xsimd::sqrt; return sqrt(x); }
template <typename V> V vtanh(V x) { using std::tanh; using xsimd::tanh; return tanh(x); }
template <typename V> V vsin(V x) { using std::sin; using xsimd::sin; return sin(x); }
template <typename V> V vcos(V x) { using std::cos; using xsimd::cos; return cos(x); }

}  // namespace

Tensor neg(const Tensor& x) {
    Tensor out = unary_map("neg", x, same(x), [](auto v) { return -v; });
    autograd::record("neg", out, {x}, [](const Tensor& dout) { return Grads{neg(dout)}; });
    return out;
}

Tensor exp(const Tensor& x) {
    Tensor out = unary_map("exp", x, floating(x), [](auto v) { return vexp(v); });
    // d exp(x) = exp(x) dx: reuse the output.
    autograd::record("exp", out, {x}, [sout = SavedTensor(out)](const Tensor& dout) { return Grads{dout * sout.get()}; });
    return out;
}

Tensor log(const Tensor& x) {
    Tensor out = unary_map("log", x, floating(x), [](auto v) { return vlog(v); });
    // d log(x) = dx / x
    autograd::record("log", out, {x}, [sx = SavedTensor(x)](const Tensor& dout) { return Grads{dout / sx.get()}; });
    return out;
}

Tensor sqrt(const Tensor& x) {
    Tensor out = unary_map("sqrt", x, floating(x), [](auto v) { return vsqrt(v); });
    // d sqrt(x) = dx / (2 sqrt(x))
    autograd::record("sqrt", out, {x}, [sout = SavedTensor(out)](const Tensor& dout) {
        return Grads{dout / (sout.get() * 2.0)};
    });
    return out;
}

Tensor rsqrt(const Tensor& x) {
    Tensor out = unary_map("rsqrt", x, floating(x), [](auto v) { return decltype(v)(1) / vsqrt(v); });
    // d x^(-1/2) = -1/2 x^(-3/2) dx = -1/2 out³ dx
    autograd::record("rsqrt", out, {x}, [sout = SavedTensor(out)](const Tensor& dout) {
        const Tensor y = sout.get();
        return Grads{dout * y * y * y * -0.5};
    });
    return out;
}

Tensor tanh(const Tensor& x) {
    Tensor out = unary_map("tanh", x, floating(x), [](auto v) { return vtanh(v); });
    // d tanh(x) = (1 - tanh²(x)) dx
    autograd::record("tanh", out, {x}, [sout = SavedTensor(out)](const Tensor& dout) -> Grads {
        // BEGIN EXERCISE ch4.tanh_backward
        const Tensor y = sout.get();
        return Grads{dout * (1.0 - y * y)};
        // END EXERCISE
    });
    return out;
}

Tensor sigmoid(const Tensor& x) {
    Tensor out = unary_map("sigmoid", x, floating(x), [](auto v) {
        using V = decltype(v);
        return V(1) / (V(1) + vexp(-v));
    });
    // d σ(x) = σ(x) (1 - σ(x)) dx
    autograd::record("sigmoid", out, {x}, [sout = SavedTensor(out)](const Tensor& dout) -> Grads {
        // BEGIN EXERCISE ch4.sigmoid_backward
        const Tensor y = sout.get();
        return Grads{dout * y * (1.0 - y)};
        // END EXERCISE
    });
    return out;
}

Tensor relu(const Tensor& x) {
    Tensor out = unary_map("relu", x, same(x), [](auto v) {
        using V = decltype(v);
        return kernels::select(v > V(0), v, V(0));
    });
    // d relu(x) = [x > 0] dx (the kink at 0 gets gradient 0, as in PyTorch)
    autograd::record("relu", out, {x}, [sout = SavedTensor(out)](const Tensor& dout) {
        return Grads{dout * gt(sout.get(), scalar_tensor(0.0, dout.dtype()))};
    });
    return out;
}

// Both forms, forward and backward (kernels/gelu.h states the formulas):
//   tanh:  y = ½ x (1 + tanh u),  u = √(2/π)(x + 0.044715 x³);   exact:  y = x Φ(x)
// Contiguous float input runs the vectorised kernels of kernels/gelu.h; anything else (a strided view, an
// integer tensor computed in float32) runs the same formulas above through unary_map.
// GELU has one implementation, the kernel (kernels/gelu.cpp: forward, derivative, and their references). It runs
// on contiguous floating arrays, so a strided or integer input is first copied into one: every layout of the
// same values then gives the same bits.
Tensor gelu(const Tensor& x, GeluApproximation approximate) {
    if (!x.defined()) throw ValueError("gelu: the input is an undefined tensor");
    const bool use_tanh = approximate == GeluApproximation::Tanh;
    const DType dtype = floating(x);
    const Tensor xc = x.detach().to(dtype).contiguous();
    Tensor out = empty(x.shape(), dtype);
    dispatch_floating(dtype, [&](auto tag) {
        using T = decltype(tag);
        if (use_tanh) kernels::gelu_tanh_forward(xc.data<T>(), out.data<T>(), xc.numel());
        else kernels::gelu_erf_forward(xc.data<T>(), out.data<T>(), xc.numel());
    });
    // dx = dy · gelu′(x), the kernel's backward. dx is written over dy when nothing else can see dy's memory
    // (autograd::is_sole_owner: the engine's sum of this node's gradient, e.g. the dx a Linear's backward just
    // made, which the engine drops after this rule): the kernel allows dx = dy, and a new buffer's lines would
    // first be fetched from memory only to be overwritten. Same arithmetic, same bits.
    autograd::record("gelu", out, {x}, [sx = SavedTensor(x), use_tanh](const Tensor& dout) {
        const Tensor x = sx.get().contiguous();
        const bool overwrite_dy = dout.dtype() == x.dtype() && autograd::is_sole_owner(dout);
        const Tensor dy = (dout.dtype() == x.dtype() ? dout : dout.to(x.dtype())).contiguous();
        Tensor dx = overwrite_dy ? dy : empty(x.shape(), x.dtype());
        dispatch_floating(x.dtype(), [&](auto tag) {
            using T = decltype(tag);
            if (use_tanh) kernels::gelu_tanh_backward(x.data<T>(), dy.data<T>(), dx.data<T>(), x.numel());
            else kernels::gelu_erf_backward(x.data<T>(), dy.data<T>(), dx.data<T>(), x.numel());
        });
        return Grads{dx};
    });
    return out;
}

Tensor abs(const Tensor& x) {
    Tensor out = unary_map("abs", x, same(x), [](auto v) { return kernels::select(v < decltype(v)(0), -v, v); });
    // d |x| = sign(x) dx, with sign(0) = 0
    autograd::record("abs", out, {x}, [sx = SavedTensor(x)](const Tensor& dout) {
        const Tensor x = sx.get();
        const Tensor zero = scalar_tensor(0.0, x.dtype());
        return Grads{dout * (gt(x, zero) - lt(x, zero))};
    });
    return out;
}

Tensor sin(const Tensor& x) {
    Tensor out = unary_map("sin", x, floating(x), [](auto v) { return vsin(v); });
    autograd::record("sin", out, {x}, [sx = SavedTensor(x)](const Tensor& dout) { return Grads{dout * cos(sx.get())}; });
    return out;
}

Tensor cos(const Tensor& x) {
    Tensor out = unary_map("cos", x, floating(x), [](auto v) { return vcos(v); });
    autograd::record("cos", out, {x}, [sx = SavedTensor(x)](const Tensor& dout) { return Grads{neg(dout * sin(sx.get()))}; });
    return out;
}

Tensor square(const Tensor& x) {
    Tensor out = unary_map("square", x, same(x), [](auto v) { return v * v; });
    // d x² = 2x dx
    autograd::record("square", out, {x}, [sx = SavedTensor(x)](const Tensor& dout) { return Grads{dout * sx.get() * 2.0}; });
    return out;
}

}  // namespace tg
