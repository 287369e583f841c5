// Plain attention: the textbook equations one query row at a time, with a full row of Tk scores (O(Tk)
// memory, serial, std::exp). The tests check the tiled kernels in attention_exact.cpp against these.
//
//   forward    S_ij = s·q_i·k_j (−∞ where masked),  L_i = log Σ_j exp(S_ij),  P_ij = exp(S_ij − L_i),
//              o_i = Σ_j P_ij v_j
//   backward   D_i = dO_i·o_i,  dP_ij = dO_i·v_j,  dS_ij = P_ij (dP_ij − D_i),
//              dq_i = s Σ_j dS_ij k_j,  dk_j = s Σ_i dS_ij q_i,  dv_j = Σ_i P_ij dO_i

#include "kernels/attention_exact.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace tg::kernels {
namespace {

template <class T>
T dot(const T* a, const T* b, std::int64_t n) {
    T s = 0;
    for (std::int64_t e = 0; e < n; ++e) s += a[e] * b[e];
    return s;
}

// Row i's scores into `s` (size Tk): s·q_i·k_j for visible keys, −∞ for the others; returns L_i.
template <class T>
T scores_row(const AttentionProblem& p, const T* qi, const T* kh, AttentionLayout kl, std::int64_t i,
             std::vector<T>& s) {
    const T neg_inf = -std::numeric_limits<T>::infinity();
    T m = neg_inf;
    for (std::int64_t j = 0; j < p.tk; ++j) {
        const bool visible = !p.causal || j <= i;
        s[j] = visible ? static_cast<T>(p.scale) * dot(qi, kh + j * kl.row, p.d) : neg_inf;
        m = std::max(m, s[j]);
    }
    if (m == neg_inf) return neg_inf;  // no visible key
    T l = 0;
    for (std::int64_t j = 0; j < p.tk; ++j) l += std::exp(s[j] - m);
    return m + std::log(l);
}

}  // namespace

template <class T>
void attention_forward_reference(const AttentionProblem& p, const T* q, AttentionLayout ql, const T* k,
                                 AttentionLayout kl, const T* v, AttentionLayout vl, T* o, AttentionLayout ol, T* lse) {
    check_attention_problem(p);
    // BEGIN EXERCISE ch7.attention_forward
    std::vector<T> s(static_cast<std::size_t>(p.tk));
    for (std::int64_t b = 0; b < p.batch; ++b) {
        for (std::int64_t h = 0; h < p.heads; ++h) {
            const T* kh = k + b * kl.batch + h * kl.head;
            const T* vh = v + b * vl.batch + h * vl.head;
            for (std::int64_t i = 0; i < p.tq; ++i) {
                const T L = scores_row(p, q + b * ql.batch + h * ql.head + i * ql.row, kh, kl, i, s);
                lse[(b * p.heads + h) * p.tq + i] = L;
                T* oi = o + b * ol.batch + h * ol.head + i * ol.row;
                std::fill(oi, oi + p.dv, T(0));
                if (std::isinf(L) && L < 0) continue;  // O = 0
                for (std::int64_t j = 0; j < p.tk; ++j) {
                    const T pij = std::exp(s[j] - L);
                    for (std::int64_t e = 0; e < p.dv; ++e) oi[e] += pij * vh[j * vl.row + e];
                }
            }
        }
    }
    // END EXERCISE
}

template <class T>
void attention_backward_reference(const AttentionProblem& p, const T* q, AttentionLayout ql, const T* k,
                                  AttentionLayout kl, const T* v, AttentionLayout vl, const T* o, AttentionLayout ol,
                                  const T* lse, const T* dout, AttentionLayout dol, T* dq, AttentionLayout dql, T* dk,
                                  AttentionLayout dkl, T* dv, AttentionLayout dvl) {
    check_attention_problem(p);
    // BEGIN EXERCISE ch7.attention_backward
    const T scale = static_cast<T>(p.scale);
    std::vector<T> s(static_cast<std::size_t>(p.tk));
    for (std::int64_t b = 0; b < p.batch; ++b) {
        for (std::int64_t h = 0; h < p.heads; ++h) {
            const T* kh = k + b * kl.batch + h * kl.head;
            const T* vh = v + b * vl.batch + h * vl.head;
            T* dkh = dk + b * dkl.batch + h * dkl.head;
            T* dvh = dv + b * dvl.batch + h * dvl.head;
            for (std::int64_t j = 0; j < p.tk; ++j) {
                std::fill(dkh + j * dkl.row, dkh + j * dkl.row + p.d, T(0));
                std::fill(dvh + j * dvl.row, dvh + j * dvl.row + p.dv, T(0));
            }
            for (std::int64_t i = 0; i < p.tq; ++i) {
                const T* qi = q + b * ql.batch + h * ql.head + i * ql.row;
                const T* doi = dout + b * dol.batch + h * dol.head + i * dol.row;
                T* dqi = dq + b * dql.batch + h * dql.head + i * dql.row;
                std::fill(dqi, dqi + p.d, T(0));
                const T L = lse[(b * p.heads + h) * p.tq + i];
                if (std::isinf(L) && L < 0) continue;  // a row that saw no key has no gradient
                scores_row(p, qi, kh, kl, i, s);
                const T Di = dot(doi, o + b * ol.batch + h * ol.head + i * ol.row, p.dv);
                for (std::int64_t j = 0; j < p.tk; ++j) {
                    const T pij = std::exp(s[j] - L);  // 0 where masked
                    if (pij == T(0)) continue;
                    const T dsij = pij * (dot(doi, vh + j * vl.row, p.dv) - Di);
                    for (std::int64_t e = 0; e < p.dv; ++e) dvh[j * dvl.row + e] += pij * doi[e];
                    for (std::int64_t e = 0; e < p.d; ++e) {
                        dqi[e] += scale * dsij * kh[j * kl.row + e];
                        dkh[j * dkl.row + e] += scale * dsij * qi[e];
                    }
                }
            }
        }
    }
    // END EXERCISE
}

// ----- the float and double versions the header declares (explicit instantiations) ---------------------------

template void attention_forward_reference(const AttentionProblem&, const float*, AttentionLayout, const float*,
                                          AttentionLayout, const float*, AttentionLayout, float*, AttentionLayout,
                                          float*);
template void attention_forward_reference(const AttentionProblem&, const double*, AttentionLayout, const double*,
                                          AttentionLayout, const double*, AttentionLayout, double*, AttentionLayout,
                                          double*);
template void attention_backward_reference(const AttentionProblem&, const float*, AttentionLayout, const float*,
                                           AttentionLayout, const float*, AttentionLayout, const float*,
                                           AttentionLayout, const float*, const float*, AttentionLayout, float*,
                                           AttentionLayout, float*, AttentionLayout, float*, AttentionLayout);
template void attention_backward_reference(const AttentionProblem&, const double*, AttentionLayout, const double*,
                                           AttentionLayout, const double*, AttentionLayout, const double*,
                                           AttentionLayout, const double*, const double*, AttentionLayout, double*,
                                           AttentionLayout, double*, AttentionLayout, double*, AttentionLayout);

}  // namespace tg::kernels
