#pragma once
// Internal to the causal polynomial kernels (kernels/attention_poly_causal.h): moving one chunk of rows
// [row0, row0 + rows) between the head's strided arrays and the slot's panels (layout.h), and prefetching the
// next chunk.

#include <algorithm>
#include <cstdint>

#include "kernels/attention_poly_detail.h"
#include "kernels/attention_poly_simd.h"
#include "kernels/poly_causal/layout.h"

namespace tg::kernels::poly_causal {

using poly_detail::Head;
using poly_detail::throw_nonpositive_z;
using namespace poly_simd;

// xt[v][i] = t·src[i][v] (D × cp, padding columns zero).
template <class T>
void load_t(T* xt, std::int64_t cp, const T* src, std::int64_t ld, std::int64_t rows, std::int64_t n, T t) {
    transpose_scaled(src, ld, xt, cp, rows, n, t);
    for (std::int64_t v = 0; v < n; ++v) std::fill(xt + v * cp + rows, xt + (v + 1) * cp, T(0));
}

// Ṽ = [V | 1 | 0…] row-major (c × ldv); Dv = 0: only the ones.
template <class T>
void load_vtilde(const Context<T>& cx, T* vt, const Head<T>& hd, std::int64_t row0, std::int64_t rows) {
    using V = Vec<T>;
    constexpr std::int64_t W = kWidth<T>;
    const std::int64_t dv = cx.L.dv, ldv = cx.L.ldv, full = dv / W * W;
    for (std::int64_t i = 0; i < rows; ++i) {
        T* row = vt + i * ldv;
        const T* src = dv > 0 ? hd.v + (row0 + i) * hd.ldv : nullptr;
        for (std::int64_t c = 0; c < full; c += W) V::load_unaligned(src + c).store_aligned(row + c);
        for (std::int64_t c = full; c < ldv; c += W) V(T(0)).store_aligned(row + c);
        for (std::int64_t c = full; c < dv; ++c) row[c] = src[c];
        row[dv] = T(1);
    }
}

// Ĝ = [dO/z | −δ/z | 0…] row-major, δ_i = dO_i·O_i, with the z <= 0 guard.
template <class T>
void load_ghat(const Context<T>& cx, T* gh, const Head<T>& hd, std::int64_t row0, std::int64_t rows) {
    using V = Vec<T>;
    constexpr std::int64_t W = kWidth<T>;
    const std::int64_t dv = cx.L.dv, ldv = cx.L.ldv, full = dv / W * W;
    for (std::int64_t i = 0; i < rows; ++i) {
        const T* dout = hd.dout + (row0 + i) * hd.lddo;
        const T* o = hd.o + (row0 + i) * hd.ldo;
        const T z = hd.z[row0 + i];
        if (z <= T(0)) throw_nonpositive_z("backward", static_cast<double>(z), hd.b, hd.h, row0 + i);
        const T inv = T(1) / z;
        T* row = gh + i * ldv;
        V dacc(T(0));
        for (std::int64_t c = 0; c < full; c += W) {
            const V g = V::load_unaligned(dout + c);
            dacc = xsimd::fma(g, V::load_unaligned(o + c), dacc);
            (g * V(inv)).store_aligned(row + c);
        }
        for (std::int64_t c = full; c < ldv; c += W) V(T(0)).store_aligned(row + c);
        T delta = xsimd::hadd(dacc);
        for (std::int64_t c = full; c < dv; ++c) {
            delta += dout[c] * o[c];
            row[c] = dout[c] * inv;
        }
        row[dv] = -delta * inv;
    }
}

// dst (e × cp) = src (rows × ld)ᵀ restricted to e columns, padding columns zero.
template <class T>
void transpose_in(T* dst, std::int64_t cp, const T* src, std::int64_t ld, std::int64_t rows, std::int64_t e) {
    transpose_scaled(src, ld, dst, cp, rows, e, T(1));
    for (std::int64_t c = 0; c < e; ++c) std::fill(dst + c * cp + rows, dst + (c + 1) * cp, T(0));
}

// dst rows (strided) = scale · srcᵀ (n × cp, feature-major), rows rows; accumulating, scale · (dst + srcᵀ).
template <class T>
void store_t(T* dst, std::int64_t ld, const T* src, std::int64_t cp, std::int64_t rows, std::int64_t n, T scale,
             bool accumulate = false) {
    transpose_scaled(src, cp, dst, ld, n, rows, scale, accumulate);
}

// dst[i][:n] = scale · src[i][:n], or accumulating scale · (dst[i][:n] + src[i][:n]), for rows rows (a chunk's
// row-major result into a strided output; the scale on the sum as in transpose_scaled). Whole vectors where
// n allows, scalars for the tail.
template <class T>
void store_rows(T* dst, std::int64_t ldd, const T* src, std::int64_t lds, std::int64_t rows, std::int64_t n, T scale,
                bool accumulate) {
    using V = Vec<T>;
    constexpr std::int64_t W = kWidth<T>;
    const std::int64_t full = n / W * W;
    const V sv(scale);
    for (std::int64_t i = 0; i < rows; ++i) {
        T* d = dst + i * ldd;
        const T* x = src + i * lds;
        for (std::int64_t c = 0; c < full; c += W) {
            const V y = V::load_unaligned(x + c);
            (sv * (accumulate ? V::load_unaligned(d + c) + y : y)).store_unaligned(d + c);
        }
        for (std::int64_t c = full; c < n; ++c) d[c] = scale * (accumulate ? d[c] + x[c] : x[c]);
    }
}

// dst[i][:n] = scale · src[i][:n] for rows rows, then zero up to ldd (a multiple of W): a chunk's rows into
// a padded row-major panel.
template <class T>
void copy_rows(T* dst, std::int64_t ldd, const T* src, std::int64_t lds, std::int64_t rows, std::int64_t n, T scale) {
    store_rows(dst, ldd, src, lds, rows, n, scale, false);
    for (std::int64_t i = 0; i < rows; ++i) std::fill(dst + i * ldd + n, dst + (i + 1) * ldd, T(0));
}

template <class T>
void load_ones(T* ones, std::int64_t cp, std::int64_t rows) {
    for (std::int64_t i = 0; i < cp; ++i) ones[i] = i < rows ? T(1) : T(0);
}

// The arrays of a head a chunk loop reads, as bits for prefetch_chunk.
namespace prefetch {
constexpr int q = 1, k = 2, v = 4, dout_and_o = 8;
}

// Asks for the rows of chunk b of the arrays a pass reads (`which`: prefetch:: bits) while the current chunk
// is computed: short row runs, which the hardware prefetcher picks up late.
template <class T>
void prefetch_chunk(const Context<T>& cx, const Head<T>& hd, std::int64_t b, int which) {
    const CausalLayout& L = cx.L;
    if (b < 0 || b >= L.chunks) return;
    const std::int64_t row0 = b * L.c, rows = std::min(L.c, L.n - row0);
    auto rows_of = [&](const T* base, std::int64_t ld, std::int64_t width) {
        if (base == nullptr) return;
        for (std::int64_t i = 0; i < rows; ++i) {
            const char* row = reinterpret_cast<const char*>(base + (row0 + i) * ld);
            for (std::int64_t off = 0; off < width * static_cast<std::int64_t>(sizeof(T)); off += 64)
                __builtin_prefetch(row + off);
        }
    };
    if (which & prefetch::q) rows_of(hd.q, hd.ldq, L.d);
    if (which & prefetch::k) rows_of(hd.k, hd.ldk, L.d);
    if (which & prefetch::v) rows_of(hd.v, hd.ldv, L.dv);
    if (which & prefetch::dout_and_o) {
        rows_of(hd.dout, hd.lddo, L.dv);
        rows_of(hd.o, hd.ldo, L.dv);
    }
}

}  // namespace tg::kernels::poly_causal
