#pragma once
// The processes of a data-parallel job and the few collective operations training needs (docs/distributed.md).
//
//   auto& world = tg::distributed::Communicator::world();    // MPI is started on first use
//   world.allreduce_average(grad);                           // every rank ends with the mean of all ranks' grad
//   world.broadcast(weights, /*root=*/0);                    // every rank ends with rank 0's weights
//
// Launched by `mpirun -np N program ...`, world() has N ranks talking over MPI (Open MPI on Debian). Started
// without a launcher, or in a build without MPI (meson -Dmpi=disabled), world() is one rank of size 1 and every
// collective returns at once, so code written for N ranks also runs as a single process.
//
// Allreduce is a ring (reduce-scatter, then all-gather; Patarasuk & Yuan 2009, as Horovod and NCCL use): each of
// the N chunks of the buffer is summed in one fixed order, ((x_c + x_c+1) + x_c+2) + ... around the ring, on one
// rank, and then copied to the others. So every rank holds bitwise the same result, and repeating a run repeats
// it bit for bit, whatever the MPI library's own algorithm choice. It sends 2 (N − 1)/N of the buffer per rank,
// the minimum for an allreduce. (ReduceAlgorithm::Library uses MPI_Allreduce instead, for comparison.)
//
// Errors: MPI errors are returned, not fatal (MPI_ERRORS_RETURN), and become tg::DistributedError naming the
// operation. Every collective waits with a deadline (timeout(), default 300 s, environment variable
// TG_DISTRIBUTED_TIMEOUT in seconds): a rank that stopped answering gives an error instead of a silent hang.
// After such an error the ranks no longer agree on what comes next; end the job with abort().
//
// Threads: one thread at a time may call the collectives (the gradient bucketer calls them from its own thread
// during backward, while the main thread calls none).

#include "core/error.h"
#include "core/tensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace tg {

class DistributedError : public Error {
public:
    using Error::Error;
};

}  // namespace tg

namespace tg::distributed {

enum class ReduceAlgorithm {
    Ring,     // ours: fixed summation order, bitwise identical on every rank
    Library,  // MPI_Allreduce: the MPI library's choice (often faster for small buffers; order not promised)
};

class Communicator {
public:
    // The job's processes (MPI_COMM_WORLD). Starts MPI on first call if the program was launched by mpirun
    // (and the build has MPI); ends it at program exit.
    static Communicator& world();

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool is_root() const { return rank_ == 0; }
    // This process's place among the ranks on the same machine, and how many they are (threads per rank =
    // cores / local_size() keeps the machine from being oversubscribed).
    int local_rank() const { return local_rank_; }
    int local_size() const { return local_size_; }

    // In place on a contiguous float32 or float64 tensor of the same shape on every rank: the elementwise
    // sum (or mean) over ranks. Throws ValueError for other tensors, DistributedError on an MPI error or
    // timeout.
    void allreduce_sum(Tensor& t, ReduceAlgorithm algorithm = ReduceAlgorithm::Ring);
    void allreduce_average(Tensor& t, ReduceAlgorithm algorithm = ReduceAlgorithm::Ring);
    double allreduce_average(double value);  // a scalar, e.g. the training loss of this rank's part of a batch
    double allreduce_max(double value);      // e.g. "did any rank see Ctrl-C?"
    // Every rank's `t` (contiguous, any dtype, same shape everywhere) gets the root's values.
    void broadcast(Tensor& t, int root = 0);
    void barrier();

    // Whether a second thread may make MPI calls while this one makes none (MPI_THREAD_SERIALIZED or better):
    // the gradient bucketer then sends from a background thread during the backward pass.
    bool supports_background_thread() const { return background_thread_ok_; }

    double timeout() const { return timeout_seconds_; }
    void set_timeout(double seconds);  // > 0; throws ValueError otherwise

    // Ends every rank of the job (MPI_Abort) after printing `message` on this rank's stderr. For fatal errors:
    // the other ranks may be waiting in a collective that will never complete. With one rank: std::exit(code).
    [[noreturn]] void abort(const std::string& message, int code = 1);

    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;
    ~Communicator();

private:
    Communicator();
    void ring_allreduce_sum(void* data, std::int64_t count, DType dtype);

    int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
    double timeout_seconds_ = 300;
    bool background_thread_ok_ = true;
    bool started_mpi_ = false;  // true when this object called MPI_Init_thread (and must finalize)
    std::vector<char> incoming_;  // the ring's receive buffer, kept between calls (one caller at a time)
};

// True if this build has MPI (meson option -Dmpi); false builds run every Communicator as one rank.
bool built_with_mpi();

}  // namespace tg::distributed
