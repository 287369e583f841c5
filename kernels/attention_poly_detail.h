#pragma once
// Internal to kernels/attention_poly*.cpp (never installed): the pieces the polynomial attention kernels share —
// the workspace layout of one (batch, head) slot, the per-head operand pointers, the GEMM wrapper, and the
// small row loops that load a chunk (t·Q, t·K, Ṽ = [V | 1], Ĝ = [dO/z | −δ/z]) and evaluate p, p′ on a tile
// of scores.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/attention_poly.h"
#include "kernels/gemm.h"

namespace tg::kernels::poly_detail {

// C = alpha·op(A)·op(B) + beta·C through our GEMM (row-major, leading dimensions in elements).
template <class T>
inline void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
                 std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
    if constexpr (std::is_same_v<T, float>)
        sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// One slot's workspace, carved into 64-byte aligned pieces (offsets in elements). c = rows of a chunk, r = rank,
// e = Dv + 1 (or 1 for the normaliser alone). Sizes depend on min(chunk, T), never on T itself.
struct Layout {
    std::int64_t c = 0, r = 0, e = 0, d = 0, dv = 0, ed = 0;
    // chunk panels
    std::int64_t qt = 0, kt = 0, vt = 0, gh = 0, u = 0, w = 0, du = 0, nt = 0, dqt = 0;
    // c × c tiles
    std::int64_t sc = 0, a = 0, mb = 0;
    // R × E states, feature-VJP scratch
    std::int64_t s = 0, rs = 0, scratch = 0;
    // plugin only: R × (E·D) states, c × (E·D) panels, R × Dv state
    std::int64_t py = 0, px = 0, zb = 0, pb = 0, rv = 0;
    std::int64_t per_slot = 0;
};

inline Layout make_layout(const PolyAttentionProblem& p, std::int64_t rank, PolyAttentionPass pass,
                          std::size_t element_size) {
    Layout L;
    const std::int64_t t_max = std::max<std::int64_t>(std::max(p.tq, p.tk), 1);
    L.c = std::min(p.chunk, t_max);
    L.r = rank;
    L.d = p.d;
    L.dv = p.dv;
    L.e = p.dv + 1;
    L.ed = L.e * p.d;
    const std::int64_t align = 64 / static_cast<std::int64_t>(element_size);
    std::int64_t at = 0;
    auto take = [&](std::int64_t n) {
        const std::int64_t off = at;
        at += (n + align - 1) / align * align;
        return off;
    };
    const bool plugin = pass == PolyAttentionPass::backward_plugin;
    const bool backward = pass != PolyAttentionPass::forward;
    L.qt = take(L.c * L.d);
    L.kt = take(L.c * L.d);
    L.vt = take(L.c * L.e);
    L.u = take(L.c * L.r);
    L.w = take(L.c * L.r);
    L.nt = take(L.c * L.e);
    L.sc = take(L.c * L.c);
    L.a = take(L.c * L.c);
    L.s = take(L.r * L.e);
    if (backward) {
        L.gh = take(L.c * L.e);
        L.du = take(L.c * L.r);
        L.dqt = take(L.c * L.d);
        L.mb = take(L.c * L.c);
        L.rs = take(L.r * L.e);
        L.scratch = take(2 * L.r);
    }
    if (plugin) {
        L.py = take(L.r * L.ed);
        L.px = take(L.r * L.ed);
        L.zb = take(L.c * L.ed);
        L.pb = take(L.c * L.ed);
        L.rv = take(L.r * L.dv);
    }
    L.per_slot = at + align;  // + align: room to align the slot's base pointer
    return L;
}

// Heads are spread over at most this many slots (tasks), each with its own workspace.
constexpr std::int64_t kMaxSlots = 32;

inline std::int64_t slot_count(const PolyAttentionProblem& p) {
    return std::min(p.batch * p.heads, kMaxSlots);
}

// The 64-byte aligned start of slot `s` in a workspace.
template <class T>
inline T* slot_base(T* workspace, const Layout& L, std::int64_t s) {
    T* base = workspace + s * L.per_slot;
    const std::int64_t align = 64 / static_cast<std::int64_t>(sizeof(T));
    const auto misalign = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(base) / sizeof(T)) % align;
    return base + (align - misalign) % align;
}

// The rows of one (batch, head): pointers to row 0 and row strides. Unused operands stay null.
template <class T>
struct Head {
    std::int64_t b = 0, h = 0;
    const T* q = nullptr;
    std::int64_t ldq = 0;
    const T* k = nullptr;
    std::int64_t ldk = 0;
    const T* v = nullptr;
    std::int64_t ldv = 0;
    const T* o = nullptr;
    std::int64_t ldo = 0;
    const T* z = nullptr;  // (Tq) contiguous
    const T* dout = nullptr;
    std::int64_t lddo = 0;
    T* o_out = nullptr;
    std::int64_t ldo_out = 0;
    T* z_out = nullptr;
    T* dq = nullptr;
    std::int64_t lddq = 0;
    T* dk = nullptr;
    std::int64_t lddk = 0;
    T* dv = nullptr;
    std::int64_t lddv = 0;
};

template <class T>
inline const T* at(const T* base, AttentionLayout l, std::int64_t b, std::int64_t h) {
    return base == nullptr ? nullptr : base + b * l.batch + h * l.head;
}
template <class T>
inline T* at(T* base, AttentionLayout l, std::int64_t b, std::int64_t h) {
    return base == nullptr ? nullptr : base + b * l.batch + h * l.head;
}

// dst[i][:] = t · src[i][:] for `rows` rows of width n (dst contiguous, leading dimension n).
template <class T>
inline void load_scaled(T* dst, const T* src, std::int64_t ld_src, std::int64_t rows, std::int64_t n, T t) {
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t e = 0; e < n; ++e) dst[i * n + e] = t * src[i * ld_src + e];
}

// Ṽ = [V | 1]: e = Dv + 1 columns (or e = 1, only the ones, when v is null: the normaliser alone).
template <class T>
inline void load_vtilde(T* dst, std::int64_t e, const T* v, std::int64_t ldv, std::int64_t rows) {
    for (std::int64_t i = 0; i < rows; ++i) {
        for (std::int64_t c = 0; c + 1 < e; ++c) dst[i * e + c] = v[i * ldv + c];
        dst[i * e + e - 1] = T(1);
    }
}

[[noreturn]] inline void throw_nonpositive_z(const char* where, double z, std::int64_t b, std::int64_t h,
                                            std::int64_t row) {
    throw std::domain_error(std::string("poly_attention ") + where + ": normaliser z = " + std::to_string(z) +
                            " <= 0 at batch " + std::to_string(b) + ", head " + std::to_string(h) + ", row " +
                            std::to_string(row) +
                            ": the polynomial is not positive on these scores (odd degree or custom "
                            "coefficients); use an even-degree Taylor polynomial");
}

// Ĝ = [dO/z | −δ/z] with δ_i = dO_i·O_i, for rows row0 .. row0 + rows − 1 of the head (e = Dv + 1 columns).
template <class T>
inline void load_ghat(T* gh, std::int64_t e, const Head<T>& hd, std::int64_t row0, std::int64_t rows) {
    const std::int64_t dv = e - 1;
    for (std::int64_t i = 0; i < rows; ++i) {
        const T* dout = hd.dout + (row0 + i) * hd.lddo;
        const T* o = hd.o + (row0 + i) * hd.ldo;
        const T z = hd.z[row0 + i];
        if (z <= T(0)) throw_nonpositive_z("backward", static_cast<double>(z), hd.b, hd.h, row0 + i);
        T delta = T(0);
        for (std::int64_t c = 0; c < dv; ++c) {
            delta += dout[c] * o[c];
            gh[i * e + c] = dout[c] / z;
        }
        gh[i * e + dv] = -delta / z;
    }
}

// p(x) = Σ a_j x^j and p′(x) by Horner (a_0..a_g).
template <class T>
inline T poly_value(const T* a, int g, T x) {
    T y = a[g];
    for (int j = g; j-- > 0;) y = y * x + a[j];
    return y;
}
template <class T>
inline T poly_derivative(const T* a, int g, T x) {
    T y = T(0);
    for (int j = g; j >= 1; --j) y = y * x + static_cast<T>(j) * a[j];
    return y;
}

// Everything a per-head (or per-chunk) routine needs besides the operands. One type for every polynomial
// kernel: LayoutT is the workspace layout of the kernel (Layout above for the plain loops, CausalLayout in
// poly_causal/layout.h for the fast causal path).
template <class T, class LayoutT = Layout>
struct Context {
    const PolyAttentionProblem& p;
    const PolyFeatureMap& fm;
    const LayoutT& L;  // sizes, and where each panel lives in a task's workspace slot
    const T* a;        // coefficients a_0..a_g of p
    T t;               // √scale
};

// Intra-chunk tile from the scores: sc = Qt_b Kt_bᵀ (rows × rows, leading dimension c), then in place
// a = M∘p(sc) (when a != null) and mb = M∘mb∘p′(sc) (when mb != null). M keeps j <= i.
template <class T>
inline void intra_tiles(const Context<T>& cx, std::int64_t rows, const T* qt, const T* kt, T* sc, T* a, T* mb) {
    const auto& L = cx.L;
    gemm<T>(false, true, rows, rows, L.d, T(1), qt, L.d, kt, L.d, T(0), sc, L.c);
    for (std::int64_t i = 0; i < rows; ++i) {
        for (std::int64_t j = 0; j < rows; ++j) {
            const std::int64_t ij = i * L.c + j;
            const bool visible = j <= i;
            if (a) a[ij] = visible ? poly_value(cx.a, cx.p.degree, sc[ij]) : T(0);
            if (mb) mb[ij] = visible ? mb[ij] * poly_derivative(cx.a, cx.p.degree, sc[ij]) : T(0);
        }
    }
}

// dst rows (strided) = t · src rows (contiguous, width n).
template <class T>
inline void store_scaled(T* dst, std::int64_t ld_dst, const T* src, std::int64_t rows, std::int64_t n, T t) {
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t e = 0; e < n; ++e) dst[i * ld_dst + e] = t * src[i * n + e];
}

// The per-head routines (attention_poly.cpp, attention_poly_plugin.cpp).
template <class T>
void plugin_backward_head(const Context<T>& cx, const Head<T>& hd, T* ws);

}  // namespace tg::kernels::poly_detail
