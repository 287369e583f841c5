#include "core/random.h"

#include "core/grad_mode.h"
#include "core/strided.h"  // kParallelGrain
#include "kernels/parallel_region.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace tg {

// ---- Philox4x32-10 (Salmon et al. 2011, section 5; Random123's philox.h) -----------------------------------------
//
// One round maps the counter (c0, c1, c2, c3) with round key (k0, k1) to
//   (hi(M1 c2) ^ c1 ^ k0,  lo(M1 c2),  hi(M0 c0) ^ c3 ^ k1,  lo(M0 c0))
// where hi/lo are the upper and lower 32 bits of the 64-bit product. Between rounds the key is bumped by the
// Weyl constants W0, W1 (golden ratio and sqrt(3) - 1 in 32-bit fixed point). Ten rounds pass BigCrush.

namespace {
constexpr std::uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr std::uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr std::uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr std::uint32_t kPhiloxW1 = 0xBB67AE85u;

inline PhiloxCounter philox_round(const PhiloxCounter& c, const PhiloxKey& k) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kPhiloxM0) * c[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kPhiloxM1) * c[2];
    const auto hi = [](std::uint64_t p) { return static_cast<std::uint32_t>(p >> 32); };
    const auto lo = [](std::uint64_t p) { return static_cast<std::uint32_t>(p); };
    return {hi(p1) ^ c[1] ^ k[0], lo(p1), hi(p0) ^ c[3] ^ k[1], lo(p0)};
}
}  // namespace

PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            key[0] += kPhiloxW0;  // unsigned: wraps mod 2^32 as the algorithm wants
            key[1] += kPhiloxW1;
        }
        counter = philox_round(counter, key);
    }
    return counter;
}

PhiloxCounter philox_block(std::uint64_t seed, std::uint64_t block) {
    const auto lo = [](std::uint64_t v) { return static_cast<std::uint32_t>(v); };
    const auto hi = [](std::uint64_t v) { return static_cast<std::uint32_t>(v >> 32); };
    return philox4x32_10({lo(block), hi(block), 0u, 0u}, {lo(seed), hi(seed)});
}

// ---- Generator ----------------------------------------------------------------------------------------------

Generator& Generator::operator=(const Generator& other) {
    if (this != &other) set_state(other.get_state());
    return *this;
}

void Generator::manual_seed(std::uint64_t seed) { set_state({seed, 0}); }

std::uint64_t Generator::seed() const { return get_state().seed; }

std::uint64_t Generator::offset() const { return get_state().offset; }

void Generator::set_offset(std::uint64_t offset) {
    std::lock_guard lock(mutex_);
    state_.offset = offset;
}

GeneratorState Generator::get_state() const {
    std::lock_guard lock(mutex_);
    return state_;
}

void Generator::set_state(const GeneratorState& state) {
    std::lock_guard lock(mutex_);
    state_ = state;
}

GeneratorState Generator::reserve(std::uint64_t blocks) {
    std::lock_guard lock(mutex_);
    const GeneratorState at = state_;
    state_.offset += blocks;  // wraps after 2^64 blocks (2^68 bytes): never in practice
    return at;
}

namespace {
thread_local Generator* t_scoped_generator = nullptr;  // set by GeneratorScope
}  // namespace

Generator& default_generator() {
    if (t_scoped_generator != nullptr) return *t_scoped_generator;
    static Generator generator(kDefaultSeed);
    return generator;
}

GeneratorScope::GeneratorScope(Generator& gen) : previous_(t_scoped_generator) { t_scoped_generator = &gen; }
GeneratorScope::~GeneratorScope() { t_scoped_generator = previous_; }

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

// ---- from random words to numbers ------------------------------------------------------------------------------

namespace {

Generator& pick(Generator* gen) { return gen != nullptr ? *gen : default_generator(); }

std::uint64_t join64(std::uint32_t hi, std::uint32_t lo) { return (static_cast<std::uint64_t>(hi) << 32) | lo; }

// [0, 1) on the float grid: the top 24 bits of a word times 2^-24. Exact in float, never 1.
float uniform24(std::uint32_t w) { return static_cast<float>(w >> 8) * 0x1p-24f; }
// [0, 1) on the double grid: the top 53 bits of a 64-bit word times 2^-53. Exact in double, never 1.
double uniform53(std::uint64_t w) { return static_cast<double>(w >> 11) * 0x1p-53; }

// Box-Muller (Box & Muller 1958): u1 in (0, 1], u2 in [0, 1) -> two independent N(0, 1) values.
// u1 excludes 0 so ln u1 is finite; the largest |z| is sqrt(-2 ln 2^-32) = 6.66 (32-bit u1) or 8.57 (53-bit).
std::pair<double, double> box_muller(double u1, double u2) {
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0 * std::numbers::pi * u2;
    return {r * std::cos(theta), r * std::sin(theta)};
}

std::string fmt(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}

// Fills out[0..n) from one draw of ceil(n / PerBlock) blocks: block b gives out[b*PerBlock .. b*PerBlock +
// PerBlock) through sample(words, values). Every value depends only on (seed, offset, its index), so splitting
// the blocks among threads in any way gives the same result at every thread count.
template <int PerBlock, typename T, typename Sample>
void fill_blocks(T* out, std::int64_t n, Generator* gen, Sample sample) {
    if (n <= 0) return;
    const std::int64_t blocks = (n + PerBlock - 1) / PerBlock;
    const GeneratorState at = pick(gen).reserve(static_cast<std::uint64_t>(blocks));
    auto run = [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t b = first; b < last; ++b) {
            T values[PerBlock];
            sample(philox_block(at.seed, at.offset + static_cast<std::uint64_t>(b)), values);
            const std::int64_t start = b * PerBlock;
            const std::int64_t count = std::min<std::int64_t>(PerBlock, n - start);
            std::copy(values, values + count, out + start);
        }
    };
    if (n < detail::kParallelGrain) {
        run(0, blocks);
    } else {
        const std::int64_t grain = std::max<std::int64_t>(1, detail::kParallelGrain / 2 / PerBlock);
        const kernels::ParallelRegion region;
        tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, blocks, grain),
                          [&](const tbb::blocked_range<std::int64_t>& r) { run(r.begin(), r.end()); });
    }
}

// out (contiguous, floating) <- a + (b - a) u, u uniform on [0, 1) from rand's layout.
void fill_uniform(const Tensor& out, double a, double b, Generator* gen) {
    const double span = b - a;
    if (out.dtype() == kFloat32) {
        fill_blocks<4>(out.data<float>(), out.numel(), gen, [&](const PhiloxCounter& w, float* v) {
            for (int k = 0; k < 4; ++k) v[k] = static_cast<float>(a + span * uniform24(w[k]));
        });
    } else {
        fill_blocks<2>(out.data<double>(), out.numel(), gen, [&](const PhiloxCounter& w, double* v) {
            v[0] = a + span * uniform53(join64(w[0], w[1]));
            v[1] = a + span * uniform53(join64(w[2], w[3]));
        });
    }
}

// out (contiguous, floating) <- mean + std z, z standard normal from randn's layout.
void fill_normal(const Tensor& out, double mean, double std, Generator* gen) {
    if (out.dtype() == kFloat32) {
        // Two pairs per block, each from two 32-bit words: u1 = (w + 1) 2^-32 in (0, 1], u2 = w 2^-32 in [0, 1).
        fill_blocks<4>(out.data<float>(), out.numel(), gen, [&](const PhiloxCounter& w, float* v) {
            for (int pair = 0; pair < 2; ++pair) {
                const double u1 = (static_cast<double>(w[2 * pair]) + 1.0) * 0x1p-32;
                const double u2 = static_cast<double>(w[2 * pair + 1]) * 0x1p-32;
                const auto [z0, z1] = box_muller(u1, u2);
                v[2 * pair] = static_cast<float>(mean + std * z0);
                v[2 * pair + 1] = static_cast<float>(mean + std * z1);
            }
        });
    } else {
        // One pair per block from two 64-bit words: u1 = 1 - uniform53 in (0, 1], u2 = uniform53 in [0, 1).
        fill_blocks<2>(out.data<double>(), out.numel(), gen, [&](const PhiloxCounter& w, double* v) {
            const double u1 = 1.0 - uniform53(join64(w[0], w[1]));
            const double u2 = uniform53(join64(w[2], w[3]));
            const auto [z0, z1] = box_muller(u1, u2);
            v[0] = mean + std * z0;
            v[1] = mean + std * z1;
        });
    }
}

void require_floating_dtype(const char* op, DType dtype) {
    if (!is_floating(dtype))
        throw DTypeError(std::string(op) + ": expected a floating dtype (float32 or float64), got " +
                         dtype_name(dtype));
}

// Runs fill(contiguous tensor) so that its values land in t, whatever t's strides: a contiguous t is written
// directly (and its storage version bumped, as every in-place write must), any other gets a contiguous sample
// through copy_. A tensor that requires grad may only be filled outside grad mode, as Tensor's own in-place
// ops demand: nn init helpers run under NoGradGuard.
template <typename Fill>
Tensor fill_in_place(const char* op, const Tensor& t, Fill fill) {
    if (is_grad_enabled() && t.requires_grad())
        throw Error(std::string(op) + ": tensor " + t.describe() +
                    " requires grad and cannot be filled in place while grad mode is on (use NoGradGuard, as nn "
                    "init helpers do)");
    if (t.numel() == 0) return t;
    if (t.is_contiguous()) {
        fill(t);
        t.storage()->bump_version();
        return t;
    }
    const Tensor sample = empty(t.shape(), t.dtype());
    fill(sample);
    Tensor target = t;
    target.copy_(sample);
    return t;
}

}  // namespace

// ---- samplers ----------------------------------------------------------------------------------------------

Tensor rand(const Shape& shape, DType dtype, Generator* gen) {
    require_floating_dtype("rand", dtype);
    Tensor out = empty(shape, dtype);
    fill_uniform(out, 0.0, 1.0, gen);  // 0 + 1 * u is exactly u
    return out;
}

Tensor randn(const Shape& shape, DType dtype, Generator* gen) {
    require_floating_dtype("randn", dtype);
    Tensor out = empty(shape, dtype);
    fill_normal(out, 0.0, 1.0, gen);
    return out;
}

Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, DType dtype, Generator* gen) {
    if (low >= high)
        throw ValueError("randint: expected low < high, got low=" + std::to_string(low) +
                         ", high=" + std::to_string(high));
    if (dtype == kInt32 && (low < std::numeric_limits<std::int32_t>::min() ||
                            high - 1 > std::numeric_limits<std::int32_t>::max()))
        throw ValueError("randint: range [" + std::to_string(low) + ", " + std::to_string(high) +
                         ") does not fit in int32");
    Tensor out = empty(shape, dtype);
    // high - low computed in unsigned arithmetic: it is at most 2^64 - 1 even for the full int64 range.
    const std::uint64_t range = static_cast<std::uint64_t>(high) - static_cast<std::uint64_t>(low);
    dispatch(dtype, [&](auto tag) {
        using T = decltype(tag);
        const auto value = [&](std::uint64_t w) {
            // low + (w mod range) wraps back into int64 range in unsigned arithmetic, then converts.
            return static_cast<T>(static_cast<std::int64_t>(static_cast<std::uint64_t>(low) + w % range));
        };
        fill_blocks<2>(out.data<T>(), out.numel(), gen, [&](const PhiloxCounter& w, T* v) {
            v[0] = value(join64(w[0], w[1]));
            v[1] = value(join64(w[2], w[3]));
        });
    });
    return out;
}

Tensor uniform_(const Tensor& t, double a, double b, Generator* gen) {
    if (!is_floating(t.dtype()))
        throw DTypeError("uniform_: expected a floating tensor, got " + t.describe());
    if (!(a <= b)) throw ValueError("uniform_: expected a <= b, got a=" + fmt(a) + ", b=" + fmt(b));
    return fill_in_place("uniform_", t, [&](const Tensor& out) { fill_uniform(out, a, b, gen); });
}

Tensor normal_(const Tensor& t, double mean, double std, Generator* gen) {
    if (!is_floating(t.dtype()))
        throw DTypeError("normal_: expected a floating tensor, got " + t.describe());
    if (!(std >= 0.0)) throw ValueError("normal_: expected std >= 0, got std=" + fmt(std));
    return fill_in_place("normal_", t, [&](const Tensor& out) { fill_normal(out, mean, std, gen); });
}

Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator* gen) {
    if (!(p >= 0.0 && p <= 1.0)) throw ValueError("bernoulli: expected 0 <= p <= 1, got p=" + fmt(p));
    Tensor out = empty(shape, dtype);
    dispatch(dtype, [&](auto tag) {
        using T = decltype(tag);
        fill_blocks<4>(out.data<T>(), out.numel(), gen, [&](const PhiloxCounter& w, T* v) {
            // u = w 2^-32 is in [0, 1): P(u < p) = p up to the 2^-32 grid; p = 1 always passes.
            for (int k = 0; k < 4; ++k) v[k] = static_cast<double>(w[k]) * 0x1p-32 < p ? T(1) : T(0);
        });
    });
    return out;
}

Tensor randperm(std::int64_t n, Generator* gen) {
    if (n < 0) throw ValueError("randperm: expected n >= 0, got n=" + std::to_string(n));
    Tensor out = empty({n}, kInt64);
    std::int64_t* perm = out.data<std::int64_t>();
    for (std::int64_t i = 0; i < n; ++i) perm[i] = i;
    // One 64-bit word per swap; swap s (s = 0, 1, ...) moves position i = n-1-s.
    std::vector<std::uint64_t> words(static_cast<std::size_t>(std::max<std::int64_t>(n - 1, 0)));
    fill_blocks<2>(words.data(), static_cast<std::int64_t>(words.size()), gen,
                   [](const PhiloxCounter& w, std::uint64_t* v) {
                       v[0] = join64(w[0], w[1]);
                       v[1] = join64(w[2], w[3]);
                   });
    for (std::int64_t i = n - 1; i >= 1; --i) {
        const auto j = static_cast<std::int64_t>(words[static_cast<std::size_t>(n - 1 - i)] %
                                                 static_cast<std::uint64_t>(i + 1));
        std::swap(perm[i], perm[j]);
    }
    return out;
}

}  // namespace tg
