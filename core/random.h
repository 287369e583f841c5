#pragma once
// Random numbers: a seedable counter-based generator (Philox4x32-10) and the tensor samplers built on it.
//
// Why counter-based. A counter-based generator is a keyed bijection: output = Philox(counter, key). There is
// no sequential state to step through, so element i of a draw is a pure function of (seed, draw offset, i)
// and any thread can compute any element. Filling a tensor in parallel therefore gives the same values at
// every thread count, and a draw can be reproduced from its (seed, offset) alone. This is the design of
// Random123 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), used by PyTorch's CUDA
// generator and by JAX.
//
// The stream. key = seed (low 32 bits in key word 0, high 32 bits in word 1). One Philox call on a 128-bit
// counter gives four 32-bit words; we call one counter value a "block". A draw made when the generator's
// offset is `o` uses the blocks o, o+1, ..., o+n-1 (the counter's low 64 bits; the high 64 bits, the
// "subsequence" in curand/PyTorch terms, are always 0 here: one stream per seed) and then advances the offset
// by n. So successive draws never share a block, and saving (seed, offset) and restoring it later replays the
// following draws exactly.
//
// How many outputs one block gives (the sampler's layout; part of the stream's definition):
//   rand      float32: 4 (one word each, top 24 bits)         float64: 2 (two words, top 53 bits)
//   randn     float32: 4 (two Box-Muller pairs, 32-bit uniforms) float64: 2 (one pair, 64-bit uniforms)
//   randint   any dtype: 2 (64 bits each)
//   bernoulli any dtype: 4 (one 32-bit uniform each)
//   randperm  2 (64 bits per swap)
//   uniform_ / normal_ use rand / randn's layout for the tensor's dtype.
//
// Every sampler takes an optional Generator*; nullptr means default_generator(), which torch-style code
// seeds with tg::manual_seed(seed). Generators are safe to share between threads (a draw reserves its blocks
// under a lock), but the order in which threads draw then decides who gets which numbers.

#include "core/tensor.h"

#include <array>
#include <cstdint>
#include <mutex>

namespace tg {

// ---- the Philox4x32-10 bijection -----------------------------------------------------------------------------
using PhiloxCounter = std::array<std::uint32_t, 4>;
using PhiloxKey = std::array<std::uint32_t, 2>;
// Ten rounds of Philox4x32 (Random123's philox4x32_R(10, ctr, key)); checked against its known-answer vectors.
PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key);

// The four words of block `block` of the stream keyed by `seed`: philox4x32_10({block lo, block hi, 0, 0},
// {seed lo, seed hi}).
PhiloxCounter philox_block(std::uint64_t seed, std::uint64_t block);

// ---- the generator ---------------------------------------------------------------------------------------------
// Everything needed to replay a stream: save it with get_state() (e.g. in a checkpoint), restore with set_state().
struct GeneratorState {
    std::uint64_t seed = 0;
    std::uint64_t offset = 0;  // the next block to use
    bool operator==(const GeneratorState&) const = default;
};

class Generator {
public:
    explicit Generator(std::uint64_t seed = 0) : state_{seed, 0} {}
    Generator(const Generator& other) : state_(other.get_state()) {}  // an independent copy at the same point
    Generator& operator=(const Generator& other);

    void manual_seed(std::uint64_t seed);  // also rewinds the offset to 0, like torch.Generator.manual_seed
    std::uint64_t seed() const;
    std::uint64_t offset() const;
    void set_offset(std::uint64_t offset);
    GeneratorState get_state() const;
    void set_state(const GeneratorState& state);

    // Reserves `blocks` consecutive blocks for one draw: returns (seed, first block) and advances the offset
    // past them. Samplers call this once per draw; a custom kernel (e.g. a fused dropout) may too.
    GeneratorState reserve(std::uint64_t blocks);

private:
    mutable std::mutex mutex_;
    GeneratorState state_;
};

// The generator used when a sampler gets nullptr: the process-wide one, unless a GeneratorScope is active on
// the calling thread. Its first seed is kDefaultSeed, so a program that never seeds still gives the same
// numbers on every run.
inline constexpr std::uint64_t kDefaultSeed = 67280421310721ULL;  // torch.initial_seed() of a fresh process
Generator& default_generator();
void manual_seed(std::uint64_t seed);  // default_generator().manual_seed(seed), like torch.manual_seed

// Makes `gen` this thread's default generator for the scope's lifetime: every draw that would use the
// process-wide generator (model initialisation, dropout masks, manual_seed) uses `gen` instead, on this thread
// only; the previous default comes back when the scope ends (scopes nest). This is how an embedder gives each
// of several independent users of the library (the C API's contexts, capi/) a random stream of its own without
// threading a Generator* through every module. Draws are made on the thread that calls the op (kernels fill
// in parallel from blocks reserved beforehand), so a thread-local choice is enough.
class GeneratorScope {
public:
    explicit GeneratorScope(Generator& gen);
    ~GeneratorScope();
    GeneratorScope(const GeneratorScope&) = delete;
    GeneratorScope& operator=(const GeneratorScope&) = delete;

private:
    Generator* previous_;
};

// ---- samplers ----------------------------------------------------------------------------------------------
// Uniform on [0, 1): k random bits scaled by 2^-k, k = 24 (float32) or 53 (float64), the mantissa width, so
// every value is an exact multiple of 2^-k and 1.0 is never produced. Floating dtypes only.
Tensor rand(const Shape& shape, DType dtype = kFloat32, Generator* gen = nullptr);

// Standard normal by the Box-Muller transform: from u1 in (0, 1] and u2 in [0, 1),
//   r = sqrt(-2 ln u1),  z0 = r cos(2 pi u2),  z1 = r sin(2 pi u2)
// are two independent N(0, 1) values; both are used. Floating dtypes only.
Tensor randn(const Shape& shape, DType dtype = kFloat32, Generator* gen = nullptr);

// Integers uniform on [low, high) (high exclusive), in any dtype. Each value is low + (w mod (high - low))
// with w a 64-bit random word. The modulo makes some values likelier than others by at most (high - low) /
// 2^64 relative, below 1e-9 for any range under 2^34: unbiased enough for sampling and shuffling, without the
// data-dependent loop of rejection sampling. Throws ValueError if low >= high, and if an integer dtype cannot
// hold low or high - 1.
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, DType dtype = kInt64,
               Generator* gen = nullptr);

// In-place fills that respect strides (a non-contiguous tensor gets a contiguous sample copied into it).
// Both return `t` (the same handle) and need a floating tensor. A tensor that requires grad can only be
// filled outside grad mode (under NoGradGuard, as nn init helpers do), like Tensor's in-place ops.
//   uniform_: a + (b - a) u with u from rand, computed in double; needs a <= b. (Rounded to float32, a value can
//             land on b itself when |a| or |b| dwarfs b - a, as in PyTorch.)
//   normal_:  mean + std z with z from randn; needs std >= 0.
Tensor uniform_(const Tensor& t, double a = 0.0, double b = 1.0, Generator* gen = nullptr);
Tensor normal_(const Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);

// 1 with probability p, else 0, in `dtype` (dropout masks). A 32-bit uniform u gives 1 when u < p, so p is
// effectively rounded to a multiple of 2^-32; p = 0 never and p = 1 always gives 1. Throws ValueError unless
// 0 <= p <= 1.
Tensor bernoulli(const Shape& shape, double p, DType dtype = kFloat32, Generator* gen = nullptr);

// A random permutation of 0..n-1 (int64), by the Fisher-Yates shuffle: for i = n-1 down to 1, swap element
// i with element j uniform on [0, i]. Serial (O(n)); the random words come from one draw. n >= 0.
Tensor randperm(std::int64_t n, Generator* gen = nullptr);

}  // namespace tg
