// Attention (nn/attention.h, kernels/attention_exact.h, nn/multihead_attention.h): the fused node against the
// composed softmax(QKᵀ·s + M)V, forward and all three gradients, causal and not, odd lengths, several head
// widths, B·H > 1, heads split from a fused QKV by views; the tiled kernels against the plain reference
// loops (strided layouts, Tq ≠ Tk, Tk = 0); float64 gradchecks; bitwise determinism across runs and thread
// counts; the allocator peak (no T×T buffer); errors; MultiHeadAttention against a composed version.
//
// Under AddressSanitizer (GCC and Clang define __SANITIZE_ADDRESS__ / __has_feature(address_sanitizer)) or
// with -DTG_SANITIZED, the largest sizes are skipped to keep the file fast.

#include "autograd/gradcheck.h"
#include "core/grad_mode.h"
#include "core/node.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/storage.h"
#include "core/threading.h"
#include "kernels/attention_exact.h"
#include "nn/attention.h"
#include "nn/multihead_attention.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace tg;
namespace F = tg::nn::functional;

namespace {

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TG_SANITIZED 1
#endif
#endif
#if defined(TG_SANITIZED) || defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

Tensor random_tensor(const Shape& shape, DType dtype, unsigned seed, double scale = 1.0) {
    std::mt19937 gen(seed);
    std::normal_distribution<double> dist(0.0, scale);
    std::vector<double> v(static_cast<std::size_t>(numel(shape)));
    for (auto& e : v) e = dist(gen);
    return from_vector(v, shape).to(dtype);
}

std::string error_message(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ‖a − b‖_F ≤ rtol·‖b‖_F + atol·sqrt(numel), in float64. (atol covers gradients that are exactly 0, e.g. at
// T = 1 where dQ = dK = 0 and the fused kernel leaves rounding noise.)
void check_close(const Tensor& a, const Tensor& b, double rtol, double atol, const std::string& what) {
    REQUIRE(a.shape() == b.shape());
    const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
    double diff = 0, norm = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        diff += (x[i] - y[i]) * (x[i] - y[i]);
        norm += y[i] * y[i];
    }
    diff = std::sqrt(diff);
    norm = std::sqrt(norm);
    const double bound = rtol * norm + atol * std::sqrt(static_cast<double>(x.size()));
    CHECK_MESSAGE(diff <= bound, what << ": ‖a − b‖ = " << diff << " > " << bound << " (‖b‖ = " << norm << ")");
}

struct Result {
    Tensor o, dq, dk, dv;
};

// Output and gradients of `attn` for the leaves q, k, v and a fixed dO.
Result run(const std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>& attn, const Tensor& q,
           const Tensor& k, const Tensor& v, const Tensor& dout) {
    q.zero_grad();
    k.zero_grad();
    v.zero_grad();
    Tensor o = attn(q, k, v);
    o.backward(dout);
    return {o.detach(), q.grad(), k.grad(), v.grad()};
}

void compare_fused_with_reference(std::int64_t B, std::int64_t H, std::int64_t Tq, std::int64_t Tk, std::int64_t D,
                                  std::int64_t Dv, bool causal, unsigned seed) {
    CAPTURE(B);
    CAPTURE(H);
    CAPTURE(Tq);
    CAPTURE(Tk);
    CAPTURE(D);
    CAPTURE(Dv);
    CAPTURE(causal);
    const Tensor q = random_tensor({B, H, Tq, D}, kFloat32, seed).requires_grad_();
    const Tensor k = random_tensor({B, H, Tk, D}, kFloat32, seed + 1).requires_grad_();
    const Tensor v = random_tensor({B, H, Tk, Dv}, kFloat32, seed + 2).requires_grad_();
    const Tensor dout = random_tensor({B, H, Tq, Dv}, kFloat32, seed + 3);
    F::AttentionOptions options;
    options.causal = causal;
    const Result fused = run([&](auto& a, auto& b, auto& c) { return F::scaled_dot_product_attention(a, b, c, options); },
                             q, k, v, dout);
    const Result ref = run(
        [&](auto& a, auto& b, auto& c) { return F::scaled_dot_product_attention_reference(a, b, c, options); }, q, k,
        v, dout);
    check_close(fused.o, ref.o, 2e-5, 1e-7, "o");
    check_close(fused.dq, ref.dq, 5e-5, 1e-6, "dq");
    check_close(fused.dk, ref.dk, 5e-5, 1e-6, "dk");
    check_close(fused.dv, ref.dv, 5e-5, 1e-6, "dv");
}

}  // namespace

TEST_SUITE("attention") {

TEST_CASE("fused attention matches the composed reference: forward and all gradients") {
    unsigned seed = 100;
    for (std::int64_t T : {1, 2, 17, 64, 100, 257, 1000}) {
        if (kSanitized && T > 257) continue;
        for (std::int64_t D : {8, 16, 64, 80}) {
            if (T == 1000 && D != 64 && D != 8) continue;  // keep the file fast: two widths at the longest T
            for (bool causal : {false, true}) {
                const std::int64_t B = T >= 257 ? 1 : 2, H = 2;
                compare_fused_with_reference(B, H, T, T, D, D, causal, seed += 10);
            }
        }
    }
}

TEST_CASE("fused attention: Tq != Tk, Dv != D, causal top-left alignment, D = 1 and 256") {
    compare_fused_with_reference(2, 1, 37, 100, 16, 24, false, 7);
    compare_fused_with_reference(1, 2, 100, 37, 16, 8, false, 8);
    compare_fused_with_reference(1, 2, 100, 37, 16, 8, true, 9);   // rows i >= 37 see every key
    compare_fused_with_reference(1, 3, 37, 130, 32, 40, true, 10);  // keys j >= 37 are seen by no query
    compare_fused_with_reference(1, 2, 70, 70, 256, 256, true, 11);  // the widest heads
    compare_fused_with_reference(2, 1, 33, 33, 1, 1, false, 12);     // and the narrowest
}

TEST_CASE("heads split from a fused QKV projection by views need no copy and give the same results") {
    for (bool causal : {false, true}) {
        const std::int64_t B = 2, T = 70, H = 3, D = 16;
        // (B, T, 3, H, D) as a Linear(C -> 3C) would produce; q, k, v are strided views (row stride 3·H·D).
        const Tensor qkv = random_tensor({B, T, 3, H, D}, kFloat32, 5).requires_grad_();
        const Tensor dout = random_tensor({B, H, T, D}, kFloat32, 6);
        F::AttentionOptions options;
        options.causal = causal;
        auto heads = [&](std::int64_t i) { return qkv.select(2, i).permute({0, 2, 1, 3}); };
        CHECK_FALSE(heads(0).is_contiguous());

        Tensor o = F::scaled_dot_product_attention(heads(0), heads(1), heads(2), options);
        o.backward(dout);
        const Tensor grad_fused = qkv.grad();
        qkv.zero_grad();
        Tensor o_ref = F::scaled_dot_product_attention_reference(heads(0).contiguous(), heads(1).contiguous(),
                                                                 heads(2).contiguous(), options);
        o_ref.backward(dout);
        check_close(o, o_ref, 2e-5, 1e-7, "o");
        check_close(grad_fused, qkv.grad(), 5e-5, 1e-6, "dqkv");
        // The node's inputs are the views themselves: no contiguous() copy ("clone") was recorded before it.
        REQUIRE(o.grad_fn()->name() == "scaled_dot_product_attention");
        for (const auto& input : o.grad_fn()->inputs) {
            REQUIRE(input.node);
            CHECK(input.node->name() == "permute");
        }
    }
}

TEST_CASE("mixed dtypes are promoted; an expanded incoming gradient (from sum) works") {
    const Tensor q = random_tensor({2, 2, 9, 8}, kFloat64, 51).requires_grad_();
    const Tensor k = random_tensor({2, 2, 9, 8}, kFloat32, 52).requires_grad_();
    const Tensor v = random_tensor({2, 2, 9, 8}, kFloat32, 53).requires_grad_();
    F::AttentionOptions options;
    options.causal = true;
    Tensor o = F::scaled_dot_product_attention(q, k, v, options);
    CHECK(o.dtype() == kFloat64);
    sum(o).backward();  // dO is a stride-0 expand of a scalar
    CHECK(k.grad().dtype() == kFloat32);
    const Tensor k64 = k.detach().to(kFloat64).requires_grad_(), v64 = v.detach().to(kFloat64).requires_grad_();
    const Tensor q2 = q.detach().requires_grad_();
    sum(F::scaled_dot_product_attention_reference(q2, k64, v64, options)).backward();
    check_close(q.grad(), q2.grad(), 1e-10, 1e-12, "dq");
    check_close(k.grad(), k64.grad(), 1e-6, 1e-7, "dk");
    check_close(v.grad(), v64.grad(), 1e-6, 1e-7, "dv");
}

TEST_CASE("tiled kernels match the plain reference loops on strided layouts (float64)") {
    using kernels::AttentionLayout;
    // Widths 20 and 12 are ragged in float64's SIMD batches of 8; 16 and 24 are whole batches, whose dK and dV rows
    // the backward sums in place (kernels/attention_exact.cpp, KeyTileRows).
    for (auto [D, Dv] : {std::pair<std::int64_t, std::int64_t>{20, 12}, {16, 24}})
    for (bool causal : {false, true}) {
        for (auto [Tq, Tk] : {std::pair<std::int64_t, std::int64_t>{67, 67}, {1, 130}, {130, 3}, {200, 129}}) {
            CAPTURE(D);
            CAPTURE(Dv);
            CAPTURE(causal);
            CAPTURE(Tq);
            CAPTURE(Tk);
            kernels::AttentionProblem p;
            p.batch = 2;
            p.heads = 2;
            p.tq = Tq;
            p.tk = Tk;
            p.d = D;
            p.dv = Dv;
            p.causal = causal;
            p.scale = 0.3;
            // Interleaved rows (row stride larger than the width), as views of a wider buffer.
            const std::int64_t rs = 48;
            const AttentionLayout ql{p.heads * Tq * rs, Tq * rs, rs}, kl{p.heads * Tk * rs, Tk * rs, rs};
            auto fill = [](std::vector<double>& x, unsigned seed) {
                std::mt19937 gen(seed);
                std::normal_distribution<double> dist;
                for (auto& e : x) e = dist(gen);
            };
            std::vector<double> q(static_cast<std::size_t>(p.batch * p.heads * Tq * rs)), dout(q.size()),
                k(static_cast<std::size_t>(p.batch * p.heads * Tk * rs)), v(k.size());
            fill(q, 1);
            fill(k, 2);
            fill(v, 3);
            fill(dout, 4);
            const AttentionLayout ol = kernels::contiguous_layout(p, Tq, p.dv);
            const AttentionLayout qg = kernels::contiguous_layout(p, Tq, p.d);
            const AttentionLayout kg = kernels::contiguous_layout(p, Tk, p.d);
            const AttentionLayout vg = kernels::contiguous_layout(p, Tk, p.dv);
            const auto nq = static_cast<std::size_t>(p.batch * p.heads * Tq);
            const auto nk = static_cast<std::size_t>(p.batch * p.heads * Tk);
            std::vector<double> o(nq * p.dv), lse(nq), o_ref(o.size()), lse_ref(nq);
            kernels::attention_forward(p, q.data(), ql, k.data(), kl, v.data(), kl, o.data(), ol, lse.data());
            kernels::attention_forward_reference(p, q.data(), ql, k.data(), kl, v.data(), kl, o_ref.data(), ol,
                                                 lse_ref.data());
            std::vector<double> dq(nq * p.d), dk(nk * p.d), dv(nk * p.dv), dq_ref(dq.size()), dk_ref(dk.size()),
                dv_ref(dv.size());
            std::vector<double> ws(static_cast<std::size_t>(kernels::attention_backward_workspace(p, sizeof(double))));
            kernels::attention_backward(p, q.data(), ql, k.data(), kl, v.data(), kl, o.data(), ol, lse.data(),
                                        dout.data(), ql, dq.data(), qg, dk.data(), kg, dv.data(), vg, ws.data());
            kernels::attention_backward_reference(p, q.data(), ql, k.data(), kl, v.data(), kl, o.data(), ol,
                                                  lse.data(), dout.data(), ql, dq_ref.data(), qg, dk_ref.data(), kg,
                                                  dv_ref.data(), vg);
            auto max_diff = [](const std::vector<double>& a, const std::vector<double>& b) {
                double m = 0;
                for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
                return m;
            };
            CHECK(max_diff(o, o_ref) < 1e-12);
            CHECK(max_diff(lse, lse_ref) < 1e-12);
            CHECK(max_diff(dq, dq_ref) < 1e-12);
            CHECK(max_diff(dk, dk_ref) < 1e-12);
            CHECK(max_diff(dv, dv_ref) < 1e-12);
        }
    }
}

TEST_CASE("float kernels store O, dK, dV transposed into strided rows: 16 x 16 blocks and edges") {
    // O, dK and dV leave the kernels through a transposed store (16 × 16 register blocks on AVX-512 builds, value
    // by value at the edges): widths 16, 32 and 48 give whole blocks, 20 and 40 a block plus edge columns; key
    // tiles of 67 and 17 rows give whole blocks plus edge rows; every output row has padding after it that must
    // stay untouched.
    using kernels::AttentionLayout;
    for (auto [D, Dv] : {std::pair<std::int64_t, std::int64_t>{16, 48}, {32, 20}, {40, 16}}) {
        for (std::int64_t T : {17, 67}) {
            CAPTURE(D);
            CAPTURE(Dv);
            CAPTURE(T);
            kernels::AttentionProblem p;
            p.batch = 1;
            p.heads = 2;
            p.tq = p.tk = T;
            p.d = D;
            p.dv = Dv;
            p.causal = T == 67;
            p.scale = 0.25;
            const std::int64_t rs = 56;  // every row stride: wider than any width, so rows have padding
            const AttentionLayout lay{p.heads * T * rs, T * rs, rs};
            const auto n = static_cast<std::size_t>(p.batch * p.heads * T * rs);
            auto filled = [n](unsigned seed) {
                std::vector<float> x(n);
                std::mt19937 gen(seed);
                std::normal_distribution<float> dist;
                for (auto& e : x) e = dist(gen);
                return x;
            };
            const auto q = filled(1), k = filled(2), v = filled(3), dout = filled(4);
            const float pad = 7.0f;  // sentinel in the outputs' padding
            std::vector<float> o(n, pad), o_ref(n, pad), lse(p.heads * T), lse_ref(p.heads * T);
            kernels::attention_forward(p, q.data(), lay, k.data(), lay, v.data(), lay, o.data(), lay, lse.data());
            kernels::attention_forward_reference(p, q.data(), lay, k.data(), lay, v.data(), lay, o_ref.data(), lay,
                                                 lse_ref.data());
            std::vector<float> dq(n, pad), dk(n, pad), dv(n, pad), dq_ref(n, pad), dk_ref(n, pad), dv_ref(n, pad);
            std::vector<float> ws(static_cast<std::size_t>(kernels::attention_backward_workspace(p, sizeof(float))));
            kernels::attention_backward(p, q.data(), lay, k.data(), lay, v.data(), lay, o.data(), lay, lse.data(),
                                        dout.data(), lay, dq.data(), lay, dk.data(), lay, dv.data(), lay, ws.data());
            kernels::attention_backward_reference(p, q.data(), lay, k.data(), lay, v.data(), lay, o.data(), lay,
                                                  lse.data(), dout.data(), lay, dq_ref.data(), lay, dk_ref.data(),
                                                  lay, dv_ref.data(), lay);
            // Elements inside the rows agree to float rounding; padding elements must be the sentinel, exactly.
            auto mismatches = [&](const std::vector<float>& got, const std::vector<float>& want, std::int64_t width) {
                int bad = 0;
                for (std::size_t i = 0; i < n; ++i) {
                    const bool inside = static_cast<std::int64_t>(i) % rs < width;
                    const bool ok = inside ? std::abs(got[i] - want[i]) <= 1e-4f * (1.0f + std::abs(want[i]))
                                           : got[i] == pad;
                    bad += ok ? 0 : 1;
                }
                return bad;
            };
            CHECK(mismatches(o, o_ref, Dv) == 0);
            CHECK(mismatches(dq, dq_ref, D) == 0);
            CHECK(mismatches(dk, dk_ref, D) == 0);
            CHECK(mismatches(dv, dv_ref, Dv) == 0);
        }
    }
}

TEST_CASE("a query with no visible key: O = 0, lse = -inf, zero gradient (no NaN)") {
    kernels::AttentionProblem p;
    p.tq = 5;
    p.tk = 0;
    p.d = 4;
    p.dv = 4;
    std::vector<float> q(20, 1.0f), o(20, 7.0f), lse(5, 7.0f), dq(20, 7.0f), dout(20, 1.0f);
    const auto l = kernels::contiguous_layout(p, 5, 4);
    const auto l0 = kernels::contiguous_layout(p, 0, 4);
    kernels::attention_forward<float>(p, q.data(), l, nullptr, l0, nullptr, l0, o.data(), l, lse.data());
    for (float x : o) CHECK(x == 0.0f);
    for (float x : lse) CHECK(x == -std::numeric_limits<float>::infinity());
    std::vector<float> ws(static_cast<std::size_t>(kernels::attention_backward_workspace(p, sizeof(float))) + 1);
    kernels::attention_backward<float>(p, q.data(), l, nullptr, l0, nullptr, l0, o.data(), l, lse.data(), dout.data(),
                                       l, dq.data(), l, nullptr, l0, nullptr, l0, ws.data());
    for (float x : dq) CHECK(x == 0.0f);

    // Through the node: k, v with Tk = 0.
    const Tensor qt = random_tensor({1, 1, 3, 4}, kFloat32, 1).requires_grad_();
    const Tensor kt = zeros({1, 1, 0, 4}).requires_grad_();
    const Tensor vt = zeros({1, 1, 0, 4}).requires_grad_();
    Tensor out = F::scaled_dot_product_attention(qt, kt, vt);
    for (float x : out.to_vector<float>()) CHECK(x == 0.0f);
    sum(out).backward();
    for (float x : qt.grad().to_vector<float>()) CHECK(x == 0.0f);
}

TEST_CASE("gradcheck in float64: plain, causal, Tq != Tk, and heads from a fused QKV") {
    for (bool causal : {false, true}) {
        CAPTURE(causal);
        F::AttentionOptions options;
        options.causal = causal;
        const Tensor q = random_tensor({1, 2, 5, 3}, kFloat64, 11).requires_grad_();
        const Tensor k = random_tensor({1, 2, 5, 3}, kFloat64, 12).requires_grad_();
        const Tensor v = random_tensor({1, 2, 5, 4}, kFloat64, 13).requires_grad_();
        auto f = [&](const std::vector<Tensor>& in) {
            return F::scaled_dot_product_attention(in[0], in[1], in[2], options);
        };
        auto r = autograd::gradcheck(f, {q, k, v});
        CHECK_MESSAGE(r.ok, r.message);

        const Tensor k2 = random_tensor({1, 2, 7, 3}, kFloat64, 14).requires_grad_();
        const Tensor v2 = random_tensor({1, 2, 7, 2}, kFloat64, 15).requires_grad_();
        options.scale = 0.7;
        r = autograd::gradcheck(f, {q, k2, v2});
        CHECK_MESSAGE(r.ok, r.message);

        // One leaf (B, T, 3, H, D) holding q, k, v: gradients flow back through the views.
        const Tensor qkv = random_tensor({2, 4, 3, 2, 3}, kFloat64, 16).requires_grad_();
        auto g = [&](const std::vector<Tensor>& in) {
            auto h = [&](std::int64_t i) { return in[0].select(2, i).permute({0, 2, 1, 3}); };
            return F::scaled_dot_product_attention(h(0), h(1), h(2), options);
        };
        r = autograd::gradcheck(g, {qkv});
        CHECK_MESSAGE(r.ok, r.message);
    }
}

TEST_CASE("bitwise deterministic across runs and thread counts") {
    const std::int64_t T = kSanitized ? 150 : 700;
    const Tensor q = random_tensor({1, 2, T, 64}, kFloat32, 21).requires_grad_();
    const Tensor k = random_tensor({1, 2, T, 64}, kFloat32, 22).requires_grad_();
    const Tensor v = random_tensor({1, 2, T, 64}, kFloat32, 23).requires_grad_();
    const Tensor dout = random_tensor({1, 2, T, 64}, kFloat32, 24);
    F::AttentionOptions options;
    options.causal = true;
    auto attn = [&](auto& a, auto& b, auto& c) { return F::scaled_dot_product_attention(a, b, c, options); };
    auto same = [](const Tensor& a, const Tensor& b) {
        const auto x = a.to_vector<float>(), y = b.to_vector<float>();
        return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
    };
    const Result first = run(attn, q, k, v, dout);
    const Result second = run(attn, q, k, v, dout);
    CHECK(same(first.o, second.o));
    CHECK(same(first.dq, second.dq));
    CHECK(same(first.dk, second.dk));
    CHECK(same(first.dv, second.dv));

    const int threads_before = get_num_threads();
    set_num_threads(1);
    const Result serial = run(attn, q, k, v, dout);
    set_num_threads(threads_before);
    CHECK(same(first.o, serial.o));
    CHECK(same(first.dq, serial.dq));
    CHECK(same(first.dk, serial.dk));
    CHECK(same(first.dv, serial.dv));
}

TEST_CASE("memory: forward + backward hold no T x T buffer") {
    const std::int64_t T = kSanitized ? 2048 : 4096, D = 64;
    const Tensor q = random_tensor({1, 1, T, D}, kFloat32, 31).requires_grad_();
    const Tensor k = random_tensor({1, 1, T, D}, kFloat32, 32).requires_grad_();
    const Tensor v = random_tensor({1, 1, T, D}, kFloat32, 33).requires_grad_();
    const Tensor dout = random_tensor({1, 1, T, D}, kFloat32, 34);
    F::AttentionOptions options;
    options.causal = true;
    const std::int64_t before = memory_stats().current_bytes;
    reset_peak_memory();
    {
        Tensor o = F::scaled_dot_product_attention(q, k, v, options);
        o.backward(dout);
    }
    const std::int64_t extra = memory_stats().peak_bytes - before;
    const std::int64_t square = T * T * 4;
    MESSAGE("peak extra bytes " << extra << " at T = " << T << " (T x T floats: " << square << ")");
    // O, lse, dQ, dK, dV and the workspace are O(T·D): about 13 T·D floats at B·H = 1 (O, dQ, dK, dV and
    // 8 partial dQ buffers), a few MB, against 64 MB for one T x T matrix at T = 4096.
    CHECK(extra <= 16 * T * D * 4);
    if (T >= 4096) CHECK(extra < square / 4);
    CHECK(extra > 0);
}

TEST_CASE("errors name the op and every shape") {
    const Tensor q = zeros({2, 3, 5, 8}), k = zeros({2, 3, 6, 8}), v = zeros({2, 3, 6, 4});
    std::string msg = error_message([&] { F::scaled_dot_product_attention(q, zeros({2, 3, 6, 7}), v); });
    CHECK(contains(msg, "scaled_dot_product_attention"));
    CHECK(contains(msg, "q [2, 3, 5, 8], k [2, 3, 6, 7], v [2, 3, 6, 4]"));
    msg = error_message([&] { F::scaled_dot_product_attention(q, k, zeros({2, 3, 5, 4})); });
    CHECK(contains(msg, "different lengths Tk"));
    msg = error_message([&] { F::scaled_dot_product_attention(q, zeros({2, 2, 6, 8}), v); });
    CHECK(contains(msg, "B, H differ"));
    msg = error_message([&] { F::scaled_dot_product_attention(zeros({5, 8}), k, v); });
    CHECK(contains(msg, "4-D"));
    msg = error_message([&] { F::scaled_dot_product_attention(zeros({1, 1, 2, 300}), zeros({1, 1, 2, 300}), zeros({1, 1, 2, 4})); });
    CHECK(contains(msg, "[1, 256]"));
    CHECK_THROWS_AS(F::scaled_dot_product_attention(q, k, zeros({2, 3, 5, 4})), ShapeError);

    F::AttentionOptions options;
    options.mode = F::AttentionMode::Approx;
    options.degree = 7;
    msg = error_message([&] { F::scaled_dot_product_attention(q, k, v, options); });
    CHECK(contains(msg, "scaled_dot_product_attention[approx]"));
    CHECK(contains(msg, "q [2, 3, 5, 8], k [2, 3, 6, 8], v [2, 3, 6, 4]"));
    CHECK_THROWS_AS(F::scaled_dot_product_attention(q, k, v, options), ValueError);

    CHECK_THROWS_AS(nn::MultiHeadAttention(10, 3), ValueError);
    nn::MultiHeadAttention mha(8, 2);
    msg = error_message([&] { mha.forward(zeros({2, 5, 6})); });
    CHECK(contains(msg, "MultiHeadAttention"));
    CHECK(contains(msg, "[2, 5, 6]"));
}

TEST_CASE("MultiHeadAttention: parameters, and forward/backward against a composed version") {
    manual_seed(3);
    const std::int64_t B = 2, T = 19, C = 32, H = 4, D = C / H;
    nn::MultiHeadAttention mha(C, H, /*causal=*/true, /*dropout=*/0.0, /*bias=*/true);
    const auto named = mha.named_parameters();
    REQUIRE(named.size() == 4);
    CHECK(named[0].first == "qkv.weight");
    CHECK(named[1].first == "qkv.bias");
    CHECK(named[2].first == "proj.weight");
    CHECK(named[3].first == "proj.bias");
    CHECK(named[0].second.shape() == Shape{3 * C, C});

    const Tensor x = random_tensor({B, T, C}, kFloat32, 41).requires_grad_();
    const Tensor dy = random_tensor({B, T, C}, kFloat32, 42);
    Tensor y = mha.forward(x);
    CHECK(y.shape() == Shape{B, T, C});
    y.backward(dy);
    std::vector<Tensor> grads{x.grad()};
    for (const auto& [name, p] : named) grads.push_back(p.grad());

    // Composed: separate q, k, v weights sliced from the fused ones, contiguous heads, the reference attention.
    x.zero_grad();
    mha.zero_grad();
    const Tensor qkv = matmul(x, mha.qkv->weight.t()) + mha.qkv->bias;  // (B, T, 3C)
    std::vector<Tensor> heads;
    for (std::int64_t i = 0; i < 3; ++i) {
        heads.push_back(qkv.slice(2, i * C, (i + 1) * C).reshape({B, T, H, D}).transpose(1, 2).contiguous());
    }
    F::AttentionOptions options;
    options.causal = true;
    const Tensor att = F::scaled_dot_product_attention_reference(heads[0], heads[1], heads[2], options);
    const Tensor merged = att.transpose(1, 2).contiguous().view({B, T, C});
    const Tensor y_ref = matmul(merged, mha.proj->weight.t()) + mha.proj->bias;
    y_ref.backward(dy);
    check_close(y, y_ref, 2e-5, 1e-7, "y");
    check_close(grads[0], x.grad(), 5e-5, 1e-7, "dx");
    for (std::size_t i = 0; i < named.size(); ++i) check_close(grads[i + 1], named[i].second.grad(), 5e-5, 1e-7, named[i].first);

    // The options are per layer: approx_backward keeps the exact forward values.
    mha.options.mode = F::AttentionMode::ApproxBackward;
    check_close(mha.forward(x).detach(), y, 1e-6, 1e-8, "y approx_backward");
}

}  // TEST_SUITE
