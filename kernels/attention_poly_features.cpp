// The polynomial feature map φ and its VJP, and the checks on the polynomial (which degrees and coefficient sets
// the kernels accept). Equations in attention_poly.h; the level-by-level construction (docs/approximate-attention.md,
// "The feature map") is written for one row at a time so that every inner loop runs over contiguous memory.

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/attention_poly.h"

namespace tg::kernels {

namespace {

double factorial(int n) {
    double f = 1.0;
    for (int i = 2; i <= n; ++i) f *= i;
    return f;
}

std::string describe(const PolyAttentionProblem& p) {
    return " (B=" + std::to_string(p.batch) + ", H=" + std::to_string(p.heads) + ", Tq=" + std::to_string(p.tq) +
           ", Tk=" + std::to_string(p.tk) + ", D=" + std::to_string(p.d) + ", Dv=" + std::to_string(p.dv) +
           ", g=" + std::to_string(p.degree) + ", chunk=" + std::to_string(p.chunk) +
           (p.causal ? ", causal)" : ")");
}

// Beyond this rank the panels (chunk × R) and states (R × (Dv + 1)) stop being "a few MB"; D = 32, g = 4 is
// R = 58905 and still fits.
constexpr std::int64_t kMaxRank = 65536;

}  // namespace

std::int64_t poly_feature_rank(std::int64_t d, int degree) {
    // C(d + g, g) = Π_{i=1..g} (d + i)/i, exact in integers at every step.
    // BEGIN EXERCISE ch8.poly_feature_rank
    std::int64_t r = 1;
    for (int i = 1; i <= degree; ++i) r = r * (d + i) / i;
    return r;
    // END EXERCISE
}

void check_poly_attention_problem(const PolyAttentionProblem& p) { (void)poly_attention_coefficients(p); }

std::vector<double> poly_attention_coefficients(const PolyAttentionProblem& p) {
    auto fail = [&](const std::string& what) { throw std::invalid_argument("poly_attention: " + what + describe(p)); };
    if (p.batch < 0 || p.heads < 0 || p.tq < 0 || p.tk < 0) fail("sizes must be >= 0");
    if (p.d < 1 || p.d > 256) fail("head dimension D must be in [1, 256]");
    if (p.dv < 1 || p.dv > 256) fail("value dimension Dv must be in [1, 256]");
    if (p.causal && p.tq != p.tk) fail("causal attention needs Tq == Tk");
    if (!(p.scale > 0.0) || !std::isfinite(p.scale))
        fail("scale must be finite and > 0 (the feature map splits it as sqrt(scale) on q and on k)");
    if (p.chunk < 1) fail("chunk must be >= 1");
    if (p.degree < 1 || p.degree > 4) fail("degree g must be 1, 2, 3 or 4, got " + std::to_string(p.degree));
    const std::int64_t r = poly_feature_rank(p.d, p.degree);
    if (r > kMaxRank)
        fail("feature rank C(D+g, g) = " + std::to_string(r) + " exceeds " + std::to_string(kMaxRank) +
             "; use a smaller degree or head dimension");
    std::vector<double> a;
    if (p.coefficients.empty()) {
        if (p.degree % 2 == 1 && !p.allow_unsafe_polynomial)
            fail("odd degree g = " + std::to_string(p.degree) +
                 ": its Taylor polynomial of exp is negative for some scores, so the normaliser z can be <= 0; "
                 "use an even degree (2 or 4), or set allow_unsafe_polynomial to accept it with a run-time "
                 "z <= 0 check");
        for (int j = 0; j <= p.degree; ++j) a.push_back(1.0 / factorial(j));
        return a;
    }
    if (static_cast<int>(p.coefficients.size()) != p.degree + 1)
        fail("expected g + 1 = " + std::to_string(p.degree + 1) + " coefficients, got " +
             std::to_string(p.coefficients.size()));
    for (double c : p.coefficients)
        if (!std::isfinite(c)) fail("coefficients must be finite");
    if (!p.allow_unsafe_polynomial)
        fail("custom coefficients can make the normaliser z <= 0 (fitted or Chebyshev polynomials are not "
             "positive everywhere); only the default even-degree Taylor polynomial is accepted unless "
             "allow_unsafe_polynomial is set");
    return p.coefficients;
}

PolyFeatureMap::PolyFeatureMap(std::int64_t d, std::vector<double> coefficients) : d_(d), a_(std::move(coefficients)) {
    if (d < 1 || a_.empty() || a_.size() > 5)
        throw std::invalid_argument("poly_attention: feature map needs D >= 1 and 1..5 coefficients, got D=" +
                                    std::to_string(d) + " and " + std::to_string(a_.size()));
    const int g = degree();
    // Level 0 is the empty monomial (value 1). For each monomial we track its last (largest) coordinate and
    // how often that coordinate repeats, which is all we need for α! of its children:
    //   α + (v) has α!·(run + 1) if v equals the last coordinate (its multiplicity grows), else α!·1.
    struct Mono {
        std::int32_t last;
        std::int32_t run;
        double alpha_factorial;
    };
    std::vector<Mono> level = {{0, 0, 1.0}};
    level_offset_ = {0, 1};
    weight_key_ = {std::sqrt(std::abs(a_[0]))};
    weight_query_ = {(a_[0] < 0 ? -1.0 : 1.0) * weight_key_[0]};
    for (int j = 1; j <= g; ++j) {
        std::vector<Parent> parents;
        std::vector<Mono> next;
        const double sign = a_[static_cast<std::size_t>(j)] < 0 ? -1.0 : 1.0;
        for (const Mono& m : level) {
            const std::int32_t first = (j == 1) ? 0 : m.last;
            parents.push_back({static_cast<std::int32_t>(next.size()), first});
            for (std::int32_t v = first; v < d; ++v) {
                const bool repeat = (j > 1 && v == m.last);
                const std::int32_t run = repeat ? m.run + 1 : 1;
                const double af = m.alpha_factorial * (repeat ? run : 1);
                next.push_back({v, run, af});
                const double w = std::sqrt(std::abs(a_[static_cast<std::size_t>(j)]) * factorial(j) / af);
                weight_key_.push_back(w);
                weight_query_.push_back(sign * w);
            }
        }
        parents_.push_back(std::move(parents));
        level = std::move(next);
        level_offset_.push_back(level_offset_.back() + static_cast<std::int64_t>(level.size()));
    }
    rank_ = level_offset_.back();
    weight_key_f_.assign(weight_key_.begin(), weight_key_.end());
    weight_query_f_.assign(weight_query_.begin(), weight_query_.end());
}

// Forward, one row: first the plain monomials m level by level, written straight into the output row
//   m_0 = 1,   m_j[child_start(α) + v − first_var(α)] = m_{j−1}[α] · x[v]
// (level j only reads level j − 1, already complete), then φ = w ∘ m in one pass.
template <class T>
void PolyFeatureMap::forward(std::int64_t n, const T* x, std::int64_t ldx, bool query, T* phi,
                             std::int64_t ldphi) const {
    const T* w;
    if constexpr (std::is_same_v<T, float>)
        w = query ? weight_query_f_.data() : weight_key_f_.data();
    else
        w = query ? weight_query_.data() : weight_key_.data();
    // BEGIN EXERCISE ch8.poly_features
    for (std::int64_t i = 0; i < n; ++i) {
        const T* xi = x + i * ldx;
        T* m = phi + i * ldphi;
        m[0] = T(1);
        for (std::size_t j = 1; j < level_offset_.size() - 1; ++j) {
            const T* prev = m + level_offset_[j - 1];
            T* cur = m + level_offset_[j];
            const auto& parents = parents_[j - 1];
            for (std::size_t pi = 0; pi < parents.size(); ++pi) {
                const T mp = prev[pi];
                T* child = cur + parents[pi].child_start - parents[pi].first_var;
                for (std::int64_t v = parents[pi].first_var; v < d_; ++v) child[v] = mp * xi[v];
            }
        }
        for (std::int64_t c = 0; c < rank_; ++c) m[c] *= w[c];
    }
    // END EXERCISE
}

// Backward, one row: recompute m, set dm = w ∘ dφ, then for j = g .. 1 push level j's adjoints down:
//   dx[v] += dm_j[child] · m_{j−1}[α]                (∂ m_j[child]/∂x[v] = m_{j−1}[α])
//   dm_{j−1}[α] += Σ_v dm_j[child] · x[v]           (∂ m_j[child]/∂m_{j−1}[α] = x[v])
// Level j − 1's adjoint is complete before it is pushed down in turn.
template <class T>
void PolyFeatureMap::backward(std::int64_t n, const T* x, std::int64_t ldx, bool query, const T* dphi,
                              std::int64_t lddphi, T* dx, std::int64_t lddx, bool accumulate,
                              std::type_identity_t<T>* scratch) const {
    std::vector<T> own;
    if (scratch == nullptr) {
        own.resize(static_cast<std::size_t>(scratch_size()));
        scratch = own.data();
    }
    const T* w;
    if constexpr (std::is_same_v<T, float>)
        w = query ? weight_query_f_.data() : weight_key_f_.data();
    else
        w = query ? weight_query_.data() : weight_key_.data();
    T* m = scratch;
    T* dm = scratch + rank_;
    for (std::int64_t i = 0; i < n; ++i) {
        const T* xi = x + i * ldx;
        T* dxi = dx + i * lddx;
        if (!accumulate) std::fill(dxi, dxi + d_, T(0));
        const T* dphii = dphi + i * lddphi;
        // m without weights: the forward with w = 1.
        m[0] = T(1);
        for (std::size_t j = 1; j < level_offset_.size() - 1; ++j) {
            const T* prev = m + level_offset_[j - 1];
            T* cur = m + level_offset_[j];
            const auto& parents = parents_[j - 1];
            for (std::size_t pi = 0; pi < parents.size(); ++pi) {
                const T mp = prev[pi];
                T* child = cur + parents[pi].child_start - parents[pi].first_var;
                for (std::int64_t v = parents[pi].first_var; v < d_; ++v) child[v] = mp * xi[v];
            }
        }
        for (std::int64_t c = 0; c < rank_; ++c) dm[c] = dphii[c] * w[c];
        for (std::size_t j = level_offset_.size() - 2; j >= 1; --j) {
            const T* prev = m + level_offset_[j - 1];
            T* dprev = dm + level_offset_[j - 1];
            const T* dcur = dm + level_offset_[j];
            const auto& parents = parents_[j - 1];
            for (std::size_t pi = 0; pi < parents.size(); ++pi) {
                const T mp = prev[pi];
                const T* dchild = dcur + parents[pi].child_start - parents[pi].first_var;
                T acc = T(0);
                for (std::int64_t v = parents[pi].first_var; v < d_; ++v) {
                    dxi[v] += dchild[v] * mp;
                    acc += dchild[v] * xi[v];
                }
                dprev[pi] += acc;
            }
        }
    }
}

// ----- the float and double versions the header declares (explicit instantiations) ---------------------------

template void PolyFeatureMap::forward(std::int64_t, const float*, std::int64_t, bool, float*, std::int64_t) const;
template void PolyFeatureMap::forward(std::int64_t, const double*, std::int64_t, bool, double*, std::int64_t) const;
template void PolyFeatureMap::backward(std::int64_t, const float*, std::int64_t, bool, const float*, std::int64_t,
                                       float*, std::int64_t, bool, float*) const;
template void PolyFeatureMap::backward(std::int64_t, const double*, std::int64_t, bool, const double*, std::int64_t,
                                       double*, std::int64_t, bool, double*) const;

}  // namespace tg::kernels
