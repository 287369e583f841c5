#pragma once
// Shared by the two transports of the Communicator (communicator_mpi.cpp, communicator_single.cpp); defined
// in communicator.cpp. Not installed.

#include "core/tensor.h"

namespace tg::distributed::detail {

// Throws ValueError naming `op` unless t is defined, contiguous and float32 or float64.
void check_reducible(const Tensor& t, const char* op);
// TG_DISTRIBUTED_TIMEOUT (seconds) if set, else `fallback`; throws ValueError for a value that is not > 0.
double timeout_from_environment(double fallback);

}  // namespace tg::distributed::detail
