// What every Communicator does whether or not the build has MPI: checking tensors, turning sums into means.
// The transport is in communicator_mpi.cpp (with MPI) or communicator_single.cpp (one process).

#include "distributed/communicator.h"
#include "distributed/communicator_detail.h"

#include "core/ops.h"

#include <cmath>
#include <cstdlib>
#include <string>

namespace tg::distributed {

namespace detail {

// The tensors a reduction accepts: defined, contiguous, floating point.
void check_reducible(const Tensor& t, const char* op) {
    if (!t.defined()) throw ValueError(std::string(op) + ": the tensor is undefined");
    if (t.dtype() != DType::Float32 && t.dtype() != DType::Float64) {
        throw ValueError(std::string(op) + ": only float32 and float64 tensors can be summed, got " + t.describe());
    }
    if (!t.is_contiguous()) {
        throw ValueError(std::string(op) + ": the tensor " + t.describe() +
                         " is not contiguous; reduce t.contiguous() and copy the result back");
    }
}

double timeout_from_environment(double fallback) {
    const char* text = std::getenv("TG_DISTRIBUTED_TIMEOUT");
    if (!text || !*text) return fallback;
    char* end = nullptr;
    const double seconds = std::strtod(text, &end);
    if (*end != '\0' || !(seconds > 0)) {
        throw ValueError(std::string("TG_DISTRIBUTED_TIMEOUT must be a number of seconds > 0, got '") + text + "'");
    }
    return seconds;
}

}  // namespace detail

void Communicator::allreduce_average(Tensor& t, ReduceAlgorithm algorithm) {
    allreduce_sum(t, algorithm);
    if (size_ > 1) t.mul_(1.0 / size_);  // exact for N a power of two, as 1/N is
}

double Communicator::allreduce_average(double value) {
    Tensor t = full({1}, value, DType::Float64);
    allreduce_sum(t);
    return t.item<double>() / size_;
}

void Communicator::set_timeout(double seconds) {
    if (!(seconds > 0) || !std::isfinite(seconds)) {
        throw ValueError("Communicator::set_timeout: the timeout must be a finite number of seconds > 0, got " +
                         std::to_string(seconds));
    }
    timeout_seconds_ = seconds;
}

}  // namespace tg::distributed
