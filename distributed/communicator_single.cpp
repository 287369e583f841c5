// The Communicator of a build without MPI (meson -Dmpi=disabled, or no MPI found): one rank, and every
// collective leaves its tensor as it is, which is the sum, mean and broadcast over a single rank.

#include "distributed/communicator.h"
#include "distributed/communicator_detail.h"

#include <cstdio>
#include <cstdlib>

namespace tg::distributed {

bool built_with_mpi() { return false; }

Communicator& Communicator::world() {
    static Communicator instance;
    return instance;
}

Communicator::Communicator() { timeout_seconds_ = detail::timeout_from_environment(timeout_seconds_); }
Communicator::~Communicator() = default;

void Communicator::allreduce_sum(Tensor& t, ReduceAlgorithm) { detail::check_reducible(t, "allreduce"); }
void Communicator::ring_allreduce_sum(void*, std::int64_t, DType) {}
double Communicator::allreduce_max(double value) { return value; }

void Communicator::broadcast(Tensor& t, int root) {
    if (root != 0) throw ValueError("broadcast: root " + std::to_string(root) + " is not a rank of this job of 1");
    if (!t.defined() || !t.is_contiguous()) throw ValueError("broadcast: the tensor must be defined and contiguous");
}

void Communicator::barrier() {}

void Communicator::abort(const std::string& message, int code) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s\n", message.c_str());
    std::exit(code);
}

}  // namespace tg::distributed
