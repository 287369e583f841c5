// Fused cross-entropy: per row, (1) m = max, (2) e = exp(x − m) stored in the gradient row and summed,
// (3) loss from the sum and gradient by scaling e in place. Passes 2 and 3 run from cache, so main memory
// sees one read of the logits and one write of the gradient.

#include "kernels/cross_entropy.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/vecmath.h"

namespace tg::kernels {
namespace {

// Throws std::out_of_range for the first target outside [0, vocab) that is not ignore_index.
template <class I>
void check_targets(const I* targets, std::int64_t rows, std::int64_t vocab, std::int64_t ignore_index) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t t = static_cast<std::int64_t>(targets[r]);
        if (t != ignore_index && (t < 0 || t >= vocab)) {
            throw std::out_of_range("cross_entropy: target " + std::to_string(t) + " at row " + std::to_string(r) +
                                    " is out of range for " + std::to_string(vocab) + " classes (ignore_index " +
                                    std::to_string(ignore_index) + ")");
        }
    }
}

template <class I>
std::int64_t count_kept(const I* targets, std::int64_t rows, std::int64_t ignore_index) {
    std::int64_t count = 0;
    for (std::int64_t r = 0; r < rows; ++r) count += static_cast<std::int64_t>(targets[r]) != ignore_index;
    return count;
}

}  // namespace

// dlogits == nullptr: losses only.
template <class T, class I>
std::int64_t cross_entropy_forward_backward(const T* logits, const I* targets, std::type_identity_t<T>* losses,
                                            T* dlogits, std::int64_t rows, std::int64_t vocab, std::int64_t ls,
                                            std::int64_t ds, T scale, std::int64_t ignore_index) {
    using B = vec::batch<T>;
    constexpr std::int64_t W = vec::width<T>;
    assert(rows <= 1 || (ls >= vocab && (dlogits == nullptr || ds >= vocab)));
    check_targets(targets, rows, vocab, ignore_index);
    vec::parallel_rows(rows, 3 * vocab, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const T* xr = logits + r * ls;
            T* dr = dlogits != nullptr ? dlogits + r * ds : nullptr;
            const std::int64_t t = static_cast<std::int64_t>(targets[r]);
            if (t == ignore_index) {
                if (losses != nullptr) losses[r] = T(0);
                if (dr != nullptr) std::fill(dr, dr + vocab, T(0));
                continue;
            }
            const T x_target = xr[t];  // read before dr (which may alias xr) is overwritten
            const T m = vec::row_max(xr, vocab);
            if (m == -std::numeric_limits<T>::infinity()) {  // all −inf: softmax taken as 0, loss +inf
                if (losses != nullptr) losses[r] = std::numeric_limits<T>::infinity();
                if (dr != nullptr) {
                    std::fill(dr, dr + vocab, T(0));
                    dr[t] = -scale;
                }
                continue;
            }
            const T sum = vec::exp_shifted_sum(xr, m, dr, vocab);  // dr = exp(x − m) when not null
            // (m − x_target) first: both are near the row max, so the difference is exact, whereas
            // log(sum) + m would be rounded to the ulp of m (2.4e-4 at m = 3000 in float32).
            if (losses != nullptr) losses[r] = std::log(sum) + (m - x_target);
            if (dr == nullptr) continue;
            // dlogits = exp(x − m) · (scale / sum) − scale · onehot(t)
            const T k = scale / sum;
            const B k_b(k);
            std::int64_t j = 0;
            for (; j + W <= vocab; j += W) (B::load_unaligned(dr + j) * k_b).store_unaligned(dr + j);
            for (; j < vocab; ++j) dr[j] *= k;
            dr[t] -= scale;
        }
    });
    return count_kept(targets, rows, ignore_index);
}

template <class T, class I>
std::int64_t cross_entropy_reference(const T* logits, const I* targets, T* losses, T* dlogits, std::int64_t rows,
                                     std::int64_t vocab, std::int64_t ls, std::int64_t ds, T scale,
                                     std::int64_t ignore_index) {
    check_targets(targets, rows, vocab, ignore_index);
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* xr = logits + r * ls;
        T* dr = dlogits + r * ds;
        const std::int64_t t = static_cast<std::int64_t>(targets[r]);
        if (t == ignore_index) {
            losses[r] = 0;
            for (std::int64_t j = 0; j < vocab; ++j) dr[j] = 0;
            continue;
        }
        const T x_target = xr[t];
        T m = -std::numeric_limits<T>::infinity();
        for (std::int64_t j = 0; j < vocab; ++j) m = std::max(m, xr[j]);
        if (m == -std::numeric_limits<T>::infinity()) {
            losses[r] = std::numeric_limits<T>::infinity();
            for (std::int64_t j = 0; j < vocab; ++j) dr[j] = j == t ? -scale : T(0);
            continue;
        }
        // BEGIN EXERCISE ch6.cross_entropy
        T sum = 0;
        for (std::int64_t j = 0; j < vocab; ++j) sum += std::exp(xr[j] - m);
        losses[r] = std::log(sum) + (m - x_target);
        for (std::int64_t j = 0; j < vocab; ++j) {
            const T softmax = std::exp(xr[j] - m) / sum;
            dr[j] = (softmax - (j == t ? T(1) : T(0))) * scale;
        }
        // END EXERCISE
    }
    return count_kept(targets, rows, ignore_index);
}

// Losses only: the fused kernel without a gradient buffer (dlogits == nullptr).
template <class T, class I>
std::int64_t cross_entropy_forward(const T* logits, const I* targets, T* losses, std::int64_t rows,
                                   std::int64_t vocab, std::int64_t ls, std::int64_t ignore_index) {
    return cross_entropy_forward_backward(logits, targets, losses, static_cast<T*>(nullptr), rows, vocab, ls, 0, T(0),
                                          ignore_index);
}

// ----- the float and double versions the header declares (explicit instantiations) ---------------------------

template std::int64_t cross_entropy_forward_backward(const float*, const std::int32_t*, float*, float*, std::int64_t,
                                                     std::int64_t, std::int64_t, std::int64_t, float, std::int64_t);
template std::int64_t cross_entropy_forward_backward(const float*, const std::int64_t*, float*, float*, std::int64_t,
                                                     std::int64_t, std::int64_t, std::int64_t, float, std::int64_t);
template std::int64_t cross_entropy_forward_backward(const double*, const std::int32_t*, double*, double*, std::int64_t,
                                                     std::int64_t, std::int64_t, std::int64_t, double, std::int64_t);
template std::int64_t cross_entropy_forward_backward(const double*, const std::int64_t*, double*, double*, std::int64_t,
                                                     std::int64_t, std::int64_t, std::int64_t, double, std::int64_t);
template std::int64_t cross_entropy_forward(const float*, const std::int32_t*, float*, std::int64_t, std::int64_t,
                                            std::int64_t, std::int64_t);
template std::int64_t cross_entropy_forward(const float*, const std::int64_t*, float*, std::int64_t, std::int64_t,
                                            std::int64_t, std::int64_t);
template std::int64_t cross_entropy_forward(const double*, const std::int32_t*, double*, std::int64_t, std::int64_t,
                                            std::int64_t, std::int64_t);
template std::int64_t cross_entropy_forward(const double*, const std::int64_t*, double*, std::int64_t, std::int64_t,
                                            std::int64_t, std::int64_t);
template std::int64_t cross_entropy_reference(const float*, const std::int32_t*, float*, float*, std::int64_t,
                                              std::int64_t, std::int64_t, std::int64_t, float, std::int64_t);
template std::int64_t cross_entropy_reference(const float*, const std::int64_t*, float*, float*, std::int64_t,
                                              std::int64_t, std::int64_t, std::int64_t, float, std::int64_t);
template std::int64_t cross_entropy_reference(const double*, const std::int32_t*, double*, double*, std::int64_t,
                                              std::int64_t, std::int64_t, std::int64_t, double, std::int64_t);
template std::int64_t cross_entropy_reference(const double*, const std::int64_t*, double*, double*, std::int64_t,
                                              std::int64_t, std::int64_t, std::int64_t, double, std::int64_t);

}  // namespace tg::kernels
