// compare-safetensors A B TOLERANCE: the same tensor names and shapes in both files, and all their values,
// taken as one vector, within TOLERANCE relative distance: ‖a − b‖₂ / ‖b‖₂ <= TOLERANCE. Prints that and the
// tensor with the largest relative distance of its own; exit status 0 when they agree, 1 when not, 2 on bad input.
//
// Why one vector and not each tensor: some weights get a gradient that is zero in exact arithmetic (the key
// bias of attention: softmax does not change when every score of a row shifts by the same q·b_k), so they
// move only by rounding noise, which AdamW divides by its own size into steps of the learning rate. Two
// correct runs that round differently then differ there in relative terms, by tiny absolute amounts.

#include "nn/serialization.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: compare-safetensors A.safetensors B.safetensors TOLERANCE\n");
        return 2;
    }
    try {
        const tg::SafetensorsFile a = tg::load_safetensors(argv[1]), b = tg::load_safetensors(argv[2]);
        const double tolerance = std::atof(argv[3]);
        if (a.tensors.size() != b.tensors.size()) {
            std::fprintf(stderr, "%zu tensors in A, %zu in B\n", a.tensors.size(), b.tensors.size());
            return 1;
        }
        double diff2 = 0, norm2 = 0, worst = 0;
        std::string worst_name;
        for (const auto& [name, ta] : a.tensors) {
            const tg::Tensor tb = b.get(name);
            if (ta.shape() != tb.shape()) {
                std::fprintf(stderr, "%s: %s in A, %s in B\n", name.c_str(), ta.describe().c_str(), tb.describe().c_str());
                return 1;
            }
            const auto va = ta.to_vector<double>(), vb = tb.to_vector<double>();
            double d2 = 0, n2 = 0;
            for (std::size_t i = 0; i < va.size(); ++i) {
                d2 += (va[i] - vb[i]) * (va[i] - vb[i]);
                n2 += vb[i] * vb[i];
            }
            diff2 += d2;
            norm2 += n2;
            const double relative = n2 > 0 ? std::sqrt(d2 / n2) : std::sqrt(d2);
            if (relative >= worst) {
                worst = relative;
                worst_name = name;
            }
        }
        const double relative = norm2 > 0 ? std::sqrt(diff2 / norm2) : std::sqrt(diff2);
        std::printf("%zu tensors; relative distance of all weights %.3g (tolerance %g); largest of one tensor %.3g (%s)\n",
                    a.tensors.size(), relative, tolerance, worst, worst_name.c_str());
        return relative <= tolerance ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "compare-safetensors: %s\n", e.what());
        return 2;
    }
}
