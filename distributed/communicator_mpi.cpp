// The Communicator over MPI (built when meson finds MPI; see communicator.h for what each call promises).
//
// Every collective is started non-blocking (MPI_Isend/Irecv, MPI_Ibcast, MPI_Ibarrier, MPI_Iallreduce) and
// then waited for by polling MPI_Testall, which lets the wait give up after timeout() seconds with a clear
// error instead of hanging forever on a rank that died or is stuck.

#include "distributed/communicator.h"
#include "distributed/communicator_detail.h"

// The C API only: Open MPI's deprecated C++ bindings (pulled in by default from C++) warn under -Wextra.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace tg::distributed {

namespace {

std::string mpi_error_text(int code) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    return std::string(text, static_cast<std::size_t>(length));
}

// MPI_COMM_WORLD returns its errors (MPI_ERRORS_RETURN, set at start): each becomes an exception.
void check(int code, const std::string& what) {
    if (code != MPI_SUCCESS) throw DistributedError(what + ": MPI error: " + mpi_error_text(code));
}

// mpirun (Open MPI), mpiexec.hydra (MPICH) and PMIx launchers set these. Without one, the program runs as one
// rank without starting MPI at all.
bool launched_by_mpi() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
        if (std::getenv(name)) return true;
    }
    return false;
}

MPI_Datatype mpi_type(DType dtype) {
    switch (dtype) {
        case DType::Float32: return MPI_FLOAT;
        case DType::Float64: return MPI_DOUBLE;
        default: return MPI_BYTE;  // broadcast of other dtypes moves bytes
    }
}

int message_count(std::int64_t count, const char* op) {
    if (count > INT_MAX) {
        throw ValueError(std::string(op) + ": " + std::to_string(count) + " elements in one message exceed MPI's int count");
    }
    return static_cast<int>(count);
}

// Waits until every request completes. Spins on MPI_Testall for a few microseconds (small messages finish
// that fast), then sleeps between tests so a waiting thread leaves the core to the computation.
void wait_all(MPI_Request* requests, int n, double timeout_seconds, const std::string& what) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_seconds);
    for (long polls = 0;; ++polls) {
        int done = 0;
        check(MPI_Testall(n, requests, &done, MPI_STATUSES_IGNORE), what);
        if (done) return;
        if (polls < 2000) continue;
        std::this_thread::sleep_for(std::chrono::microseconds(20));
        if (polls % 256 == 0 && Clock::now() > deadline) {
            throw DistributedError(what + ": no answer from the other ranks within " +
                                   std::to_string(static_cast<int>(timeout_seconds)) +
                                   " s (TG_DISTRIBUTED_TIMEOUT): a rank has died or is stuck");
        }
    }
}

// out[i] = in[i] + out[i]: `in` is the partial sum arriving from the previous ranks of the ring.
template <typename T>
void add_into(T* out, const T* in, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = in[i] + out[i];
}

}  // namespace

bool built_with_mpi() { return true; }

Communicator& Communicator::world() {
    static Communicator instance;
    return instance;
}

Communicator::Communicator() {
    timeout_seconds_ = detail::timeout_from_environment(timeout_seconds_);
    if (!launched_by_mpi()) return;  // one rank, no MPI
    int initialized = 0;
    MPI_Initialized(&initialized);
    int provided = MPI_THREAD_SINGLE;
    if (!initialized) {
        // MPI_THREAD_MULTIPLE if offered: the bucketer's background thread sends while the main thread
        // computes (it never calls MPI at the same time as the main thread, so SERIALIZED is enough).
        MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
        started_mpi_ = true;
    } else {
        MPI_Query_thread(&provided);
    }
    background_thread_ok_ = provided >= MPI_THREAD_SERIALIZED;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    // The ranks sharing this machine's memory.
    MPI_Comm local;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local),
          "MPI_Comm_split_type");
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
}

Communicator::~Communicator() {
    int finalized = 0;
    if (started_mpi_ && MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized) MPI_Finalize();
}

void Communicator::allreduce_sum(Tensor& t, ReduceAlgorithm algorithm) {
    detail::check_reducible(t, "allreduce");
    if (size_ == 1 || t.numel() == 0) return;
    if (algorithm == ReduceAlgorithm::Ring) {
        ring_allreduce_sum(t.raw_data(), t.numel(), t.dtype());
        return;
    }
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), message_count(t.numel(), "allreduce"), mpi_type(t.dtype()),
                         MPI_SUM, MPI_COMM_WORLD, &request), "allreduce (MPI_Iallreduce)");
    wait_all(&request, 1, timeout_seconds_, "allreduce of " + t.describe());
}

// Ring allreduce of N chunks: chunk c spans elements [count·c/N, count·(c+1)/N).
//   reduce-scatter, step s = 0 .. N−2: send chunk (r − s) to the right neighbour, receive chunk (r − s − 1) from
//     the left one and add this rank's values to it. After N − 1 steps rank r holds the full sum of chunk r + 1.
//   all-gather, step s = 0 .. N−2: send chunk (r + 1 − s) to the right, receive chunk (r − s) from the left
//     (a finished sum) and keep it.
void Communicator::ring_allreduce_sum(void* data, std::int64_t count, DType dtype) {
    const int n = size_;
    const std::int64_t element = static_cast<std::int64_t>(element_size(dtype));
    char* bytes = static_cast<char*>(data);
    const auto begin = [&](int c) { return count * c / n; };
    const auto length = [&](int c) { return begin(c + 1) - begin(c); };
    const auto chunk = [&](int c) { return ((c % n) + n) % n; };
    const int right = (rank_ + 1) % n, left = (rank_ + n - 1) % n;
    const MPI_Datatype type = mpi_type(dtype);
    const auto needed = static_cast<std::size_t>((count / n + 1) * element);
    if (incoming_.size() < needed) incoming_.resize(needed);
    char* incoming = incoming_.data();
    const std::string what = "allreduce (ring) of " + std::to_string(count) + " " + dtype_name(dtype) + " elements";

    for (int s = 0; s < n - 1; ++s) {
        const int send = chunk(rank_ - s), receive = chunk(rank_ - s - 1);
        MPI_Request requests[2];
        check(MPI_Irecv(incoming, message_count(length(receive), "allreduce"), type, left, 0, MPI_COMM_WORLD,
                        &requests[0]), what);
        check(MPI_Isend(bytes + begin(send) * element, message_count(length(send), "allreduce"), type, right, 0,
                        MPI_COMM_WORLD, &requests[1]), what);
        wait_all(requests, 2, timeout_seconds_, what);
        dispatch_floating(dtype, [&](auto tag) {
            using T = decltype(tag);
            add_into(reinterpret_cast<T*>(bytes) + begin(receive), reinterpret_cast<const T*>(incoming),
                     length(receive));
        });
    }
    for (int s = 0; s < n - 1; ++s) {
        const int send = chunk(rank_ + 1 - s), receive = chunk(rank_ - s);
        MPI_Request requests[2];
        check(MPI_Irecv(bytes + begin(receive) * element, message_count(length(receive), "allreduce"), type, left, 1,
                        MPI_COMM_WORLD, &requests[0]), what);
        check(MPI_Isend(bytes + begin(send) * element, message_count(length(send), "allreduce"), type, right, 1,
                        MPI_COMM_WORLD, &requests[1]), what);
        wait_all(requests, 2, timeout_seconds_, what);
    }
}

double Communicator::allreduce_max(double value) {
    if (size_ == 1) return value;
    double result = value;
    MPI_Request request;
    check(MPI_Iallreduce(&value, &result, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD, &request), "allreduce_max");
    wait_all(&request, 1, timeout_seconds_, "allreduce_max");
    return result;
}

void Communicator::broadcast(Tensor& t, int root) {
    if (root < 0 || root >= size_) {
        throw ValueError("broadcast: root " + std::to_string(root) + " is not a rank of this job of " +
                         std::to_string(size_));
    }
    if (!t.defined() || !t.is_contiguous()) throw ValueError("broadcast: the tensor must be defined and contiguous");
    if (size_ == 1 || t.numel() == 0) return;
    const bool typed = t.dtype() == DType::Float32 || t.dtype() == DType::Float64;
    const std::int64_t count = typed ? t.numel() : t.numel() * static_cast<std::int64_t>(element_size(t.dtype()));
    MPI_Request request;
    check(MPI_Ibcast(t.raw_data(), message_count(count, "broadcast"), mpi_type(t.dtype()), root, MPI_COMM_WORLD,
                     &request), "broadcast");
    wait_all(&request, 1, timeout_seconds_, "broadcast of " + t.describe());
}

void Communicator::barrier() {
    if (size_ == 1) return;
    MPI_Request request;
    check(MPI_Ibarrier(MPI_COMM_WORLD, &request), "barrier");
    wait_all(&request, 1, timeout_seconds_, "barrier");
}

void Communicator::abort(const std::string& message, int code) {
    std::fflush(stdout);
    if (size_ > 1) {
        std::fprintf(stderr, "rank %d of %d: %s\n", rank_, size_, message.c_str());
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);  // ends every rank; mpirun reports it
    }
    std::fprintf(stderr, "%s\n", message.c_str());
    std::exit(code);
}

}  // namespace tg::distributed
